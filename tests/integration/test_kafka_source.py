"""The kafka source against a real Kafka broker (tansu, started here on a free loopback port)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.bus.memory import MemoryBus
from gateway.errors import BusError
from gateway.sources.kafka import KafkaEvent, KafkaSource, kafka_event_id
from sensors.event import Event
from sensors.spec import KafkaEventSource
from tests.brokers import (
    FAST_GROUP,
    FAST_GROUP_CONFIG,
    Tansu,
    assert_exactly_once,
    committed_offsets,
    create_topic,
    free_port,
    kill_mid_stream_and_restart,
    produce,
    unique,
    write_gateway_manifests,
)
from tests.integration.gatewayproc import GatewayProcess
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka() -> Iterator[Tansu]:
    broker = Tansu().start()
    yield broker
    broker.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver().start()
    yield rec
    rec.stop()


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    memory = MemoryBus()
    await memory.start()
    yield memory
    await memory.close()


def values(seqs: range) -> list[bytes]:
    return [orjson.dumps({"seq": seq}) for seq in seqs]


def source(
    kafka: Tansu, topic: str, publisher: Any, *, group: str | None = None, **spec: Any
) -> KafkaSource:
    doc: dict[str, Any] = {"url": kafka.bootstrap, "topic": topic, "jsonBody": True, **spec}
    if group is not None:
        doc["consumerGroup"] = {"groupName": group, "oldest": True}
    model = KafkaEventSource.model_validate(doc)
    return KafkaSource(KafkaEvent("lims", "upload", model), publisher, None, consumer_options=FAST_GROUP)


async def wait_until(check: Any, limit: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        await asyncio.sleep(0.02)


async def all_events(bus: MemoryBus) -> list[Event]:
    """Every event on the bus so far (reads one group to the current end)."""
    out: list[Event] = []
    group = unique("reader")
    iterator = bus.subscribe(group).__aiter__()
    try:
        while True:
            try:
                batch = await asyncio.wait_for(iterator.__anext__(), 0.3)
            except TimeoutError:
                return out
            out.extend(d.event for d in batch)
    finally:
        await iterator.aclose()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- in-process


class GatedBus:
    """A bus whose publish returns only when the test opens the gate (the bus has not confirmed)."""

    def __init__(self, inner: MemoryBus) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.waiting = 0

    async def publish(self, events: Sequence[Event]) -> list[bool]:
        self.waiting += len(events)
        await self.gate.wait()
        return await self.inner.publish(events)


async def test_offsets_are_committed_only_after_the_bus_confirms(kafka: Tansu, bus: MemoryBus) -> None:
    topic, group = unique("commit"), unique("g")
    await create_topic(kafka.bootstrap, topic)
    await produce(kafka.bootstrap, topic, values(range(50)))
    gated = GatedBus(bus)
    src = source(kafka, topic, gated, group=group)
    await src.start()
    try:
        await wait_until(lambda: gated.waiting == 50, what="the source to publish 50 events")
        await asyncio.sleep(0.5)  # time enough for a commit, were one (wrongly) made before the bus confirms
        assert src.committed == {}
        assert await committed_offsets(kafka.bootstrap, group, topic) == {}
        gated.gate.set()
        await wait_until(lambda: sum(src.committed.values()) == 50, what="the commit after the bus confirmed")
    finally:
        await src.stop()
    assert await committed_offsets(kafka.bootstrap, group, topic) == {0: 50}
    events = await all_events(bus)
    assert [e.data["body"]["seq"] for e in events] == list(range(50))
    first = events[0]
    assert first.id == kafka_event_id("lims", "upload", topic, 0, 0)
    assert (first.type, first.source, first.subject) == ("kafka", "lims", "upload")
    assert set(first.data) == {"topic", "key", "partition", "body", "timestamp", "headers"}
    assert first.data["timestamp"].endswith(" +0000 UTC")


class FlakyBus:
    """Fails the first ``failures`` publishes with BusError, then stores."""

    def __init__(self, inner: MemoryBus, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    async def publish(self, events: Sequence[Event]) -> list[bool]:
        self.calls += 1
        if self.calls <= self.failures:
            raise BusError("the bus is down (test)")
        return await self.inner.publish(events)


async def test_a_bus_failure_commits_nothing_and_the_records_are_read_again(
    kafka: Tansu, bus: MemoryBus
) -> None:
    topic, group = unique("flaky"), unique("g")
    await create_topic(kafka.bootstrap, topic, partitions=2)
    await produce(kafka.bootstrap, topic, values(range(0, 40)), partition=0)
    await produce(kafka.bootstrap, topic, values(range(40, 60)), partition=1)
    flaky = FlakyBus(bus, failures=2)
    src = source(kafka, topic, flaky, group=group)
    await src.start()
    try:
        await wait_until(lambda: sum(src.committed.values()) == 60, what="every offset committed")
    finally:
        await src.stop()
    assert flaky.calls > 2
    events = await all_events(bus)
    assert sorted(e.data["body"]["seq"] for e in events) == list(range(60))  # none lost, none twice
    assert await committed_offsets(kafka.bootstrap, group, topic) == {0: 40, 1: 20}


async def test_a_restarted_group_resumes_after_the_committed_offset(kafka: Tansu, bus: MemoryBus) -> None:
    topic, group = unique("resume"), unique("g")
    await create_topic(kafka.bootstrap, topic)
    await produce(kafka.bootstrap, topic, values(range(30)))
    first = source(kafka, topic, bus, group=group)
    await first.start()
    await wait_until(lambda: sum(first.committed.values()) == 30, what="the first 30 committed")
    await first.stop()
    await produce(kafka.bootstrap, topic, values(range(30, 45)))
    second = source(kafka, topic, bus, group=group)
    await second.start()
    try:
        await wait_until(lambda: second.published >= 15, what="the 15 new records")
        await asyncio.sleep(0.3)
    finally:
        await second.stop()
    assert second.published == 15  # nothing before the committed offset is read again
    assert sorted(e.data["body"]["seq"] for e in await all_events(bus)) == list(range(45))


async def test_a_rebalance_between_two_members_loses_nothing(kafka: Tansu, bus: MemoryBus) -> None:
    topic, group = unique("rebalance"), unique("g")
    await create_topic(kafka.bootstrap, topic, partitions=4)
    for partition in range(4):
        seqs = range(partition * 100, partition * 100 + 100)
        await produce(kafka.bootstrap, topic, values(seqs), partition=partition)
    one = source(kafka, topic, bus, group=group)
    two = source(kafka, topic, bus, group=group)
    await one.start()
    await two.start()  # joins: the group rebalances while `one` may be mid-batch
    try:
        await produce(kafka.bootstrap, topic, values(range(400, 440)))
        await wait_until(
            lambda: sum({**one.committed, **two.committed}.values()) >= 440,
            limit=40, what="all 440 offsets committed by the two members",
        )
    finally:
        await two.stop()
        await one.stop()
    seqs = sorted({e.data["body"]["seq"] for e in await all_events(bus)})
    assert seqs == list(range(440))
    assert sum((await committed_offsets(kafka.bootstrap, group, topic)).values()) == 440


async def test_partition_mode_reads_new_records_and_never_commits(kafka: Tansu, bus: MemoryBus) -> None:
    topic = unique("partition")
    await create_topic(kafka.bootstrap, topic, partitions=2)
    src = source(kafka, topic, bus, partition="1", jsonBody=False)
    await src.start()
    try:
        await produce(kafka.bootstrap, topic, [b"a", b"b", b"c"], partition=1, keys=[b"k1", b"k2", b"k3"],
                      headers=[("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
        await produce(kafka.bootstrap, topic, [b"other partition"], partition=0)
        await wait_until(lambda: src.published == 3, what="the 3 records of partition 1")
        await asyncio.sleep(0.3)
    finally:
        await src.stop()
    assert src.published == 3 and src.committed == {}
    events = await all_events(bus)
    assert [(e.data["key"], e.data["body"], e.data["partition"]) for e in events] == [
        ("k1", "YQ==", 1), ("k2", "Yg==", 1), ("k3", "Yw==", 1)
    ]
    assert events[0].extensions["traceparent"].startswith("00-0af76519")
    assert events[0].data["headers"] == {"traceparent": events[0].extensions["traceparent"]}


async def test_an_unreachable_broker_does_not_fail_start_and_stop_is_prompt(bus: MemoryBus) -> None:
    model = KafkaEventSource.model_validate(
        {"url": f"127.0.0.1:{free_port()}", "topic": "t", "consumerGroup": {"groupName": "g"},
         "connectionBackoff": {"duration": "100ms"}}
    )
    src = KafkaSource(KafkaEvent("lims", "upload", model), bus, None, consumer_options=FAST_GROUP)
    started = time.monotonic()
    await src.start(connect_timeout=0.5)
    await src.stop()
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- gateway process


def kafka_spec(kafka: Tansu, topic: str, group: str) -> dict[str, Any]:
    return {
        "url": kafka.bootstrap,
        "topic": topic,
        "jsonBody": True,
        "consumerGroup": {"groupName": group, "oldest": True},
        "config": FAST_GROUP_CONFIG,
    }


def test_records_fire_triggers_through_a_gateway_process(
    kafka: Tansu, receiver: Receiver, tmp_path: Path
) -> None:
    topic = unique("e2e")
    asyncio.run(create_topic(kafka.bootstrap, topic, partitions=3))
    asyncio.run(produce(kafka.bootstrap, topic, values(range(150))))
    port = free_port()
    manifest = write_gateway_manifests(
        tmp_path / "kafka.yaml", "kafka", kafka_spec(kafka, topic, unique("g")),
        health_port=port, receiver_url=receiver.url,
    )
    gateway = GatewayProcess([manifest], tmp_path / "state", port).start()
    try:
        received = receiver.wait_for(150, timeout=30)
    finally:
        assert gateway.terminate() == 0, gateway.logs()
    assert sorted(int(r.json()["seq"]) for r in received) == list(range(150))
    assert all(r.path == "/fired" for r in received)


def test_kill_9_mid_stream_loses_nothing_and_fires_each_record_once(
    kafka: Tansu, receiver: Receiver, tmp_path: Path
) -> None:
    total = 600
    topic = unique("crash")
    asyncio.run(create_topic(kafka.bootstrap, topic, partitions=3))
    port = free_port()
    manifest = write_gateway_manifests(
        tmp_path / "kafka.yaml", "kafka", kafka_spec(kafka, topic, unique("g")),
        health_port=port, receiver_url=receiver.url,
    )

    def produce_all() -> None:
        async def paced() -> None:
            for start in range(0, total, 20):  # ~600 records over ~3 s
                await produce(kafka.bootstrap, topic, values(range(start, start + 20)))
                await asyncio.sleep(0.08)

        asyncio.run(paced())

    report = kill_mid_stream_and_restart(manifest, tmp_path / "state", port, receiver, total, produce_all)
    assert_exactly_once(report, total)
    assert report.fired_before_kill < total
