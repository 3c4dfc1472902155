"""The bus contract (``gateway/bus/base.py``), written once and run against every backend.

The ``harness`` fixture (``conftest.py``) is parametrized over the backends; tests marked
``durable`` reopen the bus or kill a process and are skipped for in-memory backends.

A new subscription may take up to the backend's ``join_grace`` before its first delivery: a
consumer-group backend (Kafka) must join its group before it knows which partitions it reads
(about 1 s on tansu). The helpers and the tests that wait for "caught up" allow for it; every
other bound stays the same for all backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gateway.bus.base import Bus, Delivery
from gateway.errors import BusError
from sensors.event import Event

if TYPE_CHECKING:
    from .conftest import BusHarness

pytestmark = pytest.mark.timeout(60)

GROUP = "sensor-a"


def event(event_id: str, n: int = 0) -> Event:
    return Event(
        id=event_id,
        source="contract",
        subject="example",
        type="webhook",
        time=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        data={"n": n, "pad": "x" * 100},
    )


def events(prefix: str, count: int) -> list[Event]:
    return [event(f"{prefix}-{i}", i) for i in range(count)]


#: The current backend's ``join_grace`` (set for each test by ``_join_grace``).
JOIN_GRACE = 0.0


@pytest.fixture(autouse=True)
def _join_grace(harness: BusHarness) -> None:
    global JOIN_GRACE
    JOIN_GRACE = harness.join_grace


def ids(deliveries: list[Delivery]) -> list[str]:
    return [d.event.id for d in deliveries]


async def aclose(subscription: AsyncIterator[list[Delivery]]) -> None:
    close = getattr(subscription, "aclose", None)
    if close is not None:
        await close()


async def take(bus: Bus, group: str, count: int, *, batch_size: int = 512) -> list[Delivery]:
    """Subscribe, read deliveries until there are at least ``count``, end the subscription."""
    out: list[Delivery] = []
    subscription = bus.subscribe(group, batch_size=batch_size)
    try:
        async with asyncio.timeout(5):
            async for batch in subscription:
                out.extend(batch)
                if len(out) >= count:
                    break
    finally:
        await aclose(subscription)
    return out


async def drain(bus: Bus, group: str, *, idle: float = 0.3, batch_size: int = 512) -> list[Delivery]:
    """Subscribe and read until no batch arrives for ``idle`` seconds (plus the join grace before
    the first batch)."""
    out: list[Delivery] = []
    subscription = bus.subscribe(group, batch_size=batch_size)
    try:
        while True:
            try:
                async with asyncio.timeout(idle if out else idle + JOIN_GRACE):
                    batch = await anext(subscription)
            except (TimeoutError, StopAsyncIteration):
                break
            out.extend(batch)
    finally:
        await aclose(subscription)
    return out


def assert_ordered(deliveries: list[Delivery]) -> None:
    seqs = [d.seq for d in deliveries]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs), "a seq was delivered twice"


# -- publish and subscribe ----------------------------------------------------------------------


async def test_publish_then_subscribe_delivers_in_publish_order(harness: BusHarness) -> None:
    bus = await harness.open()
    first, second = events("a", 3), events("b", 4)
    assert await bus.publish(first) == [True] * 3
    assert await bus.publish(second) == [True] * 4
    got = await take(bus, GROUP, 7)
    assert ids(got) == ids_of(first + second)
    assert_ordered(got)
    assert [d.event for d in got] == first + second  # the envelope survives the round trip


def ids_of(evs: list[Event]) -> list[str]:
    return [e.id for e in evs]


async def test_publish_nothing_returns_nothing(harness: BusHarness) -> None:
    bus = await harness.open()
    assert await bus.publish([]) == []


async def test_batches_never_exceed_batch_size_and_keep_order(harness: BusHarness) -> None:
    bus = await harness.open()
    published = events("e", 10)
    for chunk in (published[:4], published[4:8], published[8:]):
        await bus.publish(chunk)
    batches: list[list[Delivery]] = []
    subscription = bus.subscribe(GROUP, batch_size=3)
    try:
        async with asyncio.timeout(5):
            async for batch in subscription:
                batches.append(batch)
                if sum(map(len, batches)) >= 10:
                    break
    finally:
        await aclose(subscription)
    assert all(1 <= len(b) <= 3 for b in batches), [len(b) for b in batches]
    assert len(batches) >= 4
    flat = [d for b in batches for d in b]
    assert ids(flat) == ids_of(published)
    assert_ordered(flat)


async def test_a_new_group_receives_events_published_before_it_subscribed(harness: BusHarness) -> None:
    bus = await harness.open()
    await bus.publish(events("old", 3))
    assert ids(await take(bus, "early", 3)) == ["old-0", "old-1", "old-2"]
    # Events still pending for some group are also delivered to a group that joins later.
    assert ids(await take(bus, "late", 3)) == ["old-0", "old-1", "old-2"]


async def test_groups_have_independent_acknowledgements(harness: BusHarness) -> None:
    bus = await harness.open()
    await bus.publish(events("e", 4))
    got_a = await take(bus, "a", 4)
    await bus.ack("a", got_a)
    got_b = await take(bus, "b", 4)
    assert ids(got_a) == ids(got_b) == ["e-0", "e-1", "e-2", "e-3"]
    assert await drain(bus, "a", idle=0.2) == []
    assert ids(await drain(bus, "b")) == ["e-0", "e-1", "e-2", "e-3"]


async def test_resubscribing_redelivers_only_unacknowledged(harness: BusHarness) -> None:
    bus = await harness.open()
    await bus.publish(events("e", 5))
    got = await take(bus, GROUP, 5)
    await bus.ack(GROUP, [got[2], got[0]])  # out of order, with a hole at e-1
    assert ids(await drain(bus, GROUP)) == ["e-1", "e-3", "e-4"]


async def test_a_subscription_never_delivers_a_seq_twice(harness: BusHarness) -> None:
    bus = await harness.open()
    await bus.publish(events("first", 5))
    seen: list[Delivery] = []
    subscription = bus.subscribe(GROUP, batch_size=2)
    try:
        async with asyncio.timeout(5):
            async for batch in subscription:
                seen.extend(batch)  # never acked: must still not come back in this subscription
                if len(seen) == 5:
                    await bus.publish(events("second", 3))
                if len(seen) >= 8:
                    break
        async with asyncio.timeout(0.3):
            extra = await anext(subscription)
            pytest.fail(f"unexpected redelivery within one subscription: {ids(extra)}")
    except TimeoutError:
        pass
    finally:
        await aclose(subscription)
    assert len(seen) == 8
    assert_ordered(seen)


# -- durability across reopen --------------------------------------------------------------------


@pytest.mark.durable
async def test_acknowledged_events_are_not_redelivered_after_reopen(harness: BusHarness) -> None:
    bus = await harness.open()
    await bus.publish(events("e", 5))
    got = await take(bus, GROUP, 5)
    await bus.ack(GROUP, got[:3])
    bus = await harness.reopen(bus)
    assert ids(await drain(bus, GROUP)) == ["e-3", "e-4"]


@pytest.mark.durable
async def test_unacknowledged_events_are_redelivered_after_reopen(harness: BusHarness) -> None:
    bus = await harness.open()
    await bus.publish(events("e", 6))
    assert len(await take(bus, GROUP, 6)) == 6  # delivered but never acked
    bus = await harness.reopen(bus)
    assert ids(await drain(bus, GROUP)) == [f"e-{i}" for i in range(6)]


@pytest.mark.durable
async def test_out_of_order_acks_survive_reopen(harness: BusHarness) -> None:
    bus = await harness.open()
    await bus.publish(events("e", 5))
    got = await take(bus, GROUP, 5)
    await bus.ack(GROUP, [got[2]])  # ack #3 then #1, never #2
    await bus.ack(GROUP, [got[0]])
    bus = await harness.reopen(bus)
    redelivered = await drain(bus, GROUP)
    assert ids(redelivered) == ["e-1", "e-3", "e-4"]
    # Acking the hole later moves past everything acked before it, also across a reopen.
    await bus.ack(GROUP, redelivered[:1])
    bus = await harness.reopen(bus)
    assert ids(await drain(bus, GROUP)) == ["e-3", "e-4"]


@pytest.mark.durable
async def test_groups_stay_independent_across_reopen(harness: BusHarness) -> None:
    bus = await harness.open()
    await bus.publish(events("e", 3))
    await bus.ack("a", await take(bus, "a", 3))
    await take(bus, "b", 3)
    bus = await harness.reopen(bus)
    assert await drain(bus, "a", idle=0.2) == []
    assert ids(await drain(bus, "b")) == ["e-0", "e-1", "e-2"]
    await bus.publish([event("new")])
    assert ids(await drain(bus, "a")) == ["new"]


@pytest.mark.durable
async def test_published_events_survive_reopen_and_new_ones_continue_the_order(harness: BusHarness) -> None:
    bus = await harness.open()
    await bus.publish(events("before", 3))
    bus = await harness.reopen(bus)
    await bus.publish(events("after", 2))
    got = await drain(bus, GROUP)
    assert ids(got) == ["before-0", "before-1", "before-2", "after-0", "after-1"]
    assert_ordered(got)


# -- dedup ---------------------------------------------------------------------------------------


async def test_duplicate_ids_in_one_call_are_stored_once(harness: BusHarness) -> None:
    bus = await harness.open()
    assert await bus.publish([event("x", 1), event("y"), event("x", 2)]) == [True, True, False]
    got = await drain(bus, GROUP)
    assert ids(got) == ["x", "y"]
    assert got[0].event.data["n"] == 1  # the first one wins


async def test_duplicate_ids_across_calls_are_stored_once(harness: BusHarness) -> None:
    bus = await harness.open()
    assert await bus.publish([event("x")]) == [True]
    assert await bus.publish([event("y"), event("x")]) == [True, False]
    assert ids(await drain(bus, GROUP)) == ["x", "y"]


@pytest.mark.durable
async def test_dedup_survives_reopen(harness: BusHarness) -> None:
    bus = await harness.open()
    assert await bus.publish([event("x")]) == [True]
    bus = await harness.reopen(bus)
    assert await bus.publish([event("x")]) == [False]
    assert ids(await drain(bus, GROUP)) == ["x"]


async def test_an_id_older_than_the_dedup_window_is_stored_again(harness: BusHarness) -> None:
    bus = await harness.open(dedup_window=0.2)
    assert await bus.publish([event("x", 1)]) == [True]
    assert await bus.publish([event("x", 2)]) == [False]
    await asyncio.sleep(0.35)
    assert await bus.publish([event("x", 3)]) == [True]
    assert await bus.publish([event("x", 4)]) == [False]  # the window restarts from the new copy
    got = await drain(bus, GROUP)
    assert [(d.event.id, d.event.data["n"]) for d in got] == [("x", 1), ("x", 3)]


# -- concurrency and wake-up ---------------------------------------------------------------------


async def test_concurrent_publishers_are_all_delivered_exactly_once(harness: BusHarness) -> None:
    bus = await harness.open()
    tasks, per_task = 50, 20
    received: list[Delivery] = []

    async def consume() -> None:
        subscription = bus.subscribe(GROUP, batch_size=64)
        try:
            async for batch in subscription:
                received.extend(batch)
                await bus.ack(GROUP, batch)
                if len(received) >= tasks * per_task:
                    return
        finally:
            await aclose(subscription)

    async def produce(t: int) -> list[bool]:
        results: list[bool] = []
        for i in range(per_task):
            results += await bus.publish([event(f"t{t}-{i}", i)])
        return results

    consumer = asyncio.create_task(consume())
    results = await asyncio.gather(*(produce(t) for t in range(tasks)))
    await asyncio.wait_for(consumer, 20)
    assert all(all(r) for r in results)
    expected = {f"t{t}-{i}" for t in range(tasks) for i in range(per_task)}
    assert len(received) == len(expected)
    assert set(ids(received)) == expected
    assert_ordered(received)
    # Each publisher's own events arrive in the order it published them.
    for t in range(3):
        mine = [d.event.data["n"] for d in received if d.event.id.startswith(f"t{t}-")]
        assert mine == list(range(per_task))
    assert await drain(bus, GROUP, idle=0.2) == []  # everything acked: nothing comes back


async def test_subscribe_wakes_on_publish_without_polling(harness: BusHarness) -> None:
    bus = await harness.open()
    subscription = bus.subscribe(GROUP)
    latencies: list[float] = []
    try:
        pending = asyncio.ensure_future(anext(subscription))
        await asyncio.sleep(0.2 + JOIN_GRACE)  # caught up and waiting
        cpu_before = time.process_time()
        await asyncio.sleep(0.5)
        idle_cpu = time.process_time() - cpu_before
        assert not pending.done()
        for i in range(5):
            started = time.perf_counter()
            await bus.publish([event(f"w{i}")])
            batch = await asyncio.wait_for(pending, 2)
            latencies.append(time.perf_counter() - started)
            assert ids(batch) == [f"w{i}"]
            pending = asyncio.ensure_future(anext(subscription))
            await asyncio.sleep(0.05)
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending
    finally:
        await aclose(subscription)
    # Functional bounds, not performance figures: an idle subscription burns no CPU (no tight
    # polling loop) and a publish reaches it well before any sensible poll interval would.
    assert idle_cpu < 0.1, f"an idle subscription used {idle_cpu:.3f}s of CPU in 0.5s: busy polling?"
    assert max(latencies) < 0.5, latencies


# -- lifecycle -----------------------------------------------------------------------------------


async def test_close_ends_subscriptions(harness: BusHarness) -> None:
    bus = await harness.open()
    await bus.publish(events("e", 2))
    received: list[Delivery] = []

    async def consume() -> None:
        async for batch in bus.subscribe(GROUP):
            received.extend(batch)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.2 + JOIN_GRACE)
    assert not consumer.done()
    await bus.close()
    await asyncio.wait_for(consumer, 2)  # ends normally, without an error
    assert ids(received) == ["e-0", "e-1"]


async def test_publish_after_close_raises_bus_error(harness: BusHarness) -> None:
    bus = await harness.open()
    assert await bus.healthy()
    await bus.publish([event("early")])
    delivered = await take(bus, GROUP, 1)
    await bus.close()
    await bus.close()  # closing twice is harmless
    assert not await bus.healthy()
    with pytest.raises(BusError):
        await bus.publish([event("late")])
    with pytest.raises(BusError):
        await anext(bus.subscribe(GROUP))
    with pytest.raises(BusError):
        await bus.ack(GROUP, delivered)


# -- crash ---------------------------------------------------------------------------------------


@pytest.mark.durable
async def test_every_event_whose_publish_returned_survives_sigkill(harness: BusHarness) -> None:
    config = {
        "kind": harness.kind,
        "state_dir": str(harness.state_dir),
        "options": harness.options,
        "publishers": 16,
        "kill_after": 60,
    }
    child = Path(__file__).with_name("crash_child.py")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(child),
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == -signal.SIGKILL, stderr.decode()
    confirmed = stdout.decode().split()
    assert len(confirmed) >= 60 * 3
    assert len(set(confirmed)) == len(confirmed)

    bus = await harness.open()
    stored = ids(await drain(bus, GROUP, idle=0.5))
    missing = set(confirmed) - set(stored)
    assert not missing, (
        f"{len(missing)} events were lost although publish() had returned: {sorted(missing)[:5]}"
    )
    assert len(stored) == len(set(stored))
    # Redelivered upstream messages (same ids) after the crash are duplicates, not new events.
    again = [event(confirmed[0]), event(confirmed[-1])]
    assert await bus.publish(again) == [False, False]
