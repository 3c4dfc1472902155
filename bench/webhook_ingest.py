"""Benchmark: how fast triggergate's webhook source accepts durable events, and how fast they fire.

Two parts, each compared with what can be compared in the same run on the same machine:

1. **Ingest throughput.** A raw FastAPI endpoint (``bench/baseline_server.py``: read the body,
   ``orjson.loads`` it, answer 200, store nothing) and then ``triggergate run`` (answers 200 only
   once the event is fsync'd in the SQLite bus) are loaded by the same generator with the same
   ~1 KB S3-notification body, connections, warm-up and duration. Printed: events/s, latency
   p50/p99, CPU use, and the ratio triggergate/baseline (the target is >= 0.5). After stopping
   triggergate, ``<state-dir>/bus.db`` is opened and its ``events`` rows must equal the number of
   200 answers (warm-up included).
2. **End-to-end latency.** ``triggergate run`` with a sensor whose ``http`` trigger posts the event
   id to a receiver in this process; requests are sent open loop at a fixed rate and the time from
   each request's due time to the trigger's request arriving is printed as p50/p90/p99/max, with
   the POST -> 200 latency, whether the gateway kept up, and the same bus check.

The generator is ``wrk`` when it is on PATH (part 1 only; it cannot send at a fixed rate), else
``bench/loadgen.py``; either runs in its own process, sharing the machine's cores with the server.
CPU use is printed per process, and the CPU used by every *other* process of the machine during
each run, with a warning when that is large enough to spoil the comparison.
Everything binds 127.0.0.1 on free ports; every process started here is stopped by its PID; all
files live in one temporary directory that is removed at the end.

Exit status: 0 when everything ran and the checks (bus count, every accepted event fired) held;
1 when a check failed or a process misbehaved; 2 for bad options. Timings never fail the run.

``python bench/webhook_ingest.py [--quick] [--duration S] [--connections N] [--rate R]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import importlib.util
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from loadgen import (  # noqa: E402  (bench/ is not a package: its directory is put on sys.path above)
    HOST,
    e2e_event_id,
    machine_sample,
    process_cpu_seconds,
    s3_record_payload,
    summarize,
)

TARGET_RATIO = 0.5
NOISY_OTHERS = 0.15  # cores used by other processes during a run above which its figures are suspect
KEPT_UP_SHARE = 0.9  # triggers delivered at less than this share of the offered rate did not keep up
KEPT_UP_LAG = 0.020  # seconds: a sender later than this at p99 was waiting for a free connection
INGEST_PATH = "/ingest"
E2E_PATH = "/e2e"
SENSOR_CHOICES = ("nomatch", "log", "none")
SENSOR_DESCRIPTIONS = {
    "nomatch": "a sensor whose data filter matches no event (its log trigger never fires; every event "
               "is still consumed, filtered and acknowledged)",
    "log": "a sensor whose log trigger fires for every event (log level warning, so its lines are not "
           "written; each firing is recorded in state.db)",
    "none": "no sensor (nothing consumes the bus)",
}


class BenchError(Exception):
    """Something the benchmark needs did not work; the message says what and where to look."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    duration: float
    warmup: float
    connections: int
    rate: float
    generator: str
    part: str
    sensor: str
    drain_timeout: float  # how long the end-to-end sender waits for answers after the last send
    settle_timeout: float  # then how long the receiver waits for the triggers of accepted events


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="Webhook ingest throughput (vs a raw FastAPI endpoint) and end-to-end trigger latency.",
    )
    parser.add_argument("--duration", type=float, help="measured seconds of each run (default 10)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each throughput run (default 2)")
    parser.add_argument("--connections", type=int, default=64,
                        help="keep-alive connections of the throughput runs, and the connection pool of the "
                             "end-to-end sender (default 64)")
    parser.add_argument("--rate", type=float, help="events/s of the end-to-end run (default 500)")
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds in all (1 s runs, 0.5 s warm-up, 200 events/s): a smoke test")
    parser.add_argument("--generator", choices=("auto", "python", "wrk"), default="auto",
                        help="throughput load generator: wrk if on PATH (auto), or bench/loadgen.py")
    parser.add_argument("--part", choices=("all", "ingest", "e2e"), default="all", help="what to run")
    parser.add_argument("--sensor", choices=SENSOR_CHOICES, default="nomatch",
                        help="the sensor of the throughput run: " + "; ".join(
                            f"{k}: {v}" for k, v in SENSOR_DESCRIPTIONS.items()))
    args = parser.parse_args(argv)
    duration = args.duration if args.duration is not None else (1.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0)
    rate = args.rate if args.rate is not None else (200.0 if args.quick else 500.0)
    problems = []
    if duration <= 0:
        problems.append(f"--duration must be > 0 seconds, got {duration}")
    if warmup < 0:
        problems.append(f"--warmup must be >= 0 seconds, got {warmup}")
    if args.connections < 1:
        problems.append(f"--connections must be >= 1, got {args.connections}")
    if rate <= 0:
        problems.append(f"--rate must be > 0 events/s, got {rate}")
    generator = args.generator
    if generator == "wrk" and shutil.which("wrk") is None:
        problems.append("--generator wrk: wrk is not on PATH (install it, or use --generator python)")
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    if problems:
        parser.error("; ".join(problems))
    return Options(
        duration=duration, warmup=warmup, connections=args.connections, rate=rate, generator=generator,
        part=args.part, sensor=args.sensor,
        drain_timeout=5.0 if args.quick else 15.0, settle_timeout=10.0 if args.quick else 20.0,
    )


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_status(port: int, path: str, timeout: float = 0.5) -> int | None:
    """The status of ``GET path`` on 127.0.0.1:``port``; None when nothing answers."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
            head = sock.recv(64)
    except OSError:
        return None
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return int(match.group(1)) if match else None


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@dataclass
class Server:
    """A server process started by the benchmark, stopped by its PID; output goes to ``log_path``."""

    name: str
    cmd: list[str]
    port: int
    log_path: Path
    cwd: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Server:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=self.cwd, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with status {self.proc.returncode} while starting "
                    f"({' '.join(self.cmd)}):\n{self.tail()}"
                )
            if http_status(self.port, "/health") == 200:
                return self
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"{self.name} did not answer GET /health on port {self.port} in {timeout:g}s:\n"
                         f"{self.tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                raise BenchError(
                    f"{self.name} did not stop within {timeout:g}s of SIGTERM; killed it"
                ) from None
        return proc.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return textwrap.indent("\n".join(text.splitlines()[-lines:]) or "(no output)", "    | ")


def gateway_server(workdir: Path, name: str, manifests: Path, port: int) -> Server:
    state_dir = workdir / f"state-{name}"
    cmd = [
        sys.executable, "-m", "gateway", "run", str(manifests), "--state-dir", str(state_dir),
        "--host", HOST, "--log-format", "json", "--log-level", "warning",
    ]
    return Server(f"triggergate ({name})", cmd, port, workdir / f"gateway-{name}.log", workdir)


def baseline_server(workdir: Path, port: int) -> Server:
    cmd = [sys.executable, str(BENCH / "baseline_server.py"), "--host", HOST, "--port", str(port)]
    return Server("baseline (raw FastAPI)", cmd, port, workdir / "baseline.log", workdir)


@contextlib.contextmanager
def running(server: Server, *, accept_signal_exit: bool = False) -> Iterator[Server]:
    """Starts ``server`` and stops it on the way out; ``BenchError`` if it then exits unsuccessfully."""
    try:
        server.start()
        yield server
    except BaseException:
        with contextlib.suppress(BenchError):
            server.stop()
        raise
    code = server.stop()
    ok = {0, -signal.SIGTERM} if accept_signal_exit else {0}
    if code not in ok:
        raise BenchError(f"{server.name} exited with status {code} after SIGTERM:\n{server.tail()}")


@dataclass(frozen=True)
class StateCounts:
    """What a stopped triggergate left in its state directory."""

    events: int  # rows of bus.db ``events``
    acked: dict[str, int]  # consumer group -> events it acknowledged
    firings: int | None  # rows of state.db ``firings`` (None: no state.db or another schema)
    dead_letters: int | None


def read_state(state_dir: Path) -> StateCounts:
    """Counts from ``<state_dir>/bus.db`` (gateway/bus/sqlite.py) and ``state.db`` (gateway/store.py).

    Read after the process has stopped, so that every acknowledgement has been flushed.
    """
    bus = state_dir / "bus.db"
    if not bus.exists():
        raise BenchError(f"{bus} does not exist: triggergate did not create its bus there")
    conn = sqlite3.connect(bus)
    try:
        events = int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        acked: dict[str, int] = {}
        for name, cursor in conn.execute("SELECT name, cursor FROM groups ORDER BY name").fetchall():
            below = conn.execute("SELECT COUNT(*) FROM events WHERE seq <= ?", (cursor,)).fetchone()
            above = conn.execute(
                "SELECT COUNT(*) FROM acks WHERE grp = ? AND seq > ?", (name, cursor)
            ).fetchone()
            acked[name] = int(below[0]) + int(above[0])
    finally:
        conn.close()
    firings = dead_letters = None
    store = state_dir / "state.db"
    if store.exists():
        conn = sqlite3.connect(store)
        try:
            firings = int(conn.execute("SELECT COUNT(*) FROM firings").fetchone()[0])
            dead_letters = int(conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])
        except sqlite3.Error:
            pass
        finally:
            conn.close()
    return StateCounts(events, acked, firings, dead_letters)


def sensor_summary(state: StateCounts) -> str:
    acked = ", ".join(f"{group} acked {n}" for group, n in state.acked.items()) or "no consumer"
    firings = "n/a" if state.firings is None else str(state.firings)
    dead = "n/a" if state.dead_letters is None else str(state.dead_letters)
    return (f"{state.events} events on the bus; {acked} before the stop; "
            f"{firings} firings, {dead} dead-lettered")


def native_libraries(pid: int) -> str:
    """Which of uvloop / httptools are loaded in process ``pid`` (from /proc/<pid>/maps)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return "unknown (no /proc)"
    found = [name for name in ("uvloop", "httptools") if f"/{name}/" in maps]
    return ", ".join(found) if found else "neither uvloop nor httptools"


# --------------------------------------------------------------------------- manifests


def event_source_yaml(port: int, event: str, path: str) -> str:
    return f"""\
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: bench
spec:
  webhook:
    {event}:
      port: "{port}"
      endpoint: {path}
      method: POST
"""


def ingest_manifests(port: int, sensor: str) -> str:
    text = event_source_yaml(port, "ingest", INGEST_PATH)
    if sensor == "none":
        return text
    filters = ""
    if sensor == "nomatch":
        filters = """
      filters:
        data:
          - path: body.Records.0.eventName
            type: string
            value: ["^ObjectRemoved:"]"""
    return text + f"""---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: bench-ingest
spec:
  dependencies:
    - name: upload
      eventSourceName: bench
      eventName: ingest{filters}
  triggers:
    - template:
        name: note-upload
        log: {{}}
"""


def e2e_manifests(port: int, receiver_port: int) -> str:
    return event_source_yaml(port, "e2e", E2E_PATH) + f"""---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: bench-e2e
spec:
  dependencies:
    - name: upload
      eventSourceName: bench
      eventName: e2e
  triggers:
    - template:
        name: notify
        http:
          url: http://{HOST}:{receiver_port}/notify
          method: POST
          payload:
            - src: {{dependencyName: upload, dataKey: body.id}}
              dest: id
"""


# --------------------------------------------------------------------------- load generators


@dataclass
class Throughput:
    """One throughput run as the report needs it (times in seconds)."""

    rate: float
    ok: int
    non_ok: int
    total_ok: int  # every 200, warm-up and drain included
    p50: float
    p99: float
    server_cpu: float | None  # cores (1.0 = one core busy)
    generator_cpu: float | None
    machine_cpu: float | None  # every process of the machine together
    kernel_cpu: float | None  # the kernel on its own: interrupts, softirqs (network), kernel threads (I/O)
    errors: dict[str, object] = field(default_factory=dict)
    unknown: int = 0  # requests written but never answered (the server may have stored them)
    unknown_why: str = ""

    @property
    def others(self) -> float | None:
        """Cores used during the window by processes that are not part of this measurement."""
        return other_cpu(self.machine_cpu, self.server_cpu, self.generator_cpu, self.kernel_cpu)


def run_python_closed(opts: Options, port: int, server_pid: int, log: Path) -> Throughput:
    cmd = [
        sys.executable, str(BENCH / "loadgen.py"), "closed", "--port", str(port), "--path", INGEST_PATH,
        "--connections", str(opts.connections), "--warmup", str(opts.warmup),
        "--duration", str(opts.duration), "--server-pid", str(server_pid),
    ]
    result = run_json(cmd, log, timeout=opts.warmup + opts.duration + 60)
    window = result["window_statuses"]
    latency = result["latency"]
    return Throughput(
        rate=result["rate"], ok=result["ok"], non_ok=sum(v for k, v in window.items() if k != "200"),
        total_ok=result["statuses"].get("200", 0), p50=latency.get("p50", float("nan")),
        p99=latency.get("p99", float("nan")), server_cpu=result["cpu"]["server"],
        generator_cpu=result["cpu"]["self"], machine_cpu=result["cpu"].get("machine"),
        kernel_cpu=result["cpu"].get("kernel"),
        errors=result["errors"], unknown=result["unknown"],
        unknown_why="written, then the connection failed or the run ended before the answer",
    )


def run_json(cmd: list[str], log: Path, timeout: float) -> dict[str, Any]:
    with open(log, "ab") as err:
        done = subprocess.run(cmd, cwd=log.parent, env=child_env(), stdout=subprocess.PIPE, stderr=err,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"load generator failed with status {done.returncode}: {' '.join(cmd)}\n"
                         f"    see {log}: {log.read_text(errors='replace')[-2000:]}")
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


class Usage:
    """CPU use over a ``with`` block, in cores: ``server`` (process ``pid``), ``ours`` (this process and
    the children it reaped meanwhile, e.g. the load generator) and ``machine`` (every process)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.server: float | None = None
        self.ours: float | None = None
        self.machine: float | None = None
        self.kernel: float | None = None

    @staticmethod
    def _ours() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    def __enter__(self) -> Usage:
        self._start = (time.monotonic(), process_cpu_seconds(self.pid), self._ours(), machine_sample())
        return self

    def __exit__(self, *exc: object) -> None:
        wall0, server0, ours0, machine0 = self._start
        wall = max(time.monotonic() - wall0, 1e-9)
        server1, ours1, machine1 = process_cpu_seconds(self.pid), self._ours(), machine_sample()
        self.server = None if server0 is None or server1 is None else (server1 - server0) / wall
        self.ours = (ours1 - ours0) / wall
        if machine0 is not None and machine1 is not None:
            busy, kernel = machine0.between(machine1)
            self.machine, self.kernel = busy / wall, kernel / wall

    @property
    def others(self) -> float | None:
        """Cores used by processes that are not part of this measurement."""
        return other_cpu(self.machine, self.server, self.ours, self.kernel)


def other_cpu(machine: float | None, *ours: float | None) -> float | None:
    if machine is None or any(x is None for x in ours):
        return None
    return max(0.0, machine - sum(x for x in ours if x is not None))


_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_wrk(output: str) -> dict[str, Any]:
    """requests, non_2xx, seconds, p50, p99 (seconds) and socket errors from ``wrk --latency`` output."""

    def duration(text: str) -> float:
        match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
        if match is None:
            raise BenchError(f"cannot read the wrk duration {text!r}")
        return float(match.group(1)) * _WRK_UNITS[match.group(2)]

    done = re.search(r"(\d+) requests in ([\d.]+\w+),", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if done is None or p50 is None or p99 is None:
        raise BenchError(f"cannot read the wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests": int(done.group(1)),
        "seconds": duration(done.group(2)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "p50": duration(p50.group(1)),
        "p99": duration(p99.group(1)),
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "",
    }


def run_wrk_closed(opts: Options, port: int, server_pid: int, workdir: Path) -> Throughput:
    script = workdir / "post.lua"
    body = s3_record_payload(e2e_event_id(0)).decode()
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{body}]==]\n"
    )

    def wrk(seconds: float) -> tuple[dict[str, Any], Usage]:
        cmd = ["wrk", "-t1", f"-c{opts.connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "-s", str(script), f"http://{HOST}:{port}{INGEST_PATH}"]
        with Usage(server_pid) as usage:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
        if done.returncode != 0:
            raise BenchError(f"wrk failed with status {done.returncode}: {done.stderr or done.stdout}")
        return parse_wrk(done.stdout), usage

    warm = wrk(opts.warmup)[0] if opts.warmup > 0 else {"requests": 0, "non_2xx": 0}
    measured, usage = wrk(opts.duration)
    ok = measured["requests"] - measured["non_2xx"]
    errors = {"socket errors": measured["socket_errors"]} if measured["socket_errors"] else {}
    return Throughput(
        rate=ok / measured["seconds"], ok=ok, non_ok=measured["non_2xx"],
        total_ok=ok + warm["requests"] - warm["non_2xx"], p50=measured["p50"], p99=measured["p99"],
        server_cpu=usage.server, generator_cpu=usage.ours, machine_cpu=usage.machine,
        kernel_cpu=usage.kernel, errors=errors,
        unknown=opts.connections * (2 if opts.warmup > 0 else 1),
        unknown_why="wrk drops the requests in flight when it stops: at most one per connection and run",
    )


def run_closed(opts: Options, server: Server, workdir: Path) -> Throughput:
    if opts.generator == "wrk":
        return run_wrk_closed(opts, server.port, server.pid, workdir)
    return run_python_closed(opts, server.port, server.pid, workdir / "loadgen.log")


# --------------------------------------------------------------------------- receiver


@dataclass
class Arrivals:
    """What the receiver saw: first arrival time (``time.monotonic()``) per event id, and bad requests."""

    times: dict[str, float] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    transports: set[asyncio.BaseTransport] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, ids: set[str]) -> None:
        """Returns once every id in ``ids`` has arrived (the caller bounds the wait)."""
        while not ids <= self.times.keys():
            self.changed.clear()
            await self.changed.wait()


_RECEIVER_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Receiver(asyncio.Protocol):
    """The far end of the ``http`` trigger: notes when each event id arrives, answers 200 at once.

    Requests are parsed as far as ``Content-Length``; the body must be JSON with an ``id``.
    """

    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.arrivals.transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.arrivals.transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end + 2])
            match = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.IGNORECASE)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4:total])
            del self.buffer[:total]
            try:
                self.arrivals.times.setdefault(str(orjson.loads(body)["id"]), now)
            except (orjson.JSONDecodeError, KeyError, TypeError):
                self.arrivals.bad.append(body[:200].decode(errors="replace"))
            self.arrivals.changed.set()
            assert self.transport is not None
            self.transport.write(_RECEIVER_RESPONSE)


# --------------------------------------------------------------------------- the two parts


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)

    def line(self, text: str = "") -> None:
        print(text, flush=True)

    def fail(self, text: str) -> None:
        self.failures.append(text)
        self.line(f"  FAILED: {text}")


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None or seconds != seconds else f"{seconds * 1000:.2f} ms"


def pct(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:.0f}%"


def throughput_row(label: str, t: Throughput) -> str:
    return (f"  {label:<13}{t.rate:>10.1f}  {t.p50 * 1000:>8.2f}  {t.p99 * 1000:>8.2f}  {t.ok:>8d}  "
            f"{t.non_ok:>7d}  {pct(t.server_cpu):>7}  {pct(t.generator_cpu):>7}  {pct(t.kernel_cpu):>7}  "
            f"{pct(t.others):>7}")


def part_ingest(opts: Options, workdir: Path, report: Report) -> None:
    report.line(f"[ingest] throughput: {opts.connections} keep-alive connections, {opts.warmup:g} s warm-up "
                f"+ {opts.duration:g} s measured, closed loop, same body for both servers")
    # uvicorn.run re-raises SIGTERM after its graceful shutdown: that exit status is a clean stop
    with running(baseline_server(workdir, free_port()), accept_signal_exit=True) as baseline:
        base = run_closed(opts, baseline, workdir)
        base_libs = native_libraries(baseline.pid)
    port = free_port()
    manifests = workdir / "ingest.yaml"
    manifests.write_text(ingest_manifests(port, opts.sensor))
    with running(gateway_server(workdir, "ingest", manifests, port)) as gateway:
        tg = run_closed(opts, gateway, workdir)
        tg_libs = native_libraries(gateway.pid)
    state = read_state(workdir / "state-ingest")
    stored = state.events

    report.line(f"  {'server':<13}{'events/s':>10}  {'p50 ms':>8}  {'p99 ms':>8}  {'200s':>8}  "
                f"{'non-200':>7}  {'server':>7}  {'gen':>7}  {'kernel':>7}  {'other':>7}   <- CPU")
    report.line(throughput_row("baseline", base))
    report.line(throughput_row("triggergate", tg))
    ratio = tg.rate / base.rate if base.rate else float("nan")
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    report.line(f"  ratio triggergate/baseline: {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")
    report.line("  baseline: raw FastAPI endpoint, await request.body() + orjson.loads, answers 200, stores "
                "nothing")
    report.line("  triggergate: webhook source, 200 only after the event is fsync'd in the SQLite bus "
                "(group commit)")
    report.line(f"  triggergate sensor: {SENSOR_DESCRIPTIONS[opts.sensor]}")
    report.line("  CPU: share of one core over the measured window (the gateway also runs a SQLite writer "
                "thread, so it can pass 100%); kernel: interrupts, network softirqs and kernel threads "
                "(journal, block I/O); other: every other process of the machine")
    for label, t in (("baseline", base), ("triggergate", tg)):
        noisy = t.others
        if noisy is not None and noisy > NOISY_OTHERS:
            report.line(f"  WARNING: other processes used {pct(noisy)} of a core during the {label} run: "
                        "its figures (and the ratio) are not comparable; rerun on a quiet machine")
    report.line(f"  loaded in the server processes: baseline {base_libs}; triggergate {tg_libs}")
    report.line(f"  triggergate state after the stop: {sensor_summary(state)}")
    if opts.sensor == "nomatch" and state.firings:
        report.fail(f"the no-match sensor fired {state.firings} times: the figures above include trigger "
                    "work")
    for label, t in (("baseline", base), ("triggergate", tg)):
        if t.errors:
            report.line(f"  {label} client errors: {t.errors}")
        if t.ok == 0:
            report.fail(f"{label} answered no request with 200 in the measured window")
    bus_check(report, stored, tg.total_ok, tg.unknown, tg.unknown_why, "(warm-up included)")


def bus_check(report: Report, stored: int, ok: int, unknown: int, why: str, note: str = "") -> None:
    """Every request answered 200 is on the bus; nothing else is, but for requests of unknown outcome."""
    note = f" {note}" if note else ""
    if unknown == 0 and stored == ok:
        report.line(f"  bus check: bus.db holds {stored} events = {ok} requests answered 200{note}: OK")
    elif ok <= stored <= ok + unknown:
        report.line(f"  bus check: bus.db holds {stored} events, {ok} requests answered 200{note} and "
                    f"{unknown} of unknown outcome ({why}): OK")
    else:
        allowed = f"{ok}" if unknown == 0 else f"{ok} to {ok + unknown}"
        report.fail(f"bus check: bus.db holds {stored} events, expected {allowed}: {ok} requests were "
                    f"answered 200{note}" + (f", {unknown} of unknown outcome ({why})" if unknown else ""))


async def part_e2e(opts: Options, workdir: Path, report: Report) -> None:
    report.line(f"[e2e] end-to-end latency: POST -> http trigger request received, open loop "
                f"{opts.rate:g} events/s for {opts.duration:g} s, pool of {opts.connections} connections")
    loop = asyncio.get_running_loop()
    arrivals = Arrivals()
    listener = await loop.create_server(lambda: Receiver(arrivals), HOST, 0)
    receiver_port = listener.sockets[0].getsockname()[1]
    port = free_port()
    manifests = workdir / "e2e.yaml"
    manifests.write_text(e2e_manifests(port, receiver_port))
    gateway = gateway_server(workdir, "e2e", manifests, port)
    try:
        await asyncio.to_thread(gateway.start)
        cmd = [
            sys.executable, str(BENCH / "loadgen.py"), "open", "--port", str(port), "--path", E2E_PATH,
            "--rate", str(opts.rate), "--duration", str(opts.duration),
            "--connections", str(opts.connections), "--drain-timeout", str(opts.drain_timeout),
        ]
        with Usage(gateway.pid) as usage:
            sender = await asyncio.create_subprocess_exec(
                *cmd, cwd=workdir, env=child_env(), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
            )
            out, err = await sender.communicate()
        if sender.returncode != 0:
            raise BenchError(f"the end-to-end sender failed with status {sender.returncode}: "
                             f"{' '.join(cmd)}\n{err.decode(errors='replace')[-2000:]}")
        result = orjson.loads(out)
        ok_ids = {e2e_event_id(i): i for i in result["ok_ids"]}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(opts.settle_timeout):
                await arrivals.wait_for(set(ok_ids))
    finally:
        try:
            code = await asyncio.to_thread(gateway.stop)
        finally:
            listener.close()
            for transport in list(arrivals.transports):
                transport.close()
            await listener.wait_closed()
    if code != 0:
        report.fail(f"{gateway.name} exited with status {code} after SIGTERM:\n{gateway.tail()}")
    state = read_state(workdir / "state-e2e")
    stored = state.events

    start, rate = result["start"], result["rate"]
    seen = arrivals.times
    latencies = [seen[eid] - (start + i / rate) for eid, i in ok_ids.items() if eid in seen]
    arrived = len(latencies)
    e2e = summarize(latencies)
    response = result["response"]
    lag = result["send_lag"]
    answered_ok = result["statuses"].get("200", 0)
    others = {k: v for k, v in result["statuses"].items() if k != "200"}
    never_sent = result["due"] - result["sent"]
    report.line(f"  requests due {result['due']}, written {result['sent']}, answered 200: {answered_ok}"
                + (f", other statuses {others}" if others else "")
                + (f", unknown outcome {result['unknown']}" if result["unknown"] else "")
                + (f", never sent (no free connection in time) {never_sent}" if never_sent else ""))
    report.line(f"  arrived at the receiver: {arrived} of {answered_ok} accepted events")
    report.line(f"  CPU while sending: triggergate {pct(usage.server)}, sender + receiver {pct(usage.ours)}, "
                f"kernel {pct(usage.kernel)}, other processes {pct(usage.others)} (of one core)")
    if usage.others is not None and usage.others > NOISY_OTHERS:
        report.line(f"  WARNING: other processes used {pct(usage.others)} of a core during this run: its "
                    "latencies are not comparable; rerun on a quiet machine")
    if e2e["count"]:
        report.line(f"  POST -> trigger received: p50 {ms(e2e['p50'])}  p90 {ms(e2e['p90'])}  "
                    f"p99 {ms(e2e['p99'])}  max {ms(e2e['max'])}")
    if response["count"]:
        report.line(f"  POST -> 200 (durable):    p50 {ms(response['p50'])}  p90 {ms(response['p90'])}  "
                    f"p99 {ms(response['p99'])}  max {ms(response['max'])}")
    report.line(f"  sender lag behind schedule: p99 {ms(lag.get('p99'))}, max {ms(lag.get('max'))} "
                "(latencies count from each request's due time, so a late sender cannot hide a slow server)")
    lag_p99 = lag.get("p99", 0.0)
    if result["unanswered"] == 0 and lag_p99 <= KEPT_UP_LAG:
        report.line(f"  webhook kept up with {opts.rate:g} events/s: yes (every request answered, sender lag "
                    f"p99 <= {KEPT_UP_LAG * 1000:g} ms)")
    else:
        report.line(f"  webhook kept up with {opts.rate:g} events/s: NO ({result['unanswered']} requests "
                    f"unanswered, sender lag p99 {ms(lag_p99)}: every pooled connection was waiting for an "
                    "answer)")
    if arrived >= 2:
        times = sorted(seen[eid] for eid in ok_ids if eid in seen)
        delivered = (arrived - 1) / max(times[-1] - times[0], 1e-9)
        verdict = "yes" if delivered >= KEPT_UP_SHARE * opts.rate else "NO"
        report.line(f"  triggers kept up: {verdict} (delivered at {delivered:.0f} events/s from the first to "
                    f"the last arrival, offered {opts.rate:g} events/s)")
    if result["errors"]:
        report.line(f"  sender errors: {result['errors']}")
    if arrivals.bad:
        report.fail(f"the receiver got {len(arrivals.bad)} request(s) without an event id, "
                    f"e.g. {arrivals.bad[0]!r}")
    unexpected = len(arrivals.times.keys() - ok_ids.keys())
    if unexpected:
        report.line(f"  note: {unexpected} event(s) arrived whose POST had no answer (unknown outcome)")
    if answered_ok == 0:
        report.fail("no request was answered 200")
    report.line(f"  triggergate state after the stop: {sensor_summary(state)}")
    if arrived < answered_ok:
        # Not fired yet is not lost: such events must still be unacknowledged on the bus, where a
        # restart would deliver them again. Only an accepted event that is neither is a failure.
        pending = stored - min(state.acked.values(), default=0)
        missing = answered_ok - arrived
        if missing <= pending:
            report.line(f"  not fired when the wait ended ({opts.settle_timeout:g} s after the last answer): "
                        f"{missing}; the bus still holds {pending} unacknowledged events, which a restart "
                        "delivers again: nothing lost")
        else:
            report.fail(f"{missing} accepted events never reached the receiver, and only {pending} are still "
                        "unacknowledged on the bus: events were lost")
    bus_check(report, stored, answered_ok, result["unknown"],
              "written, then the connection failed or the sender gave up before the answer")


# --------------------------------------------------------------------------- main


def describe_environment(opts: Options) -> list[str]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if opts.generator == "wrk":
        generator = "wrk (1 thread) for throughput; bench/loadgen.py for the fixed-rate part"
    else:
        reason = "" if shutil.which("wrk") else " (wrk is not on PATH)"
        generator = f"bench/loadgen.py: Python asyncio ({loop}), raw keep-alive HTTP/1.1{reason}"
    body = s3_record_payload(e2e_event_id(0))
    return [
        f"triggergate webhook benchmark, {now}: Python {platform.python_version()}, {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPU cores",
        f"load generator: {generator}; it runs in its own process and shares the {os.cpu_count()} CPU cores "
        "with the server under test",
        f"servers: one process each, bound to {HOST}; installed: uvicorn {version('uvicorn')}, "
        f"FastAPI {version('fastapi')}, uvloop {version('uvloop')}, httptools {version('httptools')}; "
        f"the baseline runs uvicorn.run (loop {loop}, http {http})",
        f"payload: {len(body)}-byte JSON body, one S3 ObjectCreated:Put notification record",
    ]


def check_gateway_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "gateway", "run", "--help"], cwd=tempfile.gettempdir(),
                          env=child_env(), capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise BenchError("`python -m gateway run --help` failed: this checkout has no working `run` command "
                         f"yet.\n{(done.stderr or done.stdout)[-1500:]}")


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(argv)
    report = Report()
    started = time.monotonic()
    for line in describe_environment(opts):
        report.line(line)
    try:
        check_gateway_cli()
        with tempfile.TemporaryDirectory(prefix="triggergate-bench-") as tmp:
            workdir = Path(tmp)
            if opts.part in ("all", "ingest"):
                report.line()
                part_ingest(opts, workdir, report)
            if opts.part in ("all", "e2e"):
                report.line()
                asyncio.run(part_e2e(opts, workdir, report))
    except BenchError as exc:
        report.line()
        report.line(f"ERROR: {exc}")
        return 1
    report.line()
    status = "OK" if not report.failures else f"FAILED ({len(report.failures)} check(s))"
    report.line(f"result: {status} in {time.monotonic() - started:.0f} s")
    return 0 if not report.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
