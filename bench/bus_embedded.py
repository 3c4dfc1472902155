"""Throughput of the embedded SQLite bus against raw sqlite3 inserts, measured in the same run.

    .venv/bin/python bench/bus_embedded.py [--publishers 64] [--events 25600] [--synchronous FULL]

1. publish: ``--publishers`` tasks each publish their share of ~300-byte events one per call, so
   every event is its own durable ``publish()``; group commit shares the fsyncs.
2. subscribe+ack: one group reads the whole backlog and acks every batch; ``close()`` flushes.
3. baseline: plain sqlite3 on a fresh file, same journal mode and ``synchronous``, inserting the
   same rows in one transaction per batch, with the batch size the bus actually reached
   (events / commits). Once into a bare log table, once into the bus's schema (log + id index +
   dedup table), which separates the cost of the schema from the cost of the machinery.

Not a test: it prints figures. Runs in well under a minute on a laptop.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gateway.bus.sqlite import _SCHEMA, SqliteBus
from sensors.event import Event

BARE_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, published_at REAL NOT NULL, body BLOB NOT NULL
);
"""


def make_events(count: int) -> list[Event]:
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        out.append(
            Event(
                id=f"{i:032x}",
                source="bench-webhook",
                subject="upload",
                type="webhook",
                time=now,
                data={
                    "bucket": "reads",
                    "key": f"run-42/sample-{i:06d}_R1.fastq.gz",
                    "size": 1234567,
                    "pad": "x" * 10,
                },
            )
        )
    return out


async def bench_publish(
    path: Path, events: list[Event], publishers: int, synchronous: str
) -> tuple[float, int]:
    bus = SqliteBus(path, synchronous=synchronous)
    await bus.start()
    shares = [events[p::publishers] for p in range(publishers)]

    async def publisher(share: list[Event]) -> None:
        for event in share:
            await bus.publish([event])

    commits_before = bus.db.commits
    started = time.perf_counter()
    await asyncio.gather(*(publisher(share) for share in shares))
    elapsed = time.perf_counter() - started
    commits = bus.db.commits - commits_before
    await bus.close()
    return elapsed, commits


async def bench_consume(path: Path, count: int, synchronous: str) -> float:
    bus = SqliteBus(path, synchronous=synchronous)
    await bus.start()
    received = 0
    started = time.perf_counter()
    subscription = bus.subscribe("bench", batch_size=512)
    async for batch in subscription:
        received += len(batch)
        await bus.ack("bench", batch)
        if received >= count:
            break
    await subscription.aclose()
    await bus.close()  # flushes the acks: part of the cost
    elapsed = time.perf_counter() - started
    if received != count:
        raise SystemExit(f"consumed {received} events, expected {count}")
    return elapsed


def bench_raw(
    path: Path, events: list[Event], batch: int, synchronous: str, schema: str, dedup: bool
) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.executescript(schema)
    rows = [(event.id, event.to_json()) for event in events]
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        now = time.time()
        chunk = rows[i : i + batch]
        conn.execute("BEGIN IMMEDIATE")
        if dedup:
            conn.executemany(
                "INSERT INTO dedup (id, published_at) VALUES (?, ?)", [(r[0], now) for r in chunk]
            )
        conn.executemany(
            "INSERT INTO events (id, published_at, body) VALUES (?, ?, ?)", [(r[0], now, r[1]) for r in chunk]
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishers", type=int, default=64)
    parser.add_argument("--events", type=int, default=25_600)
    parser.add_argument("--synchronous", default="FULL", choices=["OFF", "NORMAL", "FULL", "EXTRA"])
    parser.add_argument("--rounds", type=int, default=3, help="repeat each measurement, report the best")
    args = parser.parse_args()
    count: int = args.events

    events = make_events(count)
    size = sum(len(e.to_json()) for e in events) / len(events)
    print(f"{count} events of ~{size:.0f} bytes, {args.publishers} publishers, ", end="")
    print(f"synchronous={args.synchronous}, best of {args.rounds} rounds")
    pub_s = sub_s = bare_s = same_s = float("inf")
    commits = batch = 0
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        for r in range(args.rounds):
            root = Path(tmp) / f"round-{r}"
            root.mkdir()
            seconds, round_commits = asyncio.run(
                bench_publish(root / "bus.db", events, args.publishers, args.synchronous)
            )
            if seconds < pub_s:
                pub_s, commits = seconds, round_commits
            batch = max(1, round(count / commits))
            sub_s = min(sub_s, asyncio.run(bench_consume(root / "bus.db", count, args.synchronous)))
            bare_s = min(
                bare_s, bench_raw(root / "bare.db", events, batch, args.synchronous, BARE_SCHEMA, False)
            )
            same_s = min(same_s, bench_raw(root / "same.db", events, batch, args.synchronous, _SCHEMA, True))

    def rate(seconds: float) -> float:
        return count / seconds

    print(
        f"bus publish             {rate(pub_s):>9,.0f} events/s  ({commits} commits, ~{batch} events/commit)"
    )
    print(f"bus subscribe+ack       {rate(sub_s):>9,.0f} events/s")
    print(f"raw sqlite3, bare log   {rate(bare_s):>9,.0f} events/s  (one transaction per {batch} rows)")
    print(f"raw sqlite3, bus schema {rate(same_s):>9,.0f} events/s  (log + id index + dedup table)")
    print(f"bus publish / raw bare log:   {rate(pub_s) / rate(bare_s):.2f}")
    print(f"bus publish / raw bus schema: {rate(pub_s) / rate(same_s):.2f}")


if __name__ == "__main__":
    main()
