"""Keyed correlation in the pure engine: events/s and memory per pending key, over 100,000 keys.

A sensor with one correlated trigger, ``r1 && r2`` per sample, window 6h. Both dependencies listen
to the same S3-style event stream (every upload reaches both; each dependency's key regex takes
only its own read, as in ``docs/correlation.md``). The run:

1. fill: the R1 of every sample (``--keys`` of them) -> that many pending keys;
2. pair: the R2 of every sample -> one firing per key, the state empties;
3. expire: ``--keys`` R1 again, then one ``tick`` past the window expires them all.

Throughput is measured without tracing, best of ``--repeat`` runs; memory separately with
``tracemalloc``: what the engine allocates while it holds the pending keys (its bookkeeping: the
per-key set, the key, the deadline heap, the hold counts), and what the events it holds take
(in the gateway those are the bus deliveries' objects, which exist whether or not the engine keeps
them). A hand-written loop (a dict of sample -> R1, the same regexes) is the baseline.

    .venv/bin/python bench/correlation.py [--keys 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sensors.engine import SensorEngine
from sensors.event import Event
from sensors.spec import Sensor

TARGET_BYTES = 2048
R1 = r"(?P<sample>[^/]+)_S\d+_L\d{3}_R1_001\.fastq\.gz$"
R2 = r"(?P<sample>[^/]+)_S\d+_L\d{3}_R2_001\.fastq\.gz$"
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def build_sensor() -> Sensor:
    deps = [{"name": name, "eventSourceName": "uploads", "eventName": "fastq"} for name in ("r1", "r2")]
    trigger = {
        "template": {
            "name": "align",
            "conditions": "r1 && r2",
            "log": {},
            "correlation": {
                "window": "6h",
                "dependencies": {
                    "r1": {"path": "body.key", "regex": R1},
                    "r2": {"path": "body.key", "regex": R2},
                },
            },
        }
    }
    return Sensor.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Sensor",
            "metadata": {"name": "bench"},
            "spec": {"dependencies": deps, "triggers": [trigger]},
        }
    )


def build_events(keys: int, read: int, prefix: str = "e") -> list[Event]:
    """One upload per sample, shaped like the s3 source's normalized events."""
    run = "runs/250304_A01234_0042_BHXXYYDSXC/Analysis/1/Data/fastq"
    events = []
    for i in range(keys):
        key = f"{run}/SAMPLE{i:07d}_S{i % 96 + 1}_L001_R{read}_001.fastq.gz"
        events.append(
            Event(
                id=f"{prefix}{read}{i:030x}",
                source="uploads",
                subject="fastq",
                type="s3",
                time=T0 + timedelta(microseconds=i),
                data={
                    "header": {},
                    "body": {
                        "provider": "aws",
                        "eventName": "ObjectCreated:CompleteMultipartUpload",
                        "bucket": "seq-raw",
                        "key": key,
                        "size": 1_500_000_000 + i,
                        "etag": f"{i:032x}-12",
                        "versionId": None,
                        "sequencer": f"{i:016X}",
                    },
                    "metadata": {},
                },
            )
        )
    return events


def timed(action: Callable[[], int]) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    count = action()
    return time.perf_counter() - start, count


def run_engine(r1: list[Event], r2: list[Event], again: list[Event]) -> dict[str, float]:
    engine = SensorEngine(build_sensor())
    now = T0
    pending = 0

    def fill() -> int:
        nonlocal pending
        for event in r1:
            engine.observe(event, now)
        state = engine.pending_keys().get("align", {})
        pending = len(state)
        return len(r1)

    def pair() -> int:
        fires = 0
        for event in r2:
            fires += len(engine.observe(event, now).fires)
        return fires

    def expire() -> int:
        for event in again:
            engine.observe(event, now)
        return len(engine.tick(T0 + timedelta(hours=7)).expired)

    t_fill, _ = timed(fill)
    t_pair, fires = timed(pair)
    assert pending == len(r1), f"expected {len(r1)} pending keys, got {pending}"
    assert fires == len(r2), f"expected {len(r2)} firings, got {fires}"
    assert engine.pending_keys() == {}
    t_expire, expired = timed(expire)
    assert expired == len(again), f"expected {len(again)} expiries, got {expired}"
    return {"fill": t_fill, "pair": t_pair, "expire": t_expire}


def run_baseline(r1: list[Event], r2: list[Event]) -> float:
    """The same pairing by hand: regex per dependency, a dict of sample -> R1, no engine."""
    p1, p2 = re.compile(R1, re.ASCII), re.compile(R2, re.ASCII)
    waiting: dict[str, tuple[str, Event]] = {}
    fires = 0
    gc.collect()
    start = time.perf_counter()
    for event in (*r1, *r2):
        if event.source != "uploads" or event.subject != "fastq":
            continue
        key = event.data["body"]["key"]
        m1 = p1.search(key)
        if m1 is not None:
            waiting[m1["sample"]] = ("r1", event)
        m2 = p2.search(key)
        if m2 is not None and m2["sample"] in waiting:
            del waiting[m2["sample"]]
            fires += 1
    elapsed = time.perf_counter() - start
    assert fires == len(r2)
    return elapsed


def memory(keys: int) -> tuple[float, float]:
    """Bytes per pending key: (engine bookkeeping, the event objects it holds)."""
    engine = SensorEngine(build_sensor())
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        events = build_events(keys, 1, prefix="m")
        built = tracemalloc.take_snapshot()
        for event in events:
            engine.observe(event, T0)
        held = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert len(engine.pending_keys()["align"]) == keys
    event_bytes = sum(s.size_diff for s in built.compare_to(before, "filename"))
    engine_bytes = sum(s.size_diff for s in held.compare_to(built, "filename"))
    return engine_bytes / keys, event_bytes / keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000, help="samples (pending keys at the peak)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    if args.keys < 1 or args.repeat < 1:
        print("--keys and --repeat must be >= 1", file=sys.stderr)
        return 2
    r1, r2, again = build_events(args.keys, 1), build_events(args.keys, 2), build_events(args.keys, 1, "x")
    runs = [run_engine(r1, r2, again) for _ in range(args.repeat)]
    best = {part: min(run[part] for run in runs) for part in ("fill", "pair", "expire")}
    base = min(run_baseline(r1, r2) for _ in range(args.repeat))
    engine_bytes, event_bytes = memory(args.keys)
    total = best["fill"] + best["pair"]
    rate = 2 * args.keys / total
    n = args.keys

    def row(label: str, value: str) -> None:
        print(f"{label:<52} {value}")

    print(f"correlated trigger 'r1 && r2' per sample, window 6h, 2 dependencies on one stream, {n:,} keys")
    row(f"fill   (R1 of {n:,} samples -> {n:,} pending keys):", f"{n / best['fill']:>10,.0f} events/s")
    row(f"pair   (R2 of {n:,} samples -> {n:,} firings):", f"{n / best['pair']:>10,.0f} events/s")
    row("overall:", f"{rate:>10,.0f} events/s  ({1e6 / rate:.1f} µs/event)")
    row(f"expire (R1 of {n:,} samples, then one tick):", f"{n / best['expire']:>10,.0f} events/s")
    row("hand-written baseline (dict + the same regexes):", f"{2 * n / base:>10,.0f} events/s")
    row("ratio engine/baseline:", f"{rate / (2 * n / base):.2f}")
    print("memory per pending key (tracemalloc):")
    row("  engine state:", f"{engine_bytes:>10,.0f} bytes")
    row("  the held event objects (the bus deliveries' own):", f"{event_bytes:>10,.0f} bytes")
    row("  both:", f"{engine_bytes + event_bytes:>10,.0f} bytes")
    met = "met" if engine_bytes <= TARGET_BYTES else "NOT met"
    row(f"target <= {TARGET_BYTES:,} bytes of engine state per pending key:", met)
    return 0


if __name__ == "__main__":
    sys.exit(main())
