"""Lineage end to end: a real `triggergate run --dry-run` on examples/workflow-from-template, then
`triggergate lineage` from the Workflow back to the webhook body and from the event to the Workflow;
and `lineage object NAMESPACE/NAME` read from the fake Kubernetes API server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli import app
from gateway.k8s import KubeClient, find_cluster
from gateway.store import SqliteStore
from sensors.objects import EVENT_IDS_ANNOTATION, FIRING_LABEL
from tests.fake_k8s import FakeKubeAPI
from tests.integration.gatewayproc import GatewayProcess, free_port
from tests.integration.kube_support import ARGO, NAMESPACE, make_fire, make_runner, submit_trigger
from tests.integration.test_examples_workflow import BODY, CLOUDEVENT, copy_example, triggergate, wait_until

pytestmark = pytest.mark.integration


def test_from_the_outbox_workflow_to_the_webhook_body_and_back(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "state"
    gw = GatewayProcess([copy_example(tmp_path, port)], state, port, extra_args=["--dry-run"]).start()
    try:
        response = httpx.post(f"http://127.0.0.1:{port}/run-complete", json=BODY, headers=CLOUDEVENT)
        assert response.status_code == 200
        (path,) = wait_until(lambda: list((state / "outbox" / "argo").glob("*.yaml")), what="the Workflow")
        wait_until(lambda: "trigger run-align/align-run succeeded" in gw.logs(), what="the firing record")
        # asked while the gateway runs: the store is shared (SQLite WAL)
        shown = triggergate("lineage", "object", "-f", str(path), "--state-dir", str(state))
    finally:
        assert gw.terminate() == 0, gw.logs()
    assert shown.returncode == 0, shown.stdout + shown.stderr
    wf = yaml.safe_load(path.read_text())
    key = wf["metadata"]["labels"][FIRING_LABEL]
    event_id = wf["metadata"]["annotations"][EVENT_IDS_ANNOTATION]
    out = shown.stdout
    assert f"Workflow argo/{path.stem} (from {path})" in out and f"firing {key}" in out
    assert f"    id:      {event_id}\n    source:  sequencer\n    subject: run-complete\n" in out
    for field, value in BODY.items():  # the webhook body that started the Workflow
        assert f'"{field}": "{value}"' in out
    assert f"created:        Workflow argo/{path.stem} (outbox file {path})" in out

    found = triggergate("lineage", "event", event_id, "--state-dir", str(state))
    assert found.returncode == 0, found.stdout + found.stderr
    (row,) = [line for line in found.stdout.splitlines() if key in line]
    assert "run-align/align-run" in row and "succeeded" in row
    assert f"created Workflow argo/{path.stem} in the outbox" in row
    doc = orjson.loads(triggergate("lineage", "event", event_id, "--json", "--state-dir", str(state)).stdout)
    assert doc["event"]["data"]["body"] == BODY and [f["key"] for f in doc["firings"]] == [key]


@pytest.fixture
def k8s() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI().start() as api:
        yield api


def test_object_by_name_is_read_from_the_cluster(tmp_path: Path, k8s: FakeKubeAPI) -> None:
    kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig")
    state = tmp_path / "state"

    async def fire() -> str:
        """A real argoWorkflow firing against the fake API server, recorded in a real store."""
        cluster = find_cluster(kubeconfig)
        assert cluster is not None
        kube = KubeClient(cluster, request_timeout=5.0)
        store = SqliteStore(state / "state.db")
        await store.start()
        try:
            async with httpx.AsyncClient() as http:
                runner = make_runner(submit_trigger(), kube, store, http, tmp_path)
                outcome = await runner.run(make_fire({"run": "R7", "bucket": "lab-runs"}, event_id="e-r7"))
            assert outcome.status == "succeeded", outcome.result
            return outcome.result
        finally:
            await store.close()
            await kube.close()

    result = asyncio.run(fire())
    (wf,) = k8s.objects(*ARGO, "workflows", NAMESPACE)
    name = wf["metadata"]["name"]
    assert result == f"created Workflow {NAMESPACE}/{name}"
    runner = CliRunner()
    started = time.monotonic()
    shown = runner.invoke(
        app,
        [
            "lineage",
            "object",
            f"{NAMESPACE}/{name}",
            "--kubeconfig",
            str(kubeconfig),
            "--state-dir",
            str(state),
        ],
    )
    assert time.monotonic() - started < 30
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith(f"Workflow {NAMESPACE}/{name} (from Kubernetes API at http://127.0.0.1:")
    assert f"firing {wf['metadata']['labels'][FIRING_LABEL]}" in shown.output
    assert '"run": "R7"' in shown.output and "    id:      e-r7\n" in shown.output

    gone = runner.invoke(
        app,
        [
            "lineage",
            "object",
            f"{NAMESPACE}/nope",
            "--kubeconfig",
            str(kubeconfig),
            "--state-dir",
            str(state),
        ],
    )
    assert gone.exit_code == 1
    assert (
        f"Workflow {NAMESPACE}/nope is neither in the outbox {state / 'outbox'} nor in the cluster"
        in gone.output
    )
    args = ["--kubeconfig", str(kubeconfig), "--state-dir", str(state)]
    job = runner.invoke(app, ["lineage", "object", f"{NAMESPACE}/x", "--kind", "Sample", *args])
    assert job.exit_code == 1 and "pass --api-version for kind Sample" in job.output
