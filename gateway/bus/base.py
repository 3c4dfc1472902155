"""The bus contract: the only thing between sources and sensors.

A backend promises:

* ``publish(events)`` returns only when every event is durable (it survives a crash of this
  process and, for the embedded bus, of the machine), or raises ``BusError``. An event whose id
  was already published within the dedup window is not stored again: its result is ``False``.
  A distributed backend knows only the ids its own process published; a copy published by
  another process answers ``True`` and is dropped when consumed (it is delivered once).
* ``subscribe(group)`` delivers every durable event to every group, in publish order, in batches.
  Each group has its own acknowledgements.
* ``ack(group, deliveries)`` marks deliveries done for that group. Acks may come in any order.
  Everything not acknowledged is delivered again when the group subscribes again (after a restart).
  Acks may be persisted lazily: losing one only causes a redelivery.
* A backend that partitions (Kafka) may take partitions away from a subscription when its
  consumer group rebalances; it then calls the subscription's ``on_revoke`` and redelivers
  everything unacknowledged of what it still holds, so that the subscriber, having dropped the
  state it built from earlier deliveries, rebuilds it. Order then holds per partition (per
  partition key), not across the whole bus. The embedded backends never do this.
* ``set_router`` tells a partitioning backend which groups want an event and by which key it is
  partitioned; the embedded backends deliver every event to every group and ignore it.

Every backend passes ``tests/contract/test_bus_contract.py``.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from gateway.errors import BusError
from sensors.event import Event

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event delivered to one group. ``seq`` orders events and identifies the delivery.

    ``seq`` is unique per group and stable across redeliveries of the same stored event.
    """

    seq: int
    event: Event


#: Maps an event to the ``(group, partition key)`` pairs that want it (see ``Bus.set_router``).
Router = Callable[[Event], Sequence[tuple[str, str]]]

#: Called by a partitioning backend when a rebalance takes partitions away (see ``subscribe``).
OnRevoke = Callable[[], Awaitable[None]]


class Bus(ABC):
    @abstractmethod
    async def start(self) -> None:
        """Open storage and start background work. Must be called before anything else."""

    @abstractmethod
    async def close(self) -> None:
        """Flush pending acknowledgements and release resources. Ends every subscription."""

    @abstractmethod
    async def publish(self, events: Sequence[Event]) -> list[bool]:
        """Make events durable. Returns, per event, True if stored, False if a duplicate."""

    @abstractmethod
    def subscribe(
        self, group: str, *, batch_size: int = 512, on_revoke: OnRevoke | None = None
    ) -> AsyncIterator[list[Delivery]]:
        """Unacknowledged and new events for ``group``, in order, in batches, until ``close``.

        ``on_revoke`` is awaited when a partitioning backend takes partitions away from this
        subscription (a consumer-group rebalance): the subscriber drops every state it built from
        earlier deliveries, and the backend then delivers again everything unacknowledged of the
        partitions it still holds. Backends that never rebalance accept and ignore it.
        """

    @abstractmethod
    async def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        """Mark deliveries done for ``group``."""

    def set_router(self, router: Router | None, groups: Sequence[str]) -> None:
        """Route events to groups by partition key (for partitioning backends; a no-op here).

        ``router(event)`` returns the ``(group, partition key)`` pairs that want the event; all
        events of one key reach one consumer of that group. ``groups`` are the routed groups
        (known in advance so that a backend can prepare their storage). ``None`` turns routing
        off: every group then receives every event. Call it before ``start``.
        """
        return None

    async def healthy(self) -> bool:
        """True when the bus can accept publishes."""
        return True


async def flush_loop(
    signal: asyncio.Event, interval: float, flush: Callable[[], Awaitable[None]], what: str
) -> None:
    """Run ``flush`` ``interval`` seconds after ``signal`` is set (acknowledgements arrived), until
    cancelled. A ``BusError`` is logged and retried on the next round: losing an ack is only a
    redelivery, so the loop never stops over one."""
    while True:
        await signal.wait()
        await asyncio.sleep(interval)
        signal.clear()
        try:
            await flush()
        except BusError as exc:
            log.warning("could not save acknowledgements %s (will retry): %s", what, exc)
            await asyncio.sleep(max(interval, 0.5))
