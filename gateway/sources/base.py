"""What every event source is, and what it publishes to.

A source speaks one upstream protocol (HTTP, S3 notifications, Kafka, AMQP, ...). It turns each
upstream message into zero or more :class:`~sensors.event.Event` envelopes, hands them to its
:class:`Publisher` (the bus) and only then acknowledges upstream. When the publisher raises
:class:`~gateway.errors.BusError` the source answers upstream with a failure, so that upstream
delivers again.

Lifecycle: ``await start()`` returns once the source accepts messages (an HTTP source listens);
``await stop()`` stops accepting new messages and returns once the messages already accepted are
finished (published and answered). ``stop`` is safe to call twice and before ``start``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sensors.event import Event


@runtime_checkable
class Publisher(Protocol):
    """The bus as a source sees it (``gateway.bus.base.Bus`` is one).

    ``publish`` returns, per event, ``True`` when it was stored and ``False`` when it was a
    duplicate of an event already stored (same id); it returns only once the events are durable
    and raises ``gateway.errors.BusError`` when it cannot make them durable.
    """

    async def publish(self, events: Sequence[Event]) -> list[bool]: ...


@runtime_checkable
class HealthReporter(Protocol):
    """Optional: a publisher that can say whether it accepts publishes (``Bus.healthy``)."""

    async def healthy(self) -> bool: ...


class Source(ABC):
    """One running source: it owns its listeners/consumers and publishes what they receive."""

    @property
    @abstractmethod
    def name(self) -> str:
        """A short human-readable name for logs (for example ``webhook :12000``)."""

    @abstractmethod
    async def start(self) -> None:
        """Start accepting upstream messages; returns once the source accepts them."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop accepting, let in-flight messages finish (publish and answer), release resources."""
