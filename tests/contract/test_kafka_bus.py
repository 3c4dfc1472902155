"""What the Kafka bus does beyond the shared contract: routing by partition key, partition split
and rebalance, cross-process dedup, failures, and the ``--bus`` URL parser.

The broker tests run on the session's tansu broker (``conftest.KAFKA``), each on topics and groups
of its own; the parser tests need no broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from gateway.bus import create_bus, parse_bus_url
from gateway.bus.base import Delivery
from gateway.bus.kafka import KafkaBus, delivery_seq, seq_position
from gateway.errors import BusError
from sensors.event import Event
from tests.brokers import FAST_GROUP, Tansu

from .conftest import KAFKA

GROUP = "sensor-a"


def event(event_id: str, key: str = "", n: int = 0) -> Event:
    return Event(
        id=event_id,
        source="kafka-specifics",
        subject="upload",
        type="webhook",
        time=datetime(2024, 5, 1, tzinfo=UTC),
        data={"key": key, "n": n},
    )


def options(**overrides: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:12]
    return {
        "bootstrap": KAFKA.bootstrap,
        "topic": f"specifics-{suffix}",
        "consumer_group": f"specifics-{suffix}",
        "partitions": 4,
        # Longer than FAST_GROUP: these tests count rebalances, and a member whose event loop stalls
        # for a second on a loaded CI machine must not be evicted (joins take ~session/2 on tansu).
        "session_timeout": 3.0,
        "heartbeat_interval": 0.3,
        **overrides,
    }


class Buses:
    """Opens Kafka buses for one test and closes them at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.opened: list[KafkaBus] = []

    async def open(self, state: str = "state", **opts: Any) -> KafkaBus:
        bus = create_bus("kafka", self.tmp_path / state, **opts)
        assert isinstance(bus, KafkaBus)
        await bus.start()
        self.opened.append(bus)
        return bus

    async def close(self) -> None:
        for bus in reversed(self.opened):
            await bus.close()


@pytest.fixture
async def buses(tmp_path: Path) -> AsyncIterator[Buses]:
    b = Buses(tmp_path)
    try:
        yield b
    finally:
        await b.close()


class Reader:
    """A subscription read in the background; every batch is kept (and acked if ``ack``)."""

    def __init__(self, bus: KafkaBus, group: str, *, ack: bool = True) -> None:
        self.bus = bus
        self.group = group
        self.ack = ack
        self.deliveries: list[Delivery] = []
        self.revokes = 0
        self.revoked_at: list[int] = []  # len(deliveries) at each revoke
        self.subscription = bus.subscribe(group, batch_size=64, on_revoke=self.on_revoke)
        self.task = asyncio.create_task(self.run())

    async def on_revoke(self) -> None:
        self.revokes += 1
        self.revoked_at.append(len(self.deliveries))

    async def run(self) -> None:
        async for batch in self.subscription:
            self.deliveries.extend(batch)
            if self.ack:
                await self.bus.ack(self.group, batch)

    def ids(self) -> list[str]:
        return [d.event.id for d in self.deliveries]

    def partitions(self) -> set[int]:
        return {seq_position(d.seq)[0] for d in self.deliveries}

    async def stop(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        await self.subscription.aclose()


async def wait_for(condition: Any, limit: float = 20.0) -> None:
    """Polls ``condition`` (state of other tasks) until it holds, for at most ``limit`` seconds."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - the condition spans several tasks' state
            await asyncio.sleep(0.05)


async def held(bus: KafkaBus, group: str) -> list[list[int]]:
    """The partitions each live subscription of ``group`` holds, in subscription order."""
    groups: Any = (await bus.stats())["groups"]
    return list(groups.get(group, []))


async def settled(bus: KafkaBus, group: str, sizes: list[int], limit: float = 40.0) -> list[list[int]]:
    """Waits until the subscriptions of ``group`` hold ``sizes`` partitions (sorted)."""
    async with asyncio.timeout(limit):
        while True:
            holding = await held(bus, group)
            if sorted(len(parts) for parts in holding) == sizes:
                return holding
            await asyncio.sleep(0.05)


def by_key(event: Event) -> list[tuple[str, str]]:
    return [("sensor-a", str(event.data["key"]))]


# --------------------------------------------------------------------------- seq encoding


def test_seq_encodes_partition_and_offset_and_orders_within_a_partition() -> None:
    assert seq_position(delivery_seq(0, 7)) == (0, 7)
    assert seq_position(delivery_seq(11, 2**40 - 1)) == (11, 2**40 - 1)
    assert delivery_seq(3, 5) < delivery_seq(3, 6) < delivery_seq(4, 0)


# --------------------------------------------------------------------------- routing


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_the_router_publishes_into_per_group_topics_keyed_by_partition_key(buses: Buses) -> None:
    opts = options()
    bus = create_bus("kafka", buses.tmp_path / "state", **opts)
    assert isinstance(bus, KafkaBus)

    def router(e: Event) -> list[tuple[str, str]]:
        key = str(e.data["key"])
        if key == "nobody":
            return []
        return [("sensor-a", key), ("sensor-b", f"b-{key}")]

    bus.set_router(router, ["sensor-a", "sensor-b"])
    await bus.start()
    buses.opened.append(bus)
    keys = [f"sample-{i}" for i in range(8)]
    published = [event(f"e-{k}-{n}", k, n) for n in range(3) for k in keys]
    assert await bus.publish(published) == [True] * len(published)
    assert await bus.publish([event("unwanted", "nobody")]) == [True]  # no group wants it
    assert bus.counters["unrouted"] == 1

    topic = opts["topic"]
    consumer = AIOKafkaConsumer(
        f"{topic}.sensor-a", f"{topic}.sensor-b", topic,
        bootstrap_servers=KAFKA.bootstrap, group_id=f"raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False, **FAST_GROUP,
    )  # fmt: skip
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(10):
            while len(records) < 2 * len(published):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    assert len(records) == 2 * len(published)
    assert {r.topic for r in records} == {f"{topic}.sensor-a", f"{topic}.sensor-b"}  # none on the main topic
    partitions_of: dict[tuple[str, bytes], set[int]] = defaultdict(set)
    for record in records:
        partitions_of[(record.topic, record.key)].add(record.partition)
        assert dict(record.headers)["tg-id"] == Event.from_json(record.value).id.encode()
    assert {key for _, key in partitions_of} == {k.encode() for k in keys} | {f"b-{k}".encode() for k in keys}
    assert all(len(parts) == 1 for parts in partitions_of.values()), partitions_of  # one key, one partition
    assert len({p for parts in partitions_of.values() for p in parts}) > 1  # and the keys spread

    # A routed group reads its own topic: every event once, each key in publish order.
    reader = Reader(bus, "sensor-a")
    try:
        await wait_for(lambda: len(reader.deliveries) >= len(published))
        await asyncio.sleep(0.3)
    finally:
        await reader.stop()
    assert sorted(reader.ids()) == sorted(e.id for e in published)
    for key in keys:
        assert [d.event.data["n"] for d in reader.deliveries if d.event.data["key"] == key] == [0, 1, 2]


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_two_subscriptions_of_one_group_split_the_partitions_and_keep_keys_together(
    buses: Buses,
) -> None:
    bus = create_bus("kafka", buses.tmp_path / "state", **options())
    assert isinstance(bus, KafkaBus)
    bus.set_router(by_key, [GROUP])
    await bus.start()
    buses.opened.append(bus)
    first, second = Reader(bus, GROUP), Reader(bus, GROUP)
    try:
        # Both members joined and the group settled: each holds some of the 4 partitions.
        await settled(bus, GROUP, [2, 2])
        revokes = (first.revokes, second.revokes)  # one may have held all 4 before the other joined
        keys = [f"k{i}" for i in range(16)]
        await bus.publish([event(f"{k}-0", k) for k in keys])
        await bus.publish([event(f"{k}-1", k) for k in keys])
        await wait_for(lambda: len(first.deliveries) + len(second.deliveries) >= 32)
        owner = {}
        for reader in (first, second):
            for d in reader.deliveries:
                assert owner.setdefault(d.event.data["key"], reader) is reader, "a key reached both members"
        assert first.deliveries and second.deliveries, "one member got everything"
        assert not first.partitions() & second.partitions()
        # A third event of each key lands on the member that had its first two.
        await bus.publish([event(f"{k}-2", k) for k in keys])
        await wait_for(lambda: len(first.deliveries) + len(second.deliveries) >= 48)
        for reader in (first, second):
            for d in reader.deliveries:
                assert owner[d.event.data["key"]] is reader
        assert (first.revokes, second.revokes) == revokes  # no rebalance after the split settled
    finally:
        await first.stop()
        await second.stop()


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_a_rebalance_calls_on_revoke_and_redelivers_the_unacknowledged_of_kept_partitions(
    buses: Buses,
) -> None:
    bus = create_bus("kafka", buses.tmp_path / "state", **options())
    assert isinstance(bus, KafkaBus)
    bus.set_router(by_key, [GROUP])
    await bus.start()
    buses.opened.append(bus)
    first = Reader(bus, GROUP, ack=False)
    try:
        await settled(bus, GROUP, [4])
        published = [event(f"k{i}-{n}", f"k{i}", n) for n in range(2) for i in range(16)]  # 4 partitions
        await bus.publish(published)
        await wait_for(lambda: len(first.deliveries) >= len(published))
        # Acknowledge the first event of every key; the second ones stay pending.
        acked = [d for d in first.deliveries if d.event.data["n"] == 0]
        await bus.ack(GROUP, acked)
        pending = {d.event.id for d in first.deliveries if d.event.data["n"] == 1}
        before = len(first.deliveries)

        second = Reader(bus, GROUP, ack=False)
        try:
            kept = set((await settled(bus, GROUP, [2, 2]))[0])  # the first reader's partitions
            assert first.revokes >= 1, "on_revoke was not called"

            def redelivered() -> set[str]:
                return {d.event.id for d in first.deliveries[first.revoked_at[-1] :]}

            def pending_in(parts: set[int]) -> set[str]:
                return {
                    d.event.id for d in first.deliveries[:before]
                    if d.event.id in pending and seq_position(d.seq)[0] in parts
                }  # fmt: skip

            assert pending_in(kept) and pending - pending_in(kept), "each member should hold pending events"
            await wait_for(lambda: redelivered() >= pending_in(kept))
            await wait_for(lambda: set(second.ids()) >= pending - pending_in(kept))
            await asyncio.sleep(0.5)
            # Only the unacknowledged come back, to the member that holds their partition now.
            assert redelivered() == pending_in(kept)
            assert set(second.ids()) == pending - pending_in(kept)
            assert not {d.event.id for d in acked} & (redelivered() | set(second.ids()))
        finally:
            await second.stop()
    finally:
        await first.stop()


# --------------------------------------------------------------------------- dedup


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_the_same_id_from_two_processes_is_delivered_once(buses: Buses) -> None:
    opts = options(partitions=2)
    one = await buses.open("one", **opts)
    two = await buses.open("two", **opts)  # another process: its own state directory
    assert await one.publish([event("x", n=1), event("y")]) == [True, True]
    assert await two.publish([event("x", n=2)]) == [True]  # it cannot know: the consumer drops it
    reader = Reader(one, GROUP)
    try:
        await wait_for(lambda: len(reader.deliveries) >= 2)
        await asyncio.sleep(0.5)
    finally:
        await reader.stop()
    assert sorted(reader.ids()) == ["x", "y"]
    assert next(d for d in reader.deliveries if d.event.id == "x").event.data["n"] == 1  # the first wins
    await one.close()

    # The first copy is acknowledged and committed; a copy published later by yet another process
    # is dropped by a new subscription that reads back the records before the committed offset.
    three = await buses.open("three", **opts)
    assert await three.publish([event("x", n=3), event("z")]) == [True, True]
    again = Reader(three, GROUP)
    try:
        await wait_for(lambda: len(again.deliveries) >= 1)
        await asyncio.sleep(0.5)
    finally:
        await again.stop()
    assert again.ids() == ["z"]
    assert three.counters["consumer_duplicates"] == 1


# --------------------------------------------------------------------------- failures


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_publish_raises_bus_error_when_the_broker_is_gone(buses: Buses) -> None:
    broker = Tansu().start()  # a broker of its own, to stop
    try:
        bus = await buses.open(
            **{**options(partitions=1), "bootstrap": broker.bootstrap, "request_timeout": 1.0}
        )
        assert await bus.publish([event("before")]) == [True]
        assert await bus.healthy()
    finally:
        broker.stop()
    with pytest.raises(BusError):
        await bus.publish([event("after")])
    bus._health = (0.0, True)  # ask the broker again now rather than in 5 s
    assert not await bus.healthy()
    # The id whose publish failed is not remembered: a retry fails again, it is not a "duplicate".
    with pytest.raises(BusError):
        await bus.publish([event("after")])


async def test_a_bus_that_cannot_reach_its_brokers_refuses_to_start(tmp_path: Path) -> None:
    bus = create_bus("kafka", tmp_path, bootstrap="127.0.0.1:1", topic="t", request_timeout=1.0)
    with pytest.raises(BusError, match=r"cannot connect to the Kafka brokers 127\.0\.0\.1:1"):
        await bus.start()
    with pytest.raises(BusError):
        await bus.publish([event("x")])


def test_bad_constructor_options_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="topic 'a/b' is not a Kafka topic name"):
        KafkaBus(state_dir=tmp_path, bootstrap="h:1", topic="a/b")
    with pytest.raises(ValueError, match="heartbeat_interval"):
        KafkaBus(state_dir=tmp_path, bootstrap="h:1", topic="t", session_timeout=1, heartbeat_interval=2)
    bus = KafkaBus(state_dir=tmp_path, bootstrap="h:1", topic="t")
    with pytest.raises(ValueError, match=r"group 'a b' gives the topic name 't\.a b'"):
        bus.set_router(by_key, ["a b"])


# --------------------------------------------------------------------------- the --bus URL


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite", ("sqlite", {})),
        ("memory", ("memory", {})),
        (
            "kafka://kafka-0.kafka:9092,kafka-1.kafka:9092/triggergate-events?consumerGroup=triggergate",
            (
                "kafka",
                {
                    "bootstrap": "kafka-0.kafka:9092,kafka-1.kafka:9092",
                    "topic": "triggergate-events",
                    "consumer_group": "triggergate",
                },
            ),
        ),
        ("kafka://127.0.0.1:9092/t", ("kafka", {"bootstrap": "127.0.0.1:9092", "topic": "t"})),
        (
            "kafka://[::1]:9092/t?partitions=12&replicationFactor=3&sessionTimeout=10s&heartbeatInterval=3s"
            "&dedupWindow=24h&dedupLookback=10000&tls=true",
            (
                "kafka",
                {
                    "bootstrap": "[::1]:9092",
                    "topic": "t",
                    "partitions": 12,
                    "replication_factor": 3,
                    "session_timeout": 10.0,
                    "heartbeat_interval": 3.0,
                    "dedup_window": 86400.0,
                    "dedup_lookback": 10000,
                    "tls": True,
                },
            ),
        ),
        (
            "kafka://b:9092/t?saslMechanism=scram-sha-512&saslUserSecret=kafka-user%2Fuser"
            "&saslPasswordSecret=kafka-user/password&linger=1ms&fetchMaxWait=250ms",
            (
                "kafka",
                {
                    "bootstrap": "b:9092",
                    "topic": "t",
                    "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_user_secret": "kafka-user/user",
                    "sasl_password_secret": "kafka-user/password",
                    "linger": 0.001,
                    "fetch_max_wait": 0.25,
                },
            ),
        ),
    ],
)
def test_bus_urls_parse(url: str, expected: tuple[str, dict[str, Any]]) -> None:
    assert parse_bus_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://x", "is not a bus; use sqlite, memory or kafka://"),
        ("kafka://b:9092", "the topic is missing"),
        ("kafka:///t", "the brokers '' must be host:port"),
        ("kafka://b/t", "the brokers 'b' must be host:port"),
        ("kafka://b:99999/t", "must be host:port"),
        ("kafka://b:9092/a/b", "the topic 'a/b' must be"),
        (
            "kafka://b:9092/t?partition=3",
            "unknown query parameter 'partition'; known parameters: consumerGroup",
        ),
        ("kafka://b:9092/t?partitions=0", "query parameter partitions='0': '0' is below the minimum of 1"),
        ("kafka://b:9092/t?partitions=many", "partitions='many': 'many' is not a whole number"),
        ("kafka://b:9092/t?dedupWindow=86400", "dedupWindow='86400': '86400' has no unit"),
        ("kafka://b:9092/t?sessionTimeout=soon", "sessionTimeout='soon': invalid duration"),
        ("kafka://b:9092/t?tls=maybe", "tls='maybe': 'maybe' is not true or false"),
        ("kafka://b:9092/t?consumerGroup=a%20b", "consumerGroup='a b': 'a b' must be 1-249 characters"),
        ("kafka://b:9092/t?saslMechanism=GSSAPI", "saslMechanism='GSSAPI': 'GSSAPI' is not one of PLAIN"),
        ("kafka://b:9092/t?saslUserSecret=user", "saslUserSecret='user': 'user' must be <secret name>/<key>"),
        ("kafka://b:9092/t?partitions=1&partitions=2", "the query parameter 'partitions' is given twice"),
        ("kafka://b:9092/t#frag", "has no #fragment"),
    ],
)
def test_bad_bus_urls_name_the_bad_part(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_bus_url(url)
    assert message in str(caught.value)


def test_the_url_the_chart_renders_parses() -> None:
    from tests.chart.rendering import render, with_config

    values = with_config(
        {
            "replicas": 3,
            "bus": {
                "kind": "kafka",
                "kafka": {
                    "url": "kafka-0.kafka:9092,kafka-1.kafka:9092",
                    "topic": "lab-events",
                    "consumerGroup": "lab-gw",
                    "options": {
                        "dedupWindow": "12h",
                        "partitions": "24",
                        "saslUserSecret": "kafka/user name",
                    },
                },
            },
        }
    )
    args = render(values).args
    kind, opts = parse_bus_url(args[args.index("--bus") + 1])
    assert kind == "kafka"
    assert opts == {
        "bootstrap": "kafka-0.kafka:9092,kafka-1.kafka:9092",
        "topic": "lab-events",
        "consumer_group": "lab-gw",
        "dedup_window": 43200.0,
        "partitions": 24,
        "sasl_user_secret": "kafka/user name",
    }


def test_parsed_options_build_a_bus(tmp_path: Path) -> None:
    kind, opts = parse_bus_url(
        "kafka://b:9092/t?consumerGroup=g&partitions=3&dedupWindow=1h&sessionTimeout=1s&heartbeatInterval=200ms"
    )
    bus = create_bus(kind, tmp_path, **opts)
    assert isinstance(bus, KafkaBus)
    assert (bus.brokers, bus.topic, bus.consumer_group, bus.partitions) == (["b:9092"], "t", "g", 3)
    assert bus.topic_for("sensor.x") == "t"  # not routed: the main topic
    bus.set_router(by_key, ["sensor.x"])
    assert bus.topic_for("sensor.x") == "t.sensor.x"


def test_sasl_reads_user_and_password_from_the_secrets_dir(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    (secrets / "kafka-user").mkdir(parents=True)
    (secrets / "kafka-user" / "user").write_text("gateway\n")
    (secrets / "kafka-user" / "password").write_text("s3cret")
    kind, opts = parse_bus_url(
        "kafka://b:9092/t?tls=true&saslMechanism=PLAIN&saslUserSecret=kafka-user/user"
        "&saslPasswordSecret=kafka-user/password"
    )
    bus = create_bus(kind, tmp_path, secrets_dir=secrets, **opts)
    assert isinstance(bus, KafkaBus)
    security = bus._security
    assert security["security_protocol"] == "SASL_SSL"
    assert (security["sasl_plain_username"], security["sasl_plain_password"]) == ("gateway", "s3cret")
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError, match="needs the secrets directory"):
        create_bus(kind, tmp_path, **opts)


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_a_topic_that_exists_with_fewer_partitions_is_used_with_a_warning(
    buses: Buses, caplog: pytest.LogCaptureFixture
) -> None:
    opts = options(partitions=2)
    small = await buses.open("first", **opts)
    small.set_router(by_key, [GROUP])
    await small.publish([event("a-0", "a")])  # creates the group's topic with 2 partitions
    caplog.set_level("WARNING", logger="gateway.bus.kafka")
    wider = await buses.open("second", **{**opts, "partitions": 4})
    wider.set_router(by_key, [GROUP])
    assert await wider.publish([event("b-0", "b")]) == [True]
    warnings = [r.getMessage() for r in caplog.records if "fewer than partitions=4" in r.getMessage()]
    assert any(f"{wider.topic_for(GROUP)} exists with 2 partition(s)" in w for w in warnings), warnings
