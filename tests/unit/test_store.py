"""SqliteStore: firings, dead letters and lineage on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import StoreError
from gateway.store import DeadLetter, FiringRecord, SqliteStore

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state.db")
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def firing(
    key: str, *, events: tuple[str, ...] = ("e1", "e2"), finished: float = 100.0, **kw: object
) -> FiringRecord:
    fields: dict[str, object] = {
        "key": key,
        "sensor": "s3-sensor",
        "trigger": "run-workflow",
        "event_ids": list(events),
        "dependencies": {f"dep{i}": e for i, e in enumerate(events)},
        "status": "succeeded",
        "attempts": 1,
        "result": "HTTP 200",
        "started_at": finished - 1,
        "finished_at": finished,
    }
    fields.update(kw)
    return FiringRecord(**fields)  # type: ignore[arg-type]


def letter(key: str, *, created: float = 200.0, events: tuple[str, ...] = ("e9",)) -> DeadLetter:
    return DeadLetter(
        key=key,
        sensor="s3-sensor",
        trigger="run-workflow",
        reason="HTTP 503 after 5 attempts",
        attempts=5,
        events=[{"id": e, "source": "minio", "type": "s3", "data": {"key": f"{e}.fastq"}} for e in events],
        created_at=created,
    )


async def test_a_recorded_firing_is_done_and_reads_back_equal(store: SqliteStore) -> None:
    rec = firing("k1")
    assert not await store.firing_done("k1")
    await store.record_firing(rec)
    assert await store.firing_done("k1")
    assert await store.get_firing("k1") == rec
    assert await store.list_firings() == [rec]


async def test_recording_the_same_key_twice_keeps_the_first(store: SqliteStore) -> None:
    first = firing("k1", result="HTTP 201")
    await store.record_firing(first)
    await store.record_firing(firing("k1", result="HTTP 200", events=("other",)))
    assert await store.get_firing("k1") == first
    assert await store.firings_for_event("other") == []


async def test_an_unknown_status_is_refused_with_the_allowed_ones(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="succeeded, dead-lettered"):
        await store.record_firing(firing("k1", status="done"))


async def test_lineage_finds_every_firing_of_an_event(store: SqliteStore) -> None:
    a = firing("a", events=("r1", "r2"), finished=10.0)
    b = firing("b", events=("r2", "r3"), finished=20.0)
    await store.record_firing(b)
    await store.record_firing(a)
    assert await store.firings_for_event("r2") == [a, b]  # oldest first
    assert await store.firings_for_event("r1") == [a]
    assert await store.firings_for_event("nope") == []


async def test_lineage_queries_use_the_index(tmp_path: Path, store: SqliteStore) -> None:
    await store.record_firing(firing("a"))
    conn = sqlite3.connect(tmp_path / "state.db")
    try:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT key FROM firings WHERE key IN "
            "(SELECT key FROM firing_events WHERE event_id = ?)",
            ("e1",),
        ).fetchall()
    finally:
        conn.close()
    steps = [str(row[-1]) for row in plan]
    assert not any(step.startswith("SCAN") for step in steps), steps  # no full table scan
    assert any(step.startswith("SEARCH firing_events") for step in steps), steps


async def test_list_firings_is_newest_first_and_limited(store: SqliteStore) -> None:
    for i in range(5):
        await store.record_firing(firing(f"k{i}", finished=float(i)))
    listed = await store.list_firings(limit=3)
    assert [r.key for r in listed] == ["k4", "k3", "k2"]
    with pytest.raises(ValueError, match="limit"):
        await store.list_firings(limit=0)


async def test_a_dead_letter_is_stored_with_its_firing(store: SqliteStore) -> None:
    letter_id = await store.dead_letter(letter("k1"), dependencies={"r1": "e9"})
    assert letter_id
    stored = await store.get_dead_letter(letter_id)
    assert stored is not None
    assert stored.id == letter_id
    assert stored.events == letter("k1").events
    assert stored.reason == "HTTP 503 after 5 attempts"
    assert await store.firing_done("k1")
    rec = await store.get_firing("k1")
    assert rec is not None
    assert (rec.status, rec.attempts, rec.event_ids, rec.dependencies) == (
        "dead-lettered",
        5,
        ["e9"],
        {"r1": "e9"},
    )
    assert [r.key for r in await store.firings_for_event("e9")] == ["k1"]
    assert await store.list_dead_letters() == [stored]


async def test_a_dead_letter_takes_dependencies_from_its_event_dicts(store: SqliteStore) -> None:
    events = [{"dependency": "r1", "id": "a"}, {"dependency": "r2", "id": "b"}, {"id": "c"}]
    rec = DeadLetter(
        key="k1", sensor="s", trigger="t", reason="boom", attempts=1, events=events, created_at=1.0
    )
    await store.dead_letter(rec)
    firing_rec = await store.get_firing("k1")
    assert firing_rec is not None
    assert firing_rec.dependencies == {"r1": "a", "r2": "b"}
    assert firing_rec.event_ids == ["a", "b", "c"]


async def test_dead_lettering_a_key_twice_returns_the_first_letter(store: SqliteStore) -> None:
    first = await store.dead_letter(letter("k1"))
    assert await store.dead_letter(letter("k1", created=300.0)) == first
    assert len(await store.list_dead_letters()) == 1


async def test_a_succeeded_firing_cannot_be_dead_lettered(store: SqliteStore) -> None:
    await store.record_firing(firing("k1"))
    with pytest.raises(StoreError, match="already recorded as succeeded") as info:
        await store.dead_letter(letter("k1"))
    assert not info.value.retriable
    assert await store.list_dead_letters() == []


async def test_dead_letters_list_newest_first(store: SqliteStore) -> None:
    ids = [await store.dead_letter(letter(f"k{i}", created=float(i))) for i in range(4)]
    listed = await store.list_dead_letters(limit=2)
    assert [d.id for d in listed] == [ids[3], ids[2]]
    assert await store.get_dead_letter("missing") is None


async def test_releasing_a_dead_letter_lets_the_firing_run_again(store: SqliteStore) -> None:
    letter_id = await store.dead_letter(letter("k1"))
    released = await store.release_dead_letter(letter_id)
    assert released is not None
    assert released.key == "k1"
    assert not await store.firing_done("k1")
    assert await store.get_dead_letter(letter_id) is None
    assert await store.firings_for_event("e9") == []
    assert await store.release_dead_letter(letter_id) is None
    await store.record_firing(firing("k1", events=("e9",)))  # the replayed firing succeeds
    assert await store.firing_done("k1")


async def test_records_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    await store.start()
    await asyncio.gather(*(store.record_firing(firing(f"k{i}", finished=float(i))) for i in range(50)))
    letter_id = await store.dead_letter(letter("dl"))
    await store.close()

    again = SqliteStore(path)
    await again.start()
    try:
        assert await again.firing_done("k49")
        assert len(await again.list_firings(limit=1000)) == 51
        assert await again.get_dead_letter(letter_id) is not None
    finally:
        await again.close()


async def test_a_write_is_committed_when_it_returns(tmp_path: Path, store: SqliteStore) -> None:
    await store.record_firing(firing("k1"))
    # A separate connection (another process would see the same) finds the committed row.
    conn = sqlite3.connect(tmp_path / "state.db")
    try:
        assert conn.execute("SELECT status FROM firings WHERE key = 'k1'").fetchone() == ("succeeded",)
    finally:
        conn.close()


async def test_a_store_file_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    store = SqliteStore(path)
    with pytest.raises(StoreError, match="schema version 99"):
        await store.start()


async def test_using_a_closed_store_raises_store_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    assert await store.healthy()
    await store.close()
    assert not await store.healthy()
    with pytest.raises(StoreError, match="closed"):
        await store.record_firing(firing("k1"))
    with pytest.raises(StoreError, match="closed"):
        await store.firing_done("k1")
