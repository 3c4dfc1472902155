"""What goes beyond the shared contract: ack bookkeeping, SQLite retention, group commit, stats."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.bus import create_bus
from gateway.bus.base import Bus, Delivery
from gateway.bus.memory import AckCursor, MemoryBus
from gateway.bus.sqlite import SqliteBus
from gateway.errors import BusError
from sensors.event import Event

pytestmark = pytest.mark.timeout(30)


def event(event_id: str) -> Event:
    return Event(
        id=event_id,
        source="specifics",
        subject="x",
        type="webhook",
        time=datetime(2024, 1, 1, tzinfo=UTC),
        data={},
    )


def events(prefix: str, count: int) -> list[Event]:
    return [event(f"{prefix}-{i}") for i in range(count)]


async def drain(bus: Bus, group: str, idle: float = 0.3) -> list[Delivery]:
    out: list[Delivery] = []
    subscription = bus.subscribe(group)
    try:
        while True:
            try:
                async with asyncio.timeout(idle):
                    out.extend(await anext(subscription))
            except (TimeoutError, StopAsyncIteration):
                return out
    finally:
        close = getattr(subscription, "aclose", None)
        if close is not None:
            await close()


@pytest.fixture
async def sqlite_bus(tmp_path: Path) -> AsyncIterator[SqliteBus]:
    bus = SqliteBus(tmp_path / "bus.db", retention=0.0)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


def raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# -- AckCursor -----------------------------------------------------------------------------------


def test_ack_cursor_advances_over_contiguous_acks_only() -> None:
    acks = AckCursor()
    assert acks.ack(3)
    assert acks.ack(1)
    assert (acks.cursor, acks.above) == (1, {3})
    assert not acks.is_done(2)
    assert acks.ack(2)
    assert (acks.cursor, acks.above) == (3, set())
    assert not acks.ack(2)  # already done: no change
    assert acks.is_done(1)
    assert acks.is_done(3)
    assert not acks.is_done(4)


def test_ack_cursor_skips_ranges_that_will_never_be_delivered() -> None:
    acks = AckCursor(cursor=0, above=[7])
    assert acks.skip(1, 5)
    assert (acks.cursor, acks.above) == (5, {7})
    assert acks.skip(6, 6)
    assert (acks.cursor, acks.above) == (7, set())
    assert not acks.skip(2, 4)
    assert acks.skip(10, 11)  # not adjacent: kept above the cursor
    assert (acks.cursor, acks.above) == (7, {10, 11})


def test_ack_cursor_restored_from_storage_drops_stale_acks() -> None:
    acks = AckCursor(cursor=5, above=[3, 6, 8])
    assert (acks.cursor, acks.above) == (6, {8})


# -- registry ------------------------------------------------------------------------------------


def test_the_registry_builds_both_backends_and_names_them_on_a_miss(tmp_path: Path) -> None:
    assert isinstance(create_bus("memory", tmp_path), MemoryBus)
    sqlite_bus = create_bus("sqlite", tmp_path, synchronous="NORMAL")
    assert isinstance(sqlite_bus, SqliteBus)
    assert sqlite_bus.path == tmp_path / "bus.db"
    with pytest.raises(ValueError, match="memory, sqlite"):
        create_bus("nats", tmp_path)


# -- SqliteBus -----------------------------------------------------------------------------------


async def test_concurrent_publishes_share_fsyncs(sqlite_bus: SqliteBus) -> None:
    before = sqlite_bus.db.commits
    await asyncio.gather(*(sqlite_bus.publish([event(f"c{i}")]) for i in range(256)))
    commits = sqlite_bus.db.commits - before
    assert commits <= 32, f"256 single-event publishes took {commits} commits"


async def test_acks_are_persisted_without_waiting_for_close(sqlite_bus: SqliteBus) -> None:
    await sqlite_bus.publish(events("e", 4))
    got = await drain(sqlite_bus, "g")
    await sqlite_bus.ack("g", [got[0], got[1], got[3]])
    rows: list[tuple[object, ...]] = []
    for _ in range(100):
        await asyncio.sleep(0.01)
        rows = raw(sqlite_bus.path, "SELECT cursor FROM groups WHERE name = 'g'")
        if rows == [(got[1].seq,)]:
            break
    assert rows == [(got[1].seq,)]
    assert raw(sqlite_bus.path, "SELECT seq FROM acks WHERE grp = 'g'") == [(got[3].seq,)]


async def test_retention_deletes_only_what_every_group_acknowledged(sqlite_bus: SqliteBus) -> None:
    await sqlite_bus.publish(events("e", 6))
    assert await sqlite_bus.cleanup() == 0  # no group yet: nothing is acknowledged
    a = await drain(sqlite_bus, "a")
    b = await drain(sqlite_bus, "b")
    await sqlite_bus.ack("a", a)
    await sqlite_bus.ack("b", b[:2])
    await sqlite_bus.stats()  # persists the acks
    assert await sqlite_bus.cleanup() == 2
    assert [d.event.id for d in await drain(sqlite_bus, "b")] == ["e-2", "e-3", "e-4", "e-5"]
    assert await sqlite_bus.get("e-0") is None
    assert await sqlite_bus.get("e-2") == event("e-2")


async def test_retention_keeps_acknowledged_events_younger_than_retention(tmp_path: Path) -> None:
    bus = SqliteBus(tmp_path / "bus.db", retention=3600.0)
    await bus.start()
    try:
        await bus.publish(events("e", 3))
        await bus.ack("g", await drain(bus, "g"))
        await bus.stats()
        assert await bus.cleanup() == 0
    finally:
        await bus.close()


async def test_a_group_created_after_retention_starts_at_the_oldest_retained_event(
    sqlite_bus: SqliteBus,
) -> None:
    await sqlite_bus.publish(events("e", 5))
    await sqlite_bus.ack("a", (await drain(sqlite_bus, "a"))[:3])
    await sqlite_bus.stats()
    assert await sqlite_bus.cleanup() == 3
    assert [d.event.id for d in await drain(sqlite_bus, "late")] == ["e-3", "e-4"]


async def test_deleting_everything_never_reuses_a_seq(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    bus = SqliteBus(path, retention=0.0)
    await bus.start()
    await bus.publish(events("e", 3))
    await bus.ack("g", await drain(bus, "g"))
    await bus.stats()
    assert await bus.cleanup() == 3
    bus2 = SqliteBus(path)
    await bus.close()
    await bus2.start()
    try:
        await bus2.publish([event("next")])
        got = await drain(bus2, "g")
        assert [(d.seq, d.event.id) for d in got] == [(4, "next")]
    finally:
        await bus2.close()


async def test_expired_dedup_ids_are_forgotten(tmp_path: Path) -> None:
    bus = SqliteBus(tmp_path / "bus.db", dedup_window=0.05)
    await bus.start()
    try:
        await bus.publish(events("e", 3))
        await asyncio.sleep(0.1)
        await bus.cleanup()
        assert raw(bus.path, "SELECT count(*) FROM dedup") == [(0,)]
        assert raw(bus.path, "SELECT count(*) FROM events") == [(3,)]  # no group acked them
    finally:
        await bus.close()


async def test_a_hole_in_the_seqs_does_not_stop_the_cursor(sqlite_bus: SqliteBus) -> None:
    await sqlite_bus.publish(events("e", 5))
    raw(sqlite_bus.path, "DELETE FROM events WHERE id = 'e-2'")  # as if that seq never committed
    sqlite_bus._recent.clear()  # deliver from the file (where the hole is), not from memory
    got = await drain(sqlite_bus, "g")
    assert [d.event.id for d in got] == ["e-0", "e-1", "e-3", "e-4"]
    await sqlite_bus.ack("g", got)
    stats = await sqlite_bus.stats()
    assert stats["groups"] == {"g": {"cursor": 5, "pending": 0}}


async def test_stats_count_events_and_pending_per_group(sqlite_bus: SqliteBus) -> None:
    await sqlite_bus.publish(events("e", 4))
    got = await drain(sqlite_bus, "a")
    await sqlite_bus.ack("a", [got[1]])
    await drain(sqlite_bus, "b")
    stats = await sqlite_bus.stats()
    assert stats["events"] == 4
    assert stats["head"] == 4
    assert stats["groups"] == {"a": {"cursor": 0, "pending": 3}, "b": {"cursor": 0, "pending": 4}}


async def test_acking_a_seq_that_was_never_published_is_refused(sqlite_bus: SqliteBus) -> None:
    await sqlite_bus.publish([event("only")])
    with pytest.raises(ValueError, match="never published"):
        await sqlite_bus.ack("g", [Delivery(99, event("ghost"))])


async def test_a_bus_file_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    raw(path, "PRAGMA user_version = 7")
    bus = SqliteBus(path)
    with pytest.raises(BusError, match="schema version 7"):
        await bus.start()
    assert not await bus.healthy()


async def test_using_a_bus_before_start_says_what_to_do(tmp_path: Path) -> None:
    bus = SqliteBus(tmp_path / "bus.db")
    with pytest.raises(BusError, match="call start"):
        await bus.publish([event("x")])
    await bus.close()


def test_invalid_settings_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dedup_window"):
        SqliteBus(tmp_path / "bus.db", dedup_window=-1)
    with pytest.raises(ValueError, match="synchronous"):
        SqliteBus(tmp_path / "bus.db", synchronous="sometimes")


# -- MemoryBus -----------------------------------------------------------------------------------


async def test_the_memory_bus_drops_events_every_group_acknowledged() -> None:
    bus = MemoryBus(retention=0.0)
    await bus.start()
    try:
        await bus.publish(events("e", 3))
        got = await drain(bus, "a")
        await bus.ack("a", got[:2])
        assert (await bus.stats())["events"] == 3  # dropped in chunks or when all are done
        await bus.ack("a", got[2:])
        stats = await bus.stats()
        assert stats["events"] == 0
        assert stats["groups"] == {"a": {"cursor": 3, "pending": 0}}
        await bus.publish([event("next")])
        assert [(d.seq, d.event.id) for d in await drain(bus, "a")] == [(4, "next")]
        assert [d.event.id for d in await drain(bus, "late")] == ["next"]
    finally:
        await bus.close()


async def test_subscribers_that_keep_up_get_events_from_memory(sqlite_bus: SqliteBus) -> None:
    assert await drain(sqlite_bus, "g") == []  # the group exists before the events
    await sqlite_bus.publish(events("m", 3))
    raw(sqlite_bus.path, "DELETE FROM events")  # the file no longer has them: memory must serve them
    got = await drain(sqlite_bus, "g")
    assert [d.event.id for d in got] == ["m-0", "m-1", "m-2"]


async def test_memory_of_recent_events_is_bounded(tmp_path: Path) -> None:
    bus = SqliteBus(tmp_path / "bus.db", recent_limit=2)
    await bus.start()
    try:
        await bus.publish(events("b", 5))
        assert sorted(bus._recent) == [4, 5]
        got = await drain(bus, "g")  # 1-3 from the file, 4-5 from memory
        assert [d.event.id for d in got] == [f"b-{i}" for i in range(5)]
    finally:
        await bus.close()
