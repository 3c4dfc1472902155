"""Trigger executors. Each trigger kind is one module, registered here in one line."""

from __future__ import annotations

from gateway.triggers.argo_workflow import ArgoWorkflowTrigger
from gateway.triggers.base import TriggerContext, TriggerExecutor
from gateway.triggers.http import HttpTrigger
from gateway.triggers.k8s import K8sTrigger
from gateway.triggers.log import LogTrigger
from sensors.spec import Trigger

EXECUTORS: dict[str, type[TriggerExecutor]] = {}
EXECUTORS["http"] = HttpTrigger
EXECUTORS["log"] = LogTrigger
EXECUTORS["argoWorkflow"] = ArgoWorkflowTrigger
EXECUTORS["k8s"] = K8sTrigger


def build_executor(trigger: Trigger, context: TriggerContext) -> TriggerExecutor:
    kind = trigger.template.kind
    try:
        cls = EXECUTORS[kind]
    except KeyError:
        raise ValueError(
            f"trigger type {kind!r} has no executor; known trigger types: {', '.join(sorted(EXECUTORS))}"
        ) from None
    return cls(trigger, context)
