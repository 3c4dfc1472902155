"""GroupCommitDB: group commit, failure isolation, durability, reads, close (real SQLite files)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.errors import BusError, StoreError
from gateway.sqlitedb import Coalescer, GroupCommitDB

pytestmark = pytest.mark.timeout(30)


def schema(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS items (n INTEGER PRIMARY KEY, label TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS parents (id INTEGER PRIMARY KEY);
        CREATE TABLE IF NOT EXISTS children (
            id INTEGER PRIMARY KEY,
            parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED
        );
        PRAGMA foreign_keys = ON;
        """
    )


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[GroupCommitDB]:
    database = GroupCommitDB(tmp_path / "t.db", error=StoreError, setup=schema)
    await database.start()
    try:
        yield database
    finally:
        await database.close()


def insert(n: int, label: str = "x") -> Callable[[sqlite3.Connection], int]:
    def job(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO items (n, label) VALUES (?, ?)", (n, label))
        return n

    return job


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])


class Gate:
    """A job that holds the writer thread until ``open()``, so the next jobs queue up as one batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._release = threading.Event()

    def __call__(self, conn: sqlite3.Connection) -> None:
        self.entered.set()
        self._release.wait(10)

    def open(self) -> None:
        self._release.set()


async def hold_writer(db: GroupCommitDB) -> tuple[Gate, asyncio.Future[None]]:
    gate = Gate()
    held = db.submit(gate)
    await asyncio.to_thread(gate.entered.wait, 10)
    return gate, held


async def test_write_returns_the_job_result_and_reads_see_it(db: GroupCommitDB) -> None:
    assert await db.write(insert(1)) == 1
    assert await db.read(count) == 1


async def test_the_file_uses_wal_and_the_requested_synchronous_level(tmp_path: Path) -> None:
    for level, number in (("FULL", 2), ("normal", 1)):
        database = GroupCommitDB(tmp_path / f"{level}.db", error=StoreError, synchronous=level)
        await database.start()
        try:
            mode = await database.write(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
            sync = await database.write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        finally:
            await database.close()
        assert mode == "wal"
        assert sync == number


def test_an_unknown_synchronous_level_names_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OFF, NORMAL, FULL, EXTRA"):
        GroupCommitDB(tmp_path / "x.db", error=StoreError, synchronous="always")


async def test_concurrent_writers_share_commits(db: GroupCommitDB) -> None:
    before = db.commits
    results = await asyncio.gather(*(db.write(insert(n)) for n in range(500)))
    assert results == list(range(500))
    assert await db.read(count) == 500
    commits = db.commits - before
    # 500 concurrent callers must not cost 500 transactions (= 500 fsyncs).
    assert 1 <= commits <= 50, commits


async def test_queued_jobs_run_in_one_transaction(db: GroupCommitDB) -> None:
    gate, held = await hold_writer(db)
    waiting = [db.submit(insert(n)) for n in range(20)]
    commits = db.commits
    gate.open()
    await held
    assert await asyncio.gather(*waiting) == list(range(20))
    assert db.commits - commits == 2  # the gate's batch, then all 20 at once


async def test_a_failing_job_fails_alone(db: GroupCommitDB) -> None:
    gate, held = await hold_writer(db)
    ok_before = db.submit(insert(1))
    clash = db.submit(insert(1, "again"))  # primary key violation
    ok_after = db.submit(insert(2))

    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (n, label) VALUES (3, 'half-done')")
        raise KeyError("job bug")

    buggy = db.submit(boom)
    gate.open()
    await held
    assert await ok_before == 1
    assert await ok_after == 2
    with pytest.raises(StoreError, match="UNIQUE") as info:
        await clash
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
    with pytest.raises(KeyError):  # not a database error: reaches the caller unchanged
        await buggy
    rows = await db.read(lambda c: c.execute("SELECT n, label FROM items ORDER BY n").fetchall())
    assert rows == [(1, "x"), (2, "x")]  # the failing jobs left nothing behind
    assert db.healthy


async def test_a_failed_commit_fails_the_batch_and_the_next_batch_succeeds(db: GroupCommitDB) -> None:
    gate, held = await hold_writer(db)
    good = db.submit(insert(1))
    # A deferred foreign key is checked at COMMIT: the whole transaction fails there.
    orphan = db.submit(lambda c: c.execute("INSERT INTO children (id, parent) VALUES (1, 99)").rowcount)
    gate.open()
    await held
    for future in (good, orphan):
        with pytest.raises(StoreError, match="could not commit 2 writes") as info:
            await future
        assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
        assert info.value.retriable
    assert not db.healthy
    assert db.failed_commits == 1
    assert await db.read(count) == 0  # all or nothing
    assert await db.write(insert(5)) == 5
    assert db.healthy
    assert await db.read(count) == 1


async def test_the_caller_chooses_the_error_type(tmp_path: Path) -> None:
    database = GroupCommitDB(tmp_path / "b.db", error=BusError)
    await database.start()
    try:
        with pytest.raises(BusError, match="no such table"):
            await database.write(lambda c: c.execute("SELECT * FROM missing"))
        with pytest.raises(BusError, match="no such table"):
            await database.read(lambda c: c.execute("SELECT * FROM missing"))
    finally:
        await database.close()


async def test_reads_cannot_write(db: GroupCommitDB) -> None:
    with pytest.raises(StoreError, match=r"readonly|read-only|query_only"):
        await db.read(lambda c: c.execute("INSERT INTO items (n, label) VALUES (1, 'x')"))


async def test_reads_run_while_the_writer_is_busy(db: GroupCommitDB) -> None:
    await db.write(insert(1))
    gate, held = await hold_writer(db)
    try:
        assert await asyncio.wait_for(db.read(count), 5) == 1
    finally:
        gate.open()
        await held


async def test_close_commits_queued_work_then_refuses_more(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    database = GroupCommitDB(path, error=StoreError, setup=schema)
    await database.start()
    gate, held = await hold_writer(database)
    queued = [database.submit(insert(n)) for n in range(10)]
    closing = asyncio.create_task(database.close())
    await asyncio.sleep(0.05)
    gate.open()
    await closing
    await held
    assert await asyncio.gather(*queued) == list(range(10))
    with pytest.raises(StoreError, match="closed"):
        await database.write(insert(99))
    with pytest.raises(StoreError, match="closed"):
        await database.read(count)
    await database.close()  # idempotent

    reopened = GroupCommitDB(path, error=StoreError, setup=schema)
    await reopened.start()
    try:
        assert await reopened.read(count) == 10
    finally:
        await reopened.close()


async def test_writing_before_start_says_so(tmp_path: Path) -> None:
    database = GroupCommitDB(tmp_path / "n.db", error=StoreError)
    with pytest.raises(StoreError, match="not started"):
        await database.write(insert(1))


async def test_a_setup_failure_is_reported_by_start(tmp_path: Path) -> None:
    def refuse(conn: sqlite3.Connection) -> None:
        raise StoreError("wrong schema version; move the file away")

    database = GroupCommitDB(tmp_path / "s.db", error=StoreError, setup=refuse)
    with pytest.raises(StoreError, match="wrong schema version"):
        await database.start()
    assert database.closed


async def test_an_unopenable_file_is_reported_with_its_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    database = GroupCommitDB(blocker / "x.db", error=StoreError)
    with pytest.raises(StoreError, match="not-a-dir"):
        await database.start()


async def test_a_cancelled_caller_does_not_withdraw_its_job(db: GroupCommitDB) -> None:
    gate, held = await hold_writer(db)
    waiter = asyncio.ensure_future(db.write(insert(7)))
    await asyncio.sleep(0)
    waiter.cancel()
    gate.open()
    await held
    assert await db.write(insert(8)) == 8
    assert await db.read(count) == 2


# -- Coalescer -----------------------------------------------------------------------------------


def append_items(conn: sqlite3.Connection, items: list[int]) -> list[int]:
    conn.executemany("INSERT INTO items (n, label) VALUES (?, 'c')", [(n,) for n in items])
    return [n * 10 for n in items]


async def test_calls_made_while_the_writer_is_busy_become_one_job(db: GroupCommitDB) -> None:
    calls: list[list[int]] = []

    def run(conn: sqlite3.Connection, items: list[int]) -> list[int]:
        calls.append(items)
        return append_items(conn, items)

    coalescer: Coalescer[int, int] = Coalescer(db, run)
    gate, held = await hold_writer(db)
    pending = [asyncio.ensure_future(coalescer(n)) for n in range(30)]
    await asyncio.sleep(0.05)
    jobs_before = db.committed_jobs
    gate.open()
    await held
    assert await asyncio.gather(*pending) == [n * 10 for n in range(30)]
    assert calls == [list(range(30))]
    assert db.committed_jobs - jobs_before == 2  # the gate, then one job for all 30 calls
    assert await db.read(count) == 30
    assert await coalescer(99) == 990  # the next call queues a new job
    assert calls[-1] == [99]


async def test_a_failing_coalesced_job_fails_every_call_of_its_round_only(db: GroupCommitDB) -> None:
    def run(conn: sqlite3.Connection, items: list[int]) -> list[int]:
        if 13 in items:
            raise sqlite3.IntegrityError("unlucky")
        return append_items(conn, items)

    coalescer: Coalescer[int, int] = Coalescer(db, run)
    gate, held = await hold_writer(db)
    doomed = [asyncio.ensure_future(coalescer(n)) for n in (12, 13)]
    await asyncio.sleep(0.05)
    gate.open()
    await held
    for future in doomed:
        with pytest.raises(StoreError, match="unlucky"):
            await future
    assert await coalescer(14) == 140
    assert await db.read(count) == 1


async def test_a_coalescer_on_a_closed_database_raises_the_error_type(tmp_path: Path) -> None:
    database = GroupCommitDB(tmp_path / "x.db", error=BusError, setup=schema)
    await database.start()
    coalescer: Coalescer[int, int] = Coalescer(database, append_items)
    assert await coalescer(1) == 10
    await database.close()
    with pytest.raises(BusError, match="closed"):
        await coalescer(2)
