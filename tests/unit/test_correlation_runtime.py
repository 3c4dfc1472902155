"""The sensor worker carries out correlation expiries: dead letter, onExpire, then the bus ack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.bus.memory import MemoryBus
from gateway.firing import FiringRunner
from gateway.runtime import CATCH_UP_IDLE, SensorWorker
from gateway.secrets import SecretStore
from gateway.store import SqliteStore
from gateway.triggers import build_executor
from gateway.triggers.base import TriggerContext
from sensors.engine import SensorEngine, expiry_key, idempotency_key
from sensors.event import Event
from sensors.spec import Sensor

REGEX = r"(?P<sample>[^/]+)_S\d+_L\d{3}_R%d_001\.fastq\.gz$"


def build_sensor() -> Sensor:
    trigger = {
        "template": {
            "name": "align",
            "conditions": "r1 && r2",
            "log": {},
            "correlation": {
                "window": "1h",
                "dependencies": {
                    "r1": {"path": "key", "regex": REGEX % 1},
                    "r2": {"path": "key", "regex": REGEX % 2},
                },
                "onExpire": {"template": {"name": "notify", "log": {}}},
            },
        }
    }
    return Sensor.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Sensor",
            "metadata": {"name": "seq"},
            "spec": {
                "dependencies": [
                    {"name": "r1", "eventSourceName": "uploads", "eventName": "fastq"},
                    {"name": "r2", "eventSourceName": "uploads", "eventName": "fastq"},
                ],
                "triggers": [trigger],
            },
        }
    )


def upload(name: str, at: datetime) -> Event:
    return Event(id=name, source="uploads", subject="fastq", type="s3", time=at, data={"key": name})


@dataclass
class Harness:
    bus: MemoryBus
    store: SqliteStore
    worker: SensorWorker

    async def pending(self) -> int | None:
        """Unacknowledged events of the worker's group; None before it subscribed."""
        groups: Any = (await self.bus.stats())["groups"]
        group = groups.get(self.worker.group)
        return None if group is None else int(group["pending"])


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    spec = build_sensor()
    bus = MemoryBus()
    await bus.start()
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    async with httpx.AsyncClient() as http:
        context = TriggerContext("seq", "default", SecretStore(tmp_path / "secrets"), http)
        align = spec.spec.triggers[0]
        assert align.template.correlation is not None and align.template.correlation.on_expire is not None
        runners = {
            trigger.name: FiringRunner(build_executor(trigger, context), store)
            for trigger in (align, align.template.correlation.on_expire)
        }
        yield Harness(bus, store, SensorWorker(SensorEngine(spec), runners, bus, store=store))
    await bus.close()
    await store.close()


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        await asyncio.sleep(0.02)


async def run_until_acked(h: Harness, events: list[Event]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(h.worker.run(stop))
    await h.bus.publish(events)

    async def settled() -> bool:
        return await h.pending() == 0 and not h.worker.engine.pending_keys()

    try:
        await wait_until(settled, "every event acknowledged")
    finally:
        stop.set()
        await task
        await h.worker.drain(5)


async def test_an_expired_set_is_dead_lettered_notified_then_acknowledged(harness: Harness) -> None:
    now = datetime.now(UTC)
    old = upload("A_S1_L001_R1_001.fastq.gz", now - timedelta(hours=2))  # its window has passed
    b1, b2 = upload("B_S2_L001_R1_001.fastq.gz", now), upload("B_S2_L001_R2_001.fastq.gz", now)
    await run_until_acked(harness, [old, b1, b2])
    assert harness.worker.expired == 1
    (letter,) = await harness.store.list_dead_letters()
    assert (letter.sensor, letter.trigger, letter.attempts) == ("seq", "align", 0)
    assert letter.reason == "correlation window expired: missing r2 for key A"
    assert letter.key == expiry_key("seq", "align", "A", {"r1": old})
    assert [(e["dependency"], e["id"]) for e in letter.events] == [("r1", old.id)]
    notify = await harness.store.get_firing(idempotency_key("seq", "notify", {"r1": old}, "A"))
    assert notify is not None and notify.status == "succeeded" and notify.event_ids == [old.id]
    aligned = await harness.store.get_firing(idempotency_key("seq", "align", {"r1": b1, "r2": b2}, "B"))
    assert aligned is not None and aligned.status == "succeeded"
    assert await harness.pending() == 0


async def test_a_failed_dead_letter_keeps_the_events_unacknowledged(harness: Harness) -> None:
    await harness.store.close()  # the state store is gone: the expiry cannot be recorded
    old = upload("A_S1_L001_R1_001.fastq.gz", datetime.now(UTC) - timedelta(hours=2))
    stop = asyncio.Event()
    task = asyncio.create_task(harness.worker.run(stop))
    await harness.bus.publish([old])

    async def tried() -> bool:
        return harness.worker.expired > 0

    await wait_until(tried, "the expiry")
    await asyncio.sleep(0.1)
    stop.set()
    await task
    await harness.worker.drain(5)
    assert await harness.pending() == 1  # replayed after a restart, expired again then


async def test_clock_decisions_wait_for_the_replayed_tail(harness: Harness) -> None:
    worker = harness.worker
    old = upload("A_S1_L001_R1_001.fastq.gz", datetime.now(UTC) - timedelta(hours=2))
    worker.engine.observe(old, datetime.now(UTC))  # as replayed right after a start
    wait = worker._until_deadline()
    assert wait is not None and wait >= CATCH_UP_IDLE  # the deadline passed, but the tail may hold its R2
    worker._caught_up = True
    assert worker._until_deadline() == 0.0
