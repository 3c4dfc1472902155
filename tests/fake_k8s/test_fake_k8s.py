"""The fake kube-apiserver, exercised only through the official ``kubernetes`` client over real HTTP.

Each test gets a fresh server and its own ``kubernetes.client.Configuration`` loaded from a kubeconfig the
fake wrote (the global default configuration is never touched).
"""

# The official client's generated methods return ``object`` (custom objects) or Optional-typed models;
# the tests index into them freely, so they hold them as ``Any``.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from tests.fake_k8s import FakeKubeAPI

pytestmark = pytest.mark.integration

ARGO = ("argoproj.io", "v1alpha1")
NS = "argo"


def workflow(
    name: str | None = None, *, generate: str | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": labels or {}}
    if name:
        meta["name"] = name
    if generate:
        meta["generateName"] = generate
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": meta,
        "spec": {
            "workflowTemplateRef": {"name": "ingest"},
            "arguments": {"parameters": [{"name": "key", "value": "a"}]},
        },
    }


def api_client_for(k8s: FakeKubeAPI, tmp_path: Path, name: str = "kubeconfig") -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(
        config_file=str(k8s.write_kubeconfig(tmp_path / name, namespace=NS)), client_configuration=cfg
    )
    return client.ApiClient(cfg)


def body_of(e: ApiException) -> dict[str, Any]:
    assert e.body, "the error has no body"
    decoded: dict[str, Any] = json.loads(e.body)
    return decoded


@pytest.fixture
def k8s() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI().start() as fake:
        yield fake


@pytest.fixture
def api(k8s: FakeKubeAPI, tmp_path: Path) -> Iterator[client.ApiClient]:
    with api_client_for(k8s, tmp_path) as api_client:
        yield api_client


@pytest.fixture
def co(api: client.ApiClient) -> Any:
    return client.CustomObjectsApi(api)


# --- create / get / list ----------------------------------------------------------------------------------


def test_create_with_generate_name_returns_the_stored_object(co: Any) -> None:
    first = co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow(generate="ingest-"))
    second = co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow(generate="ingest-"))

    assert isinstance(first, dict), "create must answer 201 with the object, or the client returns None"
    meta = first["metadata"]
    assert meta["name"].startswith("ingest-") and len(meta["name"]) == len("ingest-") + 5
    assert set(meta["name"][len("ingest-") :]) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert meta["namespace"] == NS and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert second["metadata"]["name"] != meta["name"]
    assert int(second["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])


def test_duplicate_name_is_409_already_exists(co: Any) -> None:
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("run-1"))
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("run-1"))

    assert err.value.status == 409
    status = body_of(err.value)
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'workflows.argoproj.io "run-1" already exists'
    assert status["details"] == {"name": "run-1", "group": "argoproj.io", "kind": "workflows"}


def test_get_list_and_selectors(co: Any) -> None:
    co.create_namespaced_custom_object(
        *ARGO, NS, "workflows", workflow("a", labels={"sensor": "s1", "tier": "x"})
    )
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("b", labels={"sensor": "s2"}))
    co.create_namespaced_custom_object(*ARGO, "default", "workflows", workflow("c", labels={"sensor": "s1"}))

    assert co.get_namespaced_custom_object(*ARGO, NS, "workflows", "a")["metadata"]["labels"]["tier"] == "x"

    def names(**kw: Any) -> list[str]:
        listed = co.list_namespaced_custom_object(*ARGO, NS, "workflows", **kw)
        assert listed["kind"] == "WorkflowList" and listed["metadata"]["resourceVersion"]
        return [i["metadata"]["name"] for i in listed["items"]]

    assert names() == ["a", "b"]
    assert names(label_selector="sensor=s1") == ["a"]
    assert names(label_selector="sensor==s2") == ["b"]
    assert names(label_selector="sensor!=s1") == ["b"]
    assert names(label_selector="tier") == ["a"]
    assert names(label_selector="!tier") == ["b"]
    assert names(label_selector="sensor in (s1, s2),!tier") == ["b"]
    assert names(label_selector="sensor notin (s2)") == ["a"]
    assert names(field_selector="metadata.name=b") == ["b"]
    everywhere = co.list_cluster_custom_object(*ARGO, "workflows", label_selector="sensor=s1")
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]] == [
        ("argo", "a"),
        ("default", "c"),
    ]
    with pytest.raises(ApiException) as err:
        names(label_selector="sensor in (")
    assert err.value.status == 400
    with pytest.raises(ApiException) as err:
        names(field_selector="spec.foo=bar")
    assert err.value.status == 400 and "field label not supported" in body_of(err.value)["message"]


def test_list_pages_with_limit_and_continue(co: Any) -> None:
    for n in range(5):
        co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow(f"wf-{n}"))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = co.list_namespaced_custom_object(*ARGO, NS, "workflows", limit=2, _continue=token)
        pages += 1
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == 5 - len(seen)
    assert pages == 3 and seen == [f"wf-{n}" for n in range(5)]


def test_missing_object_is_404_not_found(co: Any) -> None:
    with pytest.raises(ApiException) as err:
        co.get_namespaced_custom_object(*ARGO, NS, "workflows", "nope")
    assert err.value.status == 404
    assert body_of(err.value)["reason"] == "NotFound"
    assert body_of(err.value)["message"] == 'workflows.argoproj.io "nope" not found'


def test_seeded_workflow_template_is_served(k8s: FakeKubeAPI, co: Any) -> None:
    seeded = k8s.put(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "WorkflowTemplate",
            "metadata": {"name": "ingest", "namespace": NS},
            "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "key"}]}},
        }
    )
    got = co.get_namespaced_custom_object(*ARGO, NS, "workflowtemplates", "ingest")
    assert got == seeded
    assert got["spec"]["entrypoint"] == "main" and got["metadata"]["uid"]
    assert k8s.get(*ARGO, "workflowtemplates", "ingest", namespace=NS) == seeded
    assert [o["metadata"]["name"] for o in k8s.objects(*ARGO, "workflowtemplates")] == ["ingest"]


def test_create_validation_errors(k8s: FakeKubeAPI, co: Any) -> None:
    def create_error(body: dict[str, Any], namespace: str = NS) -> ApiException:
        with pytest.raises(ApiException) as err:
            co.create_namespaced_custom_object(*ARGO, namespace, "workflows", body)
        return err.value

    missing = create_error(workflow())
    assert missing.status == 422 and body_of(missing)["reason"] == "Invalid"
    assert "name or generateName is required" in body_of(missing)["message"]
    bad_name = create_error(workflow("Not_A_DNS_Name"))
    assert bad_name.status == 422
    assert body_of(bad_name)["details"]["causes"][0]["field"] == "metadata.name"
    bad_label = create_error(workflow("ok", labels={"event-id": "x" * 64}))
    assert bad_label.status == 422 and "must be no more than 63 characters" in body_of(bad_label)["message"]
    wrong_kind = create_error({**workflow("ok"), "kind": "WorkflowTemplate"})
    assert wrong_kind.status == 422 and "must be Workflow" in body_of(wrong_kind)["message"]
    wrong_group = create_error({**workflow("ok"), "apiVersion": "example.com/v1"})
    assert wrong_group.status == 400
    no_namespace = create_error(workflow("ok"), namespace="nowhere")
    assert no_namespace.status == 404 and body_of(no_namespace)["message"] == 'namespaces "nowhere" not found'
    with_rv = create_error({**workflow(), "metadata": {"name": "ok", "resourceVersion": "7"}})
    assert with_rv.status == 500
    assert k8s.objects(*ARGO, "workflows") == []


# --- update / patch / delete ------------------------------------------------------------------------------


def test_merge_patch(co: Any) -> None:
    created = co.create_namespaced_custom_object(
        *ARGO, NS, "workflows", workflow("p", labels={"a": "1", "b": "2"})
    )
    patched = co.patch_namespaced_custom_object(
        *ARGO,
        NS,
        "workflows",
        "p",
        {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"suspend": True}},
    )
    assert patched["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert patched["spec"]["suspend"] is True
    assert patched["spec"]["workflowTemplateRef"] == {"name": "ingest"}
    assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert patched["metadata"]["generation"] == 2  # spec changed
    relabelled = co.patch_namespaced_custom_object(
        *ARGO, NS, "workflows", "p", {"metadata": {"labels": {"d": "4"}}}
    )
    assert relabelled["metadata"]["generation"] == 2  # metadata-only changes keep the generation
    same = co.patch_namespaced_custom_object(
        *ARGO, NS, "workflows", "p", {"metadata": {"labels": {"d": "4"}}}
    )
    assert same["metadata"]["resourceVersion"] == relabelled["metadata"]["resourceVersion"]  # no-op write


def test_json_patch(co: Any) -> None:
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("j"))
    ops = [
        {"op": "test", "path": "/spec/arguments/parameters/0/value", "value": "a"},
        {"op": "replace", "path": "/spec/arguments/parameters/0/value", "value": "b"},
        {"op": "add", "path": "/spec/arguments/parameters/-", "value": {"name": "n", "value": "1"}},
        {"op": "copy", "from": "/spec/workflowTemplateRef", "path": "/spec/copied"},
        {"op": "move", "from": "/spec/copied", "path": "/spec/moved"},
        {"op": "remove", "path": "/spec/workflowTemplateRef"},
    ]
    patched = co.patch_namespaced_custom_object(
        *ARGO, NS, "workflows", "j", ops, _content_type="application/json-patch+json"
    )
    assert patched["spec"] == {
        "arguments": {"parameters": [{"name": "key", "value": "b"}, {"name": "n", "value": "1"}]},
        "moved": {"name": "ingest"},
    }
    with pytest.raises(ApiException) as err:
        co.patch_namespaced_custom_object(
            *ARGO,
            NS,
            "workflows",
            "j",
            [{"op": "test", "path": "/spec/moved/name", "value": "other"}],
            _content_type="application/json-patch+json",
        )
    assert err.value.status == 422 and body_of(err.value)["reason"] == "Invalid"


def test_strategic_merge_patch_is_refused_for_custom_resources(co: Any) -> None:
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("s"))
    with pytest.raises(ApiException) as err:
        co.patch_namespaced_custom_object(
            *ARGO, NS, "workflows", "s", {"spec": {}}, _content_type="application/strategic-merge-patch+json"
        )
    assert err.value.status == 415 and body_of(err.value)["reason"] == "UnsupportedMediaType"


def test_strategic_merge_patch_merges_containers_by_name(api: client.ApiClient) -> None:
    apps: Any = client.AppsV1Api(api)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gw"},
        "spec": {
            "selector": {"matchLabels": {"app": "gw"}},
            "template": {
                "metadata": {"labels": {"app": "gw"}},
                "spec": {
                    "containers": [
                        {"name": "gw", "image": "gw:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "side:1"},
                    ]
                },
            },
        },
    }
    apps.create_namespaced_deployment(NS, deployment)
    patched = apps.patch_namespaced_deployment(
        "gw",
        NS,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "gw", "image": "gw:2", "env": [{"name": "B", "value": "2"}]},
                        ]
                    }
                }
            }
        },
    )
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert set(containers) == {"gw", "sidecar"}
    assert containers["gw"].image == "gw:2"
    assert [(e.name, e.value) for e in containers["gw"].env] == [("A", "1"), ("B", "2")]
    assert patched.metadata.generation == 2
    status = apps.patch_namespaced_deployment_status("gw", NS, {"status": {"replicas": 3}})
    assert status.status.replicas == 3 and status.metadata.generation == 2
    ignored = apps.patch_namespaced_deployment("gw", NS, {"status": {"replicas": 9}})
    assert ignored.status.replicas == 3  # status is written through /status only


def test_replace_with_stale_resource_version_is_409_conflict(co: Any) -> None:
    created = co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("r"))
    fresh = dict(created, spec={"suspend": True})
    replaced = co.replace_namespaced_custom_object(*ARGO, NS, "workflows", "r", fresh)
    assert replaced["spec"] == {"suspend": True}
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(replaced["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    with pytest.raises(ApiException) as err:
        co.replace_namespaced_custom_object(
            *ARGO, NS, "workflows", "r", dict(created, spec={"suspend": False})
        )
    assert err.value.status == 409
    status = body_of(err.value)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    with pytest.raises(ApiException) as missing:
        co.replace_namespaced_custom_object(*ARGO, NS, "workflows", "absent", workflow("absent"))
    assert missing.value.status == 404


def test_delete_then_404(co: Any) -> None:
    created = co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("d"))
    deleted = co.delete_namespaced_custom_object(
        *ARGO, NS, "workflows", "d", body=client.V1DeleteOptions(propagation_policy="Background")
    )
    assert deleted["kind"] == "Status" and deleted["status"] == "Success"
    assert deleted["details"] == {
        "name": "d",
        "group": "argoproj.io",
        "kind": "workflows",
        "uid": created["metadata"]["uid"],
    }
    with pytest.raises(ApiException) as err:
        co.get_namespaced_custom_object(*ARGO, NS, "workflows", "d")
    assert err.value.status == 404
    with pytest.raises(ApiException) as again:
        co.delete_namespaced_custom_object(*ARGO, NS, "workflows", "d")
    assert again.value.status == 404


def test_finalizers_hold_deletion_until_removed(co: Any) -> None:
    body = workflow("f")
    body["metadata"]["finalizers"] = ["example.com/cleanup"]
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", body)
    pending = co.delete_namespaced_custom_object(*ARGO, NS, "workflows", "f")
    assert pending["metadata"]["deletionTimestamp"]
    assert co.get_namespaced_custom_object(*ARGO, NS, "workflows", "f")["metadata"]["deletionTimestamp"]
    co.patch_namespaced_custom_object(*ARGO, NS, "workflows", "f", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        co.get_namespaced_custom_object(*ARGO, NS, "workflows", "f")
    assert err.value.status == 404


def test_core_configmap_and_namespace(api: client.ApiClient) -> None:
    core: Any = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"k": "v"})
    )
    assert created.metadata.name == "settings" and created.metadata.resource_version
    assert core.read_namespaced_config_map("settings", NS).data == {"k": "v"}
    listed = core.list_namespaced_config_map(NS)
    assert [c.metadata.name for c in listed.items] == ["settings"]
    status = core.delete_namespaced_config_map("settings", NS)  # built-ins answer a Success Status
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "settings" and status["details"]["kind"] == "configmaps"

    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team-a")))
    assert core.read_namespace("team-a").status.phase == "Active"
    core.create_namespaced_config_map(
        "team-a", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"), data={})
    )
    secret = core.create_namespaced_secret(
        "team-a", client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"token": "abc"})
    )
    assert secret.data == {"token": "YWJj"} and not secret.string_data


def test_lease_create_replace_conflict(api: client.ApiClient) -> None:
    coord: Any = client.CoordinationV1Api(api)
    lease = coord.create_namespaced_lease(
        NS,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="gw-le"), spec=client.V1LeaseSpec(holder_identity="a")
        ),
    )
    lease.spec.holder_identity = "b"
    replaced = coord.replace_namespaced_lease("gw-le", NS, lease)
    assert replaced.spec.holder_identity == "b"
    with pytest.raises(ApiException) as err:
        coord.replace_namespaced_lease("gw-le", NS, lease)  # lease still carries the old resourceVersion
    assert err.value.status == 409


# --- watch ------------------------------------------------------------------------------------------------


def _watch_in_thread(co: Any, events: list[tuple[str, str]], **kw: Any) -> threading.Thread:
    def run() -> None:
        w = watch.Watch()
        for event in w.stream(co.list_namespaced_custom_object, *ARGO, NS, "workflows", **kw):
            events.append((event["type"], event["object"]["metadata"]["name"]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_watch_streams_added_modified_deleted_and_ends_at_timeout(k8s: FakeKubeAPI, co: Any) -> None:
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("existing", labels={"w": "1"}))
    events: list[tuple[str, str]] = []
    started = time.monotonic()
    thread = _watch_in_thread(co, events, timeout_seconds=3, label_selector="w=1")
    _wait_for(lambda: k8s.watch_count == 1)

    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("live", labels={"w": "1"}))
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("other", labels={"w": "2"}))
    co.patch_namespaced_custom_object(*ARGO, NS, "workflows", "live", {"spec": {"suspend": True}})
    co.delete_namespaced_custom_object(*ARGO, NS, "workflows", "live")
    co.patch_namespaced_custom_object(
        *ARGO, NS, "workflows", "existing", {"metadata": {"labels": {"w": "0"}}}
    )
    thread.join(10)

    elapsed = time.monotonic() - started
    assert not thread.is_alive(), "the stream did not end at timeoutSeconds"
    assert 2.5 <= elapsed < 8
    assert events == [
        ("ADDED", "existing"),
        ("ADDED", "live"),
        ("MODIFIED", "live"),
        ("DELETED", "live"),
        ("DELETED", "existing"),  # no longer matches the selector: the watcher sees it leave
    ]
    assert k8s.watch_count == 0


def test_watch_from_resource_version_and_410_when_too_old(k8s: FakeKubeAPI, co: Any) -> None:
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("before"))
    listed = co.list_namespaced_custom_object(*ARGO, NS, "workflows")
    since = listed["metadata"]["resourceVersion"]
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("after"))
    co.patch_namespaced_custom_object(*ARGO, NS, "workflows", "before", {"spec": {"suspend": True}})

    events: list[tuple[str, str]] = []
    _watch_in_thread(co, events, timeout_seconds=1, resource_version=since).join(10)
    assert events == [("ADDED", "after"), ("MODIFIED", "before")]

    k8s.compact()
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(
            co.list_namespaced_custom_object,
            *ARGO,
            NS,
            "workflows",
            resource_version=since,
            timeout_seconds=1,
        ):
            pass
    assert err.value.status == 410 and "too old resource version" in str(err.value.reason)


# --- faults, discovery, auth, authorization -----------------------------------------------------------------


def test_injected_500_then_success(k8s: FakeKubeAPI, co: Any) -> None:
    k8s.fail_next("POST", r"/namespaces/argo/workflows$", 500)
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("x"))
    assert err.value.status == 500 and body_of(err.value)["reason"] == "InternalError"
    assert k8s.objects(*ARGO, "workflows") == []
    created = co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("x"))
    assert created["metadata"]["name"] == "x"
    assert [(m, p) for m, p, _, _ in k8s.requests if m == "POST"] == [
        ("POST", "/apis/argoproj.io/v1alpha1/namespaces/argo/workflows")
    ] * 2
    assert k8s.requests[-1].body["metadata"]["name"] == "x"


def test_injected_429_with_retry_after(k8s: FakeKubeAPI, co: Any) -> None:
    k8s.fail_next("POST", r"/workflows$", 429, headers={"Retry-After": "3"})
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("t"))
    assert err.value.status == 429
    assert err.value.headers is not None and err.value.headers["Retry-After"] == "3"
    status = body_of(err.value)
    assert status["reason"] == "TooManyRequests" and status["details"]["retryAfterSeconds"] == 3

    # urllib3 retries an idempotent GET on 429 + Retry-After by itself, as it would against a real server
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("t"))
    k8s.clear_requests()
    k8s.fail_next("GET", r"/workflows/t$", 429, headers={"Retry-After": "0"})
    assert co.get_namespaced_custom_object(*ARGO, NS, "workflows", "t")["metadata"]["name"] == "t"
    assert [m for m, *_ in k8s.requests] == ["GET", "GET"]


def test_delayed_write_times_out_at_the_client_but_still_happens(k8s: FakeKubeAPI, co: Any) -> None:
    k8s.delay_next("POST", r"/workflows$", 1.0)
    with pytest.raises((urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.MaxRetryError)):
        co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("slow"), _request_timeout=0.2)
    _wait_for(lambda: k8s.get(*ARGO, "workflows", "slow", namespace=NS) is not None)


def test_discovery(api: client.ApiClient) -> None:
    groups: Any = client.ApisApi(api).get_api_versions()
    by_name = {g.name: g for g in groups.groups}
    assert {"apps", "batch", "coordination.k8s.io", "argoproj.io"} <= set(by_name)
    assert by_name["argoproj.io"].preferred_version.group_version == "argoproj.io/v1alpha1"
    version = client.VersionApi(api).get_code()
    assert version.git_version == "v1.37.0" and version.major == "1"
    core: Any = client.CoreV1Api(api).get_api_resources()
    assert {"namespaces", "configmaps", "secrets", "pods", "services"} <= {r.name for r in core.resources}
    argo = client.CustomObjectsApi(api).get_api_resources("argoproj.io", "v1alpha1")
    resources = {r.name: r for r in argo.resources}
    assert resources["workflows"].kind == "Workflow" and resources["workflows"].namespaced
    assert not resources["clusterworkflowtemplates"].namespaced
    assert "create" in resources["workflows"].verbs


def test_bearer_token_is_required_when_configured(tmp_path: Path) -> None:
    with FakeKubeAPI(token="s3cret").start() as k8s:
        with api_client_for(k8s, tmp_path) as good:
            created: Any = client.CustomObjectsApi(good).create_namespaced_custom_object(
                *ARGO, NS, "workflows", workflow("auth")
            )
            assert created["metadata"]["name"] == "auth"
        assert k8s.requests[-1].headers["authorization"] == "Bearer s3cret"
        cfg = client.Configuration(
            host=k8s.url, api_key={"authorization": "wrong"}, api_key_prefix={"authorization": "Bearer"}
        )
        with client.ApiClient(cfg) as bad, pytest.raises(ApiException) as err:
            client.CustomObjectsApi(bad).list_namespaced_custom_object(*ARGO, NS, "workflows")
        assert err.value.status == 401 and body_of(err.value)["reason"] == "Unauthorized"


def test_forbid_answers_403(k8s: FakeKubeAPI, co: Any) -> None:
    k8s.forbid("create", "argoproj.io", "workflows", namespace=NS)
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("no"))
    assert err.value.status == 403
    status = body_of(err.value)
    assert status["reason"] == "Forbidden"
    assert (
        'cannot create resource "workflows" in API group "argoproj.io" in the namespace "argo"'
        in status["message"]
    )
    co.create_namespaced_custom_object(
        *ARGO, "default", "workflows", workflow("yes")
    )  # other namespace is fine
    k8s.allow_all()
    co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("no"))


def test_dynamic_client_creates_a_workflow(k8s: FakeKubeAPI, api: client.ApiClient, tmp_path: Path) -> None:
    dyn = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    workflows = dyn.resources.get(api_version="argoproj.io/v1alpha1", kind="Workflow")
    created = workflows.create(body=workflow(generate="dyn-"), namespace=NS)
    assert created.metadata.name.startswith("dyn-")
    fetched = workflows.get(name=created.metadata.name, namespace=NS)
    assert fetched.spec.workflowTemplateRef.name == "ingest"
    patched = workflows.patch(
        body={"metadata": {"name": created.metadata.name, "labels": {"x": "y"}}},
        namespace=NS,
        content_type="application/merge-patch+json",
    )
    assert patched.metadata.labels.x == "y"
    assert [o["metadata"]["name"] for o in k8s.objects(*ARGO, "workflows", NS)] == [created.metadata.name]


def test_standalone_server_process(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_k8s.server", "--port", "0", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("fake-k8s listening on http://127.0.0.1:")
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        with client.ApiClient(cfg) as api:
            assert client.VersionApi(api).get_code().git_version.startswith("v1.")
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


# --- more of the API surface ------------------------------------------------------------------------------


def test_stop_ends_open_watches_promptly(tmp_path: Path) -> None:
    k8s = FakeKubeAPI().start()
    received: list[bytes] = []
    http = urllib3.PoolManager()
    try:
        resp = http.request(
            "GET",
            f"{k8s.url}/apis/argoproj.io/v1alpha1/namespaces/argo/workflows?watch=true",
            preload_content=False,
        )
        _wait_for(lambda: k8s.watch_count == 1)
        started = time.monotonic()
        k8s.stop()
        assert time.monotonic() - started < 3
        received.extend(resp.stream())  # the stream ends cleanly instead of hanging
        resp.release_conn()
    finally:
        k8s.stop()
        http.clear()
    assert received == []


def test_status_subresource_of_a_registered_crd(k8s: FakeKubeAPI, co: Any) -> None:
    k8s.register("example.com", "v1", "widgets", "Widget", status_subresource=True)
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"n": 1},
        "status": {"phase": "ignored on create"},
    }
    created = co.create_namespaced_custom_object("example.com", "v1", NS, "widgets", body)
    assert "status" not in created
    with_status = co.patch_namespaced_custom_object_status(
        "example.com", "v1", NS, "widgets", "w", {"status": {"phase": "Ready"}}
    )
    assert with_status["status"] == {"phase": "Ready"} and with_status["metadata"]["generation"] == 1
    got = co.get_namespaced_custom_object_status("example.com", "v1", NS, "widgets", "w")
    assert got["status"] == {"phase": "Ready"}
    with pytest.raises(ApiException) as err:  # Argo's Workflow CRD has no /status subresource
        co.get_namespaced_custom_object_status(*ARGO, NS, "workflows", "w")
    assert err.value.status == 404


def test_cluster_scoped_cluster_workflow_template(co: Any) -> None:
    body = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ClusterWorkflowTemplate",
        "metadata": {"name": "shared"},
        "spec": {"entrypoint": "main"},
    }
    created = co.create_cluster_custom_object(*ARGO, "clusterworkflowtemplates", body)
    assert "namespace" not in created["metadata"]
    assert (
        co.get_cluster_custom_object(*ARGO, "clusterworkflowtemplates", "shared")["spec"]["entrypoint"]
        == "main"
    )


def test_dry_run_and_delete_collection(k8s: FakeKubeAPI, co: Any) -> None:
    dry = co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow("dry"), dry_run="All")
    assert dry["metadata"]["name"] == "dry"
    assert k8s.objects(*ARGO, "workflows") == []
    for name, sensor in (("a", "s1"), ("b", "s1"), ("c", "s2")):
        co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow(name, labels={"sensor": sensor}))
    deleted = co.delete_collection_namespaced_custom_object(
        *ARGO, NS, "workflows", label_selector="sensor=s1"
    )
    assert sorted(i["metadata"]["name"] for i in deleted["items"]) == ["a", "b"]
    assert [o["metadata"]["name"] for o in k8s.objects(*ARGO, "workflows")] == ["c"]


def test_server_side_apply_creates_then_merges(api: client.ApiClient, tmp_path: Path) -> None:
    dyn = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    templates = dyn.resources.get(api_version="argoproj.io/v1alpha1", kind="WorkflowTemplate")
    manifest = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "applied", "namespace": NS},
        "spec": {"entrypoint": "main"},
    }
    created = templates.server_side_apply(body=manifest, field_manager="triggergate")
    assert created.metadata.name == "applied" and created.spec.entrypoint == "main"
    manifest["spec"] = {"entrypoint": "other"}
    updated = templates.server_side_apply(body=manifest, field_manager="triggergate")
    assert updated.spec.entrypoint == "other"
    assert int(updated.metadata.resourceVersion) > int(created.metadata.resourceVersion)


def test_watch_bookmarks_and_initial_events(k8s: FakeKubeAPI, api: client.ApiClient) -> None:
    core: Any = client.CoreV1Api(api)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "one"}, "data": {}})
    events = list(
        watch.Watch().stream(
            core.list_namespaced_config_map,
            NS,
            timeout_seconds=1,
            allow_watch_bookmarks=True,
            send_initial_events=True,
            resource_version_match="NotOlderThan",
        )
    )
    kinds = [e["type"] for e in events]
    assert kinds == ["ADDED", "BOOKMARK", "BOOKMARK"]
    assert events[0]["object"].metadata.name == "one"
    assert events[1]["raw_object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert events[-1]["raw_object"]["metadata"]["resourceVersion"] == str(k8s.resource_version)


def test_leader_election_acquires_a_lease(api: client.ApiClient) -> None:
    from kubernetes.leaderelection import electionconfig, leaderelection
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    def candidate(identity: str) -> Any:
        lock = LeaseLock("gw-le", NS, identity)
        lock.api_instance = client.CoordinationV1Api(api)  # not the global default client
        cfg = electionconfig.Config(lock, 15, 10, 2, lambda: None, lambda: None)
        return leaderelection.LeaderElection(cfg)

    assert candidate("pod-a").try_acquire_or_renew() is True
    assert candidate("pod-b").try_acquire_or_renew() is False  # the lease is held and not expired
    coord: Any = client.CoordinationV1Api(api)
    assert coord.read_namespaced_lease("gw-le", NS).spec.holder_identity == "pod-a"


def test_request_log_and_kubeconfig(k8s: FakeKubeAPI, co: Any, tmp_path: Path) -> None:
    k8s.clear_requests()
    co.list_namespaced_custom_object(*ARGO, NS, "workflows", label_selector="a=b", limit=5)
    method, path, query, body = k8s.requests[0]
    assert (method, path, body) == ("GET", "/apis/argoproj.io/v1alpha1/namespaces/argo/workflows", None)
    assert query == {"labelSelector": "a=b", "limit": "5"}

    written = k8s.write_kubeconfig(tmp_path / "nested" / "config", namespace="team", context="ci")
    contexts, active = config.list_kube_config_contexts(config_file=str(written))
    assert active["name"] == "ci" and active["context"]["namespace"] == "team"
    assert len(contexts) == 1


async def test_asyncio_client_creates_and_watches(k8s: FakeKubeAPI, tmp_path: Path) -> None:
    from kubernetes.aio import client as aclient
    from kubernetes.aio import config as aconfig
    from kubernetes.aio import watch as awatch

    cfg = aclient.Configuration()
    await aconfig.load_kube_config(
        config_file=str(k8s.write_kubeconfig(tmp_path / "kubeconfig")), client_configuration=cfg
    )
    async with aclient.ApiClient(cfg) as api:
        co: Any = aclient.CustomObjectsApi(api)
        created = await co.create_namespaced_custom_object(*ARGO, NS, "workflows", workflow(generate="aio-"))
        assert created["metadata"]["name"].startswith("aio-")
        seen = []
        async with awatch.Watch().stream(
            co.list_namespaced_custom_object, *ARGO, NS, "workflows", timeout_seconds=1
        ) as stream:
            async for event in stream:
                seen.append((event["type"], event["object"]["metadata"]["name"]))
        assert seen == [("ADDED", created["metadata"]["name"])]
