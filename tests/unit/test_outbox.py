"""The outbox: the KubeAPI of dry runs and of gateways without a cluster, as YAML files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.k8s import KubeError
from gateway.outbox import Outbox, list_outbox
from gateway.store import SqliteStore
from sensors.objects import FIRING_LABEL, name_digest
from tests.integration.kube_support import make_fire, make_runner, submit_trigger

WF = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w1"}, "spec": {"x": 1}}


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox")


async def test_create_writes_a_file_and_a_second_create_conflicts(outbox: Outbox) -> None:
    created = await outbox.create(WF, "argo")
    path = outbox.root / "argo" / "w1.yaml"
    assert yaml.safe_load(path.read_text()) == created
    assert created["metadata"]["namespace"] == "argo" and created["metadata"]["resourceVersion"] == "1"
    with pytest.raises(KubeError) as info:
        await outbox.create(WF, "argo")
    assert info.value.status == 409 and info.value.already_exists and not info.value.retriable
    assert await outbox.get("argoproj.io/v1alpha1", "Workflow", "w1", "argo") == created
    with pytest.raises(KubeError) as missing:
        await outbox.get("v1", "ConfigMap", "w1", "argo")  # same name, other kind
    assert missing.value.not_found


async def test_a_create_that_fails_half_way_leaves_no_object_and_no_temporary(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gateway.outbox.os.fsync", disk_full)
    with pytest.raises(OSError):
        await outbox.create(WF, "argo")
    assert list((outbox.root / "argo").iterdir()) == []  # a reader never sees a half-written object
    monkeypatch.undo()
    created = await asyncio.gather(*(outbox.create(WF, "argo") for _ in range(4)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in created) == 1
    assert [p.name for p in (outbox.root / "argo").iterdir()] == ["w1.yaml"]


async def test_generate_name_cluster_scope_list_and_selectors(outbox: Outbox) -> None:
    generated = await outbox.create(
        {**WF, "metadata": {"generateName": "run-", "labels": {"a": "1"}}}, "argo"
    )
    assert generated["metadata"]["name"].startswith("run-") and len(generated["metadata"]["name"]) == 9
    await outbox.create({**WF, "metadata": {"name": "w2", "labels": {"a": "2"}}}, "argo")
    names = [o["metadata"]["name"] for o in await outbox.list("argoproj.io/v1alpha1", "Workflow", "argo")]
    assert sorted(names) == sorted([generated["metadata"]["name"], "w2"])
    selected = await outbox.list("argoproj.io/v1alpha1", "Workflow", "argo", label_selector="a=2")
    assert [o["metadata"]["name"] for o in selected] == ["w2"]
    assert await outbox.list("argoproj.io/v1alpha1", "Workflow", "argo", label_selector="a!=1,a") == selected
    namespace = await outbox.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}}, "argo"
    )
    assert "namespace" not in namespace["metadata"]
    assert (outbox.root / "_cluster" / "lab.yaml").is_file()
    assert not await outbox.is_namespaced("v1", "Namespace") and await outbox.is_namespaced("v1", "ConfigMap")


async def test_replace_checks_the_resource_version_and_patch_and_delete(outbox: Outbox) -> None:
    created = await outbox.create(WF, "argo")
    updated = await outbox.replace({**created, "spec": {"x": 2}}, "argo")
    assert updated["metadata"]["resourceVersion"] == "2" and updated["spec"] == {"x": 2}
    with pytest.raises(KubeError) as stale:
        await outbox.replace({**created, "spec": {"x": 3}}, "argo")
    assert stale.value.conflict
    patched = await outbox.patch(
        "argoproj.io/v1alpha1", "Workflow", "w1", "argo", {"spec": {"suspend": True}}
    )
    assert patched["spec"] == {"x": 2, "suspend": True} and patched["metadata"]["resourceVersion"] == "3"
    ops = [{"op": "add", "path": "/spec/y", "value": 1}]
    patched = await outbox.patch(
        "argoproj.io/v1alpha1", "Workflow", "w1", "argo", ops, "application/json-patch+json"
    )
    assert patched["spec"]["y"] == 1
    with pytest.raises(KubeError) as bad:
        await outbox.patch(
            "argoproj.io/v1alpha1",
            "Workflow",
            "w1",
            "argo",
            [{"op": "remove", "path": "/nope"}],
            "application/json-patch+json",
        )
    assert bad.value.status == 422
    await outbox.delete("argoproj.io/v1alpha1", "Workflow", "w1", "argo")
    with pytest.raises(KubeError):
        await outbox.delete("argoproj.io/v1alpha1", "Workflow", "w1", "argo")
    assert list_outbox(outbox.root) == []


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    st = SqliteStore(tmp_path / "state.db")
    await st.start()
    yield st
    await st.close()


async def test_argo_workflow_trigger_writes_to_the_outbox_once(
    outbox: Outbox, store: SqliteStore, tmp_path: Path
) -> None:
    policy = {"k8s": {"labels": {"workflows.argoproj.io/phase": "Succeeded"}}}
    fire = make_fire({"run": "R42", "bucket": "lab-runs"})
    async with httpx.AsyncClient() as http:
        outcome = await make_runner(submit_trigger(policy=policy), outbox, store, http, tmp_path).run(fire)
        name = "bwa-align-" + name_digest(fire.key)
        assert outcome.status == "succeeded"
        assert outcome.result == (
            f"created Workflow argo/{name} in the outbox; "
            "policy.k8s (workflows.argoproj.io/phase=Succeeded) not checked in the outbox"
        )
        other = SqliteStore(tmp_path / "other.db")
        await other.start()
        try:
            again = await make_runner(submit_trigger(), outbox, other, http, tmp_path).run(fire)
        finally:
            await other.close()
    assert "already exists (created by this firing before)" in again.result
    (entry,) = list_outbox(outbox.root)
    assert (entry.namespace, entry.name, entry.kind, entry.firing) == ("argo", name, "Workflow", fire.key)
    wf = yaml.safe_load(entry.path.read_text())
    assert wf["metadata"]["labels"][FIRING_LABEL] == fire.key
    assert wf["spec"]["arguments"]["parameters"] == [
        {"name": "run-id", "value": "R42"},
        {"name": "bucket", "value": "lab-runs"},
    ]


async def test_submit_from_a_template_in_the_outbox_needs_no_template(
    outbox: Outbox, store: SqliteStore, tmp_path: Path
) -> None:
    from tests.integration.kube_support import make_trigger

    source = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "bwa"}}
    trigger = make_trigger({"argoWorkflow": {"operation": "submit-from", "source": {"resource": source}}})
    fire = make_fire({"run": "R1"})
    async with httpx.AsyncClient() as http:
        outcome = await make_runner(trigger, outbox, store, http, tmp_path).run(fire)
    assert outcome.status == "succeeded", outcome.result
    wf = yaml.safe_load((outbox.root / "argo" / f"bwa-{name_digest(fire.key)}.yaml").read_text())
    assert wf["spec"] == {"workflowTemplateRef": {"name": "bwa"}}
