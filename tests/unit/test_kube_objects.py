"""The pure parts of the Kubernetes triggers: names, lineage labels, patches, Argo Workflow formulations."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from sensors.objects import (
    EVENT_IDS_ANNOTATION,
    FIRING_LABEL,
    ObjectError,
    assign_name,
    created_by,
    deterministic_name,
    name_digest,
    object_ref,
    stamp,
)
from sensors.patches import PatchError, json_patch, merge_override, merge_patch
from sensors.workflows import (
    WorkflowError,
    missing_parameters,
    override_parameters,
    parameter_overrides,
    resubmit_workflow,
    resume_workflow,
    retry_workflow,
    workflow_from_cron,
    workflow_from_template,
)

KEY = "9ebc8be0956c947b59599a847589975c"
NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


# --------------------------------------------------------------------------- names and labels


def test_name_digest_is_deterministic_short_and_dns_safe() -> None:
    digest = name_digest(KEY)
    assert digest == name_digest(KEY)
    assert len(digest) == 10 and DNS_LABEL.match(digest)
    assert digest != name_digest(KEY[:-1] + "d")


def test_deterministic_name_keeps_the_prefix_and_fits_63_characters() -> None:
    assert deterministic_name("bwa-align-", KEY) == "bwa-align-" + name_digest(KEY)
    long = deterministic_name("x" * 80 + "-", KEY)
    assert len(long) == 63 and long.endswith(name_digest(KEY)) and long.startswith("x" * 53)


def test_assign_name_derives_from_generate_name_and_keeps_a_fixed_name() -> None:
    obj = {"kind": "Workflow", "metadata": {"generateName": "run-"}}
    named = assign_name(obj, KEY)
    assert named["metadata"] == {"name": "run-" + name_digest(KEY)}
    assert obj == {"kind": "Workflow", "metadata": {"generateName": "run-"}}  # not modified
    fixed = assign_name({"metadata": {"name": "nightly", "generateName": "x-"}}, KEY)
    assert fixed["metadata"]["name"] == "nightly"
    with pytest.raises(ObjectError, match=r"needs metadata\.name or metadata\.generateName"):
        assign_name({"kind": "Workflow", "metadata": {}}, KEY)
    with pytest.raises(ObjectError, match="must be a Kubernetes object"):
        assign_name(["not", "a", "mapping"], KEY)  # type: ignore[arg-type]


def test_stamp_sets_argo_labels_firing_label_and_lineage() -> None:
    obj = {"metadata": {"name": "w", "labels": {"team": "genomics"}, "annotations": {"a": "b"}}}
    out = stamp(obj, sensor="s", trigger="t", key=KEY, event_ids=["e1", "e2", "e1"], now_ms=1234)
    assert out["metadata"]["labels"] == {
        "team": "genomics",
        "events.argoproj.io/sensor": "s",
        "events.argoproj.io/trigger": "t",
        "events.argoproj.io/action-timestamp": "1234",
        FIRING_LABEL: KEY,
    }
    assert out["metadata"]["annotations"] == {"a": "b", EVENT_IDS_ANNOTATION: "e1,e2"}
    assert created_by(out) == KEY and created_by(obj) is None
    assert "labels" in obj["metadata"] and FIRING_LABEL not in obj["metadata"]["labels"]


def test_object_ref_defaults_the_namespace_except_for_cluster_scoped_kinds() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert str(object_ref(obj, "argo")) == "ConfigMap argo/c"
    assert object_ref({**obj, "metadata": {"name": "c", "namespace": "x"}}, "argo").namespace == "x"
    assert object_ref(obj, "argo", namespaced=False).namespace == ""
    with pytest.raises(ObjectError, match="apiVersion"):
        object_ref({"kind": "ConfigMap"}, "argo")
    with pytest.raises(ObjectError, match="kind"):
        object_ref({"apiVersion": "v1"}, "argo")


# --------------------------------------------------------------------------- patches


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3], "n": {"x": 1}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3], "n": {"x": 1}}
    assert target["c"] == {"d": "e", "f": "g"}
    assert merge_patch({"a": 1}, [1]) == [1]


def test_merge_override_merges_maps_and_replaces_other_values() -> None:
    live = {"metadata": {"name": "n", "resourceVersion": "7", "labels": {"a": "1"}}, "data": {"x": "1"}}
    new = {"metadata": {"labels": {"b": "2"}}, "data": {"x": "2", "y": None}, "list": [1]}
    assert merge_override(live, new) == {
        "metadata": {"name": "n", "resourceVersion": "7", "labels": {"a": "1", "b": "2"}},
        "data": {"x": "2"},
        "list": [1],
    }


def test_json_patch_operations_and_errors() -> None:
    doc = {"spec": {"servers": [{"h": "a"}], "x": 1}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/spec/servers/-", "value": {"h": "b"}},
            {"op": "replace", "path": "/spec/x", "value": 2},
            {"op": "copy", "from": "/spec/x", "path": "/spec/y"},
            {"op": "move", "from": "/spec/y", "path": "/spec/z"},
            {"op": "test", "path": "/spec/z", "value": 2},
            {"op": "remove", "path": "/spec/servers/0"},
            {"op": "add", "path": "/metadata", "value": {"annotations": {"a/b": "c"}}},
            {"op": "add", "path": "/metadata/annotations/x~1y", "value": "z"},
        ],
    )
    assert out == {
        "spec": {"servers": [{"h": "b"}], "x": 2, "z": 2},
        "metadata": {"annotations": {"a/b": "c", "x/y": "z"}},
    }
    assert doc == {"spec": {"servers": [{"h": "a"}], "x": 1}}
    with pytest.raises(PatchError, match="test failed"):
        json_patch(doc, [{"op": "test", "path": "/spec/x", "value": 5}])
    with pytest.raises(PatchError, match="does not exist"):
        json_patch(doc, [{"op": "replace", "path": "/spec/nope", "value": 5}])
    with pytest.raises(PatchError, match="out of range"):
        json_patch(doc, [{"op": "add", "path": "/spec/servers/5", "value": 5}])
    with pytest.raises(PatchError, match="list of operations"):
        json_patch(doc, {"op": "add"})
    with pytest.raises(PatchError, match="unknown op"):
        json_patch(doc, [{"op": "frobnicate", "path": "/a"}])


# --------------------------------------------------------------------------- Argo Workflows


def test_parameter_overrides_and_override_order() -> None:
    source = {"spec": {"arguments": {"parameters": [{"name": "a", "value": "1", "extra": "x"}]}}}
    assert parameter_overrides(source) == [{"name": "a", "value": "1"}]
    cron = {"kind": "CronWorkflow", "spec": {"workflowSpec": {"arguments": {"parameters": [{"name": "b"}]}}}}
    assert parameter_overrides(cron) == [{"name": "b"}]
    spec = {"arguments": {"parameters": [{"name": "a", "value": "0"}, {"name": "c", "value": "3"}]}}
    assert override_parameters(spec, [{"name": "a", "value": "1"}])["arguments"]["parameters"] == [
        {"name": "a", "value": "1"},
        {"name": "c", "value": "3"},
    ]
    with pytest.raises(WorkflowError, match="needs a name"):
        parameter_overrides({"spec": {"arguments": {"parameters": [{"value": "x"}]}}})


def test_workflow_from_template_as_argo_submit_from() -> None:
    wf = workflow_from_template(
        {"kind": "WorkflowTemplate", "metadata": {"name": "bwa"}}, [{"name": "run", "value": "R1"}]
    )
    assert wf == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "generateName": "bwa-",
            "labels": {"workflows.argoproj.io/workflow-template": "bwa"},
            "annotations": {},
        },
        "spec": {
            "workflowTemplateRef": {"name": "bwa"},
            "arguments": {"parameters": [{"name": "run", "value": "R1"}]},
        },
    }
    cluster = workflow_from_template({"kind": "ClusterWorkflowTemplate", "metadata": {"name": "c"}})
    assert cluster["spec"] == {"workflowTemplateRef": {"name": "c", "clusterScope": True}}
    assert cluster["metadata"]["labels"] == {"workflows.argoproj.io/cluster-workflow-template": "c"}
    with pytest.raises(WorkflowError, match="expected a WorkflowTemplate"):
        workflow_from_template({"kind": "Workflow", "metadata": {"name": "x"}})


def test_workflow_from_cron_copies_spec_labels_and_owner() -> None:
    cron = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {
            "name": "nightly",
            "uid": "u-1",
            "labels": {"workflows.argoproj.io/controller-instanceid": "i1", "other": "no"},
        },
        "spec": {
            "schedule": "0 1 * * *",
            "workflowSpec": {
                "entrypoint": "main",
                "arguments": {"parameters": [{"name": "day", "value": "x"}]},
            },
            "workflowMetadata": {"labels": {"team": "g"}, "annotations": {"n": "1"}, "finalizers": ["f"]},
        },
    }
    wf = workflow_from_cron(cron, [{"name": "day", "value": "2026-11-22"}], NOW)
    assert wf["kind"] == "Workflow"
    assert wf["metadata"]["generateName"] == "nightly-"
    assert wf["metadata"]["labels"] == {
        "workflows.argoproj.io/controller-instanceid": "i1",
        "workflows.argoproj.io/cron-workflow": "nightly",
        "team": "g",
    }
    assert wf["metadata"]["annotations"] == {
        "workflows.argoproj.io/scheduled-time": "2026-11-22T12:00:00Z",
        "n": "1",
    }
    assert wf["metadata"]["finalizers"] == ["f"]
    assert wf["metadata"]["ownerReferences"][0] == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "name": "nightly",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert wf["spec"] == {
        "entrypoint": "main",
        "arguments": {"parameters": [{"name": "day", "value": "2026-11-22"}]},
    }
    with pytest.raises(WorkflowError, match=r"no spec\.workflowSpec"):
        workflow_from_cron({"kind": "CronWorkflow", "metadata": {"name": "n"}, "spec": {}}, [], NOW)


def test_resubmit_workflow_as_argo_resubmit() -> None:
    old = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": "run-abc",
            "labels": {
                "workflows.argoproj.io/phase": "Failed",
                "workflows.argoproj.io/completed": "true",
                "k": "v",
            },
            "annotations": {"a": "1"},
        },
        "spec": {"entrypoint": "main", "shutdown": "Terminate", "activeDeadlineSeconds": 0},
        "status": {"phase": "Failed"},
    }
    new = resubmit_workflow(old)
    assert new["metadata"] == {
        "generateName": "run-abc-",
        "labels": {"k": "v", "workflows.argoproj.io/resubmitted-from-workflow": "run-abc"},
        "annotations": {"a": "1"},
    }
    assert new["spec"] == {"entrypoint": "main"}
    assert "status" not in new


def _failed_workflow() -> dict[str, object]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": "wf",
            "resourceVersion": "9",
            "labels": {"workflows.argoproj.io/completed": "true", "workflows.argoproj.io/phase": "Failed"},
        },
        "spec": {"entrypoint": "main", "shutdown": "Stop"},
        "status": {
            "phase": "Failed",
            "message": "child failed",
            "finishedAt": "2026-11-22T11:00:00Z",
            "conditions": [{"type": "Completed", "status": "True"}],
            "nodes": {
                "wf": {"id": "wf", "name": "wf", "type": "DAG", "phase": "Failed", "children": ["a", "b"]},
                "a": {"id": "a", "name": "wf.a", "type": "Pod", "phase": "Succeeded"},
                "b": {"id": "b", "name": "wf.b", "type": "Pod", "phase": "Failed", "children": ["c"]},
                "c": {"id": "c", "name": "wf.c", "type": "Pod", "phase": "Omitted"},
                "x": {"id": "x", "name": "wf.onExit", "type": "Pod", "phase": "Succeeded"},
            },
        },
    }


def test_retry_workflow_resets_failed_nodes_and_their_ancestors() -> None:
    new, pods = retry_workflow(_failed_workflow(), NOW)
    status = new["status"]
    assert set(status["nodes"]) == {"wf", "a"}
    assert status["nodes"]["wf"]["phase"] == "Running" and status["nodes"]["wf"]["children"] == ["a"]
    assert "finishedAt" not in status["nodes"]["wf"]
    assert status["nodes"]["a"]["phase"] == "Succeeded"
    assert status["phase"] == "" and status["message"] == "" and "finishedAt" not in status
    assert status["conditions"] == [{"type": "Completed", "status": "False"}]
    assert new["metadata"]["labels"] == {"workflows.argoproj.io/phase": "Failed"}
    assert "shutdown" not in new["spec"]
    assert pods == ["b", "c", "x"]


def test_retry_refuses_running_and_offloaded_workflows() -> None:
    running = _failed_workflow()
    running["status"] = {"phase": "Running"}
    with pytest.raises(WorkflowError, match="in phase Running"):
        retry_workflow(running, NOW)
    offloaded = _failed_workflow()
    offloaded["status"]["offloadNodeStatusVersion"] = "v1"  # type: ignore[index]
    with pytest.raises(WorkflowError, match="offloaded"):
        retry_workflow(offloaded, NOW)


def test_resume_workflow_clears_suspend_and_completes_suspend_nodes() -> None:
    wf = {
        "metadata": {"name": "wf"},
        "spec": {"suspend": True, "entrypoint": "main"},
        "status": {
            "nodes": {
                "s": {
                    "name": "wf.approve",
                    "type": "Suspend",
                    "phase": "Running",
                    "outputs": {
                        "parameters": [{"name": "ok", "valueFrom": {"supplied": {}, "default": "yes"}}]
                    },
                },
                "p": {"name": "wf.done", "type": "Pod", "phase": "Succeeded"},
            }
        },
    }
    out = resume_workflow(wf, NOW, "Resumed by triggergate")
    assert out is not None
    assert out["spec"] == {"entrypoint": "main"}
    node = out["status"]["nodes"]["s"]
    assert node["phase"] == "Succeeded" and node["message"] == "Resumed by triggergate"
    assert node["finishedAt"] == "2026-11-22T12:00:00Z"
    assert node["outputs"]["parameters"] == [{"name": "ok", "value": "yes"}]
    assert resume_workflow(out, NOW, "again") is None
    no_default = {"spec": {}, "status": {"nodes": {"s": {**wf["status"]["nodes"]["s"]}}}}  # type: ignore[index]
    no_default["status"]["nodes"]["s"]["outputs"] = {
        "parameters": [{"name": "ok", "valueFrom": {"supplied": {}}}]
    }
    with pytest.raises(WorkflowError, match="no value and no default"):
        resume_workflow(no_default, NOW, "x")


def test_missing_parameters_names_required_ones_not_supplied() -> None:
    template = {
        "spec": {
            "arguments": {
                "parameters": [
                    {"name": "run-id"},
                    {"name": "bucket"},
                    {"name": "reference", "value": "GRCh38"},
                    {"name": "from-cm", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                ]
            }
        }
    }
    assert missing_parameters(template, ["run-id"]) == ["bucket"]
    assert missing_parameters(template, ["run-id", "bucket"]) == []
