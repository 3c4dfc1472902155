"""Argo Workflows objects as the Argo server builds them, as pure functions over plain dicts.

These are the parts of ``argo submit --from``, ``argo resubmit``, ``argo retry``, ``argo resume``,
``argo suspend``, ``argo stop`` and ``argo terminate`` that shape objects
(argo-workflows ``workflow/common/convert.go`` and ``workflow/util/util.go``); the executor in
``gateway/triggers/argo_workflow.py`` reads and writes them through the Kubernetes API.

Simplified against Argo (written down in ``docs/triggers/argo-workflow.md``):

* :func:`retry_workflow` resets every failed or errored execution node (``Pod``, ``Container``,
  ``HTTP``, ``Plugin``; for a retried node, its ``Retry`` parent) with everything below it, and sets
  every ancestor of those nodes back to ``Running``. Argo's finer rules (``restartSuccessful`` with a
  node selector, boundary resets of nested templates) are not applied. Workflows whose node status
  is compressed or offloaded are refused.
* :func:`resume_workflow` resumes every active suspend node (no node selector).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "API_VERSION",
    "TEMPLATE_KINDS",
    "WorkflowError",
    "format_time",
    "is_completed",
    "is_fulfilled",
    "missing_parameters",
    "override_parameters",
    "parameter_overrides",
    "resubmit_workflow",
    "resume_workflow",
    "retry_workflow",
    "workflow_from_cron",
    "workflow_from_template",
]

API_VERSION = "argoproj.io/v1alpha1"
TEMPLATE_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")

LABEL_WORKFLOW_TEMPLATE = "workflows.argoproj.io/workflow-template"
LABEL_CLUSTER_WORKFLOW_TEMPLATE = "workflows.argoproj.io/cluster-workflow-template"
LABEL_CRON_WORKFLOW = "workflows.argoproj.io/cron-workflow"
LABEL_CONTROLLER_INSTANCE_ID = "workflows.argoproj.io/controller-instanceid"
LABEL_PREVIOUS_WORKFLOW = "workflows.argoproj.io/resubmitted-from-workflow"
LABEL_COMPLETED = "workflows.argoproj.io/completed"
LABEL_PHASE = "workflows.argoproj.io/phase"
LABEL_ARCHIVING_STATUS = "workflows.argoproj.io/workflow-archiving-status"
LABEL_CREATORS = (
    "workflows.argoproj.io/creator",
    "workflows.argoproj.io/creator-email",
    "workflows.argoproj.io/creator-preferred-username",
)
ANNOTATION_SCHEDULED_TIME = "workflows.argoproj.io/scheduled-time"

FULFILLED_PHASES = ("Succeeded", "Failed", "Error")
EXECUTION_NODE_TYPES = ("Pod", "Container", "HTTP", "Plugin")


class WorkflowError(ValueError):
    """The operation cannot be carried out on this object (as Argo answers with a BadRequest)."""


def format_time(now: datetime) -> str:
    """RFC 3339 in UTC with seconds, as Kubernetes writes ``metav1.Time``."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_completed(wf: Mapping[str, Any]) -> bool:
    """Argo's ``IsWorkflowCompleted``: the ``workflows.argoproj.io/completed: "true"`` label."""
    return _labels(wf).get(LABEL_COMPLETED) == "true"


def is_fulfilled(wf: Mapping[str, Any]) -> bool:
    """The Workflow's phase is final (Succeeded, Failed or Error)."""
    return (wf.get("status") or {}).get("phase") in FULFILLED_PHASES


# --------------------------------------------------------------------------- parameters


def parameter_overrides(source: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The parameters a trigger's source object passes on, as ``argo submit -p name=value`` would:
    ``spec.arguments.parameters`` (a CronWorkflow's ``spec.workflowSpec.arguments.parameters``)."""
    spec = source.get("spec") or {}
    arguments = spec.get("arguments")
    if arguments is None and source.get("kind") == "CronWorkflow":
        arguments = (spec.get("workflowSpec") or {}).get("arguments")
    parameters = (arguments or {}).get("parameters") or []
    if not isinstance(parameters, list):
        raise WorkflowError("spec.arguments.parameters must be a list of {name, value}")
    result: list[dict[str, Any]] = []
    for number, parameter in enumerate(parameters):
        if not isinstance(parameter, dict) or not parameter.get("name"):
            raise WorkflowError(f"spec.arguments.parameters[{number}] needs a name")
        result.append({k: copy.deepcopy(v) for k, v in parameter.items() if k in ("name", "value")})
    return result


def override_parameters(spec: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A copy of a Workflow ``spec`` whose ``arguments.parameters`` are the overrides followed by the
    existing parameters they do not name (Argo's ``overrideParameters``)."""
    result = copy.deepcopy(dict(spec))
    if not overrides:
        return result
    names = {p["name"] for p in overrides}
    arguments = result.setdefault("arguments", {})
    kept = [p for p in arguments.get("parameters") or [] if p.get("name") not in names]
    arguments["parameters"] = [copy.deepcopy(dict(p)) for p in overrides] + kept
    return result


def missing_parameters(template: Mapping[str, Any], supplied: Sequence[str]) -> list[str]:
    """The template's ``spec.arguments.parameters`` without a ``value``/``default`` that are not in
    ``supplied``: the Workflow would fail to start without them."""
    parameters = ((template.get("spec") or {}).get("arguments") or {}).get("parameters") or []
    missing = []
    for parameter in parameters:
        if not isinstance(parameter, dict):
            continue
        name = parameter.get("name")
        has_value = parameter.get("value") is not None or parameter.get("default") is not None
        if name and not has_value and parameter.get("valueFrom") is None and name not in supplied:
            missing.append(str(name))
    return missing


# --------------------------------------------------------------------------- submit --from


def workflow_from_template(
    template: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """A Workflow that runs a WorkflowTemplate or ClusterWorkflowTemplate by reference, as
    ``argo submit --from workflowtemplate/NAME`` builds it (``NewWorkflowFromWorkflowTemplate``)."""
    kind = template.get("kind")
    name = (template.get("metadata") or {}).get("name")
    if kind not in ("WorkflowTemplate", "ClusterWorkflowTemplate"):
        raise WorkflowError(f"expected a WorkflowTemplate or ClusterWorkflowTemplate, got kind {kind!r}")
    if not name:
        raise WorkflowError(f"the {kind} to submit from needs metadata.name")
    cluster_scope = kind == "ClusterWorkflowTemplate"
    ref: dict[str, Any] = {"name": name}
    if cluster_scope:
        ref["clusterScope"] = True
    label = LABEL_CLUSTER_WORKFLOW_TEMPLATE if cluster_scope else LABEL_WORKFLOW_TEMPLATE
    spec = override_parameters({"workflowTemplateRef": ref}, overrides)
    return {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {"generateName": f"{name}-", "labels": {label: name}, "annotations": {}},
        "spec": spec,
    }


def workflow_from_cron(
    cron: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]], now: datetime
) -> dict[str, Any]:
    """A Workflow from a (live) CronWorkflow, as ``argo submit --from cronwf/NAME`` builds it
    (``ConvertCronWorkflowToWorkflow``): its ``spec.workflowSpec``, the cron-workflow label, the
    controller instance id, ``spec.workflowMetadata`` labels, annotations and finalizers, and the
    CronWorkflow as controlling owner."""
    if cron.get("kind") != "CronWorkflow":
        raise WorkflowError(f"expected a CronWorkflow, got kind {cron.get('kind')!r}")
    meta = cron.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise WorkflowError("the CronWorkflow to submit from needs metadata.name")
    spec = cron.get("spec") or {}
    workflow_spec = spec.get("workflowSpec")
    if not isinstance(workflow_spec, dict):
        raise WorkflowError(f"CronWorkflow {name} has no spec.workflowSpec")
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {ANNOTATION_SCHEDULED_TIME: format_time(now)}
    instance_id = (meta.get("labels") or {}).get(LABEL_CONTROLLER_INSTANCE_ID)
    if instance_id is not None:
        labels[LABEL_CONTROLLER_INSTANCE_ID] = instance_id
    labels[LABEL_CRON_WORKFLOW] = name
    metadata: dict[str, Any] = {"generateName": f"{name}-", "labels": labels, "annotations": annotations}
    workflow_metadata = spec.get("workflowMetadata") or {}
    labels.update(workflow_metadata.get("labels") or {})
    annotations.update(workflow_metadata.get("annotations") or {})
    if workflow_metadata.get("finalizers"):
        metadata["finalizers"] = list(workflow_metadata["finalizers"])
    if meta.get("uid"):
        metadata["ownerReferences"] = [
            {
                "apiVersion": cron.get("apiVersion", API_VERSION),
                "kind": "CronWorkflow",
                "name": name,
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": cron.get("apiVersion", API_VERSION),
        "kind": "Workflow",
        "metadata": metadata,
        "spec": override_parameters(workflow_spec, overrides),
    }


# --------------------------------------------------------------------------- resubmit / retry / resume


def resubmit_workflow(wf: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A new Workflow from an existing one, as ``argo resubmit`` builds it (``FormulateResubmitWorkflow``
    without memoization): same spec (no shutdown, no zero deadline), the user labels and annotations,
    the owner references, and the ``resubmitted-from-workflow`` label."""
    meta = wf.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise WorkflowError("the Workflow to resubmit needs metadata.name")
    spec = copy.deepcopy(wf.get("spec") or {})
    if spec.get("activeDeadlineSeconds") == 0:
        del spec["activeDeadlineSeconds"]
    spec.pop("shutdown", None)
    skip = {*LABEL_CREATORS, LABEL_PHASE, LABEL_COMPLETED, LABEL_ARCHIVING_STATUS}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in skip}
    labels[LABEL_PREVIOUS_WORKFLOW] = name
    metadata: dict[str, Any] = {
        "generateName": meta.get("generateName") or f"{name}-",
        "labels": labels,
        "annotations": dict(meta.get("annotations") or {}),
    }
    if meta.get("ownerReferences"):
        metadata["ownerReferences"] = copy.deepcopy(meta["ownerReferences"])
    return {
        "apiVersion": wf.get("apiVersion", API_VERSION),
        "kind": "Workflow",
        "metadata": metadata,
        "spec": override_parameters(spec, overrides),
    }


def _labels(obj: Mapping[str, Any]) -> dict[str, Any]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return dict(labels) if isinstance(labels, dict) else {}


def _check_nodes_inline(wf: Mapping[str, Any]) -> None:
    status = wf.get("status") or {}
    if status.get("compressedNodes") or status.get("offloadNodeStatusVersion"):
        raise WorkflowError(
            "the Workflow's node status is compressed or offloaded to a database; "
            "triggergate cannot change it: use the argo CLI or server for this Workflow"
        )


def retry_workflow(wf: Mapping[str, Any], now: datetime) -> tuple[dict[str, Any], list[str]]:
    """The Workflow as ``argo retry`` leaves it (simplified ``FormulateRetryWorkflow``), and the ids of
    the ``Pod`` nodes it removed (their pods must be deleted so that the controller runs them again).

    Only a Failed or Error Workflow can be retried.
    """
    status = wf.get("status") or {}
    name = (wf.get("metadata") or {}).get("name") or ""
    phase = status.get("phase") or ""
    if phase not in ("Failed", "Error"):
        raise WorkflowError(
            f"cannot retry Workflow {name} in phase {phase or 'Pending'}: it must be Failed or Error"
        )
    _check_nodes_inline(wf)
    nodes: dict[str, dict[str, Any]] = copy.deepcopy(status.get("nodes") or {})
    parents: dict[str, str] = {}
    for node_id, node in nodes.items():
        for child in node.get("children") or []:
            parents.setdefault(child, node_id)

    def descendants(node_id: str) -> set[str]:
        found: set[str] = set()
        stack = [node_id]
        while stack:
            for child in nodes.get(stack.pop(), {}).get("children") or []:
                if child not in found and child in nodes:
                    found.add(child)
                    stack.append(child)
        return found

    to_delete: set[str] = set()
    on_exit = f"{name}.onExit"
    for node_id, node in nodes.items():
        if str(node.get("name", "")).startswith(on_exit):
            to_delete.add(node_id)
            to_delete |= descendants(node_id)
            continue
        if node.get("type") in EXECUTION_NODE_TYPES and node.get("phase") in ("Failed", "Error"):
            start = node_id
            parent = parents.get(node_id)
            retried = (node.get("nodeFlag") or {}).get("retried")
            if retried and parent and nodes[parent].get("type") == "Retry":
                start = parent
            to_delete.add(start)
            to_delete |= descendants(start)
    to_reset: set[str] = set()
    for node_id in to_delete:
        parent = parents.get(node_id)
        while parent is not None and parent not in to_delete:
            to_reset.add(parent)
            parent = parents.get(parent)
    started = format_time(now)
    new_nodes: dict[str, dict[str, Any]] = {}
    for node_id, node in nodes.items():
        if node_id in to_delete:
            continue
        if node_id in to_reset:
            if node.get("phase") != "Skipped":
                node["phase"] = "Running"
            node["message"] = ""
            node["startedAt"] = started
            node.pop("finishedAt", None)
        node["children"] = [c for c in node.get("children") or [] if c not in to_delete]
        if "outboundNodes" in node:
            node["outboundNodes"] = [c for c in node["outboundNodes"] if c not in to_delete]
        if not node["children"]:
            node.pop("children")
        new_nodes[node_id] = node
    result = copy.deepcopy(dict(wf))
    labels = _labels(result)
    labels.pop(LABEL_COMPLETED, None)
    labels.pop(LABEL_ARCHIVING_STATUS, None)
    result.setdefault("metadata", {})["labels"] = labels
    spec = result.setdefault("spec", {})
    spec.pop("shutdown", None)
    if spec.get("activeDeadlineSeconds") == 0:
        del spec["activeDeadlineSeconds"]
    new_status = result.setdefault("status", {})
    new_status["phase"] = ""
    new_status["message"] = ""
    new_status["startedAt"] = started
    new_status.pop("finishedAt", None)
    new_status["nodes"] = new_nodes
    new_status["persistentVolumeClaims"] = []
    stored = new_status.get("storedWorkflowTemplateSpec") or new_status.get("storedWorkflowSpec")
    if isinstance(stored, dict):
        stored.pop("shutdown", None)
    conditions = [c for c in new_status.get("conditions") or [] if c.get("type") != "Completed"]
    new_status["conditions"] = [*conditions, {"type": "Completed", "status": "False"}]
    pods = sorted(i for i in to_delete if nodes[i].get("type") == "Pod")
    return result, pods


def resume_workflow(wf: Mapping[str, Any], now: datetime, message: str) -> dict[str, Any] | None:
    """The Workflow as ``argo resume`` leaves it (``ResumeWorkflow``): ``spec.suspend`` cleared and
    every active suspend node Succeeded, its supplied output parameters set to their defaults.
    ``None`` when there is nothing to resume."""
    _check_nodes_inline(wf)
    result = copy.deepcopy(dict(wf))
    changed = False
    spec = result.setdefault("spec", {})
    if spec.get("suspend"):
        del spec["suspend"]
        changed = True
    for node_id, node in ((result.get("status") or {}).get("nodes") or {}).items():
        if node.get("type") != "Suspend" or node.get("phase") != "Running":
            continue
        for parameter in (node.get("outputs") or {}).get("parameters") or []:
            value_from = parameter.get("valueFrom") or {}
            if "supplied" in value_from:
                if value_from.get("default") is None:
                    raise WorkflowError(
                        f"cannot resume node {node.get('name', node_id)}: output parameter "
                        f"'{parameter.get('name')}' has no value and no default"
                    )
                parameter["value"] = value_from["default"]
                del parameter["valueFrom"]
        node["phase"] = "Succeeded"
        node["message"] = f"{node['message']}; {message}" if node.get("message") else message
        node["finishedAt"] = format_time(now)
        changed = True
    return result if changed else None
