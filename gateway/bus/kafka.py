"""The distributed bus: the bus contract on Kafka (aiokafka), for several gateway processes.

Selected with ``--bus kafka://host1:9092,host2:9092/<topic>?consumerGroup=<prefix>&...`` (the
query parameters are listed in ``gateway.bus.parse_bus_url``).

**Topics and keys.** Without a router every event is one record on ``<topic>``, keyed by the event
id. With a router (``set_router``) an event becomes one record per ``(group, partition key)``
pair, on the group's own topic ``<topic>.<group>``, keyed by the partition key: every event of one
key lands in one partition, hence reaches one consumer of the group. An event no group wants is
counted (``unrouted``) and not stored. Topics are created at start (or at first use) with
``partitions`` partitions. The record value is ``Event.to_json()`` (as on the embedded bus), the
header ``tg-id`` holds the event id. Order is a per-partition promise: with N partitions, events
of one partition key arrive in publish order, which is what the engine needs; with one partition
the order is total.

**Publish** sends every record (``acks=all``; no idempotent producer, tansu has none) and returns
when the broker acknowledged all of them, or raises ``BusError``.

**Subscribe** runs one consumer per subscription in the Kafka group ``<consumerGroup>.<group>``
(manual commits, new groups start at the earliest offset). ``Delivery.seq`` is
``partition << 40 | offset``: unique per group (a group reads one topic) and the same at every
redelivery of a record; offsets up to 2**40 fit.

**Acks** arrive in any order; per partition the contiguous acknowledged prefix is committed to
Kafka (offset + 1) by a background flush every ``ack_flush_interval`` seconds, on revoke and on
close. Acknowledgements above the first unacknowledged offset (and acks made after the
subscription ended, when no member of this process can commit) are also kept in the *local ack
store* (``kafka-bus.db`` in the state directory): a later subscription of this process skips those
records when their id matches. Another process taking the partition over does not know them and
delivers them again. Acks for partitions that another member of the group now owns are dropped.
Losing an ack only causes a redelivery.

**Rebalance.** When the group takes partitions away, the subscription commits what is
acknowledged, then awaits ``on_revoke``; after the new assignment it seeks every partition it holds
(kept or new) to the committed offset (the earliest without one), so everything unacknowledged
is delivered again and a subscriber that dropped its state rebuilds it.

**Dedup by event id**, in two layers:

1. *Publisher side*: the ids this process published within ``dedup_window`` seconds (at most
   ``dedup_max_ids``, oldest forgotten first) are kept in memory and written to ``kafka-bus.db``
   before ``publish`` returns (SQLite WAL with ``synchronous=NORMAL``: survives a crash of the
   process, not of the machine), so a reopen on the same state directory still knows them.
   ``publish`` answers ``False`` for such an id and stores nothing. Concurrent publishes of one id
   wait for the first.
2. *Consumer side*, per subscription and partition: the ids of records read, with their record
   timestamps. A record whose id was already seen within ``dedup_window`` (measured between record
   timestamps, from the first copy) is not delivered and is acknowledged internally. At every
   assignment the subscription first reads back up to ``dedup_lookback`` records before the
   committed offset of each partition, so that copies published by *another* process (webhook
   replicas active-active behind one Service) collapse too. Limits: a copy whose first one lies
   further back than ``dedup_lookback`` records of its partition, or in a different partition
   (the same id routed with another key), is delivered again; at most
   ``max(4 * dedup_lookback, 1024)`` ids per partition are remembered.

Neither layer is Kafka's exactly-once (transactions): a duplicate that slips through reaches the
engine, and the firing's idempotency key keeps it from creating a second run.

On tansu (the test broker) ListOffsets ``latest`` is wrong, so nothing here uses end offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import ssl
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncGenerator, Iterable, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from gateway.bus.base import Bus, Delivery, OnRevoke, Router, flush_loop
from gateway.errors import BusError, ConfigError
from gateway.sqlitedb import Coalescer, GroupCommitDB
from sensors.event import EnvelopeError, Event

log = logging.getLogger(__name__)

SEQ_OFFSET_BITS = 40
_OFFSET_MASK = (1 << SEQ_OFFSET_BITS) - 1
ID_HEADER = "tg-id"
SCHEMA_VERSION = 1
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_TOPIC_ALREADY_EXISTS = 36
_HEALTH_INTERVAL = 5.0  # seconds between two metadata round trips of healthy()
_CLEANUP_INTERVAL = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS published (
    id TEXT PRIMARY KEY,
    published_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS published_by_time ON published (published_at);
CREATE TABLE IF NOT EXISTS acks (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    off INTEGER NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (grp, topic, part, off)
) WITHOUT ROWID;
"""


def delivery_seq(partition: int, offset: int) -> int:
    """The ``Delivery.seq`` of the record at ``offset`` of ``partition``."""
    return (partition << SEQ_OFFSET_BITS) | offset


def seq_position(seq: int) -> tuple[int, int]:
    """``(partition, offset)`` of a ``Delivery.seq`` made by :func:`delivery_seq`."""
    return seq >> SEQ_OFFSET_BITS, seq & _OFFSET_MASK


# --------------------------------------------------------------------------- ack bookkeeping


class _Acks:
    """The acknowledgements of one partition for one group, kept by the bus across subscriptions.

    ``committed`` is the offset last committed to Kafka (the next one to read) as far as this
    process knows; ``cursor``: every offset below it is done; ``done``: every acknowledged offset
    at or above ``committed``, with its event id (kept until a commit passes it, for the local ack
    store); ``remembered``: offsets acknowledged earlier (local ack store, or by an earlier
    subscription), skipped when read again if the record's id matches; ``unsaved``: acks not yet
    written to the local ack store.
    """

    __slots__ = ("committed", "cursor", "done", "prune_below", "remembered", "unsaved")

    def __init__(self) -> None:
        self.committed: int | None = None
        self.cursor: int | None = None
        self.done: dict[int, str] = {}
        self.remembered: dict[int, str] = {}
        self.unsaved: dict[int, str] = {}
        self.prune_below: int | None = None

    def mark(self, offset: int, event_id: str, *, persist: bool) -> None:
        if self.committed is not None and offset < self.committed:
            return
        if offset not in self.done:
            self.done[offset] = event_id
            if persist:
                self.unsaved[offset] = event_id
            self._advance()

    def start_at(self, offset: int) -> None:
        """Nothing below ``offset`` is pending (the first record read, or a gap from the cursor)."""
        if self.cursor is None or offset > self.cursor:
            self.cursor = offset
            self._advance()

    def _advance(self) -> None:
        cursor = self.cursor
        if cursor is None:
            return
        done = self.done
        while cursor in done:
            cursor += 1
        self.cursor = cursor

    def target(self) -> int | None:
        """The offset to commit, when the acknowledged prefix moved past the committed one."""
        cursor = self.cursor
        if cursor is None or (self.committed is not None and cursor <= self.committed):
            return None
        return cursor

    def committed_to(self, offset: int) -> None:
        if self.committed is None or offset > self.committed:
            self.committed = offset
            self.done = {o: i for o, i in self.done.items() if o >= offset}
            self.unsaved = {o: i for o, i in self.unsaved.items() if o >= offset}
            self.remembered = {o: i for o, i in self.remembered.items() if o >= offset}
            self.prune_below = offset

    def reset(self, committed: int | None, stored: dict[int, str]) -> None:
        """A new assignment starts reading at ``committed``: what was acknowledged is remembered."""
        carry = {**stored, **self.remembered, **{o: i for o, i in self.done.items() if i}}
        if committed is not None:
            carry = {o: i for o, i in carry.items() if o >= committed}
            self.unsaved = {o: i for o, i in self.unsaved.items() if o >= committed}
            self.prune_below = committed
        self.remembered = carry
        self.done = {}
        self.committed = committed
        self.cursor = committed


class _Partition:
    """What one subscription knows about one partition it holds."""

    __slots__ = ("acks", "expected", "inserts", "seed_until", "seen", "tp")

    def __init__(self, tp: TopicPartition, acks: _Acks, seed_until: int, expected: int | None) -> None:
        self.tp = tp
        self.acks = acks
        self.seed_until = seed_until  # records below are only read back to seed ``seen``
        self.expected = expected  # the next offset this subscription expects to read
        self.seen: dict[str, tuple[int, int]] = {}  # id -> (timestamp ms, offset), oldest first
        self.inserts = 0

    def duplicate(self, event_id: str, timestamp: int, offset: int, window_ms: int, capacity: int) -> bool:
        """Whether the record is a later copy of an id seen within the window; notes it otherwise."""
        seen = self.seen
        first = seen.get(event_id)
        if first is not None:
            if first[1] == offset:  # the same record, read again
                return False
            if abs(timestamp - first[0]) <= window_ms:
                return True
            del seen[event_id]  # outside the window: this copy starts a new one
        seen[event_id] = (timestamp, offset)
        self.inserts += 1
        if len(seen) > capacity or not self.inserts & 255:  # forget the oldest (amortized)
            horizon = timestamp - window_ms
            while seen:
                oldest = next(iter(seen))
                if len(seen) <= capacity and seen[oldest][0] >= horizon:
                    break
                del seen[oldest]
        return False


class _Subscription:
    def __init__(self, group: str, group_id: str, topic: str, on_revoke: OnRevoke | None) -> None:
        self.group = group
        self.group_id = group_id
        self.topic = topic
        self.on_revoke = on_revoke
        self.consumer: AIOKafkaConsumer | None = None
        self.parts: dict[int, _Partition] = {}
        self.generation = 0
        self.commit_lock = asyncio.Lock()
        self.stopping = False
        self.stop_signal: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stopped: asyncio.Task[None] | None = None


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, bus: KafkaBus, sub: _Subscription) -> None:
        self.bus = bus
        self.sub = sub

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.bus._revoked(self.sub, list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.bus._assigned(self.sub, list(assigned))


# --------------------------------------------------------------------------- the bus


class KafkaBus(Bus):
    """The bus contract on Kafka. See the module docstring for topics, acks, rebalance and dedup."""

    def __init__(
        self,
        *,
        state_dir: Path,
        bootstrap: str,
        topic: str,
        consumer_group: str = "triggergate",
        partitions: int = 12,
        replication_factor: int = 1,
        session_timeout: float = 10.0,
        heartbeat_interval: float = 3.0,
        dedup_window: float = 86400.0,
        dedup_lookback: int = 10000,
        dedup_max_ids: int = 200_000,
        linger: float = 0.002,
        fetch_max_wait: float = 0.1,
        ack_flush_interval: float = 0.15,
        request_timeout: float = 30.0,
        tls: bool = False,
        tls_ca_secret: str | None = None,
        sasl_mechanism: str | None = None,
        sasl_user_secret: str | None = None,
        sasl_password_secret: str | None = None,
        secrets_dir: Path | str | None = None,
        client_id: str = "triggergate",
    ) -> None:
        for name, value in (
            ("dedup_window", dedup_window),
            ("linger", linger),
            ("fetch_max_wait", fetch_max_wait),
            ("ack_flush_interval", ack_flush_interval),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {value}")
        for name, count in (
            ("partitions", partitions),
            ("replication_factor", replication_factor),
            ("dedup_max_ids", dedup_max_ids),
        ):
            if count < 1:
                raise ValueError(f"{name} must be at least 1, got {count}")
        if dedup_lookback < 0:
            raise ValueError(f"dedup_lookback must be >= 0 records, got {dedup_lookback}")
        if heartbeat_interval <= 0 or session_timeout <= heartbeat_interval:
            raise ValueError(
                f"heartbeat_interval ({heartbeat_interval}s) must be > 0 and below session_timeout "
                f"({session_timeout}s); Kafka's advice is a third of it"
            )
        if not TOPIC_NAME.match(topic):
            raise ValueError(f"topic {topic!r} is not a Kafka topic name: use 1-249 of [a-zA-Z0-9._-]")
        if not TOPIC_NAME.match(consumer_group):
            raise ValueError(f"consumer_group {consumer_group!r} must be 1-249 of [a-zA-Z0-9._-]")
        brokers = [b.strip() for b in bootstrap.split(",") if b.strip()]
        if not brokers:
            raise ValueError("bootstrap must name at least one broker as host:port")
        self.state_dir = Path(state_dir)
        self.brokers = brokers
        self.topic = topic
        self.consumer_group = consumer_group
        self.partitions = partitions
        self.replication_factor = replication_factor
        self._session_ms = int(session_timeout * 1000)
        self._heartbeat_ms = int(heartbeat_interval * 1000)
        self._dedup_window = dedup_window
        self._window_ms = int(dedup_window * 1000)
        self._lookback = dedup_lookback
        self._seen_capacity = max(4 * dedup_lookback, 1024)
        self._max_ids = dedup_max_ids
        self._linger_ms = int(linger * 1000)
        self._fetch_wait_ms = max(1, int(fetch_max_wait * 1000))
        self._flush_interval = ack_flush_interval
        self._request_ms = int(request_timeout * 1000)
        self._client_id = client_id
        self._security = _security_options(
            tls=tls,
            tls_ca_secret=tls_ca_secret,
            sasl_mechanism=sasl_mechanism,
            sasl_user_secret=sasl_user_secret,
            sasl_password_secret=sasl_password_secret,
            secrets_dir=secrets_dir,
        )
        self._router: Router | None = None
        self._routed: frozenset[str] = frozenset()
        self._topics_ready: set[str] = set()
        self._topics_lock = asyncio.Lock()
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._db: GroupCommitDB | None = None
        self._remember: Coalescer[list[tuple[str, float]], None] | None = None
        self._published: OrderedDict[str, float] = OrderedDict()  # id -> publish time (time.time())
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._acks: dict[tuple[str, int], _Acks] = {}
        self._subs: dict[str, list[_Subscription]] = {}
        self._owners: dict[tuple[str, int], _Subscription] = {}
        self._ack_signal = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._health = (0.0, False)
        self._started = False
        self._closed = False
        #: Counters for operators and tests (see ``stats``).
        self.counters: Counter[str] = Counter()

    # -- configuration -------------------------------------------------------------------------

    def set_router(self, router: Router | None, groups: Sequence[str]) -> None:
        for group in groups:
            name = f"{self.topic}.{group}"
            if not TOPIC_NAME.match(name):
                raise ValueError(
                    f"group {group!r} gives the topic name {name!r}, which Kafka refuses: "
                    "use 1-249 characters of [a-zA-Z0-9._-] in topic and group names"
                )
        self._router = router
        self._routed = frozenset(groups) if router is not None else frozenset()

    def topic_for(self, group: str) -> str:
        """The topic ``group`` consumes: its own when it is routed, else the main topic."""
        return f"{self.topic}.{group}" if group in self._routed else self.topic

    def _client_options(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.brokers,
            "client_id": self._client_id,
            "request_timeout_ms": self._request_ms,
            **self._security,
        }

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise BusError(f"the Kafka bus on topic {self.topic!r} is already started")
        self._started = True
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "kafka-bus.db"
        self._db = GroupCommitDB(path, error=BusError, setup=_setup(path), synchronous="NORMAL")
        await self._db.start()
        self._remember = Coalescer(self._db, _remember_job)
        rows = await self._db.read(_load_published(time.time() - self._dedup_window, self._max_ids))
        self._published = OrderedDict(rows)
        producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=False,
            linger_ms=self._linger_ms,
            **self._client_options(),
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await _quietly(producer.stop())
            await self._db.close()
            self._closed = True
            raise BusError(
                f"cannot connect to the Kafka brokers {','.join(self.brokers)}: {exc!r}; "
                "check the --bus URL and that the brokers are reachable"
            ) from exc
        self._producer = producer
        try:
            await self._ensure_topics([self.topic, *(f"{self.topic}.{g}" for g in sorted(self._routed))])
        except BusError:
            await self.close()
            raise
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name=f"kafka-bus-acks:{self.topic}"),
            asyncio.create_task(self._cleanup_loop(), name=f"kafka-bus-cleanup:{self.topic}"),
        ]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for subs in self._subs.values():
            for sub in subs:
                sub.stopping = True
                if not sub.stop_signal.done():
                    sub.stop_signal.set_result(None)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await self._stop_subscription(sub)
        if self._producer is not None:
            await _quietly(self._producer.stop())
        if self._admin is not None:
            await _quietly(self._admin.close())
        if self._db is not None:
            try:
                await self._save_acks()
            except BusError as exc:
                log.warning("could not save acknowledgements to %s: %s", self._db.path, exc)
            await self._db.close()

    async def healthy(self) -> bool:
        """The producer is connected: its metadata was refreshed (at most every 5 s) from a broker."""
        if not self._started or self._closed or self._producer is None:
            return False
        checked, ok = self._health
        now = time.monotonic()
        if now - checked < _HEALTH_INTERVAL:
            return ok
        try:
            async with asyncio.timeout(2.0):
                ok = bool(await self._producer.client.force_metadata_update())
        except (TimeoutError, KafkaError, OSError):
            ok = False
        self._health = (now, ok)
        return ok and not self._closed

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise BusError(f"cannot {action}: the Kafka bus on topic {self.topic!r} is closed")
        if not self._started:
            raise BusError(f"cannot {action}: the Kafka bus is not started (call start() first)")

    async def _ensure_topics(self, topics: Iterable[str]) -> None:
        missing = sorted(set(topics) - self._topics_ready)
        if not missing:
            return
        async with self._topics_lock:
            missing = [t for t in missing if t not in self._topics_ready]
            if not missing:
                return
            try:
                if self._admin is None:
                    admin = AIOKafkaAdminClient(**self._client_options())
                    await admin.start()
                    self._admin = admin
                response = await self._admin.create_topics(
                    [NewTopic(t, self.partitions, self.replication_factor) for t in missing]
                )
            except KafkaError as exc:
                raise BusError(f"cannot create the Kafka topics {', '.join(missing)}: {exc!r}") from exc
            failed = []
            existing = []
            for entry in response.topic_errors:
                name, code = entry[0], entry[1]
                if code in (0, _TOPIC_ALREADY_EXISTS):
                    self._topics_ready.add(name)
                    if code == _TOPIC_ALREADY_EXISTS:
                        existing.append(name)
                else:
                    message = entry[2] if len(entry) > 2 and entry[2] else f"error code {code}"
                    failed.append(f"{name}: {message}")
            if failed:
                raise BusError(
                    f"cannot create the Kafka topics ({'; '.join(failed)}); create them with "
                    f"{self.partitions} partitions or grant the gateway the right to create topics"
                )
            if existing:
                await self._check_partitions(existing)

    async def _check_partitions(self, topics: list[str]) -> None:
        """Warn when a topic that already existed has fewer partitions than ``partitions``: it then
        bounds how many replicas share a sensor's work (best effort: metadata errors are ignored)."""
        assert self._admin is not None
        try:
            described = await self._admin.describe_topics(topics)
        except KafkaError as exc:
            log.debug("could not describe the topics %s: %r", ", ".join(topics), exc)
            return
        for topic in described:
            count = len(topic.get("partitions") or [])
            if 0 < count < self.partitions:
                log.warning(
                    "Kafka topic %s exists with %d partition(s), fewer than partitions=%d: at most %d "
                    "replica(s) share its sensor's work; add partitions to the topic to spread it wider",
                    topic.get("topic"),
                    count,
                    self.partitions,
                    count,
                )

    # -- publish -------------------------------------------------------------------------------

    async def publish(self, events: Sequence[Event]) -> list[bool]:
        self._check_open("publish")
        if not events:
            return []
        now = time.time()
        self._forget_before(now - self._dedup_window)
        results: list[bool | None] = []
        fresh: list[Event] = []
        waits: list[tuple[int, asyncio.Future[None]]] = []
        in_call: set[str] = set()
        for event in events:
            event_id = event.id
            if event_id in in_call or event_id in self._published:
                results.append(False)
                continue
            in_call.add(event_id)
            pending = self._inflight.get(event_id)
            if pending is not None:
                waits.append((len(results), pending))
                results.append(None)
                continue
            results.append(True)
            fresh.append(event)
        if fresh:
            await self._send(fresh)
        for index, pending in waits:
            try:
                await asyncio.shield(pending)
            except BusError as exc:
                raise BusError(f"a concurrent publish of event {events[index].id!r} failed: {exc}") from exc
            results[index] = False
        return [bool(r) for r in results]

    async def _send(self, events: list[Event]) -> None:
        loop = asyncio.get_running_loop()
        marks: dict[str, asyncio.Future[None]] = {}
        for event in events:
            marks[event.id] = self._inflight[event.id] = loop.create_future()
        try:
            await self._produce(events)
            now = time.time()
            for event in events:
                self._published[event.id] = now
                self._published.move_to_end(event.id)
            while len(self._published) > self._max_ids:
                self._published.popitem(last=False)
            assert self._remember is not None
            try:
                await self._remember([(event.id, now) for event in events])
            except BusError as exc:  # stored on Kafka all the same; consumer-side dedup remains
                log.warning("could not record published event ids in the state directory: %s", exc)
        except BaseException as exc:
            error = exc if isinstance(exc, BusError) else BusError(f"publish failed: {exc!r}")
            for mark in marks.values():
                if not mark.done():
                    mark.set_exception(error)
                    mark.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            for event_id, mark in marks.items():
                if not mark.done():
                    mark.set_result(None)
                if self._inflight.get(event_id) is mark:
                    del self._inflight[event_id]

    async def _produce(self, events: list[Event]) -> None:
        if self._producer is None or self._closed:
            raise BusError(f"cannot publish: the Kafka bus on topic {self.topic!r} is closed")
        router = self._router
        records: list[tuple[str, bytes, bytes, bytes]] = []
        for event in events:
            value = event.to_json()
            event_id = event.id.encode()
            if router is None:
                records.append((self.topic, event_id, value, event_id))
                continue
            pairs = router(event)
            if not pairs:
                self.counters["unrouted"] += 1
                log.debug("event %s: no group wants it, not stored", event.id)
                continue
            for group, key in pairs:
                records.append((f"{self.topic}.{group}", key.encode(), value, event_id))
        if not records:
            return
        await self._ensure_topics({topic for topic, _, _, _ in records})
        producer = self._producer
        try:
            futures = [
                await producer.send(topic, value, key=key, headers=[(ID_HEADER, event_id)])
                for topic, key, value, event_id in records
            ]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            self._health = (time.monotonic(), False)
            raise BusError(
                f"Kafka did not acknowledge {len(records)} record(s) on {self.topic!r}: {exc!r}"
            ) from exc
        self.counters["published"] += len(events)

    def _forget_before(self, horizon: float) -> None:
        published = self._published
        while published:
            oldest = next(iter(published))
            if published[oldest] >= horizon:
                break
            del published[oldest]

    # -- subscribe -----------------------------------------------------------------------------

    async def subscribe(
        self, group: str, *, batch_size: int = 512, on_revoke: OnRevoke | None = None
    ) -> AsyncGenerator[list[Delivery], None]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._check_open("subscribe")
        topic = self.topic_for(group)
        await self._ensure_topics([topic])
        sub = _Subscription(group, f"{self.consumer_group}.{group}", topic, on_revoke)
        consumer = AIOKafkaConsumer(
            group_id=sub.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._session_ms,
            heartbeat_interval_ms=self._heartbeat_ms,
            fetch_max_wait_ms=self._fetch_wait_ms,
            max_poll_records=batch_size,
            **self._client_options(),
        )
        consumer.subscribe([topic], listener=_Rebalance(self, sub))
        sub.consumer = consumer
        self._subs.setdefault(group, []).append(sub)
        fetch: asyncio.Future[dict[TopicPartition, list[Any]]] | None = None
        try:
            try:
                await _until(consumer.start(), sub.stop_signal)
            except KafkaError as exc:
                raise BusError(
                    f"cannot join the Kafka consumer group {sub.group_id!r} on {topic!r}: {exc!r}"
                ) from exc
            while not sub.stopping:
                fetch = asyncio.ensure_future(consumer.getmany(timeout_ms=1000, max_records=batch_size))
                await asyncio.wait({fetch, sub.stop_signal}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    break
                current, fetch = fetch, None
                try:
                    fetched = current.result()
                except KafkaError as exc:
                    if sub.stopping:
                        break
                    log.warning("Kafka consumer of group %s failed (retrying): %r", sub.group_id, exc)
                    await asyncio.wait({sub.stop_signal}, timeout=0.5)
                    continue
                generation = sub.generation
                batch = self._take(sub, fetched)
                for start in range(0, len(batch), batch_size):
                    if sub.generation != generation or sub.stopping:
                        break  # a rebalance since the fetch: what follows is delivered again
                    yield batch[start : start + batch_size]
        finally:
            if fetch is not None:
                fetch.cancel()
                with contextlib.suppress(BaseException):
                    await fetch
            await self._stop_subscription(sub)

    def _take(self, sub: _Subscription, fetched: dict[TopicPartition, list[Any]]) -> list[Delivery]:
        out: list[Delivery] = []
        window_ms, capacity = self._window_ms, self._seen_capacity
        for tp, records in fetched.items():
            part = sub.parts.get(tp.partition)
            if part is None or part.tp != tp:
                continue
            acks = part.acks
            for record in records:
                offset = record.offset
                expected = part.expected
                if expected is not None:
                    if offset < expected:
                        continue
                    if offset > expected and offset > part.seed_until:  # offsets without records
                        start = max(expected, part.seed_until)
                        if acks.cursor is None or start <= acks.cursor:
                            acks.start_at(offset)
                        else:
                            for missing in range(start, offset):
                                acks.mark(missing, "", persist=False)
                part.expected = offset + 1
                event_id = _header_id(record)
                if offset < part.seed_until:  # read back only to know the ids before the commit
                    if event_id is not None:
                        part.duplicate(event_id, record.timestamp, offset, window_ms, capacity)
                    continue
                if acks.cursor is None:
                    acks.start_at(offset)
                event = None
                if event_id is None:
                    event = _decode(record, sub)
                    if event is None:
                        acks.mark(offset, "", persist=False)
                        continue
                    event_id = event.id
                if acks.remembered.pop(offset, None) == event_id or offset in acks.done:
                    part.duplicate(event_id, record.timestamp, offset, window_ms, capacity)
                    acks.mark(offset, event_id, persist=False)
                    continue
                if part.duplicate(event_id, record.timestamp, offset, window_ms, capacity):
                    self.counters["consumer_duplicates"] += 1
                    log.debug("group %s: event %s at %s/%d is a duplicate", sub.group, event_id, tp, offset)
                    acks.mark(offset, event_id, persist=False)
                    continue
                if event is None:
                    event = _decode(record, sub)
                    if event is None:
                        acks.mark(offset, event_id, persist=False)
                        continue
                out.append(Delivery(delivery_seq(tp.partition, offset), event))
        if fetched:
            self._ack_signal.set()  # internal acks (duplicates, gaps) may move a commit point too
        return out

    async def _assigned(self, sub: _Subscription, assigned: list[TopicPartition]) -> None:
        consumer = sub.consumer
        if consumer is None or sub.stopping:
            return
        async with sub.commit_lock:
            sub.generation += 1
            tps = sorted(assigned)
            known = True
            committed: list[int | None] = [None] * len(tps)
            try:
                committed = list(await asyncio.gather(*(consumer.committed(tp) for tp in tps)))
            except KafkaError as exc:
                known = False
                log.warning(
                    "group %s: cannot read the committed offsets (%r); reading from the group's "
                    "own positions without dedup seeding",
                    sub.group_id,
                    exc,
                )
            stored: dict[int, dict[int, str]] = {}
            if self._db is not None and tps:
                try:
                    stored = await self._db.read(
                        _load_acks(sub.group_id, sub.topic, [tp.partition for tp in tps])
                    )
                except BusError as exc:
                    log.warning("group %s: cannot read the local ack store: %s", sub.group_id, exc)
            for tp, offset in zip(tps, committed, strict=True):
                acks = self._acks.setdefault((sub.group, tp.partition), _Acks())
                acks.reset(offset if known else None, stored.get(tp.partition, {}))
                if not known:
                    part = _Partition(tp, acks, seed_until=0, expected=None)
                elif offset is None:
                    part = _Partition(tp, acks, seed_until=0, expected=None)
                    await consumer.seek_to_beginning(tp)
                else:
                    start = max(0, offset - self._lookback)
                    part = _Partition(tp, acks, seed_until=offset, expected=start)
                    consumer.seek(tp, start)
                sub.parts[tp.partition] = part
                self._owners[(sub.group, tp.partition)] = sub
            if tps:
                log.debug("group %s: assigned %s", sub.group_id, _describe(tps))

    async def _revoked(self, sub: _Subscription, revoked: list[TopicPartition]) -> None:
        held = [tp for tp in revoked if tp.partition in sub.parts]
        if not held:
            return
        await self._commit(sub)
        self._release(sub, [tp.partition for tp in held])
        log.debug("group %s: revoked %s", sub.group_id, _describe(held))
        if sub.on_revoke is not None and not sub.stopping:
            try:
                await sub.on_revoke()
            except Exception:
                log.exception("group %s: on_revoke failed", sub.group_id)

    def _release(self, sub: _Subscription, partitions: Iterable[int]) -> None:
        sub.generation += 1
        for partition in partitions:
            sub.parts.pop(partition, None)
            if self._owners.get((sub.group, partition)) is sub:
                del self._owners[(sub.group, partition)]

    async def _stop_subscription(self, sub: _Subscription) -> None:
        if sub.stopped is None:
            sub.stopped = asyncio.ensure_future(self._stop_subscription_once(sub))
        await asyncio.shield(sub.stopped)

    async def _stop_subscription_once(self, sub: _Subscription) -> None:
        sub.stopping = True
        if not sub.stop_signal.done():
            sub.stop_signal.set_result(None)
        try:
            await self._commit(sub)
        finally:
            self._release(sub, list(sub.parts))
            subs = self._subs.get(sub.group, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                self._subs.pop(sub.group, None)
            if sub.consumer is not None:
                await _quietly(sub.consumer.stop())
            self._ack_signal.set()

    # -- ack -----------------------------------------------------------------------------------

    async def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        self._check_open("ack")
        live = bool(self._subs.get(group))
        changed = False
        last_partition, acks = -1, None
        for delivery in deliveries:
            seq = delivery.seq
            if seq < 0:
                raise ValueError(f"cannot ack seq {seq} for group {group!r}: not a Kafka bus seq")
            partition, offset = seq >> SEQ_OFFSET_BITS, seq & _OFFSET_MASK
            if partition != last_partition:
                last_partition = partition
                key = (group, partition)
                acks = self._acks.get(key)
                if acks is not None and live and key not in self._owners:
                    acks = None
            if acks is None:
                # Another member of the group holds the partition (it delivers the event again).
                self.counters["dropped_acks"] += 1
                continue
            acks.mark(offset, delivery.event.id, persist=True)
            changed = True
        if changed:
            self._ack_signal.set()

    async def _flush_loop(self) -> None:
        await flush_loop(self._ack_signal, self._flush_interval, self._flush, f"of topic {self.topic}")

    async def _flush(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await self._commit(sub)
        await self._save_acks()

    async def _commit(self, sub: _Subscription) -> None:
        """Commits the acknowledged prefix of every partition ``sub`` holds."""
        consumer = sub.consumer
        if consumer is None:
            return
        async with sub.commit_lock:
            offsets = {}
            for part in sub.parts.values():
                target = part.acks.target()
                if target is not None:
                    offsets[part.tp] = target
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                log.debug("group %s: commit refused (rebalancing): %r", sub.group_id, exc)
                return
            except KafkaError as exc:
                log.warning("group %s: commit failed (will retry): %r", sub.group_id, exc)
                return
            for tp, offset in offsets.items():
                holder = sub.parts.get(tp.partition)
                if holder is not None:
                    holder.acks.committed_to(offset)

    async def _save_acks(self) -> None:
        """Writes new out-of-order acks to the local ack store and drops rows below commits."""
        async with self._flush_lock:
            db = self._db
            if db is None:
                return
            inserts: list[tuple[str, str, int, int, str]] = []
            prunes: list[tuple[str, str, int, int]] = []
            taken: list[tuple[_Acks, dict[int, str], int | None]] = []
            for (group, partition), acks in self._acks.items():
                if not acks.unsaved and acks.prune_below is None:
                    continue
                group_id, topic = f"{self.consumer_group}.{group}", self.topic_for(group)
                inserts += [(group_id, topic, partition, o, i) for o, i in acks.unsaved.items()]
                if acks.prune_below is not None:
                    prunes.append((group_id, topic, partition, acks.prune_below))
                taken.append((acks, acks.unsaved, acks.prune_below))
                acks.unsaved, acks.prune_below = {}, None
            if not taken:
                return
            try:
                await db.write(_save_acks_job(inserts, prunes))
            except BaseException:
                for acks, unsaved, prune in taken:  # keep them for the next flush
                    acks.unsaved = {**unsaved, **acks.unsaved}
                    if acks.prune_below is None:
                        acks.prune_below = prune
                raise

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(_CLEANUP_INTERVAL)
            if self._db is None:
                continue
            try:
                await self._db.write(_cleanup_job(time.time() - self._dedup_window, self._max_ids))
            except BusError as exc:
                log.warning("cleaning up the published ids failed (will retry): %s", exc)

    async def stats(self) -> dict[str, object]:
        """Counts for operators (published, duplicates dropped, unrouted events, dropped acks) and
        the partitions each subscription of this process holds."""
        return {
            "backend": "kafka",
            "topic": self.topic,
            "brokers": ",".join(self.brokers),
            "known_ids": len(self._published),
            "counters": dict(self.counters),
            # Per group, the partitions each live subscription of this process holds.
            "groups": {
                group: [sorted(sub.parts) for sub in subs] for group, subs in sorted(self._subs.items())
            },
        }


# --------------------------------------------------------------------------- helpers


async def _until(job: Any, stop: asyncio.Future[None]) -> None:
    """Awaits ``job`` unless ``stop`` resolves first (then ``job`` is cancelled)."""
    task = asyncio.ensure_future(job)
    await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        return
    task.result()


async def _quietly(job: Any) -> None:
    try:
        await job
    except Exception as exc:
        log.debug("closing a Kafka client failed: %r", exc)


def _header_id(record: Any) -> str | None:
    for name, value in record.headers or ():
        if name == ID_HEADER and value is not None:
            return (
                value.decode("utf-8", "replace")
                if type(value) is bytes
                else bytes(value).decode("utf-8", "replace")
            )
    return None


def _decode(record: Any, sub: _Subscription) -> Event | None:
    try:
        return Event.from_json(record.value or b"")
    except EnvelopeError as exc:
        log.warning(
            "group %s: the record at %s/%d/%d is not a triggergate event (%s); skipped",
            sub.group_id,
            record.topic,
            record.partition,
            record.offset,
            exc,
        )
        return None


def _describe(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}/{tp.partition}" for tp in tps)


def _secret(secrets_dir: Path | str | None, ref: str, option: str) -> str:
    from gateway.secrets import SecretStore
    from sensors.spec import SecretKeySelector

    name, _, key = ref.partition("/")
    if not name or not key:
        raise ConfigError([f"bus option {option}={ref!r}: use <secret name>/<key>, e.g. kafka-user/password"])
    if secrets_dir is None:
        raise ConfigError([f"bus option {option} needs the secrets directory (--secrets-dir)"])
    return SecretStore(Path(secrets_dir)).get(SecretKeySelector(name=name, key=key)).reveal()


def _security_options(
    *,
    tls: bool,
    tls_ca_secret: str | None,
    sasl_mechanism: str | None,
    sasl_user_secret: str | None,
    sasl_password_secret: str | None,
    secrets_dir: Path | str | None,
) -> dict[str, Any]:
    """aiokafka's security options: TLS with the system CAs (or a CA file from the secrets
    directory) and SASL PLAIN/SCRAM with user and password read from the secrets directory."""
    options: dict[str, Any] = {}
    context = None
    if tls or tls_ca_secret is not None:
        if tls_ca_secret is not None:
            name, _, key = tls_ca_secret.partition("/")
            if not name or not key or secrets_dir is None:
                raise ConfigError(
                    [f"bus option tlsCaSecret={tls_ca_secret!r}: use <secret name>/<key> and --secrets-dir"]
                )
            cafile = Path(secrets_dir) / name / key
            if not cafile.is_file():
                raise ConfigError([f"bus option tlsCaSecret: no CA file {cafile}"])
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cafile))
        else:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        options["ssl_context"] = context
        options["security_protocol"] = "SSL"
    if sasl_mechanism is not None:
        if sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                [f"bus option saslMechanism={sasl_mechanism!r}: use one of {', '.join(SASL_MECHANISMS)}"]
            )
        if sasl_user_secret is None or sasl_password_secret is None:
            raise ConfigError(
                ["bus option saslMechanism needs saslUserSecret and saslPasswordSecret (<secret name>/<key>)"]
            )
        options["security_protocol"] = "SASL_SSL" if context is not None else "SASL_PLAINTEXT"
        options["sasl_mechanism"] = sasl_mechanism
        options["sasl_plain_username"] = _secret(secrets_dir, sasl_user_secret, "saslUserSecret")
        options["sasl_plain_password"] = _secret(secrets_dir, sasl_password_secret, "saslPasswordSecret")
    elif sasl_user_secret is not None or sasl_password_secret is not None:
        raise ConfigError(["bus options saslUserSecret/saslPasswordSecret need saslMechanism"])
    return options


# -- jobs on the state database's threads -------------------------------------------------------


def _setup(path: Path) -> Any:
    def setup(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise BusError(
                f"{path} holds Kafka bus state version {version}, this triggergate reads version "
                f"{SCHEMA_VERSION}; use the matching triggergate version or move the file away"
            )
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    return setup


def _remember_job(conn: sqlite3.Connection, calls: list[list[tuple[str, float]]]) -> list[None]:
    conn.executemany(
        "INSERT INTO published (id, published_at) VALUES (?, ?) "
        "ON CONFLICT (id) DO UPDATE SET published_at = excluded.published_at",
        [row for rows in calls for row in rows],
    )
    return [None] * len(calls)


def _load_published(horizon: float, limit: int) -> Any:
    def job(conn: sqlite3.Connection) -> list[tuple[str, float]]:
        rows = conn.execute(
            "SELECT id, published_at FROM published WHERE published_at >= ? "
            "ORDER BY published_at DESC LIMIT ?",
            (horizon, limit),
        ).fetchall()
        return [(str(i), float(t)) for i, t in reversed(rows)]

    return job


def _load_acks(group_id: str, topic: str, partitions: list[int]) -> Any:
    def job(conn: sqlite3.Connection) -> dict[int, dict[int, str]]:
        out: dict[int, dict[int, str]] = {}
        marks = ",".join("?" * len(partitions))
        rows = conn.execute(
            f"SELECT part, off, id FROM acks WHERE grp = ? AND topic = ? AND part IN ({marks})",
            (group_id, topic, *partitions),
        )
        for part, off, event_id in rows:
            out.setdefault(int(part), {})[int(off)] = str(event_id)
        return out

    return job


def _save_acks_job(
    inserts: list[tuple[str, str, int, int, str]], prunes: list[tuple[str, str, int, int]]
) -> Any:
    def job(conn: sqlite3.Connection) -> None:
        conn.executemany("DELETE FROM acks WHERE grp = ? AND topic = ? AND part = ? AND off < ?", prunes)
        conn.executemany(
            "INSERT OR REPLACE INTO acks (grp, topic, part, off, id) VALUES (?, ?, ?, ?, ?)", inserts
        )
        # An insert below a prune point of the same flush is stale: drop it again.
        conn.executemany("DELETE FROM acks WHERE grp = ? AND topic = ? AND part = ? AND off < ?", prunes)

    return job


def _cleanup_job(horizon: float, keep: int) -> Any:
    def job(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM published WHERE published_at < ?", (horizon,))
        conn.execute(
            "DELETE FROM published WHERE id IN (SELECT id FROM published "
            "ORDER BY published_at DESC LIMIT -1 OFFSET ?)",
            (keep,),
        )

    return job
