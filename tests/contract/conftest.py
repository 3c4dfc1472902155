"""The bus backends that must pass the contract suite, and the harness the suite drives them with.

To put a new backend under the contract, add one ``pytest.param(BackendSpec(...))`` to
``BACKENDS``: ``kind`` is its name in ``gateway.bus.BACKENDS``, ``options`` builds its options for
one test from that test's private directory (for example a unique topic name), and
``durable=False`` makes the tests marked ``durable`` (they reopen the bus or kill a process)
skip it. A backend that needs a running broker adds ``marks=pytest.mark.integration``.
``join_grace`` is how long a new subscription may take before its first delivery: a
consumer-group backend (Kafka) must join its group first, about 1 s on tansu.

The Kafka backend runs on one tansu broker per test session (started at first use, stopped by
its PID at the end), with a topic and consumer group of its own in every test and one partition,
so that the contract's total order holds (with more partitions Kafka orders per partition key).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.bus import create_bus
from gateway.bus.base import Bus
from tests.brokers import FAST_GROUP, Tansu


def _no_options(state_dir: Path) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class BackendSpec:
    kind: str
    durable: bool
    #: Options for ``create_bus`` for one test. They must be JSON-serializable: the crash test
    #: hands them to a child process.
    options: Callable[[Path], dict[str, Any]] = field(default=_no_options)
    #: Seconds a new subscription may take before its first delivery (a consumer group join).
    join_grace: float = 0.0


class SessionTansu:
    """One tansu broker for the whole test session, started when a test first needs it."""

    def __init__(self) -> None:
        self.broker: Tansu | None = None

    @property
    def bootstrap(self) -> str:
        if self.broker is None:
            self.broker = Tansu().start()
        return self.broker.bootstrap

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


KAFKA = SessionTansu()


def kafka_options(state_dir: Path) -> dict[str, Any]:
    """A topic and consumer group of its own for each test, with fast group joins."""
    suffix = uuid.uuid4().hex[:12]
    return {
        "bootstrap": KAFKA.bootstrap,
        "topic": f"contract-{suffix}",
        "consumer_group": f"contract-{suffix}",
        "partitions": 1,
        "session_timeout": FAST_GROUP["session_timeout_ms"] / 1000,
        "heartbeat_interval": FAST_GROUP["heartbeat_interval_ms"] / 1000,
    }


BACKENDS = [
    pytest.param(BackendSpec("sqlite", durable=True), id="sqlite"),
    pytest.param(BackendSpec("memory", durable=False), id="memory"),
    pytest.param(
        BackendSpec("kafka", durable=True, options=kafka_options, join_grace=2.0),
        id="kafka",
        marks=pytest.mark.integration,
    ),
]


@pytest.fixture(scope="session", autouse=True)
def _session_tansu() -> Iterator[None]:
    """Stops the session's tansu broker (by its PID), if a test started it."""
    try:
        yield
    finally:
        KAFKA.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "durable: the test reopens the bus or kills a process; skipped for in-memory backends"
    )


class BusHarness:
    """Opens bus instances of one backend on one test's storage and closes them at teardown."""

    def __init__(self, spec: BackendSpec, state_dir: Path) -> None:
        self.spec = spec
        self.kind = spec.kind
        self.state_dir = state_dir
        self.options = spec.options(state_dir)
        self.join_grace = spec.join_grace
        self._opened: list[Bus] = []

    def make(self, **overrides: Any) -> Bus:
        """A new, unstarted bus instance on this test's storage."""
        return create_bus(self.kind, self.state_dir, **{**self.options, **overrides})

    async def open(self, **overrides: Any) -> Bus:
        bus = self.make(**overrides)
        await bus.start()
        self._opened.append(bus)
        return bus

    async def reopen(self, bus: Bus, **overrides: Any) -> Bus:
        """Close ``bus`` (as a clean shutdown does) and open a new instance on the same storage."""
        await bus.close()
        return await self.open(**overrides)

    async def close_all(self) -> None:
        for bus in reversed(self._opened):
            await bus.close()


@pytest.fixture(params=BACKENDS)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BusHarness]:
    spec: BackendSpec = request.param
    if request.node.get_closest_marker("durable") is not None and not spec.durable:
        pytest.skip(f"the {spec.kind} bus is not durable: it keeps events in memory only")
    h = BusHarness(spec, tmp_path)
    try:
        yield h
    finally:
        await h.close_all()
