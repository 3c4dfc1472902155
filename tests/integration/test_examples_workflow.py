"""examples/workflow-from-template run by the real gateway process: in --dry-run mode (outbox), and
against the fake Kubernetes API server (load-time check, exactly one Workflow, dlq replay)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sensors.engine import idempotency_key
from sensors.objects import EVENT_IDS_ANNOTATION, FIRING_LABEL, deterministic_name
from tests.fake_k8s import FakeKubeAPI
from tests.integration.gatewayproc import ROOT, GatewayProcess, free_port
from tests.unit.sensor_factory import event

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "workflow-from-template"
CLOUDEVENT = {
    "ce-specversion": "1.0",
    "ce-id": "run-R42-complete",
    "ce-source": "novaseq-01",
    "ce-type": "run.complete",
}
BODY = {"run": "R42", "bucket": "lab-runs", "instrument": "NovaSeqX"}


def copy_example(tmp: Path, port: int) -> Path:
    target = tmp / "manifests"
    target.mkdir()
    for path in EXAMPLE.glob("*.yaml"):
        (target / path.name).write_text(path.read_text().replace('port: "12000"', f'port: "{port}"'))
    return target


def wait_until(condition: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def triggergate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def check_workflow(wf: dict[str, Any]) -> None:
    """Name derived from the firing, lineage labels, parameters from the event."""
    metadata = wf["metadata"]
    (event_id,) = metadata["annotations"][EVENT_IDS_ANNOTATION].split(",")
    key = idempotency_key("run-align", "align-run", {"run": event(id=event_id)})
    assert metadata["name"] == deterministic_name("run-align-", key)
    assert metadata["namespace"] == "argo"
    assert metadata["labels"][FIRING_LABEL] == key
    assert metadata["labels"]["events.argoproj.io/sensor"] == "run-align"
    assert metadata["labels"]["events.argoproj.io/trigger"] == "align-run"
    assert wf["spec"] == {
        "workflowTemplateRef": {"name": "run-align"},
        "arguments": {
            "parameters": [
                {"name": "run-id", "value": "R42"},
                {"name": "bucket", "value": "lab-runs"},
                {"name": "reference", "value": "GRCh38"},
            ]
        },
    }


def test_example_in_dry_run_writes_one_workflow_to_the_outbox(tmp_path: Path) -> None:
    port = free_port()
    manifests = copy_example(tmp_path, port)
    state = tmp_path / "state"
    gw = GatewayProcess([manifests], state, port, extra_args=["--dry-run"]).start()
    try:
        url = f"http://127.0.0.1:{port}/run-complete"
        assert httpx.post(url, json=BODY, headers=CLOUDEVENT).status_code == 200
        files = wait_until(lambda: list((state / "outbox" / "argo").glob("*.yaml")), what="the outbox file")
        # the sender retries the same CloudEvent, and a MiSeq run is filtered out: still one Workflow
        assert httpx.post(url, json=BODY, headers=CLOUDEVENT).status_code == 200
        assert httpx.post(url, json={**BODY, "instrument": "MiSeq"}).status_code == 200
        time.sleep(1.0)
    finally:
        assert gw.terminate() == 0, gw.logs()
    assert len(files) == 1 and list((state / "outbox" / "argo").glob("*.yaml")) == files
    check_workflow(yaml.safe_load(files[0].read_text()))
    assert "dry run: Kubernetes objects are written to" in gw.logs()
    listed = triggergate("outbox", "list", "--state-dir", str(state))
    assert listed.returncode == 0 and f"argo/{files[0].stem}  Workflow" in listed.stdout


@pytest.fixture
def k8s() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI().start() as api:
        yield api


def test_example_against_the_api_server_warns_creates_one_and_replays_dead_letters(
    tmp_path: Path, k8s: FakeKubeAPI
) -> None:
    port = free_port()
    manifests = copy_example(tmp_path, port)
    state = tmp_path / "state"
    kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig")
    gw = GatewayProcess([manifests], state, port, extra_args=["--kubeconfig", str(kubeconfig)]).start()
    try:
        # load-time check: the WorkflowTemplate is not installed yet
        wait_until(lambda: "WorkflowTemplate argo/run-align does not exist" in gw.logs(), what="the warning")
        assert "Kubernetes triggers use the Kubernetes API at http://127.0.0.1" in gw.logs()
        k8s.put(yaml.safe_load((EXAMPLE / "workflow-template.yaml").read_text()))

        url = f"http://127.0.0.1:{port}/run-complete"
        assert httpx.post(url, json=BODY, headers=CLOUDEVENT).status_code == 200
        (wf,) = wait_until(
            lambda: k8s.objects("argoproj.io", "v1alpha1", "workflows", "argo"), what="a Workflow"
        )
        check_workflow(wf)

        # RBAC forgot the create verb: the next run goes to the dead letters with the API's reason
        k8s.forbid("create", "argoproj.io", "workflows", "argo")
        second = {**CLOUDEVENT, "ce-id": "run-R43-complete"}
        assert httpx.post(url, json={**BODY, "run": "R43"}, headers=second).status_code == 200
        listed = wait_until(
            lambda: (
                (r := triggergate("dlq", "list", "--state-dir", str(state))).stdout.count("Forbidden") and r
            ),
            what="a dead letter",
        )
        assert "run-align/align-run" in listed.stdout and "403 Forbidden" in listed.stdout
        assert len(k8s.objects("argoproj.io", "v1alpha1", "workflows", "argo")) == 1

        k8s.allow_all()  # RBAC fixed; the running gateway replays on request
        replayed = triggergate(
            "dlq", "replay", "--all", "--wait", "--timeout", "30", "--state-dir", str(state)
        )
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "requested replay of dead letter" in replayed.stdout and ": succeeded" in replayed.stdout
        workflows = k8s.objects("argoproj.io", "v1alpha1", "workflows", "argo")
        assert len(workflows) == 2
        assert {w["spec"]["arguments"]["parameters"][0]["value"] for w in workflows} == {"R42", "R43"}
        again = triggergate("dlq", "replay", "--all", "--state-dir", str(state))
        assert again.returncode == 0 and "no dead letters to replay" in again.stdout
    finally:
        assert gw.terminate() == 0, gw.logs()
    assert len(k8s.objects("argoproj.io", "v1alpha1", "workflows", "argo")) == 2
