"""The k8s trigger (create, update, patch, delete; sources) against a fake API server over HTTP."""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.k8s import KubeClient, find_cluster
from gateway.store import SqliteStore
from sensors.objects import FIRING_LABEL, LAST_FIRING_ANNOTATION, name_digest
from tests.fake_k8s import FakeKubeAPI
from tests.integration.kube_support import NAMESPACE, make_fire, make_runner, make_trigger

pytestmark = pytest.mark.integration


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


def configmap(name: str = "run-config", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


def k8s_trigger(source: dict[str, Any], operation: str = "create", **spec: Any) -> Any:
    params = [{"src": {"dependencyName": "run", "dataKey": "body.run"}, "dest": "data.run"}]
    return make_trigger({"k8s": {"operation": operation, "source": source, "parameters": params, **spec}})


def cm(k8s: FakeKubeAPI, name: str) -> dict[str, Any] | None:
    return k8s.get("", "v1", "configmaps", name, NAMESPACE)


async def test_create_names_from_the_firing_labels_and_runs_once(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    source = {"resource": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "run-"}}}
    fire = make_fire({"run": "R1"})
    outcome = await make_runner(k8s_trigger(source), kube, store, http, tmp_path).run(fire)
    name = "run-" + name_digest(fire.key)
    assert outcome.status == "succeeded" and outcome.result == f"created ConfigMap {NAMESPACE}/{name}"
    created = cm(k8s, name)
    assert created is not None and created["data"] == {"run": "R1"}
    assert created["metadata"]["labels"][FIRING_LABEL] == fire.key
    assert created["metadata"]["labels"]["events.argoproj.io/sensor"] == "lab"
    other = SqliteStore(tmp_path / "other.db")
    await other.start()
    try:
        again = await make_runner(k8s_trigger(source), kube, other, http, tmp_path).run(fire)
    finally:
        await other.close()
    assert again.status == "succeeded" and "already exists" in again.result
    assert len(k8s.objects("", "v1", "configmaps", NAMESPACE)) == 1


async def test_create_cluster_scoped_object_has_no_namespace(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    source = {"resource": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "run-"}}}
    trigger = make_trigger({"k8s": {"source": source}})
    fire = make_fire({"run": "R1"})
    outcome = await make_runner(trigger, kube, store, http, tmp_path).run(fire)
    assert (
        outcome.status == "succeeded" and outcome.result == f"created Namespace run-{name_digest(fire.key)}"
    )
    assert k8s.get("", "v1", "namespaces", "run-" + name_digest(fire.key), None) is not None


async def test_update_merges_over_the_live_object_or_creates_it(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    trigger = k8s_trigger({"resource": configmap(extra="from-trigger")}, "update")
    outcome = await make_runner(trigger, kube, store, http, tmp_path).run(make_fire({"run": "R1"}))
    assert outcome.status == "succeeded" and outcome.result.startswith("created ConfigMap")
    created = cm(k8s, "run-config")
    assert created is not None and created["data"] == {"extra": "from-trigger", "run": "R1"}

    live = dict(created)
    live["data"] = {"keep": "me", "run": "old"}
    live["metadata"]["labels"] = {"owner": "lab"}
    k8s.put(live)
    fire = make_fire({"run": "R2"})
    outcome = await make_runner(trigger, kube, store, http, tmp_path).run(fire)
    assert outcome.status == "succeeded" and outcome.result == f"updated ConfigMap {NAMESPACE}/run-config"
    updated = cm(k8s, "run-config")
    assert updated is not None
    assert updated["data"] == {"keep": "me", "run": "R2", "extra": "from-trigger"}
    assert updated["metadata"]["labels"]["owner"] == "lab"
    assert updated["metadata"]["annotations"][LAST_FIRING_ANNOTATION] == fire.key


async def test_update_with_live_object_applies_parameters_to_the_live_object(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    k8s.put({**configmap(keep="me", run="old"), "metadata": {"name": "run-config", "namespace": NAMESPACE}})
    source = {
        "resource": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "run-config", "namespace": NAMESPACE},
        }
    }
    trigger = k8s_trigger(source, "update", liveObject=True)
    outcome = await make_runner(trigger, kube, store, http, tmp_path).run(make_fire({"run": "R3"}))
    assert outcome.status == "succeeded", outcome.result
    updated = cm(k8s, "run-config")
    assert updated is not None and updated["data"] == {"keep": "me", "run": "R3"}


async def test_merge_patch_and_json_patch_apply_once(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    k8s.put({**configmap(keep="me"), "metadata": {"name": "run-config", "namespace": NAMESPACE}})
    merge = k8s_trigger({"resource": configmap()}, "patch")
    outcome = await make_runner(merge, kube, store, http, tmp_path).run(make_fire({"run": "R4"}))
    assert outcome.status == "succeeded" and "(application/merge-patch+json)" in outcome.result
    patched = cm(k8s, "run-config")
    assert patched is not None and patched["data"] == {"keep": "me", "run": "R4"}

    source = {
        "resource": {
            **configmap(),
            "patch": [{"op": "add", "path": "/data/history", "value": "placeholder"}],
        }
    }
    params = [{"src": {"dependencyName": "run", "dataKey": "body.run"}, "dest": "patch.0.value"}]
    json_trigger = make_trigger(
        {
            "k8s": {
                "operation": "patch",
                "patchStrategy": "application/json-patch+json",
                "source": source,
                "parameters": params,
            }
        }
    )
    fire = make_fire({"run": "R5"})
    outcome = await make_runner(json_trigger, kube, store, http, tmp_path).run(fire)
    assert outcome.status == "succeeded", outcome.result
    patched = cm(k8s, "run-config")
    assert patched is not None and patched["data"]["history"] == "R5"
    version = patched["metadata"]["resourceVersion"]
    other = SqliteStore(tmp_path / "other.db")
    await other.start()
    try:
        again = await make_runner(json_trigger, kube, other, http, tmp_path).run(fire)
    finally:
        await other.close()
    assert again.status == "succeeded" and "already done by this firing" in again.result
    after = cm(k8s, "run-config")
    assert after is not None and after["metadata"]["resourceVersion"] == version

    no_ops = make_trigger(
        {
            "k8s": {
                "operation": "patch",
                "patchStrategy": "application/json-patch+json",
                "source": {"resource": configmap()},
            }
        }
    )
    failed = await make_runner(no_ops, kube, store, http, tmp_path).run(make_fire({"run": "R6"}))
    assert failed.status == "dead-lettered" and "in the object's 'patch' field" in failed.result


async def test_patch_creates_a_missing_object(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    trigger = k8s_trigger(
        {"resource": configmap("fresh")}, "patch", patchStrategy="application/strategic-merge-patch+json"
    )
    outcome = await make_runner(trigger, kube, store, http, tmp_path).run(make_fire({"run": "R7"}))
    assert outcome.status == "succeeded" and outcome.result.startswith("created ConfigMap")
    assert cm(k8s, "fresh") is not None


async def test_delete_removes_the_object_and_a_missing_one_is_fine(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    k8s.put({**configmap(), "metadata": {"name": "run-config", "namespace": NAMESPACE}})
    trigger = make_trigger({"k8s": {"operation": "delete", "source": {"resource": configmap()}}})
    outcome = await make_runner(trigger, kube, store, http, tmp_path).run(make_fire({"run": "R8"}))
    assert outcome.result == f"deleted ConfigMap {NAMESPACE}/run-config"
    assert cm(k8s, "run-config") is None
    outcome = await make_runner(trigger, kube, store, http, tmp_path).run(make_fire({"run": "R9"}))
    assert outcome.status == "succeeded" and outcome.result.endswith("does not exist; nothing to delete")


async def test_unknown_kind_is_not_retried(
    kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    source = {"resource": {"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g"}}}
    trigger = make_trigger({"k8s": {"source": source}}, retryStrategy={"steps": 3})
    outcome = await make_runner(trigger, kube, store, http, tmp_path, []).run(make_fire({"run": "R1"}))
    assert outcome.status == "dead-lettered" and outcome.attempts == 1
    assert "does not serve kind Gizmo in apiVersion example.com/v1" in outcome.result


async def test_file_inline_and_url_sources(
    k8s: FakeKubeAPI, kube: KubeClient, store: SqliteStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    served = tmp_path / "www"
    served.mkdir()
    (served / "cm.yaml").write_text(yaml.safe_dump(configmap("from-url")))
    (tmp_path / "cm.yaml").write_text(yaml.safe_dump(configmap("from-file")))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cm.yaml"
        sources = [
            {"file": {"path": str(tmp_path / "cm.yaml")}},
            {"inline": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-inline"}}'},
            {"url": {"path": url}},
        ]
        for source in sources:
            outcome = await make_runner(k8s_trigger(source), kube, store, http, tmp_path).run(
                make_fire({"run": "R"})
            )
            assert outcome.status == "succeeded", outcome.result
        missing = k8s_trigger({"url": {"path": url.replace("cm.yaml", "nope.yaml")}})
        failed = await make_runner(missing, kube, store, http, tmp_path).run(make_fire({"run": "R"}))
        assert failed.status == "dead-lettered" and "HTTP 404" in failed.result
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    names = {c["metadata"]["name"] for c in k8s.objects("", "v1", "configmaps", NAMESPACE)}
    assert {"from-file", "from-inline", "from-url"} <= names
    for name in ("from-file", "from-inline", "from-url"):
        found = cm(k8s, name)
        assert found is not None and found["data"] == {"run": "R"}
