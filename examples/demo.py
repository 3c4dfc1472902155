"""The demo: start triggergate on examples/webhook-demo, send it a few events, show what fired;
then run examples/workflow-from-template with --dry-run and show the one Workflow it writes.

Run it with ``make demo``. It starts a tiny "pipeline" HTTP endpoint on 127.0.0.1:12001 (the
target of the sensor's http trigger), starts ``triggergate run`` on port 12000, posts events the
way a LIMS would, prints what reached the pipeline, then stops the gateway with SIGTERM.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
GATEWAY = "http://127.0.0.1:12000"
received: list[tuple[dict[str, str], bytes]] = []


class Pipeline(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def wait_healthy(timeout: float = 20.0) -> bool:
    """True once the gateway answers ``GET /health`` on its webhook port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(GATEWAY + "/health", timeout=0.5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def post(path: str, doc: dict[str, object]) -> None:
    response = httpx.post(GATEWAY + path, json=doc, timeout=10)
    print(f"    POST {path} {json.dumps(doc)} -> {response.status_code} {response.text}")


def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 12001), Pipeline)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state = Path(tempfile.mkdtemp(prefix="triggergate-demo-"))
    step(f"starting: triggergate run examples/webhook-demo --state-dir {state}")
    log = open(state / "gateway.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "run",
            *[str(HERE / "webhook-demo"), "--state-dir", str(state / "state")],
            "--host",
            "127.0.0.1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        if not wait_healthy():
            print((state / "gateway.log").read_text())
            return 1
        step("a MiSeq run is uploaded (the sensor's filter wants NovaSeq runs: nothing fires)")
        post("/run-uploaded", {"run": "240101_M001_0001", "instrument": "MiSeq", "bucket": "seq-raw"})
        step("a NovaSeq run is uploaded (the sensor now waits for its sample sheet)")
        post("/run-uploaded", {"run": "240102_A002_0002", "instrument": "NovaSeqX", "bucket": "seq-raw"})
        step("its sample sheet arrives: run && sheet is true, the alignment starts")
        post("/sample-sheet", {"samples": ["NA12878", "NA12891"]})
        step("a request without JSON is refused with a reason, and nothing is stored")
        r = httpx.post(
            GATEWAY + "/sample-sheet", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        print(f"    POST /sample-sheet '{{not json' -> {r.status_code} {r.text}")
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        step("what the pipeline endpoint received")
        for headers, body in received:
            print(f"    Idempotency-Key: {headers.get('Idempotency-Key')}")
            print(f"    body: {body.decode()}")
    finally:
        step("stopping the gateway with SIGTERM")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        log.close()
        server.shutdown()
        print(f"    exit code {code}")
    step("the gateway's log")
    for line in (state / "gateway.log").read_text().splitlines():
        print("    " + line)
    print(f"\nState (durable bus, firings, dead letters) is in {state / 'state'}")
    if not (received and code == 0):
        return 1
    return workflow_demo(state)


def workflow_demo(state: Path) -> int:
    """Part two: a Workflow from the bwa-align WorkflowTemplate, written to the outbox (no cluster)."""
    example = HERE / "workflow-from-template"
    wf_state = state / "workflow-state"
    step(f"starting: triggergate run examples/workflow-from-template --dry-run --state-dir {wf_state}")
    log = open(state / "workflow-gateway.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "run",
            *[str(example), "--dry-run", "--state-dir", str(wf_state)],
            "--host",
            "127.0.0.1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        if not wait_healthy():
            print((state / "workflow-gateway.log").read_text())
            return 1
        step("the sequencer reports run R42 complete, and its retry delivers the same CloudEvent again")
        doc = {"run": "R42", "bucket": "lab-runs", "instrument": "NovaSeqX"}
        ce = {
            "ce-specversion": "1.0",
            "ce-id": "run-R42-complete",
            "ce-source": "sequencer-7",
            "ce-type": "run",
        }
        for _ in range(2):
            r = httpx.post(GATEWAY + "/run-complete", json=doc, headers=ce, timeout=10)
            sent = f"POST /run-complete {json.dumps(doc)} (ce-id run-R42-complete)"
            print(f"    {sent} -> {r.status_code} {r.text}")
        outbox = wf_state / "outbox"
        deadline = time.monotonic() + 10
        while not list(outbox.rglob("*.yaml")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        log.close()
    files = sorted(outbox.rglob("*.yaml"))
    step(f"the outbox holds {len(files)} Workflow(s) (with a cluster, they would be created in it)")
    for path in files:
        print(f"    {path.relative_to(wf_state)}")
        for line in path.read_text().splitlines():
            print("      " + line)
    print(f"\n    exit code {code}; `triggergate outbox list --state-dir {wf_state}` lists them too")
    return 0 if len(files) == 1 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
