"""Benchmark: what an outgoing HTTP request costs the ``http`` trigger, per client library.

Two parts, each against one local server started here (``bench/baseline_server.py``: uvicorn +
FastAPI, parses the JSON body and answers ``200``), bound to 127.0.0.1 on a free port and stopped
by its PID:

1. **Clients.** ``--concurrency`` tasks each send ``POST /ingest`` back to back (keep-alive, the
   ~940-byte S3-notification body of ``bench/loadgen.py``, the headers the trigger sends) for
   ``--requests`` requests after a warm-up. Each client runs in a fresh process of its own (uvloop
   as ``triggergate run`` uses); printed: requests/s, the client process's CPU per request, the
   server's CPU, and the ratios to httpx. The first row is the server-side baseline: the same
   server driven by ``bench/loadgen.py closed`` (raw asyncio connections, pre-encoded requests),
   i.e. what the server can do when the client costs almost nothing.

   * ``httpx``: ``httpx.AsyncClient`` configured as ``gateway/runtime.py`` does (pool of 32).
   * ``aiohttp``: ``aiohttp.ClientSession`` with ``TCPConnector(limit=32)``.
   * ``httpx+aiohttp``: httpx's API over aiohttp's transport (``httpx-aiohttp``, when installed).
   * ``gateway``: ``gateway.triggers.http.AiohttpClient``, the trigger's own ``HttpClient`` (aiohttp
     behind the interface of ``gateway.triggers.base``): the cost the trigger actually pays.

2. **Trigger.** ``FiringRunner`` + ``HttpTrigger`` (with a SQLite state store, as in the runtime)
   carry out ``--firings`` ``Fire`` objects, ``--in-flight`` at a time (the runtime's
   ``max_in_flight``), against the same server. ``httpx``: a ``TriggerContext`` without
   ``http_client``, so the trigger sends through the runtime's httpx client (as before the switch);
   ``aiohttp``: with ``http_client=AiohttpClient(max_connections=32)``, as the wired runtime does.
   Printed: firings/s and CPU per firing (the SQLite writes of the state store included).

``--profile NAME`` runs one client (or ``trigger:NAME``) under cProfile and prints the top functions.

``python bench/http_client.py [--quick] [--requests N] [--firings N] [--baseline-seconds S]
[--part clients|trigger|all]`` (a smoke run of a few seconds: ``--quick --requests 50 --firings 50
--warmup-requests 10 --baseline-seconds 0.4``)

Timings never change the exit status: 0 when everything ran, 1 when a run failed (a non-200
answer, a process that misbehaved), 2 for bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib.metadata
import importlib.util
import io
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

from loadgen import HOST, e2e_event_id, machine_sample, process_cpu_seconds, s3_record_payload  # noqa: E402
from webhook_ingest import BenchError, baseline_server, child_env, free_port, running  # noqa: E402

PATH = "/ingest"
CLIENTS = ("httpx", "aiohttp", "httpx+aiohttp", "gateway")
TRIGGER_CLIENTS = ("httpx", "aiohttp")
HEADERS = {
    "Content-Type": "application/json",
    "Idempotency-Key": "bench-sensor/notify/0123456789abcdef0123456789abcdef",
    "X-Triggergate-Sensor": "bench-sensor",
    "X-Triggergate-Trigger": "notify",
}


# --------------------------------------------------------------------------- one client (child process)

Send = Callable[[bytes], Awaitable[int]]


@contextlib.asynccontextmanager
async def open_client(kind: str, url: str, concurrency: int) -> Any:
    """Yields ``send(body) -> status`` for client ``kind``; the client is closed on the way out."""
    if kind == "httpx":
        import httpx

        client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=30.0
            ),
        )

        async def send_httpx(body: bytes) -> int:
            response = await client.request("POST", url, content=body, headers=HEADERS, timeout=60.0)
            return response.status_code

        async with client:
            yield send_httpx
    elif kind == "httpx+aiohttp":
        import aiohttp
        import httpx
        from httpx_aiohttp import AiohttpTransport

        def session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

        client = httpx.AsyncClient(follow_redirects=False, transport=AiohttpTransport(client=session))

        async def send_mixed(body: bytes) -> int:
            response = await client.request("POST", url, content=body, headers=HEADERS, timeout=60.0)
            return response.status_code

        async with client:
            yield send_mixed
    elif kind == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        timeout = aiohttp.ClientTimeout(total=60.0)

        async def send_aiohttp(body: bytes) -> int:
            async with session.request("POST", url, data=body, headers=HEADERS, timeout=timeout) as response:
                await response.read()
                return response.status

        async with session:
            yield send_aiohttp
    elif kind == "gateway":
        from gateway.triggers.http import AiohttpClient

        client = AiohttpClient(max_connections=concurrency)

        async def send_gateway(body: bytes) -> int:
            response = await client.request("POST", url, body, HEADERS, 60.0)
            return response.status

        try:
            yield send_gateway
        finally:
            await client.close()
    else:
        raise BenchError(f"unknown client {kind!r}; known: {', '.join(CLIENTS)}")


async def drive(send: Send, body: bytes, requests: int, concurrency: int) -> dict[str, Any]:
    """``concurrency`` tasks share ``requests`` sends; returns wall and CPU seconds and the statuses."""
    remaining = requests
    statuses: dict[str, int] = {}

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status = await send(body)
            statuses[str(status)] = statuses.get(str(status), 0) + 1

    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "wall": time.perf_counter() - wall0,
        "cpu": time.process_time() - cpu0,
        "statuses": statuses,
    }


class Window:
    """CPU seconds of the server process and of the whole machine (kernel apart) over a ``with`` block."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.result: dict[str, float | None] = {}

    def __enter__(self) -> Window:
        self._start = process_cpu_seconds(self.server_pid), machine_sample()
        return self

    def __exit__(self, *exc: object) -> None:
        server0, machine0 = self._start
        server1, machine1 = process_cpu_seconds(self.server_pid), machine_sample()
        self.result["server_cpu"] = None if server0 is None or server1 is None else server1 - server0
        if machine0 is not None and machine1 is not None:
            busy, kernel = machine0.between(machine1)
            self.result["machine_cpu"], self.result["kernel_cpu"] = busy, kernel


async def run_client(args: argparse.Namespace) -> dict[str, Any]:
    url = f"http://{HOST}:{args.port}{PATH}"
    body = s3_record_payload(e2e_event_id(0))
    async with open_client(args.client, url, args.concurrency) as send:
        await drive(send, body, args.warmup_requests, args.concurrency)
        profiler = cProfile.Profile() if args.profile else None
        with Window(args.server_pid) as window:
            if profiler:
                profiler.enable()
            result = await drive(send, body, args.requests, args.concurrency)
            if profiler:
                profiler.disable()
                result["profile"] = profile_text(profiler)
    result.update(window.result)
    result["requests"] = args.requests
    return result


# --------------------------------------------------------------------------- the trigger (child process)


async def run_trigger(args: argparse.Namespace) -> dict[str, Any]:
    """FiringRunner + HttpTrigger, as the runtime builds them, carrying out ``args.requests`` firings."""
    from gateway.firing import FiringRunner
    from gateway.secrets import SecretStore
    from gateway.store import SqliteStore
    from gateway.triggers import build_executor
    from gateway.triggers.base import TriggerContext
    from sensors.engine import Fire, idempotency_key
    from sensors.event import Event
    from sensors.spec import Trigger

    T0 = datetime(2026, 11, 22, tzinfo=UTC)
    url = f"http://{HOST}:{args.port}{PATH}"
    trigger = Trigger.model_validate(
        {
            "template": {
                "name": "notify",
                "http": {
                    "url": url,
                    "method": "POST",
                    "payload": [{"src": {"dependencyName": "upload", "dataKey": "body"}, "dest": "record"}],
                },
            }
        }
    )
    with tempfile.TemporaryDirectory(prefix="triggergate-bench-http-") as tmp:
        store = SqliteStore(Path(tmp) / "state.db")
        await store.start()
        import httpx

        # The runtime's httpx client; the trigger sends through it when the context has no http_client.
        client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32, keepalive_expiry=30.0),
        )
        extra: dict[str, Any] = {}
        if args.client == "aiohttp":
            from gateway.triggers.http import AiohttpClient

            extra["http_client"] = AiohttpClient(max_connections=32, keepalive_expiry=30.0)
        elif args.client != "httpx":
            raise BenchError(f"the trigger part takes {' or '.join(TRIGGER_CLIENTS)}, not {args.client!r}")

        async def http_close() -> None:
            if "http_client" in extra:
                await extra["http_client"].close()
            await client.aclose()

        context = TriggerContext(
            sensor="bench-sensor",
            namespace="default",
            secrets=SecretStore(Path(tmp) / "secrets"),
            http=client,
            **extra,
        )
        runner = FiringRunner(build_executor(trigger, context), store)
        record = orjson.loads(s3_record_payload(e2e_event_id(0)))

        def fire(i: int) -> Fire:
            ev = Event(
                id=f"bench-{i:09d}",
                source="bench",
                subject="upload",
                type="webhook",
                time=T0,
                data={"header": {}, "body": record, "metadata": {}},
            )
            return Fire(
                "bench-sensor",
                "notify",
                {"upload": ev},
                idempotency_key("bench-sensor", "notify", {"upload": ev}),
            )

        async def carry_out(first: int, count: int) -> tuple[float, float, dict[str, int]]:
            queue = iter(range(first, first + count))
            outcomes: dict[str, int] = {}

            async def worker() -> None:
                for i in queue:
                    outcome = await runner.run(fire(i))
                    outcomes[outcome.status] = outcomes.get(outcome.status, 0) + 1

            wall0, cpu0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker() for _ in range(args.in_flight)))
            return time.perf_counter() - wall0, time.process_time() - cpu0, outcomes

        try:
            await carry_out(0, args.warmup_requests)
            profiler = cProfile.Profile() if args.profile else None
            with Window(args.server_pid) as window:
                if profiler:
                    profiler.enable()
                wall, cpu, outcomes = await carry_out(args.warmup_requests, args.requests)
                if profiler:
                    profiler.disable()
        finally:
            await http_close()
            await store.close()
    result: dict[str, Any] = {"wall": wall, "cpu": cpu, "statuses": outcomes, "requests": args.requests}
    result.update(window.result)
    if profiler:
        result["profile"] = profile_text(profiler)
    return result


def profile_text(profiler: cProfile.Profile, top: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def child_main(args: argparse.Namespace) -> int:
    import uvloop

    runner = run_trigger if args.child == "trigger" else run_client
    result = uvloop.run(runner(args))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


# --------------------------------------------------------------------------- the parent


@dataclass
class Row:
    label: str
    rate: float
    cpu_per_request: float | None  # seconds of the client process per request
    server_per_request: float | None
    client_cores: float | None
    server_cores: float | None
    statuses: dict[str, int]
    other_cores: float | None = None  # every other process of the machine (the kernel apart)
    profile: str = ""


def others(machine: float | None, kernel: float | None, *ours: float | None) -> float | None:
    if machine is None or kernel is None or any(x is None for x in ours):
        return None
    return max(0.0, machine - kernel - sum(x for x in ours if x is not None))


def child(
    kind: str,
    client: str,
    port: int,
    server_pid: int,
    args: argparse.Namespace,
    count: int,
    warmup: int,
    profile: bool = False,
) -> Row:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--client",
        client,
        "--port",
        str(port),
        "--server-pid",
        str(server_pid),
        "--requests",
        str(count),
        "--warmup-requests",
        str(warmup),
        "--concurrency",
        str(args.concurrency),
        "--in-flight",
        str(args.in_flight),
    ] + (["--profile", client] if profile else [])
    done = subprocess.run(cmd, env=child_env(), capture_output=True, timeout=600, check=False)
    if done.returncode != 0:
        raise BenchError(
            f"{kind} run with {client} failed (status {done.returncode}):\n"
            + done.stderr.decode(errors="replace")[-3000:]
        )
    result = orjson.loads(done.stdout.splitlines()[-1])
    wall, cpu, server = result["wall"], result["cpu"], result["server_cpu"]
    n = result["requests"]
    return Row(
        label=client,
        rate=n / wall,
        cpu_per_request=cpu / n,
        server_per_request=None if server is None else server / n,
        client_cores=cpu / wall,
        server_cores=None if server is None else server / wall,
        statuses={str(k): v for k, v in result["statuses"].items()},
        other_cores=None
        if result.get("machine_cpu") is None
        else others(result["machine_cpu"], result["kernel_cpu"], cpu, server) / wall,  # type: ignore[operator]
        profile=result.get("profile", ""),
    )


def server_baseline(port: int, server_pid: int, args: argparse.Namespace) -> Row:
    duration = args.baseline_seconds
    warmup = min(0.5 if args.quick else 1.0, duration / 4)
    cmd = [
        sys.executable,
        str(BENCH / "loadgen.py"),
        "closed",
        "--port",
        str(port),
        "--path",
        PATH,
        "--connections",
        str(args.concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--server-pid",
        str(server_pid),
    ]
    done = subprocess.run(cmd, env=child_env(), capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise BenchError(f"loadgen failed (status {done.returncode}):\n{done.stderr.decode()[-3000:]}")
    result = orjson.loads(done.stdout)
    rate, cpu = result["rate"], result["cpu"]
    own, server = cpu.get("self"), cpu.get("server")
    return Row(
        label="loadgen (raw)",
        rate=rate,
        cpu_per_request=None if own is None else own / rate,
        server_per_request=None if server is None else server / rate,
        client_cores=own,
        server_cores=server,
        statuses={str(k): v for k, v in result["statuses"].items()},
        other_cores=others(cpu.get("machine"), cpu.get("kernel"), own, server),
    )


def us(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e6:.0f} us"


def pct(cores: float | None) -> str:
    return "n/a" if cores is None else f"{cores * 100:.0f}%"


def table(title: str, unit: str, rows: list[Row], reference: str) -> None:
    ref = next((r for r in rows if r.label == reference), None)
    print(f"\n{title}")
    print(
        f"  {'client':<16}{unit:>10}  {'CPU/req':>9}  {'srv/req':>9}  {'client':>7}  {'server':>7}"
        f"  {'other':>6}  {'x ' + reference + ' rate':>14}  {reference + ' CPU / this':>16}  statuses"
    )
    for r in rows:
        ratio = "" if ref is None else f"{r.rate / ref.rate:.2f}"
        cpu_ratio = (
            ""
            if ref is None or not r.cpu_per_request or ref.cpu_per_request is None
            else f"{ref.cpu_per_request / r.cpu_per_request:.2f}"
        )
        print(
            f"  {r.label:<16}{r.rate:>10.0f}  {us(r.cpu_per_request):>9}  {us(r.server_per_request):>9}  "
            f"{pct(r.client_cores):>7}  {pct(r.server_cores):>7}  {pct(r.other_cores):>6}  {ratio:>14}  "
            f"{cpu_ratio:>16}  "
            f"{r.statuses}"
        )


def available(client: str) -> bool:
    if client == "httpx+aiohttp":
        return importlib.util.find_spec("httpx_aiohttp") is not None
    if client == "gateway":
        return importlib.util.find_spec("aiohttp") is not None
    return importlib.util.find_spec(client) is not None


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def parent_main(args: argparse.Namespace) -> int:
    failed = False
    print(
        f"triggergate http client benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"Python {platform.python_version()}, {os.cpu_count()} CPU cores; httpx {version('httpx')}, "
        f"httpcore {version('httpcore')}, aiohttp {version('aiohttp')}, "
        f"httpx-aiohttp {version('httpx-aiohttp')}, uvloop {version('uvloop')}"
    )
    print(
        f"server: bench/baseline_server.py (uvicorn + FastAPI) on {HOST}; clients: one process each on "
        f"uvloop, {args.concurrency} concurrent keep-alive POSTs of "
        f"{len(s3_record_payload(e2e_event_id(0)))} bytes"
    )
    clients = [c for c in (args.clients.split(",") if args.clients else CLIENTS) if c]
    with tempfile.TemporaryDirectory(prefix="triggergate-bench-http-") as tmp:
        port = free_port()
        with running(baseline_server(Path(tmp), port), accept_signal_exit=True) as server:
            if args.profile:
                kind, _, name = args.profile.rpartition(":")
                kind = kind or "client"
                row = child(
                    kind,
                    name,
                    port,
                    server.pid,
                    args,
                    args.firings if kind == "trigger" else args.requests,
                    args.warmup_requests,
                    profile=True,
                )
                table(f"{kind} {name} under cProfile (slower than without)", "req/s", [row], name)
                print(row.profile)
                return 0
            if args.part in ("all", "clients"):
                rows = [server_baseline(port, server.pid, args)]
                for client in clients:
                    if not available(client):
                        print(f"  ({client}: not installed, skipped)")
                        continue
                    rows.append(
                        child("client", client, port, server.pid, args, args.requests, args.warmup_requests)
                    )
                table(
                    f"1. clients: {args.requests} requests after {args.warmup_requests} of warm-up",
                    "req/s",
                    rows,
                    "httpx",
                )
                failed |= any(set(r.statuses) - {"200"} for r in rows)
            if args.part in ("all", "trigger"):
                rows = []
                for client in [c for c in clients if c in TRIGGER_CLIENTS]:
                    if not available(client):
                        print(f"  ({client}: not available to the trigger, skipped)")
                        continue
                    rows.append(
                        child("trigger", client, port, server.pid, args, args.firings, args.warmup_requests)
                    )
                table(
                    f"2. FiringRunner + HttpTrigger: {args.firings} firings after {args.warmup_requests} of "
                    f"warm-up, {args.in_flight} in flight",
                    "firings/s",
                    rows,
                    "httpx",
                )
                failed |= any(set(r.statuses) - {"succeeded"} for r in rows)
    print("\nresult:", "FAILED (non-200 answers or failed firings above)" if failed else "OK")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 000 requests, 1 000 firings")
    parser.add_argument("--requests", type=int, help="measured requests per client (default 20 000)")
    parser.add_argument("--firings", type=int, help="measured firings per trigger run (default 10 000)")
    parser.add_argument("--warmup-requests", type=int, help="unmeasured requests first (default 1 000)")
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        help="seconds the loadgen baseline measures (default 5, 2 with --quick); its warm-up is at most a "
        "quarter of it",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent requests (default 32)")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=256,
        help="concurrent firings in the trigger part (default 256, the runtime's max_in_flight)",
    )
    parser.add_argument("--part", choices=("all", "clients", "trigger"), default="all")
    parser.add_argument("--clients", help=f"comma-separated subset of {','.join(CLIENTS)}")
    parser.add_argument("--profile", metavar="[trigger:]CLIENT", help="profile one run with cProfile")
    parser.add_argument("--child", choices=("client", "trigger"), help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 2_000 if args.quick else 20_000
    if args.firings is None:
        args.firings = 1_000 if args.quick else 10_000
    if args.warmup_requests is None:
        args.warmup_requests = 200 if args.quick else 1_000
    for name in ("requests", "firings", "concurrency", "in_flight"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.baseline_seconds is None:
        args.baseline_seconds = 2.0 if args.quick else 5.0
    if not args.baseline_seconds > 0:
        parser.error(f"--baseline-seconds must be > 0, got {args.baseline_seconds}")
    if args.child:
        return child_main(args)
    try:
        return parent_main(args)
    except BenchError as exc:
        print(f"\nERROR: {exc}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
