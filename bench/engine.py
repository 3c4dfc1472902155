"""Events/s through the pure engine's ``observe()`` on one core.

A sensor with 3 dependencies, 2 data filters each (a regex and a number comparison) and an ``&&``
condition, fed a stream in which every event passes its filters and every third event completes
a firing. The baseline, measured in the same run, is a hand-written loop doing the same work with
no engine at all (the same dict lookups, the same compiled regex and comparison, the same
bookkeeping of the latest event per dependency): the ratio shows what the engine's generality costs.

    .venv/bin/python bench/engine.py [--events 200000]
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime

from sensors.engine import SensorEngine
from sensors.event import Event
from sensors.spec import Sensor

NAMES = ("r1", "r2", "marker")


def build_sensor() -> Sensor:
    deps = [
        {
            "name": name,
            "eventSourceName": "s3",
            "eventName": name,
            "filters": {
                "data": [
                    {"path": "body.key", "type": "string", "value": [r"\.fastq\.gz$|\.txt$"]},
                    {"path": "body.size", "type": "number", "comparator": ">", "value": ["0"]},
                ]
            },
        }
        for name in NAMES
    ]
    trigger = {"template": {"name": "align", "conditions": "r1 && r2 && marker", "log": {}}}
    return Sensor.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Sensor",
            "metadata": {"name": "bench"},
            "spec": {"dependencies": deps, "triggers": [trigger]},
        }
    )


def build_events(count: int) -> list[Event]:
    now = datetime.now(UTC)
    events = []
    for i in range(count):
        name = NAMES[i % 3]
        key = (
            f"run1/sample{i // 3}_{name}.fastq.gz" if name != "marker" else f"run1/s{i // 3}/CopyComplete.txt"
        )
        events.append(
            Event(
                id=f"{i:032x}",
                source="s3",
                subject=name,
                type="s3",
                time=now,
                data={"header": {}, "body": {"key": key, "size": 1000 + i, "bucket": "seq"}, "metadata": {}},
            )
        )
    return events


def run_engine(events: list[Event]) -> tuple[float, int]:
    engine = SensorEngine(build_sensor())
    now = datetime.now(UTC)
    fires = 0
    start = time.perf_counter()
    for event in events:
        fires += len(engine.observe(event, now).fires)
    return time.perf_counter() - start, fires


def run_baseline(events: list[Event]) -> tuple[float, int]:
    pattern = re.compile(r"\.fastq\.gz$|\.txt$")
    slots: dict[str, Event] = {}
    fires = 0
    start = time.perf_counter()
    for event in events:
        if event.source != "s3" or event.subject not in NAMES:
            continue
        body = event.data["body"]
        if not pattern.search(body["key"]) or not float(body["size"]) > 0:
            continue
        slots[event.subject] = event
        if len(slots) == 3:
            fires += 1
            slots.clear()
    return time.perf_counter() - start, fires


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    events = build_events(args.events)
    engine_best = min(run_engine(events)[0] for _ in range(args.repeat))
    base_best = min(run_baseline(events)[0] for _ in range(args.repeat))
    _, fires = run_engine(events)
    eng_rate = args.events / engine_best
    base_rate = args.events / base_best
    print(
        f"events: {args.events}, firings: {fires} (3 dependencies, 2 data filters each, r1 && r2 && marker)"
    )
    print(f"engine.observe():       {eng_rate:>12,.0f} events/s  ({1e6 / eng_rate:.1f} µs/event)")
    print(f"hand-written baseline:  {base_rate:>12,.0f} events/s  ({1e6 / base_rate:.1f} µs/event)")
    print(f"ratio engine/baseline:  {eng_rate / base_rate:.2f}")
    print(f"target >= 50,000 events/s on one core: {'met' if eng_rate >= 50_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
