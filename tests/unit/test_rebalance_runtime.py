"""A rebalance (the bus's ``on_revoke``) resets a sensor worker; the redelivered events rebuild it.

The memory bus redelivers what a group has not acknowledged when the group subscribes again, which
is what the Kafka bus does for the partitions a consumer holds after a rebalance; these tests
revoke, subscribe again and check that nothing is lost and nothing fires twice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.bus.memory import MemoryBus
from gateway.firing import FiringRunner
from gateway.runtime import SensorWorker
from gateway.secrets import SecretStore
from gateway.store import SqliteStore
from gateway.triggers import build_executor
from gateway.triggers.base import TriggerContext
from sensors.engine import SensorEngine
from sensors.event import Event
from sensors.spec import Sensor

REGEX = r"(?P<sample>[^/]+)_R%d\.fastq$"


@dataclass
class GatedServer:
    """An HTTP receiver that holds every answer until ``gate`` is set; records each request."""

    server: ThreadingHTTPServer
    gate: threading.Event
    seen: list[tuple[str, str]]  # (Idempotency-Key, sample)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/fired"


@pytest.fixture
def gated() -> Iterator[GatedServer]:
    gate = threading.Event()
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                seen.append((self.headers["Idempotency-Key"], orjson.loads(body)["sample"]))
            gate.wait(10)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield GatedServer(server, gate, seen)
    gate.set()
    server.shutdown()
    server.server_close()


def build_sensor(url: str) -> Sensor:
    trigger = {
        "template": {
            "name": "align",
            "conditions": "r1 && r2",
            "http": {
                "url": url,
                "payload": [{"src": {"dependencyName": "r1", "dataKey": "sample"}, "dest": "sample"}],
            },
            "correlation": {
                "window": "1h",
                "dependencies": {
                    "r1": {"path": "key", "regex": REGEX % 1},
                    "r2": {"path": "key", "regex": REGEX % 2},
                },
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


def read(sample: str, n: int) -> Event:
    name = f"{sample}_R{n}.fastq"
    data = {"key": name, "sample": sample}
    return Event(id=name, source="uploads", subject="fastq", type="s3", time=datetime.now(UTC), data=data)


@dataclass
class Harness:
    bus: MemoryBus
    store: SqliteStore
    worker: SensorWorker
    runners: dict[str, FiringRunner]

    def slots(self, max_in_flight: int) -> SensorWorker:
        """A fresh worker (not yet run) that carries out up to ``max_in_flight`` firings at once."""
        engine = SensorEngine(self.worker.engine.spec)
        self.worker = SensorWorker(
            engine, self.runners, self.bus, store=self.store, max_in_flight=max_in_flight
        )
        return self.worker

    async def pending(self) -> int:
        groups: Any = (await self.bus.stats())["groups"]
        return int(groups[self.worker.group]["pending"])


@pytest.fixture
async def harness(tmp_path: Path, gated: GatedServer) -> AsyncIterator[Harness]:
    spec = build_sensor(gated.url)
    bus = MemoryBus()
    await bus.start()
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    async with httpx.AsyncClient() as http:
        context = TriggerContext("seq", "default", SecretStore(tmp_path / "secrets"), http)
        runners = {"align": FiringRunner(build_executor(spec.spec.triggers[0], context), store)}
        worker = SensorWorker(SensorEngine(spec), runners, bus, store=store, max_in_flight=1)
        harness = Harness(bus, store, worker, runners)
        yield harness
        gated.gate.set()
        await harness.worker.drain(5)
    await bus.close()
    await store.close()


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        await asyncio.sleep(0.01)


async def test_a_revoke_drops_the_state_built_so_far(harness: Harness, gated: GatedServer) -> None:
    worker = harness.worker
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await harness.bus.publish([read("A", 1), read("B", 1)])

    async def both_pending() -> bool:
        return len(worker.engine.pending_keys().get("align", {})) == 2

    await wait_until(both_pending, "A and B pending")
    first_engine = worker.engine
    await worker._revoked()
    assert worker.engine is not first_engine and worker.engine.pending_keys() == {}
    assert worker.rebalances == 1 and worker.processed == 2  # counters are kept
    assert not worker._deliveries and not worker._inflight and not worker._released_waiting
    # Without a redelivery (this memory bus subscription goes on), A's R1 is gone from this worker.
    await harness.bus.publish([read("A", 2)])

    async def a2_pending() -> bool:
        return worker.engine.pending_keys() == {"align": {"A": {"r2": "A_R2.fastq"}}}

    await wait_until(a2_pending, "A's R2 alone")
    assert gated.seen == []
    stop.set()
    await task


async def test_redelivery_after_a_revoke_fires_each_set_once(harness: Harness, gated: GatedServer) -> None:
    worker = harness.worker
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    # One batch; max_in_flight=1 and the receiver holds its answers, so A's firing is in flight and
    # the worker waits for a slot for B's while the revoke comes.
    await harness.bus.publish([read(s, n) for s in "ABC" for n in (1, 2)])

    async def a_in_flight() -> bool:
        return len(gated.seen) == 1

    await wait_until(a_in_flight, "A's firing in flight")
    await worker._revoked()
    stop.set()
    gated.gate.set()  # A answers; B's firing (decided before the revoke) starts; C is not processed
    await task
    assert worker.processed == 4  # A1 A2 B1 B2: the rest of the batch waits for the redelivery
    again = asyncio.Event()
    task = asyncio.create_task(worker.run(again))  # subscribe again: every unacknowledged event

    async def all_acked() -> bool:
        return await harness.pending() == 0

    await wait_until(all_acked, "every event acknowledged")
    again.set()
    await task
    await worker.drain(5)
    samples = sorted(sample for _, sample in gated.seen)
    assert samples == ["A", "B", "C"], gated.seen  # A and B replayed: same keys, already done
    assert len({key for key, _ in gated.seen}) == 3
    for sample in "ABC":
        assert await harness.store.firing_done(next(key for key, s in gated.seen if s == sample)), (
            f"no firing record for {sample}"
        )
    assert worker.engine.pending_keys() == {}


async def test_a_firing_in_flight_at_the_revoke_is_not_run_again(
    harness: Harness, gated: GatedServer
) -> None:
    worker = harness.slots(8)  # room for the replayed firing next to the one in flight
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await harness.bus.publish([read("A", 1), read("A", 2)])

    async def in_flight() -> bool:
        return len(gated.seen) == 1

    await wait_until(in_flight, "A's firing in flight")
    await worker._revoked()
    stop.set()
    await task
    again = asyncio.Event()
    task = asyncio.create_task(worker.run(again))  # the redelivery: A1 and A2 again, A fires again

    async def replayed() -> bool:
        return worker.processed == 4

    await wait_until(replayed, "A1 and A2 redelivered")
    await asyncio.sleep(0.3)  # time for a second request, were the replayed firing not waiting
    assert len(gated.seen) == 1
    gated.gate.set()

    async def all_acked() -> bool:
        return await harness.pending() == 0

    await wait_until(all_acked, "A1 and A2 acknowledged")
    again.set()
    await task
    await worker.drain(5)
    assert len(gated.seen) == 1 and worker.fired == 2  # fired twice, carried out once
    ((key, _),) = gated.seen
    assert await harness.store.firing_done(key)
