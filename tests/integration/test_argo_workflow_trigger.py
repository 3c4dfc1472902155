"""The argoWorkflow trigger, the firing runner and the replay worker against a fake API server over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.k8s import KubeClient, find_cluster
from gateway.replay import ReplayWorker
from gateway.store import SqliteStore
from sensors.objects import EVENT_IDS_ANNOTATION, FIRING_LABEL, LAST_FIRING_ANNOTATION, name_digest
from tests.fake_k8s import FakeKubeAPI
from tests.integration.kube_support import (
    ARGO,
    NAMESPACE,
    RUN_PARAMETERS,
    SENSOR,
    make_executor,
    make_fire,
    make_runner,
    make_trigger,
    submit_trigger,
    workflow_template,
)

pytestmark = pytest.mark.integration

BODY = {"run": "R42", "bucket": "lab-runs"}


@pytest.fixture
def k8s() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI().start() as api:
        yield api


@pytest.fixture
async def kube(k8s: FakeKubeAPI, tmp_path: Path) -> AsyncIterator[KubeClient]:
    cluster = find_cluster(k8s.write_kubeconfig(tmp_path / "kubeconfig"))
    assert cluster is not None
    client = KubeClient(cluster, request_timeout=5.0)
    yield client
    await client.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    st = SqliteStore(tmp_path / "state.db")
    await st.start()
    yield st
    await st.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def workflows(k8s: FakeKubeAPI) -> list[dict[str, Any]]:
    return k8s.objects(*ARGO, "workflows", NAMESPACE)


async def test_submit_workflow_template_ref_with_parameters_from_the_event(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    k8s.put(workflow_template())
    fire = make_fire(BODY)
    outcome = await make_runner(submit_trigger(), kube, store, http, tmp_path).run(fire)
    assert outcome.status == "succeeded", outcome.result
    (wf,) = workflows(k8s)
    name = "bwa-align-" + name_digest(fire.key)
    assert outcome.result == f"created Workflow {NAMESPACE}/{name}"
    assert wf["metadata"]["name"] == name and "generateName" not in wf["metadata"]
    labels = wf["metadata"]["labels"]
    assert labels["events.argoproj.io/sensor"] == SENSOR
    assert labels["events.argoproj.io/trigger"] == "t"
    assert abs(int(labels["events.argoproj.io/action-timestamp"]) - time.time() * 1000) < 60_000
    assert labels[FIRING_LABEL] == fire.key
    assert wf["metadata"]["annotations"][EVENT_IDS_ANNOTATION] == fire.events["run"].id
    assert wf["spec"] == {
        "workflowTemplateRef": {"name": "bwa-align"},
        "arguments": {
            "parameters": [{"name": "run-id", "value": "R42"}, {"name": "bucket", "value": "lab-runs"}]
        },
    }


async def test_the_same_firing_twice_and_after_losing_its_record_gives_one_workflow(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    fire = make_fire(BODY)
    runner = make_runner(submit_trigger(), kube, store, http, tmp_path)
    assert (await runner.run(fire)).status == "succeeded"
    assert (await runner.run(fire)).status == "already-done"  # the store knows it
    # A crash between the create and the store's commit: the record is lost, the firing runs again.
    other = SqliteStore(tmp_path / "other.db")
    await other.start()
    try:
        again = await make_runner(submit_trigger(), kube, other, http, tmp_path).run(fire)
    finally:
        await other.close()
    assert again.status == "succeeded"
    assert again.result.endswith("already exists (created by this firing before)")
    assert len(workflows(k8s)) == 1
    # A different firing (another event) is another Workflow.
    assert (await runner.run(make_fire(BODY))).status == "succeeded"
    assert len(workflows(k8s)) == 2


async def test_server_error_then_success_gives_one_workflow(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    k8s.fail_next("POST", r"/workflows$", 500)
    sleeps: list[float] = []
    trigger = submit_trigger(retryStrategy={"steps": 3, "duration": "10ms"})
    outcome = await make_runner(trigger, kube, store, http, tmp_path, sleeps).run(make_fire(BODY))
    assert outcome.status == "succeeded" and outcome.attempts == 2
    assert sleeps == [0.01]
    assert len(workflows(k8s)) == 1


async def test_lost_response_then_retry_finds_the_workflow_it_created(
    k8s: FakeKubeAPI, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The API server creates the Workflow but the answer times out: the retry gets 409, not a 2nd run."""
    cluster = find_cluster(k8s.write_kubeconfig(tmp_path / "kubeconfig"))
    assert cluster is not None
    impatient = KubeClient(cluster, request_timeout=0.3)
    try:
        k8s.delay_next("POST", r"/workflows$", 0.8)
        trigger = submit_trigger(retryStrategy={"steps": 3, "duration": "1500ms"})
        outcome = await make_runner(trigger, impatient, store, http, tmp_path).run(make_fire(BODY))
    finally:
        await impatient.close()
    assert outcome.status == "succeeded" and outcome.attempts == 2, outcome
    assert "already exists (created by this firing before)" in outcome.result
    assert len(workflows(k8s)) == 1


async def test_too_many_requests_honours_retry_after(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    k8s.fail_next("POST", r"/workflows$", 429, headers={"Retry-After": "3"})
    sleeps: list[float] = []
    trigger = submit_trigger(retryStrategy={"steps": 2, "duration": "10ms"})
    outcome = await make_runner(trigger, kube, store, http, tmp_path, sleeps).run(make_fire(BODY))
    assert outcome.status == "succeeded" and outcome.attempts == 2
    assert sleeps == [3.0]
    assert len(workflows(k8s)) == 1


async def test_forbidden_goes_to_dead_letters_and_replay_after_fixing_creates_one(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    k8s.forbid("create", "argoproj.io", "workflows", NAMESPACE)
    trigger = submit_trigger(retryStrategy={"steps": 5, "duration": "10ms"})
    runner = make_runner(trigger, kube, store, http, tmp_path, [])
    fire = make_fire(BODY)
    outcome = await runner.run(fire)
    assert outcome.status == "dead-lettered" and outcome.attempts == 1  # 403 is not retried
    assert "403 Forbidden" in outcome.result and 'cannot create resource "workflows"' in outcome.result
    (letter,) = await store.list_dead_letters()
    assert letter.key == fire.key and "Forbidden" in letter.reason
    assert workflows(k8s) == []

    k8s.allow_all()  # the RBAC is fixed
    request = await store.request_replay(letter.id, time.time())
    assert request is not None and request.status == "requested"
    replays = ReplayWorker(store, {(SENSOR, "t"): runner})
    assert await replays.replay_pending() == 1
    done = await store.get_replay(letter.id)
    assert done is not None and done.status == "succeeded", done
    (wf,) = workflows(k8s)
    assert wf["metadata"]["name"] == "bwa-align-" + name_digest(fire.key)
    assert await store.list_dead_letters() == []
    assert await store.request_replay(letter.id, time.time()) is None  # it is no longer a dead letter
    assert await replays.replay_pending() == 0


async def test_replay_of_a_firing_that_did_run_creates_nothing_new(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The Workflow was created, then the policy wait failed: the replay finds it again."""
    policy = {
        "k8s": {
            "labels": {"workflows.argoproj.io/phase": "Succeeded"},
            "backoff": {"steps": 2, "duration": "10ms"},
            "errorOnBackoffTimeout": True,
        }
    }
    runner = make_runner(submit_trigger(policy=policy), kube, store, http, tmp_path)
    fire = make_fire(BODY)
    outcome = await runner.run(fire)
    assert outcome.status == "dead-lettered" and "did not get the labels" in outcome.result
    (wf,) = workflows(k8s)
    wf["metadata"]["labels"]["workflows.argoproj.io/phase"] = "Succeeded"  # the controller's work
    k8s.put(wf)
    (letter,) = await store.list_dead_letters()
    await store.request_replay(letter.id, time.time())
    await ReplayWorker(store, {(SENSOR, "t"): runner}).replay_pending()
    done = await store.get_replay(letter.id)
    assert done is not None and done.status == "succeeded"
    assert "already exists (created by this firing before)" in done.outcome and "reached" in done.outcome
    assert len(workflows(k8s)) == 1


async def test_a_name_taken_by_someone_else_is_a_dead_letter(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    source = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "nightly"},
        "spec": {},
    }
    k8s.put({**source, "metadata": {"name": "nightly", "namespace": NAMESPACE}})
    trigger = make_trigger({"argoWorkflow": {"source": {"resource": source}}}, retryStrategy={"steps": 3})
    outcome = await make_runner(trigger, kube, store, http, tmp_path, []).run(make_fire(BODY))
    assert outcome.status == "dead-lettered" and outcome.attempts == 1
    assert "already exists and was not created by this firing" in outcome.result


async def test_submit_from_workflow_template(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    k8s.put(workflow_template("bwa"))
    source = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "bwa"},
        "spec": {
            "arguments": {"parameters": [{"name": "run-id", "value": ""}, {"name": "bucket", "value": ""}]}
        },
    }
    trigger = make_trigger(
        {
            "argoWorkflow": {
                "operation": "submit-from",
                "source": {"resource": source},
                "parameters": RUN_PARAMETERS,
            }
        }
    )
    fire = make_fire(BODY)
    outcome = await make_runner(trigger, kube, store, http, tmp_path).run(fire)
    assert outcome.status == "succeeded", outcome.result
    (wf,) = workflows(k8s)
    assert wf["metadata"]["name"] == "bwa-" + name_digest(fire.key)
    assert wf["metadata"]["labels"]["workflows.argoproj.io/workflow-template"] == "bwa"
    assert wf["metadata"]["labels"][FIRING_LABEL] == fire.key
    assert wf["spec"] == {
        "workflowTemplateRef": {"name": "bwa"},
        "arguments": {
            "parameters": [{"name": "run-id", "value": "R42"}, {"name": "bucket", "value": "lab-runs"}]
        },
    }
    # submit-from a template that does not exist: not retriable, the API's reason is kept
    missing = make_trigger(
        {
            "argoWorkflow": {
                "operation": "submit-from",
                "source": {"resource": {**source, "metadata": {"name": "nope"}}},
            }
        }
    )
    failed = await make_runner(missing, kube, store, http, tmp_path).run(make_fire(BODY))
    assert failed.status == "dead-lettered" and "404 NotFound" in failed.result


async def test_submit_from_cron_workflow(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    cron = k8s.put(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "CronWorkflow",
            "metadata": {"name": "nightly-qc", "namespace": NAMESPACE, "labels": {"team": "genomics"}},
            "spec": {
                "schedule": "0 2 * * *",
                "workflowSpec": {
                    "entrypoint": "qc",
                    "arguments": {"parameters": [{"name": "run-id", "value": "latest"}]},
                    "templates": [{"name": "qc", "container": {"image": "busybox"}}],
                },
                "workflowMetadata": {"labels": {"pipeline": "qc"}},
            },
        }
    )
    source = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly-qc"},
        "spec": {"workflowSpec": {"arguments": {"parameters": [{"name": "run-id", "value": ""}]}}},
    }
    params = [
        {
            "src": {"dependencyName": "run", "dataKey": "body.run"},
            "dest": "spec.workflowSpec.arguments.parameters.0.value",
        }
    ]
    trigger = make_trigger(
        {"argoWorkflow": {"operation": "submit-from", "source": {"resource": source}, "parameters": params}}
    )
    fire = make_fire(BODY)
    outcome = await make_runner(trigger, kube, store, http, tmp_path).run(fire)
    assert outcome.status == "succeeded", outcome.result
    (wf,) = workflows(k8s)
    assert wf["metadata"]["name"] == "nightly-qc-" + name_digest(fire.key)
    assert wf["metadata"]["labels"]["workflows.argoproj.io/cron-workflow"] == "nightly-qc"
    assert wf["metadata"]["labels"]["pipeline"] == "qc"
    assert wf["metadata"]["ownerReferences"][0]["uid"] == cron["metadata"]["uid"]
    assert wf["spec"]["entrypoint"] == "qc"
    assert wf["spec"]["arguments"]["parameters"] == [{"name": "run-id", "value": "R42"}]


def running_workflow(name: str = "wf-1") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"entrypoint": "main"},
        "status": {
            "phase": "Running",
            "nodes": {
                name: {"id": name, "name": name, "type": "Steps", "phase": "Running", "children": ["gate"]},
                "gate": {"id": "gate", "name": f"{name}.approve", "type": "Suspend", "phase": "Running"},
            },
        },
    }


def operation_trigger(operation: str, **extra: Any) -> Any:
    source = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "placeholder"}}
    params = [{"src": {"dependencyName": "run", "dataKey": "body.workflow"}, "dest": "metadata.name"}]
    return make_trigger(
        {"argoWorkflow": {"operation": operation, "source": {"resource": source}, "parameters": params}},
        name=operation,
        **extra,
    )


async def test_suspend_resume_terminate_and_stop_an_existing_workflow(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    k8s.put(running_workflow())

    def live() -> dict[str, Any]:
        wf = k8s.get(*ARGO, "workflows", "wf-1", NAMESPACE)
        assert wf is not None
        return wf

    suspend = make_fire({"workflow": "wf-1"}, trigger="suspend")
    outcome = await make_runner(operation_trigger("suspend"), kube, store, http, tmp_path).run(suspend)
    assert outcome.status == "succeeded" and outcome.result == f"suspended Workflow {NAMESPACE}/wf-1"
    assert live()["spec"]["suspend"] is True
    assert live()["metadata"]["annotations"][LAST_FIRING_ANNOTATION] == suspend.key
    version = live()["metadata"]["resourceVersion"]
    # The same firing again after its record was lost: recognised, nothing changes.
    other = SqliteStore(tmp_path / "other.db")
    await other.start()
    try:
        again = await make_runner(operation_trigger("suspend"), kube, other, http, tmp_path).run(suspend)
    finally:
        await other.close()
    assert again.status == "succeeded" and "already done by this firing" in again.result
    assert live()["metadata"]["resourceVersion"] == version

    resume = make_fire({"workflow": "wf-1"}, trigger="resume")
    outcome = await make_runner(operation_trigger("resume"), kube, store, http, tmp_path).run(resume)
    assert outcome.status == "succeeded" and outcome.result == f"resumed Workflow {NAMESPACE}/wf-1"
    assert "suspend" not in live()["spec"]
    gate = live()["status"]["nodes"]["gate"]
    assert gate["phase"] == "Succeeded" and gate["message"].startswith("Resumed by triggergate")

    terminate = make_fire({"workflow": "wf-1"}, trigger="terminate")
    outcome = await make_runner(operation_trigger("terminate"), kube, store, http, tmp_path).run(terminate)
    assert outcome.status == "succeeded" and live()["spec"]["shutdown"] == "Terminate"

    done = live()
    done["status"]["phase"] = "Failed"
    k8s.put(done)
    stop = make_fire({"workflow": "wf-1"}, trigger="stop")
    outcome = await make_runner(operation_trigger("stop"), kube, store, http, tmp_path).run(stop)
    assert outcome.status == "dead-lettered" and "it has completed (Failed)" in outcome.result

    missing = make_fire({"workflow": "wf-404"}, trigger="suspend")
    outcome = await make_runner(operation_trigger("suspend"), kube, store, http, tmp_path).run(missing)
    assert outcome.status == "dead-lettered" and "404 NotFound" in outcome.result


async def test_retry_resets_failed_nodes_and_deletes_their_pods(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    wf = running_workflow("wf-2")
    wf["status"] = {
        "phase": "Failed",
        "nodes": {
            "wf-2": {
                "id": "wf-2",
                "name": "wf-2",
                "type": "DAG",
                "phase": "Failed",
                "children": ["ok", "bad"],
            },
            "ok": {"id": "ok", "name": "wf-2.ok", "type": "Pod", "phase": "Succeeded"},
            "bad": {"id": "bad", "name": "wf-2.bad", "type": "Pod", "phase": "Failed"},
        },
    }
    wf["metadata"]["labels"] = {"workflows.argoproj.io/completed": "true"}
    k8s.put(wf)
    for pod, node in (("wf-2-ok-1", "ok"), ("wf-2-bad-2", "bad")):
        k8s.put(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod,
                    "namespace": NAMESPACE,
                    "labels": {"workflows.argoproj.io/workflow": "wf-2"},
                    "annotations": {"workflows.argoproj.io/node-id": node},
                },
                "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            }
        )
    fire = make_fire({"workflow": "wf-2"}, trigger="retry")
    outcome = await make_runner(operation_trigger("retry"), kube, store, http, tmp_path).run(fire)
    assert outcome.status == "succeeded", outcome.result
    assert "1 failed node(s) reset, 1 pod(s) deleted" in outcome.result
    live = k8s.get(*ARGO, "workflows", "wf-2", NAMESPACE)
    assert live is not None
    assert set(live["status"]["nodes"]) == {"wf-2", "ok"}
    assert live["status"]["nodes"]["wf-2"]["phase"] == "Running"
    assert "workflows.argoproj.io/completed" not in live["metadata"].get("labels", {})
    assert [p["metadata"]["name"] for p in k8s.objects("", "v1", "pods", NAMESPACE)] == ["wf-2-ok-1"]


async def test_resubmit_creates_one_new_workflow_from_the_old_one(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    k8s.put(running_workflow("wf-3"))
    fire = make_fire({"workflow": "wf-3"}, trigger="resubmit")
    runner = make_runner(operation_trigger("resubmit"), kube, store, http, tmp_path)
    outcome = await runner.run(fire)
    assert outcome.status == "succeeded", outcome.result
    new = k8s.get(*ARGO, "workflows", "wf-3-" + name_digest(fire.key), NAMESPACE)
    assert new is not None
    assert new["metadata"]["labels"]["workflows.argoproj.io/resubmitted-from-workflow"] == "wf-3"
    assert new["spec"] == {"entrypoint": "main"} and "nodes" not in new.get("status", {})
    assert len(workflows(k8s)) == 2


async def test_policy_waits_until_the_labels_appear(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    policy = {
        "k8s": {
            "labels": {"workflows.argoproj.io/phase": "Succeeded"},
            "backoff": {"steps": 50, "duration": "50ms"},
        }
    }
    runner = make_runner(submit_trigger(policy=policy), kube, store, http, tmp_path)
    task = asyncio.create_task(runner.run(make_fire(BODY)))
    for _ in range(100):
        if workflows(k8s):
            break
        await asyncio.sleep(0.02)
    (wf,) = workflows(k8s)
    await asyncio.sleep(0.2)
    assert not task.done()  # still waiting for the label
    wf["metadata"]["labels"]["workflows.argoproj.io/phase"] = "Succeeded"
    k8s.put(wf)
    outcome = await asyncio.wait_for(task, 10)
    assert outcome.status == "succeeded"
    assert outcome.result.endswith("labels workflows.argoproj.io/phase=Succeeded reached")


async def test_policy_timeout_is_ignored_without_error_on_backoff_timeout(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    policy = {
        "k8s": {
            "labels": {"workflows.argoproj.io/phase": "Succeeded"},
            "backoff": {"steps": 2, "duration": "10ms"},
        }
    }
    outcome = await make_runner(submit_trigger(policy=policy), kube, store, http, tmp_path).run(
        make_fire(BODY)
    )
    assert outcome.status == "succeeded" and "not reached after 2 checks (ignored)" in outcome.result


async def test_preflight_warns_about_missing_templates_and_parameters(
    k8s: FakeKubeAPI, kube: KubeClient, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    executor = make_executor(submit_trigger(), kube, http, tmp_path)
    (warning,) = await executor.preflight()
    assert "WorkflowTemplate argo/bwa-align does not exist" in warning
    template = workflow_template()
    template["spec"]["arguments"]["parameters"].append({"name": "sample-sheet"})
    k8s.put(template)
    (warning,) = await executor.preflight()
    assert "needs parameter(s) sample-sheet without a default" in warning
    template["spec"]["arguments"]["parameters"].pop()
    k8s.put(template)
    assert await executor.preflight() == []
    await executor.close()


async def test_configmap_source(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    import yaml

    from tests.integration.kube_support import workflow_source

    k8s.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "workflows", "namespace": NAMESPACE},
            "data": {"align.yaml": yaml.safe_dump(workflow_source())},
        }
    )
    trigger = make_trigger(
        {
            "argoWorkflow": {
                "source": {"configmap": {"name": "workflows", "key": "align.yaml"}},
                "parameters": RUN_PARAMETERS,
            }
        }
    )
    outcome = await make_runner(trigger, kube, store, http, tmp_path).run(make_fire(BODY))
    assert outcome.status == "succeeded", outcome.result
    (wf,) = workflows(k8s)
    assert wf["spec"]["arguments"]["parameters"][0] == {"name": "run-id", "value": "R42"}
    wrong_key = make_trigger(
        {"argoWorkflow": {"source": {"configmap": {"name": "workflows", "key": "nope"}}}}
    )
    failed = await make_runner(wrong_key, kube, store, http, tmp_path).run(make_fire(BODY))
    assert failed.status == "dead-lettered" and "has no key 'nope'; keys: align.yaml" in failed.result
