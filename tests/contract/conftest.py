"""The bus backends that must pass the contract suite, and the harness the suite drives them with.

To put a new backend under the contract, add one ``pytest.param(BackendSpec(...))`` to
``BACKENDS``: ``kind`` is its name in ``gateway.bus.BACKENDS``, ``options`` builds its options for
one test from that test's private directory (for example a unique topic name), and
``durable=False`` makes the tests marked ``durable`` (they reopen the bus or kill a process)
skip it. A backend that needs a running broker adds ``marks=pytest.mark.integration``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.bus import create_bus
from gateway.bus.base import Bus


def _no_options(state_dir: Path) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class BackendSpec:
    kind: str
    durable: bool
    #: Options for ``create_bus`` for one test. They must be JSON-serializable: the crash test
    #: hands them to a child process.
    options: Callable[[Path], dict[str, Any]] = field(default=_no_options)


BACKENDS = [
    pytest.param(BackendSpec("sqlite", durable=True), id="sqlite"),
    pytest.param(BackendSpec("memory", durable=False), id="memory"),
]


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
