"""Helpers for the Kubernetes trigger tests: real executors, a real state store, the fake API server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from gateway.firing import FiringRunner
from gateway.k8s import KubeAPI
from gateway.secrets import SecretStore
from gateway.store import SqliteStore
from gateway.triggers import build_executor
from gateway.triggers.base import TriggerContext, TriggerExecutor
from sensors.engine import Fire, idempotency_key
from sensors.spec import Trigger
from tests.unit.sensor_factory import event

SENSOR = "lab"
NAMESPACE = "argo"
ARGO = ("argoproj.io", "v1alpha1")


def make_trigger(template: dict[str, Any], name: str = "t", **extra: Any) -> Trigger:
    return Trigger.model_validate({"template": {"name": name, **template}, **extra})


def make_fire(body: dict[str, Any], trigger: str = "t", event_id: str | None = None) -> Fire:
    ev = event(data={"header": {}, "body": body, "metadata": {}}, id=event_id)
    return Fire(SENSOR, trigger, {"run": ev}, idempotency_key(SENSOR, trigger, {"run": ev}))


def make_executor(
    trigger: Trigger, kube: KubeAPI, http: httpx.AsyncClient, tmp_path: Path
) -> TriggerExecutor:
    context = TriggerContext(SENSOR, NAMESPACE, SecretStore(tmp_path / "secrets"), http, kube=kube)
    return build_executor(trigger, context)


def make_runner(
    trigger: Trigger,
    kube: KubeAPI,
    store: SqliteStore,
    http: httpx.AsyncClient,
    tmp_path: Path,
    sleeps: list[float] | None = None,
) -> FiringRunner:
    """A runner whose backoff sleeps are recorded (and skipped) when ``sleeps`` is a list."""
    kwargs: dict[str, Callable[[float], Awaitable[None]]] = {}
    if sleeps is not None:

        async def record(seconds: float) -> None:
            sleeps.append(seconds)

        kwargs["sleep"] = record
    return FiringRunner(make_executor(trigger, kube, http, tmp_path), store, **kwargs)


def workflow_source(generate_name: str = "bwa-align-", template: str = "bwa-align") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": generate_name},
        "spec": {
            "workflowTemplateRef": {"name": template},
            "arguments": {
                "parameters": [
                    {"name": "run-id", "value": ""},
                    {"name": "bucket", "value": ""},
                ]
            },
        },
    }


RUN_PARAMETERS = [
    {"src": {"dependencyName": "run", "dataKey": "body.run"}, "dest": "spec.arguments.parameters.0.value"},
    {"src": {"dependencyName": "run", "dataKey": "body.bucket"}, "dest": "spec.arguments.parameters.1.value"},
]


def submit_trigger(**extra: Any) -> Trigger:
    return make_trigger(
        {
            "argoWorkflow": {
                "operation": "submit",
                "source": {"resource": workflow_source()},
                "parameters": RUN_PARAMETERS,
            }
        },
        **extra,
    )


def workflow_template(name: str = "bwa-align") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "entrypoint": "align",
            "arguments": {
                "parameters": [{"name": "run-id"}, {"name": "bucket"}, {"name": "ref", "value": "GRCh38"}]
            },
            "templates": [{"name": "align", "container": {"image": "busybox", "command": ["true"]}}],
        },
    }
