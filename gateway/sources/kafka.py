"""The ``kafka`` event source: Argo Events' Kafka consumer, committing only what the bus holds.

Every entry under ``spec.kafka`` is one consumer of one topic. Each record becomes one event
(``type=kafka``) with Argo's payload::

    {"topic", "key", "partition", "body", "timestamp", "headers", "metadata"}

``key`` is the record key as text (``""`` without one), ``timestamp`` the record time as Go prints
it (``2026-01-02 15:04:05.123 +0000 UTC``), ``headers`` a map (a repeated header keeps its last
value), ``metadata`` the event's ``metadata`` (left out when empty). ``body`` is the value embedded
as JSON with ``jsonBody: true``, else the base64 text of its bytes (Go's encoding of ``[]byte``); a
tombstone (no value) gives ``null``.

**Event id.** ``deterministic_event_id("kafka", eventsource, event, topic, partition, offset)``:
a record read twice (after a crash, a rebalance or a bus failure) is the same event, and the bus
stores it once. Argo's id is the string ``<es>:<event>:<first broker>:<topic>:<partition>:<offset>``;
we hash the identity instead so that ids keep the bus's fixed 32-hex form, and we leave the broker
address out so that rewriting ``url`` (another bootstrap broker, a new DNS name) does not turn
every replayed record into a new event. The price: pointing an event at a *different* cluster
reuses offsets, so rename the event (or wait out the bus's dedup window) when you do that.

**Consumer-group mode** (``consumerGroup`` set; the mode that loses nothing). Records are fetched
in batches and published to the bus in batches (a few batches in flight at once); an offset is
committed only when every record before it in its partition is durable on the bus, so a crash at
any moment re-reads only records whose events may already be stored (and are then duplicates).
On a bus failure nothing past the failed batch is committed: the consumer seeks back to the first
record not yet durable and tries again after a pause. When partitions are revoked (a rebalance)
the source waits for the batches in flight, commits what is done and forgets the rest (the new
owner re-reads it). ``oldest: true`` starts a new group at the earliest offset, otherwise at the
latest; ``rebalanceStrategy`` ``range`` (default), ``roundrobin`` or ``sticky`` (anything else:
``range``, with a warning, as Argo does).

**Partition mode** (``partition`` without ``consumerGroup``), as Argo: one partition, read from
its newest offset at every start, never committed. Records produced while the gateway is down
(or between a crash and the restart) are never read: use consumer-group mode to lose nothing.
Unlike Argo, a record whose event could not be made durable is read again (the consumer seeks
back) rather than skipped.

**Other fields.** ``limitEventsPerSecond`` caps the events per second (in both modes; Argo only
in consumer-group mode). ``sasl`` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and ``tls`` map onto the
client; ``config`` (Argo's YAML of ``sarama.Config``) is mapped key by key onto the client
(:mod:`gateway.sources.kafka_config`; other keys are ignored with a warning). ``version``
(sarama's protocol version) is ignored: the client negotiates the version with the broker. The
consumer reconnects by itself; if it fails (broker unreachable at start, topic not authorized,
...) it is rebuilt after ``connectionBackoff``'s delay, forever. A value that is not JSON under
``jsonBody: true`` is logged and skipped (its offset is committed), as Argo skips it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.errors import KafkaError

from gateway.errors import BusError, ConfigError
from gateway.secrets import SecretStore
from gateway.sources.base import Publisher, ReceivedCounts, Source
from gateway.sources.body import InvalidBody, encode_body
from gateway.sources.gotime import from_unix_millis, go_time_string
from gateway.sources.kafka_config import client_options
from gateway.sources.kafka_offsets import OffsetRange, OffsetTracker
from gateway.sources.reconnect import ReconnectDelays
from gateway.sources.tls import client_ssl_context
from sensors.event import Event, deterministic_event_id
from sensors.spec import EventSource, KafkaEventSource

logger = logging.getLogger("triggergate.kafka")

SOURCE_TYPE = "kafka"
MAX_BATCH = 2000  # records fetched (and published) per batch
MAX_IN_FLIGHT_BATCHES = 4
POLL_TIMEOUT_MS = 200
DRAIN_TIMEOUT = 10.0  # seconds a rebalance waits for the batches in flight
_TRACE_HEADERS = ("traceparent", "tracestate")

ASSIGNORS: dict[str, type] = {
    "range": RangePartitionAssignor,
    "roundrobin": RoundRobinPartitionAssignor,
    "sticky": StickyPartitionAssignor,
}


# --------------------------------------------------------------------------- pure helpers


def kafka_event_id(event_source: str, event_name: str, topic: str, partition: int, offset: int) -> str:
    """The event id of one record: the same record always gives the same id (see module doc)."""
    return deterministic_event_id(SOURCE_TYPE, event_source, event_name, topic, str(partition), str(offset))


@functools.lru_cache(maxsize=4096)
def kafka_time(timestamp_ms: int | None) -> str:
    """A record timestamp as Go prints it (records of one batch mostly share it: cached)."""
    return go_time_string(from_unix_millis(timestamp_ms))


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("utf-8", "replace")


def kafka_payload(
    *,
    topic: str,
    partition: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int | None,
    headers: Sequence[tuple[str, bytes | None]],
    json_body: bool,
    metadata: Mapping[str, str],
) -> dict[str, Any]:
    """Argo's ``KafkaEventData`` of one record; raises :class:`InvalidBody`."""
    payload: dict[str, Any] = {
        "topic": topic,
        "key": _text(key),
        "partition": partition,
        "body": encode_body(value, json_body),
        "timestamp": kafka_time(timestamp_ms),
        "headers": {name: _text(raw) for name, raw in headers} if headers else {},
    }
    if metadata:
        payload["metadata"] = dict(metadata)
    return payload


# --------------------------------------------------------------------------- the source


@dataclass(frozen=True, slots=True)
class KafkaEvent:
    """One ``spec.kafka`` entry of one EventSource."""

    event_source: str
    event_name: str
    spec: KafkaEventSource

    @property
    def label(self) -> str:
        return f"{self.event_source}/{self.event_name}"


class KafkaSource(Source):
    """The consumer of one ``spec.kafka`` event (see the module doc for the guarantees).

    ``consumer_options`` are extra aiokafka consumer options (they win over the manifest's
    ``config``); tests use them for short group timeouts.
    """

    def __init__(
        self,
        event: KafkaEvent,
        publisher: Publisher,
        secrets: SecretStore | None,
        *,
        consumer_options: Mapping[str, Any] | None = None,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT_BATCHES,
        graceful_timeout: float | None = 30.0,
    ) -> None:
        self.event = event
        self.spec = event.spec
        self.publisher = publisher
        self.secrets = secrets
        self.group = event.spec.consumer_group
        self.max_batch = max_batch
        self.graceful_timeout = graceful_timeout
        self._config_options, self._ignored = client_options(event.spec.config, self.name)
        self._extra = dict(consumer_options or {})
        self._slots = asyncio.Semaphore(max_in_flight)
        self._batches: set[asyncio.Task[None]] = set()
        self._tracker = OffsetTracker()
        self._commit_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._started = asyncio.Event()
        self._consuming = False
        self._bus_failure: BaseException | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.committed: dict[TopicPartition, int] = {}
        self.counts = ReceivedCounts(event.event_source, event.event_name)

    @property
    def name(self) -> str:
        return f"kafka {self.event.label}"

    def event_counts(self) -> list[ReceivedCounts]:
        return [self.counts]

    # ------------------------------------------------------------------ configuration

    def consumer_kwargs(self) -> dict[str, Any]:
        """Every option of the aiokafka consumer; reads the SASL and TLS secrets."""
        spec = self.spec
        kwargs: dict[str, Any] = {
            "bootstrap_servers": [url.strip() for url in spec.url.split(",")],
            "client_id": f"triggergate-{self.event.event_source}-{self.event.event_name}",
            "enable_auto_commit": False,
        }
        kwargs.update(self._config_options)
        if self.group is not None:
            strategy = self.group.rebalance_strategy or "range"
            kwargs["group_id"] = self.group.group_name
            kwargs["partition_assignment_strategy"] = (ASSIGNORS.get(strategy, RangePartitionAssignor),)
            if self.group.oldest:
                kwargs["auto_offset_reset"] = "earliest"
            else:
                kwargs.setdefault("auto_offset_reset", "latest")
        else:
            kwargs["group_id"] = None
        ssl_context = None
        if spec.tls is not None:
            ssl_context = client_ssl_context(spec.tls, self.secrets, self.name)
            kwargs["ssl_context"] = ssl_context
        if spec.sasl is not None:
            if self.secrets is None:
                raise ConfigError([f"{self.name}: sasl is set but no secrets directory is configured"])
            assert spec.sasl.user_secret is not None and spec.sasl.password_secret is not None
            kwargs["security_protocol"] = "SASL_SSL" if ssl_context is not None else "SASL_PLAINTEXT"
            kwargs["sasl_mechanism"] = spec.sasl.mechanism
            kwargs["sasl_plain_username"] = self.secrets.get(spec.sasl.user_secret).reveal()
            kwargs["sasl_plain_password"] = self.secrets.get(spec.sasl.password_secret).reveal()
        elif ssl_context is not None:
            kwargs["security_protocol"] = "SSL"
        kwargs.update(self._extra)
        return kwargs

    # ------------------------------------------------------------------ lifecycle

    async def start(self, connect_timeout: float = 5.0) -> None:
        """Checks the configuration (secrets, TLS files), then starts consuming in the background.

        Returns once the consumer is connected, or after ``connect_timeout`` seconds while it keeps
        trying (the broker may come up later: the source connects then).
        """
        kwargs = self.consumer_kwargs()  # ConfigError now rather than in the background
        if self._ignored:
            logger.warning(
                "%s: config keys without an equivalent in triggergate are ignored: %s",
                self.name, ", ".join(self._ignored),
            )
        if self.group is not None and (self.group.rebalance_strategy or "range") not in ASSIGNORS:
            logger.warning(
                "%s: invalid rebalanceStrategy %r, using range (allowed: %s)",
                self.name, self.group.rebalance_strategy, ", ".join(ASSIGNORS),
            )
        if self.group is None:
            logger.warning(
                "%s: partition mode reads partition %s from its newest offset and never commits: "
                "records produced while triggergate is down are never read; set consumerGroup to lose none",
                self.name, self.spec.partition,
            )
        try:
            first = AIOKafkaConsumer(**kwargs)
        except (TypeError, ValueError, KafkaError) as exc:
            raise ConfigError([f"{self.name}: invalid Kafka client settings: {exc}"]) from exc
        self._task = asyncio.create_task(self._run(kwargs, first), name=self.name)
        try:
            await asyncio.wait_for(self._started.wait(), connect_timeout)
        except TimeoutError:
            logger.warning("%s: not connected yet after %.0fs; still trying in the background",
                           self.name, connect_timeout)

    async def stop(self) -> None:
        """Stops fetching, lets the batches in flight finish (up to ``graceful_timeout`` seconds),
        commits what is durable and leaves the group. What is not durable by then is read again."""
        self._stopping.set()
        if self._task is None:
            return
        task, self._task = self._task, None
        if self._consuming:
            grace = None if self.graceful_timeout is None else self.graceful_timeout + DRAIN_TIMEOUT
            await asyncio.wait({task}, timeout=grace)
        if not task.done():
            task.cancel()  # still connecting, or stuck: nothing durable is left uncommitted by this
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("%s: the consumer failed while stopping", self.name)

    async def _run(self, kwargs: dict[str, Any], first: AIOKafkaConsumer) -> None:
        delays = ReconnectDelays(self.spec.connection_backoff)
        consumer: AIOKafkaConsumer | None = first
        while not self._stopping.is_set():
            if consumer is None:
                consumer = AIOKafkaConsumer(**kwargs)
            self._consumer = consumer
            try:
                await self._open(consumer)
                self._started.set()
                delays.reset()
                logger.info("%s: consuming topic %s (%s)", self.name, self.spec.topic, self._mode())
                self._consuming = True
                await self._consume(consumer)
            except (KafkaError, OSError) as exc:
                logger.warning("%s: Kafka consumer failed: %r", self.name, exc)
            except Exception:
                logger.exception("%s: Kafka consumer failed unexpectedly", self.name)
            finally:
                self._consuming = False
                await self._close(consumer)
                consumer = None
            if self._stopping.is_set():
                break
            delay = delays.next()
            logger.info("%s: reconnecting in %.1fs", self.name, delay)
            await self._sleep(delay)

    def _mode(self) -> str:
        if self.group is None:
            return f"partition {self.spec.partition}, from the newest offset, no commits"
        start = "oldest" if self.group.oldest else "newest"
        return f"consumer group {self.group.group_name}, new groups start at the {start} offset"

    async def _open(self, consumer: AIOKafkaConsumer) -> None:
        topic = self.spec.topic
        if self.group is not None:
            consumer.subscribe([topic], listener=_Rebalance(self))
            await consumer.start()
            return
        await consumer.start()
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer.topics()  # loads the metadata of every topic
            partitions = consumer.partitions_for_topic(topic)
        partition = int(self.spec.partition or 0)
        if not partitions or partition not in partitions:
            raise KafkaError(
                f"partition {partition} of topic {topic!r} does not exist "
                f"(partitions: {sorted(partitions or [])}); fix spec.kafka.{self.event.event_name}.partition"
            )
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)

    async def _close(self, consumer: AIOKafkaConsumer) -> None:
        """Lets the batches in flight finish (bounded), commits what is durable, leaves the group."""
        await self._drain(self.graceful_timeout)
        if self.group is not None:
            await self._commit(consumer)
        self._tracker.drop(self._tracker.partitions())
        try:
            await consumer.stop()
        except Exception as exc:
            logger.warning("%s: closing the consumer failed: %r", self.name, exc)
        self._consumer = None

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ the loop

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        limit = self.spec.limit_events_per_second
        max_records = min(self.max_batch, limit) if limit > 0 else self.max_batch
        bus_delays = ReconnectDelays(None, cap=10.0)
        while not self._stopping.is_set():
            if self._bus_failure is not None:
                await self._recover(consumer, bus_delays.next())
                continue
            started = time.monotonic()
            records = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=max_records)
            if not records:
                continue
            if self._bus_failure is None:
                bus_delays.reset()
            count = await self._dispatch(records)
            if limit > 0:
                await self._sleep(count / limit - (time.monotonic() - started))

    async def _dispatch(self, records: Mapping[TopicPartition, Sequence[Any]]) -> int:
        """Builds the events of one fetch and starts publishing them; returns the record count."""
        now = datetime.now(UTC)
        events: list[Event] = []
        ranges: list[OffsetRange] = []
        count = 0
        for tp, batch in records.items():
            if not batch:
                continue
            count += len(batch)
            ranges.append(self._tracker.add(tp, batch[0].offset, batch[-1].offset))
            for record in batch:
                event = self._event(record, now)
                if event is not None:
                    events.append(event)
        if not await self._slot():
            return count  # stopping: these records are not committed, so they are read again
        task = asyncio.create_task(self._publish(events, ranges), name=f"{self.name} publish")
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)
        return count

    async def _slot(self) -> bool:
        """Waits for room for one more batch in flight; False when the source stops meanwhile."""
        if not self._slots.locked():
            await self._slots.acquire()
            return True
        acquire = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if acquire.done() and not acquire.cancelled():
            return True
        acquire.cancel()
        try:
            await acquire
        except asyncio.CancelledError:
            return False
        return True  # acquired while being cancelled

    def _event(self, record: Any, now: datetime) -> Event | None:
        spec = self.spec
        headers = record.headers or ()
        try:
            data = kafka_payload(
                topic=record.topic, partition=record.partition, key=record.key, value=record.value,
                timestamp_ms=record.timestamp, headers=headers, json_body=spec.json_body,
                metadata=spec.metadata,
            )
        except InvalidBody as exc:
            self.counts.rejected["rejected-invalid"] += 1
            logger.error(
                "%s: skipping %s[%d]@%d: %s", self.name, record.topic, record.partition, record.offset, exc
            )
            return None
        extensions = {}
        if headers:
            for name, raw in headers:
                if name in _TRACE_HEADERS and raw:
                    extensions[name] = _text(raw)
        return Event(
            id=kafka_event_id(self.event.event_source, self.event.event_name, record.topic,
                              record.partition, record.offset),
            source=self.event.event_source, subject=self.event.event_name, type=SOURCE_TYPE,
            time=now, data=data, extensions=extensions,
        )

    async def _publish(self, events: list[Event], ranges: list[OffsetRange]) -> None:
        try:
            if events:
                self.counts.published(await self.publisher.publish(events))
        except BusError as exc:
            self.counts.publish_failed(len(events))
            self._fail(exc)
            return
        except Exception as exc:
            self.counts.publish_failed(len(events))
            logger.exception("%s: publishing failed unexpectedly", self.name)
            self._fail(exc)
            return
        finally:
            self._slots.release()
        self.published += len(events)
        self._tracker.done(ranges)
        if self.group is not None and self._consumer is not None:
            await self._commit(self._consumer)

    def _fail(self, exc: BaseException) -> None:
        if self._bus_failure is None:
            logger.warning(
                "%s: could not record events on the bus, nothing past them is committed; "
                "reading them again after a pause: %s", self.name, exc,
            )
            self._bus_failure = exc

    async def _recover(self, consumer: AIOKafkaConsumer, delay: float) -> None:
        """After a bus failure: wait for the batches in flight, seek back to the first record not durable."""
        await self._drain(DRAIN_TIMEOUT)
        if self.group is not None:
            await self._commit(consumer)
        assigned = consumer.assignment()
        points = self._tracker.restart_points()
        self._tracker.drop(self._tracker.partitions())
        for tp, offset in points.items():
            if tp in assigned:
                consumer.seek(tp, offset)
        self._bus_failure = None
        await self._sleep(delay)

    async def _drain(self, grace: float | None) -> None:
        if not self._batches:
            return
        _, pending = await asyncio.wait(set(self._batches), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            logger.warning("%s: %d batch(es) still publishing were abandoned; they are read again",
                           self.name, len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    async def _commit(self, consumer: AIOKafkaConsumer, only: Iterable[TopicPartition] | None = None) -> None:
        """Commits every partition whose durable prefix moved (all of them, or those in ``only``)."""
        async with self._commit_lock:
            moved = self._tracker.committable()
            if only is not None:
                wanted = set(only)
                moved = {tp: offset for tp, offset in moved.items() if tp in wanted}
            assigned = consumer.assignment()
            offsets = {tp: offset for tp, offset in moved.items() if tp in assigned}
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:
                logger.warning("%s: commit failed (the records are read again, and are duplicates): %r",
                               self.name, exc)
                return
            self.committed.update(offsets)

    async def on_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Rebalance: finish what is in flight (bounded), commit it, forget the revoked partitions."""
        revoked = list(revoked)
        await self._drain(DRAIN_TIMEOUT)
        consumer = self._consumer
        if consumer is not None and revoked:
            await self._commit(consumer, only=revoked)
        self._tracker.drop(revoked)
        if revoked:
            logger.info("%s: partitions revoked: %s", self.name, _describe(revoked))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.source.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        logger.info("%s: partitions assigned: %s", self.source.name, _describe(assigned))


def _describe(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions)) or "none"


# --------------------------------------------------------------------------- builder


def kafka_events(event_sources: Iterable[EventSource]) -> list[KafkaEvent]:
    """Every ``spec.kafka`` event of ``event_sources``, in manifest order."""
    return [
        KafkaEvent(es.metadata.name, name, spec)
        for es in event_sources
        for name, spec in es.spec.kafka.items()
    ]


def build_kafka_sources(
    event_sources: Sequence[EventSource],
    publisher: Publisher,
    secrets: SecretStore | None,
    *,
    graceful_timeout: float | None = 30.0,
    **_options: Any,
) -> list[KafkaSource]:
    """One :class:`KafkaSource` per ``spec.kafka`` event. Raises ``ConfigError`` for a bad ``config``."""
    return [
        KafkaSource(event, publisher, secrets, graceful_timeout=graceful_timeout)
        for event in kafka_events(event_sources)
    ]
