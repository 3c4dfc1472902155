"""The demo: start triggergate on examples/webhook-demo, send it a few events, show what fired;
then run examples/workflow-from-template with --dry-run and show the one Workflow it writes; then
run examples/sequencer-upload with --dry-run against a moto S3 server: a simulated NovaSeq run is
uploaded, its notifications arrive shuffled and duplicated, and CopyComplete.txt fans out into one
bwa-align Workflow per complete sample.

Run it with ``make demo`` (or ``python examples/demo.py sequencer-upload`` for the third part
alone). It starts a tiny "pipeline" HTTP endpoint on 127.0.0.1:12001 (the target of the sensor's
http trigger), starts ``triggergate run`` on port 12000, posts events the way a LIMS would, prints
what reached the pipeline, then stops the gateway with SIGTERM. Every process it starts (gateways,
the moto server) is stopped by its PID before it returns.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import httpx
import yaml

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


def wait_healthy(
    timeout: float = 20.0, base: str = GATEWAY, proc: subprocess.Popen[bytes] | None = None
) -> bool:
    """True once the gateway answers ``GET /health`` on its webhook port (False if ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            if httpx.get(base + "/health", timeout=0.5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def post(path: str, doc: dict[str, object]) -> None:
    response = httpx.post(GATEWAY + path, json=doc, timeout=10)
    print(f"    POST {path} {json.dumps(doc)} -> {response.status_code} {response.text}")


def start_gateway(
    args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``triggergate run ARGS --host 127.0.0.1`` in the background, its output in ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", *args, "--host", "127.0.0.1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )


def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 12001), Pipeline)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state = Path(tempfile.mkdtemp(prefix="triggergate-demo-"))
    step(f"starting: triggergate run examples/webhook-demo --state-dir {state}")
    proc = start_gateway(
        [str(HERE / "webhook-demo"), "--state-dir", str(state / "state")], state / "gateway.log"
    )
    try:
        if not wait_healthy(proc=proc):
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
    """Part two: a Workflow from the run-align WorkflowTemplate, written to the outbox (no cluster)."""
    example = HERE / "workflow-from-template"
    wf_state = state / "workflow-state"
    step(f"starting: triggergate run examples/workflow-from-template --dry-run --state-dir {wf_state}")
    proc = start_gateway(
        [str(example), "--dry-run", "--state-dir", str(wf_state)], state / "workflow-gateway.log"
    )
    try:
        if not wait_healthy(proc=proc):
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
    files = sorted(outbox.rglob("*.yaml"))
    step(f"the outbox holds {len(files)} Workflow(s) (with a cluster, they would be created in it)")
    for path in files:
        print(f"    {path.relative_to(wf_state)}")
        for line in path.read_text().splitlines():
            print("      " + line)
    print(f"\n    exit code {code}; `triggergate outbox list --state-dir {wf_state}` lists them too")
    if len(files) != 1 or code != 0:
        return 1
    return sequencer_demo(state)


# --------------------------------------------------------------------------- part three

BUCKET = "seq-landing"
RUN = "250304_A01234_0042_BHXXYYDSXC"
# (sample, S number, lanes, reads missing) of the simulated run; S0 is bcl-convert's Undetermined.
SAMPLES = [
    ("NA12878", 1, (1, 2), ()),
    ("NA12891", 2, (1, 2), ()),
    ("NA12892", 3, (1, 2), ()),
    ("HG00096", 4, (1, 2), ()),
    ("HG00097", 5, (1, 2), ()),
    ("HG00099", 6, (1, 2), ()),
    ("NA19240", 7, (1, 2), ((2, "R2"),)),  # lane 2's R2 never arrived
    ("Undetermined", 0, (1, 2), ()),
]


def run_objects(run: str = RUN, samples: list[Any] = SAMPLES) -> list[tuple[str, bytes]]:
    """The keys (and a few bytes of content) of a simulated NovaSeq run folder under runs/."""
    folder = f"runs/{run}"
    objects = [(f"{folder}/RunInfo.xml", b"<RunInfo/>"), (f"{folder}/SampleSheet.csv", b"[Data]\n")]
    for sample, number, lanes, missing in samples:
        for lane in lanes:
            for read in ("R1", "R2"):
                if (lane, read) not in missing:
                    key = f"{folder}/Fastq/{sample}_S{number}_L{lane:03d}_{read}_001.fastq.gz"
                    objects.append((key, f"@{sample}:{lane}:{read}\nACGT\n+\nFFFF\n".encode()))
    objects.append((f"{folder}/RTAComplete.txt", b""))  # base calling done; not the marker
    return objects


def minio_notification(bucket: str, key: str, etag: str, size: int, sequencer: int) -> dict[str, Any]:
    """What MinIO's webhook target POSTs for one upload (the record key is Go-QueryEscape'd)."""
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/{key}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "awsRegion": "",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "eventName": "s3:ObjectCreated:Put",
                "userIdentity": {"principalId": "sequencer-copy"},
                "requestParameters": {
                    "principalId": "sequencer-copy",
                    "region": "",
                    "sourceIPAddress": "10.1.2.3",
                },
                "responseElements": {"x-amz-request-id": f"{sequencer:016X}"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "Config",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "sequencer-copy"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key),
                        "size": size,
                        "eTag": etag,
                        "contentType": "application/octet-stream",
                        "sequencer": f"{sequencer:016X}",
                    },
                },
                "source": {"host": "10.1.2.3", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7"},
            }
        ],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A moto S3 server on a free loopback port (moto[server] comes with the dev install)."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"moto server did not start; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM by PID; SIGKILL if it does not exit in 30 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=10)


def demo_manifests(target: Path, port: int, s3_url: str) -> Path:
    """examples/sequencer-upload as the demo runs it: pushed mode only (its sqs block removed), the
    webhook on ``port``, and the fan-out listing the moto server (``fanOut.s3``)."""
    example = HERE / "sequencer-upload"
    target.mkdir(parents=True, exist_ok=True)
    source = yaml.safe_load((example / "eventsource.yaml").read_text())
    entry = source["spec"]["s3"]["run-files"]
    del entry["sqs"]
    entry["webhook"]["port"] = str(port)
    sensor = yaml.safe_load((example / "sensor.yaml").read_text())
    fan_out = sensor["spec"]["triggers"][0]["template"]["fanOut"]
    fan_out["s3"] = {"endpoint": s3_url, "region": "us-east-1"}
    (target / "eventsource.yaml").write_text(yaml.safe_dump(source, sort_keys=False))
    (target / "sensor.yaml").write_text(yaml.safe_dump(sensor, sort_keys=False))
    return target


def sequencer_demo(state: Path, port: int = 12000) -> int:
    """Part three: a sequencing run lands in a bucket; one bwa-align Workflow per sample."""
    work = state / "sequencer"
    work.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    step("part three, examples/sequencer-upload: starting a moto S3 server (stands in for S3/MinIO)")
    moto, s3_url = start_moto(work / "moto.log")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}
    gateway: subprocess.Popen[bytes] | None = None
    log_path, wf_state = work / "gateway.log", work / "state"
    complete = [sample for sample, number, _, missing in SAMPLES if number and not missing]
    try:
        print(f"    moto server pid {moto.pid} at {s3_url}")
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name="us-east-1",
            aws_access_key_id="demo",
            aws_secret_access_key="demo",
        )
        s3.create_bucket(Bucket=BUCKET)
        manifests = demo_manifests(work / "manifests", port, s3_url)
        step(f"starting: triggergate run {manifests} --dry-run --state-dir {wf_state}")
        print("    (examples/sequencer-upload in pushed mode: MinIO-style notifications POSTed to")
        print(f"     {base}/s3/run-files; fanOut.s3 lists the moto server)")
        gateway = start_gateway([str(manifests), "--dry-run", "--state-dir", str(wf_state)], log_path, env)
        if not wait_healthy(base=base, proc=gateway):
            print(log_path.read_text())
            return 1

        objects = run_objects()
        step(f"the sequencer's copy job uploads run {RUN}: {len(objects)} objects to s3://{BUCKET}/runs/")
        notes: list[dict[str, Any]] = []
        for n, (key, body) in enumerate(objects, start=1):
            etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
            notes.append(minio_notification(BUCKET, key, etag, len(body), 0x1829A7F3C2B10000 + n))
        for sample, number, lanes, missing in SAMPLES:
            files = 2 * len(lanes) - len(missing)
            extra = "  <- lane 2 has no R2" if missing else ("  <- unassigned reads" if number == 0 else "")
            print(f"    {sample}_S{number}: {files} FASTQ files{extra}")
        rng = random.Random(6)
        delivered = notes + rng.sample(notes, 9)  # MinIO's queue_dir replays some after an outage
        rng.shuffle(delivered)
        step(f"their {len(notes)} notifications arrive shuffled, 9 of them twice: {len(delivered)} POSTs")
        with httpx.Client(base_url=base, timeout=10) as client:
            codes: dict[int, int] = {}
            for note in delivered:
                code = client.post("/s3/run-files", json=note).status_code
                codes[code] = codes.get(code, 0) + 1
            print(f"    answers: {codes}  (each 200 only once its event is durable)")
            marker = f"runs/{RUN}/CopyComplete.txt"
            step(f"the copy job writes {marker} last; its notification is delivered twice")
            etag = s3.put_object(Bucket=BUCKET, Key=marker, Body=b"")["ETag"].strip('"')
            note = minio_notification(BUCKET, marker, etag, 0, 0x1829A7F3C2B1FFFF)
            for _ in range(2):
                r = client.post("/s3/run-files", json=note)
                print(f"    POST /s3/run-files ({marker}) -> {r.status_code} {r.text}")
        outbox = wf_state / "outbox"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (
                len(list(outbox.rglob("*.yaml"))) >= len(complete)
                and "fanned out run" in log_path.read_text()
            ):
                break
            time.sleep(0.05)
        time.sleep(0.5)  # anything more (a second fan-out, a doubled Workflow) would show now
    finally:
        code = stop(gateway) if gateway is not None else 1
        moto_code = stop(moto)
        print(f"\n    gateway exit code {code}; moto server (pid {moto.pid}) stopped ({moto_code})")
    return report_sequencer(wf_state, log_path, complete, code)


def parameters(workflow: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}


def report_sequencer(wf_state: Path, log_path: Path, complete: list[str], code: int) -> int:
    order = {sample: number for sample, number, _, _ in SAMPLES}
    found = [(path, yaml.safe_load(path.read_text())) for path in (wf_state / "outbox").rglob("*.yaml")]
    found.sort(key=lambda pair: order.get(str(parameters(pair[1]).get("sample")), 99))
    files = [path for path, _ in found]
    workflows = [wf for _, wf in found]
    by_sample: dict[str, int] = {}
    step(
        f"the outbox holds {len(files)} Workflow(s), one per complete sample (with a cluster, created in it)"
    )
    for path, wf in zip(files, workflows, strict=True):
        params = parameters(wf)
        by_sample[params["sample"]] = by_sample.get(params["sample"], 0) + 1
        meta = wf["metadata"]
        print(f"    {path.relative_to(wf_state)}  sample {params['sample']}")
        for name in ("run", "fastq1", "fastq2", "output"):
            for i, value in enumerate(params[name].split(" ")):
                print(f"      {name if i == 0 else '':8}{value}")
        print(f"      firing  {meta['labels']['triggergate.io/firing']} (label triggergate.io/firing)")
        marker_id, item_id = meta["annotations"]["triggergate.io/event-ids"].split(",")
        print(f"      events  {marker_id} (CopyComplete.txt), {item_id} (the sample item)")
    if files:
        step(f"one of them in full: {files[0].relative_to(wf_state)}")
        for line in files[0].read_text().splitlines():
            print("      " + line)
    step("what the gateway logged about the run (skipped, incomplete, fanned out)")
    for line in log_path.read_text().splitlines():
        if "fanned out" in line or "incomplete" in line:
            line = line.split(" ", 2)[2]  # without the date and time
            if " fired by " in line and len(line) > 200:  # the log trigger prints the whole item
                line = line[:196] + " ..."
            print("    " + line)
    lineage_ok = False
    if workflows:
        marker_id = workflows[0]["metadata"]["annotations"]["triggergate.io/event-ids"].split(",")[0]
        step(
            f"triggergate lineage event {marker_id} --state-dir {wf_state}   "
            "(lineage: what the CopyComplete.txt event started)"
        )
        lineage = subprocess.run(
            [sys.executable, "-m", "gateway", "lineage", "event", marker_id, "--state-dir", str(wf_state)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        for line in lineage.stdout.splitlines():
            print("    " + (line[:196] + " ..." if len(line) > 200 else line))
        lineage_ok = lineage.returncode == 0 and lineage.stdout.count("created Workflow") == len(complete)
    step(f"triggergate dlq list --state-dir {wf_state}   (the incomplete sample's report)")
    listed = subprocess.run(
        [sys.executable, "-m", "gateway", "dlq", "list", "--state-dir", str(wf_state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in listed.stdout.splitlines():
        print("    " + line)
    letters = [line for line in listed.stdout.splitlines() if "sequencer-upload/align" in line]
    ok = (
        code == 0
        and sorted(by_sample) == sorted(complete)
        and all(n == 1 for n in by_sample.values())
        and len(letters) == 1
        and "NA19240" in letters[0]
        and lineage_ok
    )
    print(
        f"\n    {'OK' if ok else 'UNEXPECTED'}: {len(by_sample)} Workflows for {len(complete)} complete "
        f"samples, none for Undetermined, {len(letters)} report for NA19240"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["sequencer-upload"]:
        sys.exit(sequencer_demo(Path(tempfile.mkdtemp(prefix="triggergate-demo-"))))
    sys.exit(main())
