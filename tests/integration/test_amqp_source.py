"""The amqp source against the RabbitMQ broker already running on 127.0.0.1:5672 (never started or
stopped here; the tests skip when it is not reachable). Every test uses its own exchange and queue
and deletes them afterwards."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest

from gateway.bus.memory import MemoryBus
from gateway.errors import BusError
from gateway.sources.amqp import AMQPEvent, AMQPSource, amqp_event_id
from sensors.event import Event
from sensors.spec import AMQPEventSource
from tests.brokers import (
    RABBITMQ_SKIP_REASON,
    RABBITMQ_URL,
    assert_exactly_once,
    free_port,
    kill_mid_stream_and_restart,
    rabbitmq_reachable,
    unique,
    write_gateway_manifests,
)
from tests.integration.gatewayproc import GatewayProcess
from tests.integration.receiver import Receiver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not rabbitmq_reachable(), reason=RABBITMQ_SKIP_REASON),
]


class Names:
    def __init__(self) -> None:
        self.exchange = unique("tg-ex")
        self.queue = unique("tg-q")


async def delete(names: Names) -> None:
    connection = await aio_pika.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel()
        raw = await channel.get_underlay_channel()
        await raw.queue_delete(names.queue, if_empty=False, if_unused=False)
        await raw.exchange_delete(names.exchange)
    finally:
        await connection.close()


@pytest.fixture
def names() -> Iterator[Names]:
    created = Names()
    yield created
    asyncio.run(delete(created))


@pytest.fixture
async def anames() -> AsyncIterator[Names]:
    created = Names()
    yield created
    await delete(created)


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


def durable_spec(names: Names, **extra: Any) -> dict[str, Any]:
    return {
        "url": RABBITMQ_URL,
        "exchangeName": names.exchange,
        "exchangeType": "direct",
        "routingKey": "uploads",
        "jsonBody": True,
        "queueDeclare": {"name": names.queue, "durable": True},
        "consume": {"autoAck": True},  # Argo's default; triggergate still acks only when durable
        **extra,
    }


def source(spec: dict[str, Any], publisher: Any, **kwargs: Any) -> AMQPSource:
    model = AMQPEventSource.model_validate(spec)
    return AMQPSource(AMQPEvent("lims", "upload", model), publisher, None, **kwargs)


async def publish(names: Names, seqs: range, *, body: bytes | None = None, ids: bool = True) -> None:
    """Persistent messages with confirms, into the exchange (which the source declared)."""
    connection = await aio_pika.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(names.exchange, "direct", durable=True)
        await asyncio.gather(*(
            exchange.publish(
                aio_pika.Message(
                    body if body is not None else orjson.dumps({"seq": seq}),
                    message_id=f"upload-{seq}" if ids else None,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/json",
                ),
                routing_key="uploads",
            )
            for seq in seqs
        ))
    finally:
        await connection.close()


async def ready_count(queue: str) -> int:
    """Messages ready in ``queue`` (not delivered, or delivered and returned)."""
    connection = await aio_pika.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel()
        raw = await channel.get_underlay_channel()
        declared = await raw.queue_declare(queue, passive=True)
        return int(declared.message_count or 0)
    finally:
        await connection.close()


async def wait_until(check: Any, limit: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        await asyncio.sleep(0.02)


async def all_events(bus: MemoryBus) -> list[Event]:
    out: list[Event] = []
    iterator = bus.subscribe(unique("reader")).__aiter__()
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


async def test_messages_become_events_with_argos_payload(anames: Names, bus: MemoryBus) -> None:
    src = source(durable_spec(anames, metadata={"lab": "north"}), bus)
    await src.start()
    try:
        await publish(anames, range(20))
        await wait_until(lambda: src.acked == 20, what="20 acknowledged messages")
    finally:
        await src.stop()
    events = await all_events(bus)
    assert sorted(e.data["body"]["seq"] for e in events) == list(range(20))
    event = next(e for e in events if e.data["body"]["seq"] == 3)
    assert event.id == amqp_event_id("lims", "upload", "upload-3")
    assert (event.type, event.source, event.subject) == ("amqp", "lims", "upload")
    assert event.data["messageId"] == "upload-3"
    assert event.data["exchange"] == anames.exchange and event.data["routingKey"] == "uploads"
    assert event.data["deliveryMode"] == 2 and event.data["contentType"] == "application/json"
    assert event.data["metadata"] == {"lab": "north"}
    assert await ready_count(anames.queue) == 0


class GatedBus:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = 0

    async def publish(self, events: Sequence[Event]) -> list[bool]:
        self.waiting += len(events)
        await self.gate.wait()
        return [True for _ in events]


async def test_nothing_is_acknowledged_before_the_bus_confirms(anames: Names) -> None:
    gated = GatedBus()
    src = source(durable_spec(anames), gated, graceful_timeout=0.2)
    await src.start()
    try:
        await publish(anames, range(10))
        await wait_until(lambda: src.delivered == 10, what="10 deliveries")
        assert gated.waiting >= 1  # the first batch is with the bus, the rest wait behind it
        await asyncio.sleep(0.3)
        assert await ready_count(anames.queue) == 0  # all 10 delivered, none acknowledged yet
    finally:
        await src.stop()  # the bus never confirmed: the connection closes with the 10 unacknowledged
    assert src.acked == 0
    await asyncio.sleep(0.2)
    assert await ready_count(anames.queue) == 10  # the broker has them back


class FailingBus:
    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, events: Sequence[Event]) -> list[bool]:
        self.calls += 1
        raise BusError("the bus is down (test)")


async def test_a_bus_failure_requeues_the_messages_and_they_are_delivered_again(
    anames: Names, bus: MemoryBus
) -> None:
    failing = FailingBus()
    src = source(durable_spec(anames), failing)
    await src.start()
    try:
        await publish(anames, range(5))
        await wait_until(lambda: src.requeued >= 5, what="5 nacked with requeue")
    finally:
        await src.stop()
    assert src.acked == 0 and failing.calls >= 1
    await asyncio.sleep(0.2)
    assert await ready_count(anames.queue) == 5
    healthy = source(durable_spec(anames), bus)
    await healthy.start()
    try:
        await wait_until(lambda: healthy.acked == 5, what="the 5 requeued messages")
    finally:
        await healthy.stop()
    events = await all_events(bus)
    expected = sorted(amqp_event_id("lims", "upload", f"upload-{i}") for i in range(5))
    assert sorted(e.id for e in events) == expected


async def test_a_body_that_is_not_json_is_rejected_without_requeue(anames: Names, bus: MemoryBus) -> None:
    src = source(durable_spec(anames), bus)
    await src.start()
    try:
        await publish(anames, range(1), body=b"not json")
        await publish(anames, range(1, 2))
        await wait_until(lambda: src.acked == 1, what="the valid message")
        await asyncio.sleep(0.2)
    finally:
        await src.stop()
    assert [e.data["body"] for e in await all_events(bus)] == [{"seq": 1}]
    assert await ready_count(anames.queue) == 0


async def test_argos_default_queue_works_and_warns_that_it_loses_messages(
    anames: Names, bus: MemoryBus, caplog: pytest.LogCaptureFixture
) -> None:
    spec = {
        "url": RABBITMQ_URL,
        "exchangeName": anames.exchange,
        "exchangeType": "direct",
        "routingKey": "uploads",
        "jsonBody": True,
    }
    caplog.set_level(logging.WARNING, logger="triggergate.amqp")
    src = source(spec, bus)
    await src.start()
    try:
        assert src.queue_name is not None
        anames.queue = src.queue_name  # deleted by the fixture (it is gone already: exclusive)
        await publish(anames, range(3), ids=False)
        await wait_until(lambda: src.acked == 3, what="3 messages")
    finally:
        await src.stop()
    assert len({e.id for e in await all_events(bus)}) == 3  # random ids without message ids
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "can be lost" in warning.getMessage() and "exclusive" in warning.getMessage()


async def test_an_unreachable_broker_does_not_fail_start_and_stop_is_prompt(bus: MemoryBus) -> None:
    spec = {"url": f"amqp://guest:guest@127.0.0.1:{free_port()}/", "exchangeName": "x",
            "exchangeType": "direct", "routingKey": "k", "connectionBackoff": {"duration": "100ms"}}
    src = source(spec, bus)
    started = time.monotonic()
    await src.start(connect_timeout=0.5)
    await src.stop()
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- gateway process


def test_messages_fire_triggers_through_a_gateway_process(
    names: Names, receiver: Receiver, tmp_path: Path
) -> None:
    port = free_port()
    manifest = write_gateway_manifests(
        tmp_path / "amqp.yaml", "amqp", durable_spec(names), health_port=port, receiver_url=receiver.url
    )
    gateway = GatewayProcess([manifest], tmp_path / "state", port).start()
    try:
        asyncio.run(publish(names, range(150)))
        received = receiver.wait_for(150, timeout=30)
    finally:
        assert gateway.terminate() == 0, gateway.logs()
    assert sorted(int(r.json()["seq"]) for r in received) == list(range(150))
    event_ids = {r.json()["eventId"] for r in received}
    assert amqp_event_id("brokers", "upload", "upload-7") in event_ids


def test_kill_9_mid_stream_loses_nothing_and_fires_each_message_once(
    names: Names, receiver: Receiver, tmp_path: Path
) -> None:
    total = 600
    port = free_port()
    manifest = write_gateway_manifests(
        tmp_path / "amqp.yaml", "amqp", durable_spec(names), health_port=port, receiver_url=receiver.url
    )

    def produce_all() -> None:
        async def paced() -> None:
            for start in range(0, total, 20):  # ~600 messages over ~3 s
                await publish(names, range(start, start + 20))
                await asyncio.sleep(0.05)

        asyncio.run(paced())

    report = kill_mid_stream_and_restart(manifest, tmp_path / "state", port, receiver, total, produce_all)
    assert_exactly_once(report, total)
    assert report.fired_before_kill < total
