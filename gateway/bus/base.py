"""The bus contract: the only thing between sources and sensors.

A backend promises:

* ``publish(events)`` returns only when every event is durable (it survives a crash of this
  process and, for the embedded bus, of the machine), or raises ``BusError``. An event whose id
  was already published within the dedup window is not stored again: its result is ``False``.
* ``subscribe(group)`` delivers every durable event to every group, in publish order, in batches.
  Each group has its own acknowledgements.
* ``ack(group, deliveries)`` marks deliveries done for that group. Acks may come in any order.
  Everything not acknowledged is delivered again when the group subscribes again (after a restart).
  Acks may be persisted lazily: losing one only causes a redelivery.

Every backend passes ``tests/contract/test_bus_contract.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sensors.event import Event


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event delivered to one group. ``seq`` orders events and identifies the delivery."""

    seq: int
    event: Event


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
    def subscribe(self, group: str, *, batch_size: int = 512) -> AsyncIterator[list[Delivery]]:
        """Unacknowledged and new events for ``group``, in order, in batches, until ``close``."""

    @abstractmethod
    async def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        """Mark deliveries done for ``group``."""

    async def healthy(self) -> bool:
        """True when the bus can accept publishes."""
        return True
