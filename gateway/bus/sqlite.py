"""The embedded durable bus: an append-only event log in one SQLite file (WAL mode).

Tables (schema version 1, kept in ``PRAGMA user_version``):

* ``events(seq, id, published_at, body)``: the log. ``seq`` is an AUTOINCREMENT key, so a seq is
  never reused even after retention deleted the newest rows; ``body`` is ``Event.to_json()``.
* ``dedup(id, published_at)``: ids published within ``dedup_window`` seconds. Publishing such an
  id again stores nothing and answers False. An older id may be stored again.
* ``groups(name, cursor)``: per consumer group, every ``seq <= cursor`` is acknowledged.
* ``acks(grp, seq)``: acknowledgements above the group's cursor (acks arrive out of order).

``publish`` returns after the commit that holds its events (group commit through
``gateway.sqlitedb``: concurrent publishers share one transaction and one fsync). ``ack`` only
updates memory; a background task persists acks every ``ack_flush_interval`` seconds and
``close()`` flushes the rest. An ack lost in a crash only causes a redelivery.

Retention: every ``cleanup_interval`` seconds, events that every known group has acknowledged
(``seq <= min(cursor)``) and that are older than ``retention`` seconds are deleted, and dedup
ids older than the window are forgotten. A group is known from its first ``subscribe``; before
any group exists nothing is deleted. A group that never comes back keeps its events: watch
``stats()``.

One process owns the file: subscriptions are woken by this process's publishes, not by other
processes writing the same file. Two live subscriptions of the same group each receive every
unacknowledged event (a fan-out, not a split): run one consumer per group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path

from gateway.bus.base import Bus, Delivery, OnRevoke, flush_loop
from gateway.bus.memory import AckCursor
from gateway.errors import BusError
from gateway.sqlitedb import Coalescer, GroupCommitDB
from sensors.event import EnvelopeError, Event

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    published_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_id ON events (id);
CREATE TABLE IF NOT EXISTS dedup (
    id TEXT PRIMARY KEY,
    published_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_by_time ON dedup (published_at);
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    cursor INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS acks (
    grp TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (grp, seq)
) WITHOUT ROWID;
"""

_CLEANUP_CHUNK = 5000


def _setup(path: Path) -> Callable[[sqlite3.Connection], None]:
    def setup(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise BusError(
                f"{path} holds bus schema version {version}, this triggergate reads version "
                f"{SCHEMA_VERSION}; use the matching triggergate version or move the file away"
            )
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    return setup


class SqliteBus(Bus):
    """The bus contract on one SQLite file. See the module docstring for the storage layout."""

    def __init__(
        self,
        path: Path,
        *,
        dedup_window: float = 86400.0,
        retention: float = 7 * 86400.0,
        synchronous: str = "FULL",
        ack_flush_interval: float = 0.005,
        cleanup_interval: float = 60.0,
        recent_limit: int = 65536,
    ) -> None:
        for name, value in (
            ("dedup_window", dedup_window),
            ("retention", retention),
            ("ack_flush_interval", ack_flush_interval),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {value}")
        if cleanup_interval <= 0:
            raise ValueError(f"cleanup_interval must be > 0 seconds, got {cleanup_interval}")
        self.path = Path(path)
        self._dedup_window = dedup_window
        self._retention = retention
        self._ack_flush_interval = ack_flush_interval
        self._cleanup_interval = cleanup_interval
        self.db = GroupCommitDB(self.path, error=BusError, setup=_setup(self.path), synchronous=synchronous)
        self._append: Coalescer[list[tuple[str, bytes]], tuple[list[int], int]] = Coalescer(
            self.db, _publish_job(dedup_window)
        )
        self._head = 0  # highest seq committed (or ever assigned)
        # Events this process committed recently, by seq: subscribers that keep up take them from
        # here instead of reading and decoding them again (bounded; older ones come from the file).
        self._recent: dict[int, Event] = {}
        self._recent_limit = recent_limit
        self._groups: dict[str, AckCursor] = {}
        self._loading: dict[str, asyncio.Future[AckCursor]] = {}
        self._unsaved: dict[str, set[int]] = {}  # group -> acks not yet written (above the cursor)
        self._dirty: set[str] = set()  # groups whose state changed since the last flush
        self._ack_signal = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._waiters: set[asyncio.Future[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise BusError(f"the bus on {self.path} is already started")
        await self.db.start()
        self._started = True
        self._head = await self.db.read(_read_head)
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name=f"bus-ack-flush:{self.path.name}"),
            asyncio.create_task(self._cleanup_loop(), name=f"bus-cleanup:{self.path.name}"),
        ]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._started:
            try:
                await self._flush_acks()
            finally:
                await self.db.close()

    async def healthy(self) -> bool:
        return self._started and not self._closed and self.db.healthy

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise BusError(f"cannot {action}: the bus on {self.path} is closed")
        if not self._started:
            raise BusError(f"cannot {action}: the bus on {self.path} is not started (call start() first)")

    # -- publish -----------------------------------------------------------------------------

    async def publish(self, events: Sequence[Event]) -> list[bool]:
        self._check_open("publish")
        if not events:
            return []
        seqs, head = await self._append([(event.id, event.to_json()) for event in events])
        recent = self._recent
        for seq, event in zip(seqs, events, strict=True):
            if seq:
                recent[seq] = event
        while len(recent) > self._recent_limit:
            del recent[next(iter(recent))]
        if head > self._head:
            self._head = head
            self._wake()
        return [seq != 0 for seq in seqs]

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    # -- subscribe ---------------------------------------------------------------------------

    async def subscribe(
        self, group: str, *, batch_size: int = 512, on_revoke: OnRevoke | None = None
    ) -> AsyncGenerator[list[Delivery], None]:
        # ``on_revoke`` is accepted and ignored: this bus never takes events away from a subscription.
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._check_open("subscribe")
        state = await self._group(group)
        position = state.cursor  # every seq <= position was read by this subscription
        loop = asyncio.get_running_loop()
        while not self._closed:
            head = self._head  # everything <= head was committed before the read below starts
            if head > position and position + 1 in self._recent:
                batch = self._take_recent(position, head, batch_size)
                position = batch[-1].seq
                batch = [d for d in batch if not state.is_done(d.seq)]
                if batch:
                    yield batch
                continue
            try:
                rows = await self.db.read(_read_after(position, batch_size, self.path))
            except BusError:
                if self._closed:
                    return
                raise
            if rows:
                # A seq missing between two committed seqs never appears later (seqs are assigned
                # in commit order): mark such gaps done so that the cursor can pass them.
                expected = position + 1
                for delivery in rows:
                    if delivery.seq != expected:
                        self._note(group, state.skip(expected, delivery.seq - 1))
                    expected = delivery.seq + 1
                position = rows[-1].seq
                # Committed, though its publisher may not have resumed yet to raise the head.
                self._head = max(self._head, position)
                batch = [d for d in rows if not state.is_done(d.seq)]
                if batch:
                    yield batch
                continue
            if head > position:  # deleted by retention: every group had acknowledged them
                self._note(group, state.skip(position + 1, head))
                position = head
            if self._head > position:
                continue
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                self._waiters.discard(waiter)

    def _take_recent(self, position: int, head: int, limit: int) -> list[Delivery]:
        """Consecutive recently committed events after ``position`` (at least one), from memory."""
        recent = self._recent
        batch: list[Delivery] = []
        seq = position + 1
        end = min(head, position + limit)
        while seq <= end:
            event = recent.get(seq)
            if event is None:
                break
            batch.append(Delivery(seq, event))
            seq += 1
        return batch

    async def _group(self, name: str) -> AckCursor:
        state = self._groups.get(name)
        if state is not None:
            return state
        loading = self._loading.get(name)
        if loading is None:
            loading = self._loading[name] = asyncio.ensure_future(self._load_group(name))
        try:
            return await asyncio.shield(loading)
        finally:
            if loading.done():
                self._loading.pop(name, None)

    async def _load_group(self, name: str) -> AckCursor:
        cursor, above = await self.db.write(_load_group_job(name))
        return self._groups.setdefault(name, AckCursor(cursor, above))

    # -- ack ---------------------------------------------------------------------------------

    async def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        self._check_open("ack")
        state = self._groups.get(group)
        if state is None:
            state = await self._group(group)
        changed = False
        for delivery in deliveries:
            if not 0 < delivery.seq <= self._head:
                raise ValueError(
                    f"cannot ack seq {delivery.seq} for group {group!r}: "
                    f"it was never published on {self.path}"
                )
            if state.ack(delivery.seq):
                self._unsaved.setdefault(group, set()).add(delivery.seq)
                changed = True
        self._note(group, changed)

    def _note(self, group: str, changed: bool) -> None:
        if changed:
            self._dirty.add(group)
            self._ack_signal.set()

    async def _flush_loop(self) -> None:
        await flush_loop(self._ack_signal, self._ack_flush_interval, self._flush_acks, f"to {self.path}")

    async def _flush_acks(self) -> None:
        """Write the cursors and out-of-order acks that changed since the last flush.

        Flushes are serialized: a caller that needs the acks on disk (``stats``, ``close``) waits
        for a flush the background loop already started.
        """
        async with self._flush_lock:
            await self._flush_acks_locked()

    async def _flush_acks_locked(self) -> None:
        if not self._dirty:
            return
        changes: list[tuple[str, int, list[int]]] = []
        taken: dict[str, set[int]] = {}
        for group in self._dirty:
            state = self._groups[group]
            unsaved = self._unsaved.pop(group, set())
            taken[group] = unsaved
            changes.append((group, state.cursor, [seq for seq in unsaved if seq > state.cursor]))
        self._dirty.clear()
        try:
            await self.db.write(_save_acks_job(changes))
        except BaseException:
            for group, unsaved in taken.items():  # keep them for the next flush
                self._unsaved.setdefault(group, set()).update(unsaved)
                self._dirty.add(group)
            raise

    # -- retention ---------------------------------------------------------------------------

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(self._cleanup_interval)
            try:
                await self.cleanup()
            except BusError as exc:
                log.warning("bus retention cleanup on %s failed (will retry): %s", self.path, exc)

    async def cleanup(self) -> int:
        """Delete acknowledged events older than ``retention`` and expired dedup ids.

        Runs in chunks so that publishers never wait behind one huge delete. Returns the number
        of events deleted.
        """
        self._check_open("clean up")
        deleted = 0
        while True:
            now = time.time()
            count = await self.db.write(_cleanup_job(now - self._retention, now - self._dedup_window))
            deleted += count
            if count < _CLEANUP_CHUNK or self._closed:
                return deleted

    # -- read helpers (lineage, operations) --------------------------------------------------

    async def get(self, event_id: str) -> Event | None:
        """The retained event with this id (the latest if it was stored more than once), or None."""
        self._check_open("read")
        body = await self.db.read(_get_job(event_id))
        return None if body is None else _decode(body, None, self.path)

    async def stats(self) -> dict[str, object]:
        """Counts for operators: retained events, the head seq, per group cursor and pending.

        Persists pending acknowledgements first, so the counts include them.
        """
        self._check_open("read stats")
        await self._flush_acks()
        events, groups = await self.db.read(_stats_job)
        return {
            "backend": "sqlite",
            "path": str(self.path),
            "events": events,
            "head": self._head,
            "groups": groups,
        }

    def pending_counts(self) -> dict[str, int]:
        """Per group this process has loaded, the events up to the head not acknowledged yet.

        From memory (no I/O, so it suits every metrics scrape): ``head - cursor - acks above the
        cursor``. Seqs are assigned without gaps, so this matches ``stats()`` until retention deletes
        the oldest acknowledged rows (which are below every cursor and never counted).
        """
        head = self._head
        return {name: max(0, head - state.cursor - len(state.above)) for name, state in self._groups.items()}


# -- jobs: run on the writer or reader thread; keep them free of asyncio ------------------------


def _read_head(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row[0]) if row else 0


_ID_CHUNK = 500  # ids per "IN (...)" lookup, well below SQLite's variable limit


def _publish_job(
    window: float,
) -> Callable[[sqlite3.Connection, list[list[tuple[str, bytes]]]], list[tuple[list[int], int]]]:
    """The append of many publish calls at once: dedup lookup, then two ``executemany``.

    Each call's rows are ``(event id, body)``; each result is ``(seqs, head seq)`` where ``seqs``
    holds, per row, the seq it was stored at, or 0 for a duplicate that was not stored. Seqs are
    consecutive in insertion order (one writer, one transaction, AUTOINCREMENT).
    """

    def job(conn: sqlite3.Connection, calls: list[list[tuple[str, bytes]]]) -> list[tuple[list[int], int]]:
        now = time.time()
        horizon = now - window
        wanted = list({event_id for rows in calls for event_id, _ in rows})
        seen: dict[str, float] = {}
        for i in range(0, len(wanted), _ID_CHUNK):
            chunk = wanted[i : i + _ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            seen.update(conn.execute(f"SELECT id, published_at FROM dedup WHERE id IN ({marks})", chunk))
        flags: list[list[int]] = []
        fresh: list[tuple[str, float, bytes]] = []
        for rows in calls:
            stored = []
            for event_id, body in rows:
                previous = seen.get(event_id)
                is_new = previous is None or previous < horizon
                if is_new:
                    seen[event_id] = now
                    fresh.append((event_id, now, body))
                stored.append(len(fresh) if is_new else 0)  # position in ``fresh``, 1-based
            flags.append(stored)
        head = 0
        if fresh:
            conn.executemany(
                "INSERT INTO dedup (id, published_at) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET published_at = excluded.published_at",
                [(event_id, at) for event_id, at, _ in fresh],
            )
            conn.executemany("INSERT INTO events (id, published_at, body) VALUES (?, ?, ?)", fresh)
            head = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        first = head - len(fresh)
        return [([first + pos if pos else 0 for pos in stored], head) for stored in flags]

    return job


def _decode(body: bytes, seq: int | None, path: Path) -> Event:
    try:
        return Event.from_json(body)
    except EnvelopeError as exc:
        where = f"seq {seq}" if seq is not None else "an event"
        raise BusError(f"{path}: {where} cannot be decoded ({exc}); the file may be damaged") from exc


def _read_after(position: int, limit: int, path: Path) -> Callable[[sqlite3.Connection], list[Delivery]]:
    def job(conn: sqlite3.Connection) -> list[Delivery]:
        rows = conn.execute(
            "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (position, limit)
        ).fetchall()
        return [Delivery(seq, _decode(body, seq, path)) for seq, body in rows]

    return job


def _load_group_job(name: str) -> Callable[[sqlite3.Connection], tuple[int, list[int]]]:
    def job(conn: sqlite3.Connection) -> tuple[int, list[int]]:
        # A new group starts before the oldest retained event (everything older was deleted).
        conn.execute(
            "INSERT OR IGNORE INTO groups (name, cursor) VALUES (?, COALESCE("
            "(SELECT min(seq) - 1 FROM events), "
            "(SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))",
            (name,),
        )
        cursor = int(conn.execute("SELECT cursor FROM groups WHERE name = ?", (name,)).fetchone()[0])
        rows = conn.execute("SELECT seq FROM acks WHERE grp = ? AND seq > ? ORDER BY seq", (name, cursor))
        above = [int(row[0]) for row in rows]
        return cursor, above

    return job


def _save_acks_job(changes: list[tuple[str, int, list[int]]]) -> Callable[[sqlite3.Connection], None]:
    def job(conn: sqlite3.Connection) -> None:
        for group, cursor, above in changes:
            conn.execute(
                "UPDATE groups SET cursor = ? WHERE name = ? AND cursor < ?", (cursor, group, cursor)
            )
            conn.execute("DELETE FROM acks WHERE grp = ? AND seq <= ?", (group, cursor))
            conn.executemany(
                "INSERT OR IGNORE INTO acks (grp, seq) VALUES (?, ?)", [(group, seq) for seq in above]
            )

    return job


def _cleanup_job(event_horizon: float, dedup_horizon: float) -> Callable[[sqlite3.Connection], int]:
    def job(conn: sqlite3.Connection) -> int:
        conn.execute(
            "DELETE FROM dedup WHERE id IN (SELECT id FROM dedup WHERE published_at < ? LIMIT ?)",
            (dedup_horizon, _CLEANUP_CHUNK),
        )
        done = conn.execute("SELECT min(cursor) FROM groups").fetchone()[0]
        if done is None:  # no group yet: nobody has acknowledged anything
            return 0
        cur = conn.execute(
            "DELETE FROM events WHERE seq IN "
            "(SELECT seq FROM events WHERE seq <= ? AND published_at < ? ORDER BY seq LIMIT ?)",
            (done, event_horizon, _CLEANUP_CHUNK),
        )
        return max(cur.rowcount, 0)

    return job


def _get_job(event_id: str) -> Callable[[sqlite3.Connection], bytes | None]:
    def job(conn: sqlite3.Connection) -> bytes | None:
        row = conn.execute(
            "SELECT body FROM events WHERE id = ? ORDER BY seq DESC LIMIT 1", (event_id,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    return job


def _stats_job(conn: sqlite3.Connection) -> tuple[int, dict[str, dict[str, int]]]:
    conn.execute("BEGIN")  # one snapshot for all counts
    try:
        events = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        groups: dict[str, dict[str, int]] = {}
        for name, cursor in conn.execute("SELECT name, cursor FROM groups ORDER BY name").fetchall():
            pending = conn.execute(
                "SELECT count(*) FROM events e WHERE e.seq > ? AND NOT EXISTS "
                "(SELECT 1 FROM acks a WHERE a.grp = ? AND a.seq = e.seq)",
                (cursor, name),
            ).fetchone()[0]
            groups[name] = {"cursor": int(cursor), "pending": int(pending)}
    finally:
        conn.execute("COMMIT")
    return events, groups
