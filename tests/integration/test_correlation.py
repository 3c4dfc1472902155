"""Keyed correlation through a real ``triggergate run``: pairing per sample, expiry, restart."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.gatewayproc import ROOT, GatewayProcess, free_port
from tests.integration.receiver import Received, Receiver

pytestmark = pytest.mark.integration

RUN = "250304_A01234_0042_BHXXYYDSXC"


def write_manifests(tmp: Path, port: int, receiver_url: str, window: str) -> Path:
    path = tmp / "manifests.yaml"
    path.write_text(
        f"""
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: lab
spec:
  webhook:
    upload:
      port: "{port}"
      endpoint: /upload
      method: POST
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: sequencer
spec:
  dependencies:
    - name: r1
      eventSourceName: lab
      eventName: upload
      filters:
        data:
          - {{path: body.key, type: string, value: ['_R1_001\\.fastq\\.gz$']}}
    - name: r2
      eventSourceName: lab
      eventName: upload
      filters:
        data:
          - {{path: body.key, type: string, value: ['_R2_001\\.fastq\\.gz$']}}
  triggers:
    - template:
        name: align
        conditions: "r1 && r2"
        correlation:
          window: {window}
          key: "{{{{ .run }}}}/{{{{ .sample }}}}"
          dependencies:
            r1: {{path: body.key, parse: illumina}}
            r2: {{path: body.key, parse: illumina}}
          onExpire:
            template:
              name: notify-lab
              http:
                url: {receiver_url}/expired
                method: POST
                payload:
                  - src: {{dependencyName: r1, dataKey: body.key, value: ""}}
                    dest: r1
                  - src: {{dependencyName: r2, dataKey: body.key, value: ""}}
                    dest: r2
        http:
          url: {receiver_url}/align
          method: POST
          payload:
            - src: {{dependencyName: r1, dataKey: body.key}}
              dest: fastq1
            - src: {{dependencyName: r2, dataKey: body.key}}
              dest: fastq2
"""
    )
    return path


def fastq(sample: str, read: int) -> str:
    return f"{RUN}/Data/{sample}_S1_L001_R{read}_001.fastq.gz"


def post(port: int, key: str) -> None:
    response = httpx.post(f"http://127.0.0.1:{port}/upload", json={"key": key}, timeout=10)
    assert response.status_code == 200, response.text


def wait_for_path(receiver: Receiver, path: str, count: int, timeout: float = 20.0) -> list[Received]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [r for r in receiver.snapshot() if r.path == path]
        if len(got) >= count:
            return got
        time.sleep(0.05)
    raise AssertionError(
        f"{path}: expected {count} request(s), got {[r.json() for r in receiver.snapshot()]}"
    )


def dlq_list(state_dir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "dlq", "list", "--state-dir", str(state_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver().start()
    yield rec
    rec.stop()


def test_pairs_per_sample_and_expires_the_incomplete_one(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    manifests = write_manifests(tmp_path, port, receiver.url, window="3s")
    state = tmp_path / "state"
    gw = GatewayProcess([manifests], state, port).start()
    try:
        # three samples posted interleaved, plus D whose R2 never comes
        for sample, read in [("A", 1), ("B", 1), ("D", 1), ("C", 2), ("A", 2), ("C", 1), ("B", 2)]:
            post(port, fastq(sample, read))
        aligned = wait_for_path(receiver, "/align", 3)
        pairs = sorted((r.json()["fastq1"], r.json()["fastq2"]) for r in aligned)
        assert pairs == [(fastq(s, 1), fastq(s, 2)) for s in "ABC"]  # never R1 of one with R2 of another
        assert len({r.headers["idempotency-key"] for r in aligned}) == 3
        (expired,) = wait_for_path(receiver, "/expired", 1, timeout=30)
        assert expired.json() == {"r1": fastq("D", 1), "r2": ""}
        assert expired.headers["x-triggergate-trigger"] == "notify-lab"
        listed = dlq_list(state)
        assert (
            f"sequencer/align  attempts=0  correlation window expired: missing r2 for key {RUN}/D" in listed
        )
        assert listed.count("correlation window expired") == 1
    finally:
        code = gw.terminate()
    assert code == 0, gw.logs()
    logs = gw.logs()
    assert f"correlation window expired for key {RUN}/D: missing r2" in logs
    assert len([r for r in receiver.snapshot() if r.path == "/align"]) == 3
    # A restart replays nothing that was carried out: no second expiry, no second notice.
    gw2 = GatewayProcess([manifests], state, port).start()
    try:
        time.sleep(1.5)
    finally:
        assert gw2.terminate() == 0
    assert len(receiver.snapshot()) == 4
    assert dlq_list(state).count("correlation window expired") == 1


def test_pending_keys_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    manifests = write_manifests(tmp_path, port, receiver.url, window="10m")
    state = tmp_path / "state"
    gw = GatewayProcess([manifests], state, port).start()
    try:
        post(port, fastq("E", 1))
        post(port, fastq("F", 2))
    finally:
        assert gw.terminate() == 0
    assert receiver.snapshot() == []
    gw = GatewayProcess([manifests], state, port).start()
    try:
        post(port, fastq("E", 2))  # pairs with the R1 posted before the restart
        post(port, fastq("F", 1))
        aligned = wait_for_path(receiver, "/align", 2)
    finally:
        assert gw.terminate() == 0
    assert sorted((r.json()["fastq1"], r.json()["fastq2"]) for r in aligned) == [
        (fastq("E", 1), fastq("E", 2)),
        (fastq("F", 1), fastq("F", 2)),
    ]


def test_a_partial_set_whose_window_passed_during_downtime_expires_after_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    manifests = write_manifests(tmp_path, port, receiver.url, window="3s")
    state = tmp_path / "state"
    gw = GatewayProcess([manifests], state, port).start()
    try:
        post(port, fastq("G", 1))
    finally:
        assert gw.terminate() == 0  # stopped before the window ended: G's R1 stays unacknowledged
    assert receiver.snapshot() == []
    time.sleep(3.5)
    gw = GatewayProcess([manifests], state, port).start()
    try:
        (expired,) = wait_for_path(receiver, "/expired", 1)
        assert expired.json()["r1"] == fastq("G", 1)
        assert f"missing r2 for key {RUN}/G" in dlq_list(state)
    finally:
        assert gw.terminate() == 0


def test_bench_prints_throughput_and_memory_per_key() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "correlation.py"), "--keys", "2000", "--repeat", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for label in ("2,000 keys", "overall:", "events/s", "engine state:", "bytes", "both:"):
        assert label in done.stdout, done.stdout
    assert "engine state per pending key: met" in done.stdout  # the bound, not a timing
