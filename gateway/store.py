"""The state store: durable records of firings and dead letters, in one SQLite file.

A *firing* is one carried-out ``Fire`` decision, identified by its idempotency key (derived from
sensor, trigger and event ids). Before running a trigger the runtime asks ``firing_done(key)``;
after it, it records the outcome with ``record_firing`` (success) or ``dead_letter`` (retries
exhausted). Both count as done, so a replayed or redelivered firing is not carried out twice.
``release_dead_letter`` takes a dead letter back out (for ``replay``) and forgets its firing, so
the firing may run again.

Replay requests (``triggergate dlq replay``): ``request_replay`` records that a dead letter should be
fired again, with a copy of the letter, so that nothing is lost if the process that carries it out
stops half-way; the running gateway takes ``pending_replays``, releases the letter, re-fires it with
the same idempotency key and records the outcome with ``finish_replay``.

Every write returns only after its commit (group commit through ``gateway.sqlitedb``), so a
caller may acknowledge the bus right after. Records are idempotent on ``key``: the first one wins.

Tables (schema version 1, kept in ``PRAGMA user_version``): ``firings`` (one row per key),
``firing_events`` (event id -> firing key, the lineage index), ``dead_letters`` and
``replay_requests`` (added later; created when missing, so the version stays 1).

*Lineage events* (``lineage_events``, added later too): each firing keeps the events that made it,
one row per dependency (the CloudEvent dict as ``Event.to_dict()`` gives it), written in the same
transaction as the firing record (``record_firing(rec, events=...)``; ``dead_letter`` takes them
from the letter). So "which object key, sample or webhook body started this Workflow" is answered
from the store long after the bus dropped the acknowledged events. An event whose JSON exceeds
:data:`LINEAGE_EVENT_LIMIT` is kept truncated: its context attributes whole, ``data`` replaced by
the first bytes of the data's JSON text (``truncated`` set, ``size`` the full size). A file from
before this table gets it at open, filled from the dead letters (the only events it kept); the
schema version stays 1, so an older triggergate still opens the file (it ignores the table).

*Source dead letters* (``source_dead_letters``, also added later) are upstream messages a source
could not turn into events (an SQS message that is no object-store notification, say): the source
records the raw message and the reason with ``source_dead_letter`` and only then drops it upstream.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway.errors import StoreError
from gateway.sqlitedb import GroupCommitDB

SCHEMA_VERSION = 1

FIRING_STATUSES = ("succeeded", "dead-lettered")

#: The most bytes of CloudEvent JSON kept per event of a firing (larger ones are truncated).
LINEAGE_EVENT_LIMIT = 64 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS firings (
    key TEXT PRIMARY KEY,
    sensor TEXT NOT NULL,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    result TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    event_ids TEXT NOT NULL,
    dependencies TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS firings_by_finish ON firings (finished_at);
CREATE TABLE IF NOT EXISTS firing_events (
    event_id TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (event_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    sensor TEXT NOT NULL,
    trigger TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    events TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (created_at);
CREATE TABLE IF NOT EXISTS replay_requests (
    letter_id TEXT PRIMARY KEY,
    letter TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    requested_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS replay_requests_by_status ON replay_requests (status, requested_at);
CREATE TABLE IF NOT EXISTS source_dead_letters (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS source_dead_letters_by_time ON source_dead_letters (created_at);
"""

# Created (and filled from the dead letters) at open when missing: see _migrate_lineage_events.
_LINEAGE_EVENTS = """
CREATE TABLE lineage_events (
    key TEXT NOT NULL,
    dependency TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    size INTEGER NOT NULL,
    truncated INTEGER NOT NULL,
    PRIMARY KEY (key, dependency, event_id)
)
"""


@dataclass(frozen=True, slots=True)
class FiringRecord:
    """The outcome of one firing. ``result`` is a short summary without secrets (``HTTP 200``)."""

    key: str
    sensor: str
    trigger: str
    event_ids: list[str]
    dependencies: dict[str, str]  # dependency name -> event id
    status: str  # "succeeded" | "dead-lettered"
    attempts: int
    result: str
    started_at: float
    finished_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A firing that still failed after its retries, with the events that made it.

    ``events`` are CloudEvent dicts (``Event.to_dict()``). ``id`` is assigned by the store; leave
    it empty when creating one.
    """

    key: str
    sensor: str
    trigger: str
    reason: str
    attempts: int
    events: list[dict[str, Any]]
    created_at: float
    id: str = field(default="")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event of a firing, as kept for lineage.

    ``event`` is the CloudEvent dict (``Event.to_dict()``: id, source, subject, type, time, data and
    extensions). ``truncated`` when its JSON was larger than :data:`LINEAGE_EVENT_LIMIT`: then
    ``event["data"]`` is a string, the beginning of the data's JSON text. ``size`` is the size in
    bytes of the full event's JSON. ``dependency`` is empty for an event kept without its name.
    """

    key: str
    dependency: str
    event_id: str
    event: dict[str, Any]
    size: int
    truncated: bool


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """A request to fire a dead letter again. ``status`` is ``requested`` until the gateway carried it
    out, then the outcome's status (``succeeded``, ``already-done``, ``dead-lettered``) or ``failed``
    (it could not be carried out, ``outcome`` says why)."""

    letter: DeadLetter
    status: str
    outcome: str
    requested_at: float
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class SourceDeadLetter:
    """An upstream message a source could not turn into events, kept with the reason."""

    id: str
    source: str
    reason: str
    raw: bytes
    created_at: float


def _setup(path: Path) -> Callable[[sqlite3.Connection], None]:
    def setup(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise StoreError(
                f"{path} holds state-store schema version {version}, this triggergate reads version "
                f"{SCHEMA_VERSION}; use the matching triggergate version or move the file away"
            )
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        _migrate_lineage_events(conn)

    return setup


def _migrate_lineage_events(conn: sqlite3.Connection) -> None:
    """Create ``lineage_events`` when the file has none, filled with the events of the dead letters
    (a file from an older triggergate kept no other events). One transaction: a crash half-way
    leaves the file as it was; a concurrent opener (the CLI while the gateway starts) waits and
    then finds the table."""
    present = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lineage_events'"
    if conn.execute(present).fetchone() is not None:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute(present).fetchone() is None:
            conn.execute(_LINEAGE_EVENTS)
            for key, events in conn.execute("SELECT key, events FROM dead_letters").fetchall():
                docs = [event for event in orjson.loads(events) if isinstance(event, dict)]
                _insert_events(conn, key, _letter_event_rows(docs))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # BEGIN itself may have failed (busy): keep its error
            conn.execute("ROLLBACK")
        raise


class SqliteStore:
    """Firings and dead letters in one SQLite file (WAL, group commit, ``synchronous=FULL``)."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self._db = GroupCommitDB(
            self.path, error=StoreError, setup=_setup(self.path), synchronous=synchronous
        )

    async def start(self) -> None:
        await self._db.start()

    async def close(self) -> None:
        await self._db.close()

    async def healthy(self) -> bool:
        return not self._db.closed and self._db.healthy

    # -- writes ------------------------------------------------------------------------------

    async def record_firing(
        self, rec: FiringRecord, *, events: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        """Store ``rec`` durably, with ``events`` (dependency name -> CloudEvent dict as
        ``Event.to_dict()`` gives it) for lineage, in one transaction. If a firing with ``rec.key`` is
        already stored, keep that one (and its events)."""
        _check_firing(rec)
        rows = [_event_row(dep, doc) for dep, doc in (events or {}).items()]

        def insert(conn: sqlite3.Connection) -> None:
            if _insert_firing(conn, rec):
                _insert_events(conn, rec.key, rows)

        await self._db.write(insert)

    async def dead_letter(self, rec: DeadLetter, *, dependencies: dict[str, str] | None = None) -> str:
        """Store a dead letter and its "dead-lettered" firing in one transaction; return its id.

        The firing record takes its event ids from ``rec.events``, ``result`` from ``rec.reason``
        and ``dependencies`` (dependency name -> event id, for lineage) from the argument, or else
        from a ``dependency`` attribute the event dicts may carry.
        If the key already has a dead letter, nothing is stored and that letter's id is returned.
        A key whose firing already succeeded cannot be dead-lettered (``StoreError``, not retriable).
        """
        letter_id = rec.id or uuid.uuid4().hex
        if dependencies is None:
            dependencies = {
                str(event["dependency"]): str(event["id"])
                for event in rec.events
                if "dependency" in event and "id" in event
            }
        deps = dict(dependencies)
        rows = _letter_event_rows(rec.events)
        return await self._db.write(lambda conn: _insert_dead_letter(conn, rec, letter_id, deps, rows))

    async def release_dead_letter(self, letter_id: str) -> DeadLetter | None:
        """Remove a dead letter and its firing record (so the firing may run again); return it.

        Returns None if there is no such dead letter. For ``replay``: re-publish or re-fire its
        events after this returns.
        """
        return await self._db.write(lambda conn: _release_dead_letter(conn, letter_id))

    async def request_replay(self, letter_id: str, now: float) -> ReplayRequest | None:
        """Ask for the dead letter ``letter_id`` to be fired again; None if there is no such letter.

        A request that is still pending is kept as it is (asking twice fires once).
        """
        return await self._db.write(lambda conn: _request_replay(conn, letter_id, now))

    async def finish_replay(self, letter_id: str, status: str, outcome: str, now: float) -> None:
        """Record how the replay of ``letter_id`` ended."""

        def finish(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE replay_requests SET status = ?, outcome = ?, finished_at = ? WHERE letter_id = ?",
                (status, outcome, now, letter_id),
            )

        await self._db.write(finish)

    async def source_dead_letter(
        self,
        source: str,
        reason: str,
        raw: bytes | str,
        *,
        letter_id: str | None = None,
        now: float | None = None,
    ) -> str:
        """Record an upstream message that ``source`` could not turn into events; return its id.

        ``source`` names the source and entry (``s3 es/uploads``), ``reason`` says what was wrong,
        ``raw`` is the message as received. Give ``letter_id`` derived from the upstream identity
        (an SQS message id) so that a message redelivered before it was dropped upstream is kept
        once: a second record with the same id is ignored. Returns after the commit.
        """
        data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        ident = letter_id or uuid.uuid4().hex
        created = time.time() if now is None else now

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO source_dead_letters (id, source, reason, raw, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (ident, source, reason, data, created),
            )

        await self._db.write(insert)
        return ident

    # -- reads -------------------------------------------------------------------------------

    async def list_source_dead_letters(self, limit: int = 100) -> list[SourceDeadLetter]:
        """The most recent source dead letters, newest first."""
        _check_limit(limit)
        rows = await self._query(
            "SELECT id, source, reason, raw, created_at FROM source_dead_letters "
            "ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [SourceDeadLetter(str(r[0]), str(r[1]), str(r[2]), bytes(r[3]), float(r[4])) for r in rows]

    async def pending_replays(self) -> list[ReplayRequest]:
        """Replay requests not carried out yet, oldest first."""
        rows = await self._query(
            f"SELECT {_REPLAY_COLUMNS} FROM replay_requests WHERE status = 'requested' "
            "ORDER BY requested_at, rowid",
            (),
        )
        return [_replay(row) for row in rows]

    async def get_replay(self, letter_id: str) -> ReplayRequest | None:
        rows = await self._query(
            f"SELECT {_REPLAY_COLUMNS} FROM replay_requests WHERE letter_id = ?", (letter_id,)
        )
        return _replay(rows[0]) if rows else None

    async def firing_done(self, key: str) -> bool:
        """True if a firing with this key completed (succeeded or was dead-lettered)."""
        return bool(await self._query("SELECT 1 FROM firings WHERE key = ?", (key,)))

    async def get_firing(self, key: str) -> FiringRecord | None:
        rows = await self._query(f"SELECT {_FIRING_COLUMNS} FROM firings WHERE key = ?", (key,))
        return _firing(rows[0]) if rows else None

    async def firings_for_event(self, event_id: str) -> list[FiringRecord]:
        """Every recorded firing that used the event ``event_id``, oldest first (lineage)."""
        rows = await self._query(
            f"SELECT {_FIRING_COLUMNS} FROM firings WHERE key IN "
            "(SELECT key FROM firing_events WHERE event_id = ?) ORDER BY finished_at, rowid",
            (event_id,),
        )
        return [_firing(row) for row in rows]

    async def list_firings(self, limit: int = 100) -> list[FiringRecord]:
        """The most recently finished firings, newest first."""
        _check_limit(limit)
        rows = await self._query(
            f"SELECT {_FIRING_COLUMNS} FROM firings ORDER BY finished_at DESC, rowid DESC LIMIT ?", (limit,)
        )
        return [_firing(row) for row in rows]

    async def firing_events_kept(self, key: str) -> list[StoredEvent]:
        """The events kept with the firing ``key`` (lineage), in the order they were recorded; for a
        dead letter written without them (by an older triggergate on this file), its events."""

        def read(conn: sqlite3.Connection) -> list[StoredEvent]:
            rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM lineage_events WHERE key = ? ORDER BY rowid", (key,)
            ).fetchall()
            if rows:
                return [_stored_event(row) for row in rows]
            letter = conn.execute("SELECT events FROM dead_letters WHERE key = ?", (key,)).fetchone()
            if letter is None:
                return []
            docs = [event for event in orjson.loads(letter[0]) if isinstance(event, dict)]
            return [
                _stored_event((key, dep, event_id, text, size, truncated))
                for dep, event_id, text, size, truncated in _letter_event_rows(docs)
            ]

        return await self._db.read(read)

    async def event_kept(self, event_id: str) -> StoredEvent | None:
        """The event ``event_id`` as the latest firing that used it kept it, if any did."""
        rows = await self._query(
            f"SELECT {_EVENT_COLUMNS} FROM lineage_events WHERE event_id = ? AND key IN "
            "(SELECT key FROM firing_events WHERE event_id = ?) ORDER BY rowid DESC LIMIT 1",
            (event_id, event_id),
        )
        return _stored_event(rows[0]) if rows else None

    async def dead_letters_for_event(self, event_id: str) -> list[DeadLetter]:
        """The dead letters that hold the event ``event_id``, oldest first (lineage)."""
        rows = await self._query(
            f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE key IN "
            "(SELECT key FROM firing_events WHERE event_id = ?) ORDER BY created_at, rowid",
            (event_id,),
        )
        return [_letter(row) for row in rows]

    async def dead_letter_for_firing(self, key: str) -> DeadLetter | None:
        """The dead letter of the firing ``key``, if it has one."""
        rows = await self._query(f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE key = ?", (key,))
        return _letter(rows[0]) if rows else None

    async def dead_letter_counts(self) -> dict[str, int]:
        """How many dead letters each sensor has (sensors without any are absent)."""
        rows = await self._query("SELECT sensor, count(*) FROM dead_letters GROUP BY sensor", ())
        return {str(sensor): int(count) for sensor, count in rows}

    async def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The most recent dead letters (with ``id`` set), newest first."""
        _check_limit(limit)
        rows = await self._query(
            f"SELECT {_LETTER_COLUMNS} FROM dead_letters ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [_letter(row) for row in rows]

    async def get_dead_letter(self, letter_id: str) -> DeadLetter | None:
        rows = await self._query(f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE id = ?", (letter_id,))
        return _letter(rows[0]) if rows else None

    async def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._db.read(lambda conn: conn.execute(sql, params).fetchall())


# -- rows <-> records ----------------------------------------------------------------------------

_FIRING_COLUMNS = (
    "key, sensor, trigger, event_ids, dependencies, status, attempts, result, started_at, finished_at"
)
_LETTER_COLUMNS = "id, key, sensor, trigger, reason, attempts, events, created_at"
_REPLAY_COLUMNS = "letter, status, outcome, requested_at, finished_at"
_EVENT_COLUMNS = "key, dependency, event_id, event, size, truncated"

# (dependency, event id, event JSON as stored, full size, truncated)
_EventRow = tuple[str, str, str, int, bool]


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


def _check_firing(rec: FiringRecord) -> None:
    if rec.status not in FIRING_STATUSES:
        raise ValueError(
            f"firing {rec.key!r}: status {rec.status!r} is not one of {', '.join(FIRING_STATUSES)}"
        )


def _insert_firing(conn: sqlite3.Connection, rec: FiringRecord) -> bool:
    cur = conn.execute(
        f"INSERT OR IGNORE INTO firings ({_FIRING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rec.key,
            rec.sensor,
            rec.trigger,
            orjson.dumps(rec.event_ids).decode(),
            orjson.dumps(rec.dependencies).decode(),
            rec.status,
            rec.attempts,
            rec.result,
            rec.started_at,
            rec.finished_at,
        ),
    )
    if cur.rowcount != 1:
        return False
    lineage = {*rec.event_ids, *rec.dependencies.values()}
    conn.executemany(
        "INSERT OR IGNORE INTO firing_events (event_id, key) VALUES (?, ?)",
        [(event_id, rec.key) for event_id in sorted(lineage)],
    )
    return True


def _event_row(dependency: str, doc: Mapping[str, Any], limit: int = LINEAGE_EVENT_LIMIT) -> _EventRow:
    """The row that keeps one event: its JSON, cut to ``limit`` bytes by truncating ``data``."""
    full = orjson.dumps(dict(doc))
    event_id = str(doc.get("id", ""))
    if len(full) <= limit:
        return dependency, event_id, full.decode(), len(full), False
    rest = {name: value for name, value in doc.items() if name != "data"}
    data = orjson.dumps(doc.get("data")).decode()

    def cut(keep: int) -> bytes:
        return orjson.dumps({**rest, "data": data[:keep]})

    # The longest beginning of the data's JSON text that fits: escapes and UTF-8 make the stored
    # text longer than the characters kept, so search (each character takes at least one byte).
    low, high = 0, min(len(data), limit)
    while low < high:
        mid = (low + high + 1) // 2
        if len(cut(mid)) <= limit:
            low = mid
        else:
            high = mid - 1
    return dependency, event_id, cut(low).decode(), len(full), True


def _letter_event_rows(events: Iterable[Mapping[str, Any]]) -> list[_EventRow]:
    """The lineage rows of a dead letter's events (each may name its ``dependency``)."""
    rows = []
    for event in events:
        doc = {name: value for name, value in event.items() if name != "dependency"}
        rows.append(_event_row(str(event.get("dependency", "")), doc))
    return rows


def _insert_events(conn: sqlite3.Connection, key: str, rows: list[_EventRow]) -> None:
    conn.executemany(
        f"INSERT OR IGNORE INTO lineage_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        [(key, dep, event_id, text, size, int(truncated)) for dep, event_id, text, size, truncated in rows],
    )


def _insert_dead_letter(
    conn: sqlite3.Connection,
    rec: DeadLetter,
    letter_id: str,
    dependencies: dict[str, str],
    events: list[_EventRow],
) -> str:
    existing = conn.execute("SELECT id FROM dead_letters WHERE key = ?", (rec.key,)).fetchone()
    if existing is not None:
        return str(existing[0])
    status = conn.execute("SELECT status FROM firings WHERE key = ?", (rec.key,)).fetchone()
    if status is not None:
        err = StoreError(
            f"cannot dead-letter firing {rec.key!r} of {rec.sensor}/{rec.trigger}: "
            f"it is already recorded as {status[0]}"
        )
        err.retriable = False
        raise err
    event_ids = [str(event.get("id", "")) for event in rec.events]
    inserted = _insert_firing(
        conn,
        FiringRecord(
            key=rec.key,
            sensor=rec.sensor,
            trigger=rec.trigger,
            event_ids=event_ids,
            dependencies=dependencies,
            status="dead-lettered",
            attempts=rec.attempts,
            result=rec.reason,
            started_at=rec.created_at,
            finished_at=rec.created_at,
        ),
    )
    if inserted:
        _insert_events(conn, rec.key, events)
    conn.execute(
        f"INSERT INTO dead_letters ({_LETTER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            letter_id,
            rec.key,
            rec.sensor,
            rec.trigger,
            rec.reason,
            rec.attempts,
            orjson.dumps(rec.events).decode(),
            rec.created_at,
        ),
    )
    return letter_id


def _release_dead_letter(conn: sqlite3.Connection, letter_id: str) -> DeadLetter | None:
    row = conn.execute(f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE id = ?", (letter_id,)).fetchone()
    if row is None:
        return None
    letter = _letter(row)
    conn.execute("DELETE FROM dead_letters WHERE id = ?", (letter_id,))
    conn.execute("DELETE FROM firings WHERE key = ? AND status = 'dead-lettered'", (letter.key,))
    conn.execute("DELETE FROM firing_events WHERE key = ?", (letter.key,))
    conn.execute("DELETE FROM lineage_events WHERE key = ?", (letter.key,))
    return letter


def _firing(row: tuple[Any, ...]) -> FiringRecord:
    key, sensor, trigger, event_ids, dependencies, status, attempts, result, started, finished = row
    return FiringRecord(
        key=key,
        sensor=sensor,
        trigger=trigger,
        event_ids=list(orjson.loads(event_ids)),
        dependencies=dict(orjson.loads(dependencies)),
        status=status,
        attempts=int(attempts),
        result=result,
        started_at=float(started),
        finished_at=float(finished),
    )


def _stored_event(row: tuple[Any, ...]) -> StoredEvent:
    key, dependency, event_id, event, size, truncated = row
    return StoredEvent(
        key=key,
        dependency=dependency,
        event_id=event_id,
        event=dict(orjson.loads(event)),
        size=int(size),
        truncated=bool(truncated),
    )


def _letter(row: tuple[Any, ...]) -> DeadLetter:
    letter_id, key, sensor, trigger, reason, attempts, events, created = row
    return DeadLetter(
        id=letter_id,
        key=key,
        sensor=sensor,
        trigger=trigger,
        reason=reason,
        attempts=int(attempts),
        events=list(orjson.loads(events)),
        created_at=float(created),
    )


def _letter_json(letter: DeadLetter) -> str:
    return orjson.dumps(
        {
            "id": letter.id,
            "key": letter.key,
            "sensor": letter.sensor,
            "trigger": letter.trigger,
            "reason": letter.reason,
            "attempts": letter.attempts,
            "events": letter.events,
            "created_at": letter.created_at,
        }
    ).decode()


def _request_replay(conn: sqlite3.Connection, letter_id: str, now: float) -> ReplayRequest | None:
    pending = conn.execute(
        f"SELECT {_REPLAY_COLUMNS} FROM replay_requests WHERE letter_id = ? AND status = 'requested'",
        (letter_id,),
    ).fetchone()
    if pending is not None:
        return _replay(pending)
    row = conn.execute(f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE id = ?", (letter_id,)).fetchone()
    if row is None:
        return None
    letter = _letter(row)
    conn.execute(
        f"INSERT OR REPLACE INTO replay_requests ({_REPLAY_COLUMNS}, letter_id) VALUES (?, ?, ?, ?, ?, ?)",
        (_letter_json(letter), "requested", "", now, None, letter_id),
    )
    return ReplayRequest(letter=letter, status="requested", outcome="", requested_at=now)


def _replay(row: tuple[Any, ...]) -> ReplayRequest:
    letter, status, outcome, requested, finished = row
    doc = orjson.loads(letter)
    return ReplayRequest(
        letter=DeadLetter(
            id=doc["id"],
            key=doc["key"],
            sensor=doc["sensor"],
            trigger=doc["trigger"],
            reason=doc["reason"],
            attempts=int(doc["attempts"]),
            events=list(doc["events"]),
            created_at=float(doc["created_at"]),
        ),
        status=status,
        outcome=outcome,
        requested_at=float(requested),
        finished_at=None if finished is None else float(finished),
    )
