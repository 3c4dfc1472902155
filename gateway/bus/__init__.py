"""Bus backends. Each backend is one module, registered here in one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gateway.bus.base import Bus

BACKENDS: dict[str, Callable[..., Bus]] = {}


def _sqlite(state_dir: Path, **options: object) -> Bus:
    from gateway.bus.sqlite import SqliteBus

    return SqliteBus(state_dir / "bus.db", **options)  # type: ignore[arg-type]


def _memory(state_dir: Path, **options: object) -> Bus:
    from gateway.bus.memory import MemoryBus

    return MemoryBus(**options)  # type: ignore[arg-type]


BACKENDS["sqlite"] = _sqlite
BACKENDS["memory"] = _memory


def create_bus(kind: str, state_dir: Path, **options: object) -> Bus:
    try:
        factory = BACKENDS[kind]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown bus backend {kind!r}; known backends: {known}") from None
    return factory(state_dir, **options)
