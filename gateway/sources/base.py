"""What every event source is, and what it publishes to.

A source speaks one upstream protocol (HTTP, S3 notifications, Kafka, AMQP, ...). It turns each
upstream message into zero or more :class:`~sensors.event.Event` envelopes, hands them to its
:class:`Publisher` (the bus) and only then acknowledges upstream. When the publisher raises
:class:`~gateway.errors.BusError` the source answers upstream with a failure, so that upstream
delivers again.

Lifecycle: ``await start()`` returns once the source accepts messages (an HTTP source listens);
``await stop()`` stops accepting new messages and returns once the messages already accepted are
finished (published and answered). ``stop`` is safe to call twice and before ``start``.

Counts for ``/metrics``: each source keeps a :class:`ReceivedCounts` per event it serves (plain
ints, no lock: everything runs on the event loop) and returns them from
:meth:`Source.event_counts`; ``gateway.metrics`` reads them at scrape time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
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


@runtime_checkable
class MetricsExporter(Protocol):
    """What an HTTP source serves on ``GET /metrics`` (``gateway.metrics.GatewayMetrics`` is one):
    the exposition body and its content type, for the request's ``Accept`` header."""

    async def render(self, accept: str | None) -> tuple[bytes, str]: ...


#: Outcome label of a rejected request or message, by the HTTP status it was answered with.
REJECTIONS = {
    400: "rejected-invalid",
    401: "rejected-unauthorized",
    403: "rejected-forbidden",
    405: "rejected-method",
    413: "rejected-too-large",
}


def rejection_outcome(status: int) -> str:
    """The ``outcome`` label of a request answered ``status`` before any event was built."""
    outcome = REJECTIONS.get(status)
    if outcome is not None:
        return outcome
    return "failed" if status >= 500 else f"rejected-{status}"


class ReceivedCounts:
    """What one event (EventSource name, event name) of a source received, by outcome.

    ``accepted`` / ``duplicate`` count events the bus stored / recognised as already stored;
    ``failed`` counts events the bus could not make durable (upstream is told to send them again)
    and ``publish_errors`` the publish calls that raised; ``rejected`` counts requests or messages
    refused before they became events, by outcome label (:func:`rejection_outcome`). Plain ints
    and a ``Counter``: incremented on the event loop, read by the metrics collector at scrape time.
    """

    __slots__ = ("accepted", "duplicate", "event", "event_source", "failed", "publish_errors", "rejected")

    def __init__(self, event_source: str, event: str) -> None:
        self.event_source = event_source
        self.event = event
        self.accepted = 0
        self.duplicate = 0
        self.failed = 0
        self.publish_errors = 0
        self.rejected: Counter[str] = Counter()

    def published(self, results: Sequence[bool]) -> None:
        """Count what ``Publisher.publish`` answered for a call."""
        stored = results.count(True) if isinstance(results, list) else sum(1 for new in results if new)
        self.accepted += stored
        self.duplicate += len(results) - stored

    def publish_failed(self, events: int) -> None:
        """A publish call of ``events`` events raised: nothing of it is durable."""
        self.failed += events
        self.publish_errors += 1

    def outcomes(self) -> dict[str, int]:
        """Every outcome label with its count (accepted, duplicate and failed always present)."""
        outcomes = {"accepted": self.accepted, "duplicate": self.duplicate, "failed": self.failed}
        for outcome, count in self.rejected.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
        return outcomes


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

    def event_counts(self) -> Iterable[ReceivedCounts]:
        """The counts of every event this source serves (several sources may share one)."""
        return ()
