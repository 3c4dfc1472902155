"""A small HTTP/1.1 load generator on raw asyncio connections, run as its own process.

It exists so that the benchmark needs nothing but Python: requests are pre-encoded bytes, each
connection is kept alive and carries one request at a time, and a response is parsed only as far
as its status line and ``Content-Length`` (the servers measured here send no chunked bodies).
uvloop is used when it is installed.

Two modes, each printing one JSON object on stdout:

``closed``
    ``--connections`` connections send the same request back to back for ``--warmup`` +
    ``--duration`` seconds. ``rate`` and ``latency`` count the 200 responses that complete inside
    the measured window; ``statuses`` counts every response, warm-up and drain included, so that it
    can be compared with what the server stored. When the time is up every connection waits (up
    to ``--drain-timeout``) for its last response before closing. ``cpu`` is the CPU use (in
    cores) of this process, of ``--server-pid`` and of the whole machine over the window.

``open``
    an open-loop, fixed-rate sender: request ``i`` is due at ``start + i / rate`` and is sent at
    that time whatever happened to the earlier ones (no waiting for responses), on the first idle
    connection of a pool of ``--connections`` (when every connection is waiting for an answer, the
    request waits for one: ``send_lag`` shows it). Each request body carries its own id
    (``e2e-000000042``). The output holds ``start`` (a ``time.monotonic()`` value: on Linux that is
    CLOCK_MONOTONIC, the same clock in every process of the machine, so the caller can compare it
    with its own readings), ``ok_ids`` (the indexes answered 200) and timings relative to the due
    time; after the last due time it waits up to ``--drain-timeout`` for answers, then gives up.

In both modes ``unknown`` counts requests that were written but never answered (the connection
failed, or the drain timeout ended the run): the server may or may not have acted on them.

``python bench/loadgen.py closed --port 8000 --path /ingest --connections 64 --duration 10``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

HOST = "127.0.0.1"
_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CONNECTION_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
ID_WIDTH = 9
MAX_CONSECUTIVE_FAILURES = 5


# --------------------------------------------------------------------------- payload


def s3_record_payload(event_id: str) -> bytes:
    """A realistic ~1 KB webhook body: one AWS S3 ``ObjectCreated:Put`` notification record.

    ``event_id`` is put at the top level as ``id`` (the end-to-end test maps ``body.id`` into the
    trigger's request). Ids of the same length give bodies of the same length.
    """
    run = "runs/2024-05-17/A00123_0456_BHXYZDSXY5"
    key = f"{run}/{event_id}/Sample_NA12878/NA12878_S1_L001_R1_001.fastq.gz"
    document = {
        "id": event_id,
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "eu-west-1",
                "eventTime": "2024-05-17T09:41:07.512Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "203.0.113.17"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "sequencer-uploads-to-triggergate",
                    "bucket": {
                        "name": "genomics-raw-eu-west-1",
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": "arn:aws:s3:::genomics-raw-eu-west-1",
                    },
                    "object": {
                        "key": key,
                        "size": 4821337591,
                        "eTag": "d41d8cd98f00b204e9800998ecf8427e-577",
                        "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
                "glacierEventData": None,
            }
        ],
    }
    return orjson.dumps(document)


def e2e_event_id(index: int) -> str:
    """The id carried by the ``index``-th request of the open-loop mode (fixed width)."""
    return f"e2e-{index:0{ID_WIDTH}d}"


def post_request(port: int, path: str, body: bytes) -> bytes:
    """A complete keep-alive ``POST`` request with a JSON body, ready to write."""
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\n"
        "User-Agent: triggergate-bench/1\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


# --------------------------------------------------------------------------- connection


class ResponseError(ConnectionError):
    """The connection broke, or the server answered something this client cannot parse.

    ``written`` tells whether the request had been written: the server may then have acted on it.
    """

    def __init__(self, message: str, *, written: bool = True) -> None:
        super().__init__(message)
        self.written = written


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self.closed = False
        self.must_close = False

    @classmethod
    async def open(cls, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, HOST, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        end = self._buffer.find(_HEAD_END)
        if end < 0:
            return
        head = bytes(self._buffer[: end + 2])
        match = _CONTENT_LENGTH.search(head)
        try:
            status = int(head[9:12])
        except ValueError:
            waiter.set_exception(ResponseError(f"not an HTTP response: {head[:40]!r}"))
            return
        if match is None:
            waiter.set_exception(ResponseError(f"response without Content-Length: {head[:200]!r}"))
            return
        total = end + 4 + int(match.group(1))
        if len(self._buffer) < total:
            return
        del self._buffer[:total]
        self.must_close = _CONNECTION_CLOSE.search(head) is not None
        self._waiter = None
        waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ResponseError(f"connection closed by the server: {exc or 'EOF'}"))

    async def request(self, data: bytes) -> int:
        """Writes ``data`` and returns the status of the response."""
        if self.closed or self.transport is None:
            raise ResponseError("connection is closed", written=False)
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self._waiter

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


async def _reconnect(conn: Connection, port: int) -> Connection:
    conn.close()
    return await Connection.open(port)


# --------------------------------------------------------------------------- cpu accounting


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PF_KTHREAD = 0x00200000


@dataclass(frozen=True)
class MachineSample:
    """CPU seconds of the whole machine at one moment, from /proc (see :func:`machine_sample`)."""

    busy: float  # every CPU state but idle and iowait, all cores, all processes
    interrupts: float  # irq + softirq (the network stack runs in softirqs)
    kthreads: dict[int, float]  # pid -> CPU seconds of each kernel thread (journal, block I/O workers)

    def between(self, later: MachineSample) -> tuple[float, float]:
        """(busy, kernel) CPU seconds from this sample to ``later``; kernel threads that came or
        went in between are left out (their counters do not span the interval)."""
        kthreads = sum(t - self.kthreads[pid] for pid, t in later.kthreads.items() if pid in self.kthreads)
        return later.busy - self.busy, later.interrupts - self.interrupts + kthreads


def machine_sample() -> MachineSample | None:
    """The machine's CPU counters now; None where /proc is missing."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    kthreads: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as proc_stat:
                text = proc_stat.read()
        except OSError:
            continue
        after = text[text.rindex(")") + 2 :].split()
        if int(after[6]) & PF_KTHREAD:
            kthreads[int(entry.name)] = (int(after[11]) + int(after[12])) / ticks
    return MachineSample(
        busy=(user + nice + system + irq + softirq + steal) / ticks,
        interrupts=(irq + softirq) / ticks,
        kthreads=kthreads,
    )


def _rate(before: float | None, after: float | None, wall: float) -> float | None:
    return None if before is None or after is None else (after - before) / wall


class CpuWindow:
    """CPU use between :meth:`begin` and :meth:`end`, in cores (1.0 = one core busy all the time).

    ``self``: this process; ``server``: process ``server_pid``; ``machine``: every process together;
    ``kernel``: the part of ``machine`` the kernel spent on its own (see :class:`MachineSample`).
    """

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self._start: tuple[float, float, float | None, MachineSample | None] | None = None
        self.result: dict[str, float | None] = {"self": None, "server": None, "machine": None, "kernel": None}

    def _read(self) -> tuple[float, float, float | None, MachineSample | None]:
        server = process_cpu_seconds(self.server_pid) if self.server_pid else None
        return time.monotonic(), time.process_time(), server, machine_sample()

    def begin(self) -> None:
        self._start = self._read()

    def end(self) -> None:
        if self._start is None:
            return
        wall0, own0, server0, machine0 = self._start
        wall1, own1, server1, machine1 = self._read()
        wall = max(wall1 - wall0, 1e-9)
        self.result = {"self": (own1 - own0) / wall, "server": _rate(server0, server1, wall)}
        if machine0 is not None and machine1 is not None:
            busy, kernel = machine0.between(machine1)
            self.result["machine"] = busy / wall
            self.result["kernel"] = kernel / wall


# --------------------------------------------------------------------------- closed loop


async def closed_loop(
    port: int, request: bytes, *, connections: int, warmup: float, duration: float,
    server_pid: int | None = None, drain_timeout: float = 30.0,
) -> dict[str, Any]:
    """``connections`` keep-alive connections sending ``request`` back to back (see module doc)."""
    conns = await asyncio.gather(*(Connection.open(port) for _ in range(connections)))
    statuses: Counter[int] = Counter()
    window_statuses: Counter[int] = Counter()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    unknown = 0  # written, then no response: the connection failed or the run ended first
    cpu = CpuWindow(server_pid)
    start = time.monotonic()
    measure_from = start + warmup
    end = measure_from + duration

    async def cpu_marks() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        cpu.begin()
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        cpu.end()

    async def worker(conn: Connection) -> None:
        nonlocal unknown
        failures = 0
        try:
            while True:
                t0 = time.monotonic()
                if t0 >= end:
                    return
                try:
                    status = await conn.request(request)
                except ResponseError as exc:
                    errors[str(exc)[:120]] += 1
                    unknown += exc.written
                    failures += 1
                    if failures >= MAX_CONSECUTIVE_FAILURES:
                        raise ResponseError(
                            f"{failures} failures in a row on one connection, last: {exc}"
                        ) from exc
                    conn = await _reconnect(conn, port)
                    continue
                except asyncio.CancelledError:  # the drain timeout: the request was written
                    unknown += 1
                    raise
                failures = 0
                t1 = time.monotonic()
                statuses[status] += 1
                if measure_from <= t1 < end:
                    window_statuses[status] += 1
                    if status == 200:
                        latencies.append(t1 - t0)
                if conn.must_close:
                    conn = await _reconnect(conn, port)
        finally:
            conn.close()

    marks = asyncio.create_task(cpu_marks())
    workers = [asyncio.create_task(worker(conn)) for conn in conns]
    done, pending = await asyncio.wait(workers, timeout=warmup + duration + drain_timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await marks
    for task in done:
        if task.exception() is not None:
            errors[repr(task.exception())[:120]] += 1
    return {
        "mode": "closed",
        "connections": connections,
        "warmup": warmup,
        "duration": duration,
        "ok": window_statuses[200],
        "rate": window_statuses[200] / duration,
        "window_statuses": {str(k): v for k, v in sorted(window_statuses.items())},
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "unanswered": len(pending),
        "unknown": unknown,
        "errors": dict(errors),
        "latency": summarize(latencies),
        "cpu": cpu.result,
    }


# --------------------------------------------------------------------------- open loop


async def open_loop(
    port: int, make_request: Callable[[int], bytes], *, rate: float, duration: float,
    connections: int, drain_timeout: float = 30.0,
) -> dict[str, Any]:
    """Sends ``rate * duration`` requests at fixed times (see module doc)."""
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for conn in await asyncio.gather(*(Connection.open(port) for _ in range(connections))):
        idle.put_nowait(conn)
    count = round(rate * duration)
    requests = [make_request(i) for i in range(count)]
    status: list[int | None] = [None] * count
    lag: list[float | None] = [None] * count  # actual send time - due time
    response: list[float] = [0.0] * count  # response time - due time
    errors: Counter[str] = Counter()
    written = 0
    unknown = 0  # written, then no response: the connection failed or the run ended first
    start = time.monotonic() + 0.05

    async def send(index: int, due: float) -> None:
        nonlocal written, unknown
        conn = await idle.get()
        try:
            sent = time.monotonic()
            lag[index] = sent - due
            written += 1
            try:
                status[index] = await conn.request(requests[index])
            except ResponseError as exc:
                errors[str(exc)[:120]] += 1
                written -= not exc.written
                unknown += exc.written
                conn = await _reconnect(conn, port)
                return
            except asyncio.CancelledError:  # the drain timeout: the request was written
                unknown += 1
                raise
            response[index] = time.monotonic() - due
            if conn.must_close:
                conn = await _reconnect(conn, port)
        finally:
            idle.put_nowait(conn)

    tasks: list[asyncio.Task[None]] = []
    for index in range(count):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(index, due)))
    done, pending = await asyncio.wait(tasks, timeout=drain_timeout) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            errors[repr(task.exception())[:120]] += 1
    while not idle.empty():
        idle.get_nowait().close()
    statuses = Counter(s for s in status if s is not None)
    answered = [i for i in range(count) if status[i] is not None]
    return {
        "mode": "open",
        "rate": rate,
        "duration": duration,
        "connections": connections,
        "start": start,
        "due": count,
        "sent": written,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "ok_ids": [i for i in range(count) if status[i] == 200],
        "unanswered": count - len(answered),
        "unknown": unknown,
        "errors": dict(errors),
        "response": summarize([response[i] for i in answered]),
        "send_lag": summarize([x for x in lag if x is not None]),
    }


# --------------------------------------------------------------------------- statistics


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (``fraction`` in 0..1)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarize(values: list[float]) -> dict[str, float | int]:
    """count, p50, p90, p99, max and mean of ``values`` (seconds)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    closed = sub.add_parser("closed", help="N connections, back to back, for warm-up + duration seconds")
    opened = sub.add_parser("open", help="a fixed rate, open loop, each body with its own id")
    for mode in (closed, opened):
        mode.add_argument("--port", type=int, required=True, help="server port on 127.0.0.1")
        mode.add_argument("--path", default="/", help="request path (default /)")
        mode.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
        mode.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
        mode.add_argument("--drain-timeout", type=float, default=30.0,
                          help="seconds to wait for responses after the end (default 30)")
    closed.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring (default 2)")
    closed.add_argument("--server-pid", type=int, help="report the CPU use of this process too")
    opened.add_argument("--rate", type=float, default=500.0, help="requests per second (default 500)")
    return parser


def _install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for name in ("connections", "duration"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"--{name} must be > 0, got {getattr(args, name)}")
    loop_name = _install_uvloop()
    if args.mode == "closed":
        request = post_request(args.port, args.path, s3_record_payload(e2e_event_id(0)))
        result = asyncio.run(closed_loop(
            args.port, request, connections=args.connections, warmup=args.warmup,
            duration=args.duration, server_pid=args.server_pid, drain_timeout=args.drain_timeout,
        ))
    else:
        if args.rate <= 0:
            raise SystemExit(f"--rate must be > 0, got {args.rate}")
        result = asyncio.run(open_loop(
            args.port, lambda i: post_request(args.port, args.path, s3_record_payload(e2e_event_id(i))),
            rate=args.rate, duration=args.duration, connections=args.connections,
            drain_timeout=args.drain_timeout,
        ))
    result["loop"] = loop_name
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
