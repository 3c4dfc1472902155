"""Builders for Sensor models and events used by the pure unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sensors.event import Event
from sensors.spec import Sensor

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def sensor(dependencies: list[dict[str, Any]], triggers: list[dict[str, Any]], name: str = "s") -> Sensor:
    return Sensor.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Sensor",
            "metadata": {"name": name},
            "spec": {"dependencies": dependencies, "triggers": triggers},
        }
    )


def dep(name: str, source: str = "webhook", event: str = "example", **extra: Any) -> dict[str, Any]:
    return {"name": name, "eventSourceName": source, "eventName": event, **extra}


def log_trigger(name: str, conditions: str = "") -> dict[str, Any]:
    return {"template": {"name": name, "conditions": conditions, "log": {}}}


_counter = 0


def event(
    source: str = "webhook", subject: str = "example", data: Any = None, id: str | None = None
) -> Event:
    global _counter
    _counter += 1
    return Event(
        id=id or f"ev{_counter:05d}",
        source=source,
        subject=subject,
        type="webhook",
        time=T0,
        data={"header": {}, "body": {}, "metadata": {}} if data is None else data,
    )
