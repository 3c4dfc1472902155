"""The whole process over real HTTP: webhook -> durable bus -> sensor -> http/log triggers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.gatewayproc import GatewayProcess, free_port
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.integration


def write_manifests(tmp: Path, port: int, receiver_url: str, *, retry: str = "", policy: str = "") -> Path:
    path = tmp / "manifests.yaml"
    path.write_text(
        f"""
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: lims
spec:
  webhook:
    run-uploaded:
      port: "{port}"
      endpoint: /run-uploaded
      method: POST
    sample-sheet:
      port: "{port}"
      endpoint: /sample-sheet
      method: POST
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: align
spec:
  dependencies:
    - name: run
      eventSourceName: lims
      eventName: run-uploaded
      filters:
        data:
          - path: body.instrument
            type: string
            value: ["^NovaSeq"]
    - name: sheet
      eventSourceName: lims
      eventName: sample-sheet
  triggers:
    - template:
        name: start-alignment
        conditions: "run && sheet"
        http:
          url: {receiver_url}/align
          method: POST
          payload:
            - src: {{dependencyName: run, dataKey: body.run}}
              dest: run
            - src: {{dependencyName: sheet, dataKey: body.samples}}
              dest: samples
            - src: {{dependencyName: sheet, dataKey: body.samples}}
              dest: raw_samples
          {policy}
      {retry}
    - template:
        name: audit
        conditions: run
        log: {{}}
"""
    )
    return path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver().start()
    yield rec
    rec.stop()


def test_webhook_to_http_trigger_end_to_end(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    manifests = write_manifests(tmp_path, port, receiver.url)
    gw = GatewayProcess([manifests], tmp_path / "state", port).start()
    try:
        base = f"http://127.0.0.1:{port}"
        # filtered out: not a NovaSeq
        assert (
            httpx.post(f"{base}/run-uploaded", json={"run": "r0", "instrument": "MiSeq"}).status_code == 200
        )
        assert (
            httpx.post(f"{base}/run-uploaded", json={"run": "r1", "instrument": "NovaSeqX"}).status_code
            == 200
        )
        # latest event wins: r2 replaces r1 before the sample sheet arrives
        assert (
            httpx.post(f"{base}/run-uploaded", json={"run": "r2", "instrument": "NovaSeqX"}).status_code
            == 200
        )
        assert httpx.post(f"{base}/sample-sheet", json={"samples": ["S1", "S2"]}).status_code == 200
        got = receiver.wait_for(1)
        assert got[0].path == "/align"
        assert got[0].json() == {"run": "r2", "samples": '["S1","S2"]', "raw_samples": '["S1","S2"]'}
        assert len(got[0].headers["idempotency-key"]) == 32
        assert got[0].headers["x-triggergate-trigger"] == "start-alignment"
    finally:
        code = gw.terminate()
    assert code == 0, gw.logs()
    logs = gw.logs()
    assert "trigger align/audit fired by run" in logs  # the log trigger ran for r1 and r2
    assert logs.count("trigger align/audit fired by run") == 2
    # A clean restart repeats nothing.
    gw2 = GatewayProcess([manifests], tmp_path / "state", port).start()
    try:
        httpx.post(f"http://127.0.0.1:{port}/sample-sheet", json={"samples": ["S3"]})
    finally:
        assert gw2.terminate() == 0
    assert len(receiver.snapshot()) == 1


def test_failed_trigger_is_retried_then_dead_lettered(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    receiver.statuses.extend([503, 500, 500])
    manifests = write_manifests(
        tmp_path,
        port,
        receiver.url,
        retry="retryStrategy: {steps: 3, duration: 10ms, factor: 2}",
    )
    gw = GatewayProcess([manifests], tmp_path / "state", port).start()
    try:
        base = f"http://127.0.0.1:{port}"
        httpx.post(f"{base}/run-uploaded", json={"run": "r1", "instrument": "NovaSeqX"})
        httpx.post(f"{base}/sample-sheet", json={"samples": ["S1"]})
        got = receiver.wait_for(3)
        assert len({r.headers["idempotency-key"] for r in got}) == 1  # the same firing, three attempts
    finally:
        assert gw.terminate() == 0
    assert "dead letter" in gw.logs()
    assert len(receiver.snapshot()) == 3


def test_sigterm_exits_zero(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    manifests = write_manifests(tmp_path, port, receiver.url)
    gw = GatewayProcess([manifests], tmp_path / "state", port).start()
    assert gw.terminate() == 0
