"""A SQLite database with one writer thread that commits many writes at once (group commit).

``GroupCommitDB`` owns one write connection in WAL mode on one dedicated thread. Async callers
hand it *jobs*, callables that take the ``sqlite3.Connection``, and await the result. The thread
takes everything queued so far, runs all of it in ONE transaction and commits once: one fsync
for many writes. Each caller's future resolves only after that commit, so "returned" means
"durable" (with ``synchronous=FULL``, also across power loss).

Failure rules:

* a job that raises is rolled back alone (each job runs inside its own SAVEPOINT); the other jobs
  of its batch still commit. Its caller gets the exception.
* if the transaction itself fails (BEGIN, a SAVEPOINT statement or COMMIT: disk full, I/O error,
  a deferred constraint), it is rolled back and every job of the batch gets the error. The next
  batch starts clean. ``healthy`` is False from such a failure until a later commit succeeds.
* ``sqlite3.Error`` is translated into the caller-supplied error type (``BusError``,
  ``StoreError``, ...) with the cause chained; other exceptions raised by a job reach its caller
  unchanged.

Reads run on a separate read-only connection on its own thread (WAL lets readers work while the
writer commits); a read sees every write whose future has resolved.

``close()`` runs what is queued, commits it, then stops both threads. Cancelling an awaiting
caller does not withdraw its job: once submitted, a job runs.

``Coalescer`` goes one step further for hot paths: calls made while the writer is busy become
ONE job that handles all of their items together (one ``executemany`` instead of a few
statements per call), which is what makes many tiny publishes cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

from gateway.errors import GatewayError

T = TypeVar("T")
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    run: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


_STOP = object()

_Outcome = tuple[_Job, Any, BaseException | None]


class GroupCommitDB:
    """One SQLite file: a group-committing writer thread and a reader thread.

    ``error`` is the exception type callers see for database failures. ``setup`` runs once on the
    write connection (autocommit mode) before any job, e.g. to create the schema; it may raise
    ``error`` to refuse a file. ``synchronous`` is the SQLite ``PRAGMA synchronous`` level: FULL
    (the default) makes a commit durable across power loss, NORMAL only across a crash of this
    process. ``max_batch`` bounds how many jobs share one transaction.
    """

    def __init__(
        self,
        path: Path,
        *,
        error: type[GatewayError],
        setup: Callable[[sqlite3.Connection], None] | None = None,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        max_batch: int = 4096,
    ) -> None:
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous={synchronous!r} for {path} is not a SQLite synchronous level; "
                f"use one of {', '.join(SYNCHRONOUS_MODES)} (FULL survives power loss)"
            )
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.path = Path(path)
        self.synchronous = mode
        self._error = error
        self._setup = setup
        self._busy_ms = int(busy_timeout * 1000)
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._closed = False
        #: False after a failed transaction until the next successful commit.
        self.healthy = True
        #: Counters for tests, benchmarks and metrics: committed transactions, jobs in them,
        #: transactions that failed.
        self.commits = 0
        self.committed_jobs = 0
        self.failed_commits = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the file (creating it), apply ``setup`` and start the writer and reader threads."""
        if self._thread is not None:
            raise RuntimeError(f"{self.path} is already started")
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        self._stopped = loop.create_future()
        self._thread = threading.Thread(
            target=self._writer_main,
            args=(loop, started),
            name=f"sqlite-writer:{self.path.name}",
            daemon=True,
        )
        self._thread.start()
        try:
            await started
        except BaseException:
            self._closed = True
            await asyncio.shield(self._stopped)
            self._thread.join()
            raise
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-reader:{self.path.name}")

    async def close(self) -> None:
        """Run and commit what is queued, then stop both threads. Later writes and reads fail."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None and self._stopped is not None:
            self._queue.put(_STOP)
            await asyncio.shield(self._stopped)
            self._thread.join()
        if self._reader is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._reader, self._close_reader)
            self._reader.shutdown(wait=True)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- writes ------------------------------------------------------------------------------

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``job`` for the next group commit; the future resolves after that commit."""
        if self._closed or self._thread is None:
            state = "closed" if self._closed else "not started"
            raise self._error(f"cannot write to {self.path}: the database is {state}")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put(_Job(job, future))
        return future

    async def write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` in the writer's next transaction and return its result once committed."""
        return await self.submit(job)

    # -- reads -------------------------------------------------------------------------------

    async def read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` on the read-only connection in the reader thread."""
        if self._closed or self._reader is None:
            state = "closed" if self._closed else "not started"
            raise self._error(f"cannot read {self.path}: the database is {state}")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader, self._read_call, job)
        except sqlite3.Error as exc:
            raise self._translate(exc, "read failed") from exc
        except RuntimeError as exc:  # the executor was shut down by a concurrent close()
            if self._closed:
                raise self._error(f"cannot read {self.path}: the database is closed") from exc
            raise

    def _read_call(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if self._read_conn is None:
            self._read_conn = self._connect()
            self._read_conn.execute("PRAGMA query_only = ON")
        return job(self._read_conn)

    def _close_reader(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    # -- the writer thread -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        return conn

    def _writer_main(self, loop: asyncio.AbstractEventLoop, started: asyncio.Future[None]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
        except (sqlite3.Error, OSError) as exc:
            err = self._error(
                f"cannot open the SQLite database {self.path}: {exc}; "
                "check that the directory exists and is writable"
            )
            err.__cause__ = exc
            self._call(loop, _settle_one, started, None, err)
            self._call(loop, _settle_one, self._stopped, None, None)
            return
        try:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"journal_mode stayed {mode!r}; WAL is required")
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                if self._setup is not None:
                    self._setup(conn)
            except BaseException as exc:
                # ``started`` must settle whatever happens here, or start() waits forever.
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                self._call(loop, _settle_one, started, None, self._translate(exc, "setup failed"))
                return
            self._call(loop, _settle_one, started, None, None)
            self._serve(conn)
        finally:
            conn.close()
            self._call(loop, _settle_one, self._stopped, None, None)

    def _serve(self, conn: sqlite3.Connection) -> None:
        stop = False
        while not stop:
            batch: list[_Job] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stop = True
                    break
                assert isinstance(item, _Job)
                batch.append(item)
                if len(batch) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._run_batch(conn, batch)
        # close() refuses new jobs before queueing _STOP; anything that still slipped in fails.
        leftovers: list[_Outcome] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Job):
                err = self._error(f"cannot write to {self.path}: the database closed")
                leftovers.append((item, None, err))
        self._resolve(leftovers)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        outcomes: list[_Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                conn.execute("SAVEPOINT job")
                try:
                    result = job.run(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((job, None, exc))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((job, result, None))
            conn.execute("COMMIT")
        except Exception as exc:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback of a failed batch on %s failed", self.path)
            self.healthy = False
            self.failed_commits += 1
            log.error("commit of %d writes to %s failed: %s", len(batch), self.path, exc)
            err = self._translate(exc, f"could not commit {len(batch)} writes")
            outcomes = [(job, None, err) for job in batch]
        else:
            self.healthy = True
            self.commits += 1
            self.committed_jobs += len(batch)
        self._resolve(outcomes)

    def _translate(self, exc: BaseException, what: str) -> BaseException:
        if isinstance(exc, sqlite3.Error | OSError):
            err = self._error(
                f"{what} on {self.path}: {exc}; check free disk space and that the file is writable "
                "and not held by another program"
            )
            err.__cause__ = exc
            return err
        return exc

    def _resolve(self, outcomes: list[_Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for outcome in outcomes:
            job, _, exc = outcome
            if isinstance(exc, sqlite3.Error):
                outcome = (job, None, self._translate(exc, "write failed"))
            by_loop.setdefault(job.future.get_loop(), []).append(outcome)
        for loop, items in by_loop.items():
            self._call(loop, _settle_many, items)

    @staticmethod
    def _call(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


@dataclass(slots=True)
class _Round(Generic[ItemT, ResultT]):
    """The calls one coalesced job handles; filled in by the job on the writer thread."""

    items: list[tuple[ItemT, asyncio.Future[ResultT]]] | None = field(default=None)


class Coalescer(Generic[ItemT, ResultT]):
    """Merge concurrent calls into one writer job.

    ``run(conn, items)`` runs on the writer thread inside a group-commit transaction and returns
    one result per item, in order. ``await coalescer(item)`` returns that item's result after the
    commit. Items that arrive while a job is queued join it; the next item after the job started
    queues a new one. If ``run`` raises or the transaction fails, every call of that round gets
    the error (translated as for ``GroupCommitDB.write``).
    """

    def __init__(
        self, db: GroupCommitDB, run: Callable[[sqlite3.Connection, list[ItemT]], list[ResultT]]
    ) -> None:
        self._db = db
        self._run = run
        self._lock = threading.Lock()
        self._items: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._queued = False

    async def __call__(self, item: ItemT) -> ResultT:
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._items.append((item, future))
            submit = not self._queued
            self._queued = True
        if submit:
            round_: _Round[ItemT, ResultT] = _Round()
            try:
                job = self._db.submit(partial(self._job, round_))
            except BaseException as exc:  # closed: fail what is pending, this call included
                self._settle(round_, None, exc)
            else:
                job.add_done_callback(partial(self._done, round_))
        return await future

    def _take(self, round_: _Round[ItemT, ResultT]) -> list[tuple[ItemT, asyncio.Future[ResultT]]]:
        with self._lock:
            round_.items, self._items = self._items, []
            self._queued = False
        return round_.items

    def _job(self, round_: _Round[ItemT, ResultT], conn: sqlite3.Connection) -> list[ResultT]:
        items = self._take(round_)
        results = self._run(conn, [item for item, _ in items])
        if len(results) != len(items):
            raise RuntimeError(f"coalesced job returned {len(results)} results for {len(items)} items")
        return results

    def _done(self, round_: _Round[ItemT, ResultT], job: asyncio.Future[list[ResultT]]) -> None:
        if job.cancelled():
            self._settle(round_, None, asyncio.CancelledError())
        else:
            exc = job.exception()
            self._settle(round_, None if exc is not None else job.result(), exc)

    def _settle(
        self, round_: _Round[ItemT, ResultT], results: list[ResultT] | None, exc: BaseException | None
    ) -> None:
        # A job that never ran (its transaction failed first, or it was never queued) still
        # owns everything pending: no other job was queued meanwhile.
        items = round_.items if round_.items is not None else self._take(round_)
        for i, (_, future) in enumerate(items):
            if future.done():  # the caller was cancelled
                continue
            if exc is not None or results is None:
                future.set_exception(exc if exc is not None else RuntimeError("coalesced job lost"))
            else:
                future.set_result(results[i])


def _settle_one(future: asyncio.Future[Any] | None, result: Any, exc: BaseException | None) -> None:
    if future is None or future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _settle_many(outcomes: list[_Outcome]) -> None:
    for job, result, exc in outcomes:
        _settle_one(job.future, result, exc)
