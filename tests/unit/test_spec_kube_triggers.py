"""Validation of the argoWorkflow and k8s trigger specs (Argo field names)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sensors.spec import Trigger, TriggerTemplate

WORKFLOW = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "x-"},
    "spec": {"workflowTemplateRef": {"name": "t"}},
}


def template(**kind: Any) -> TriggerTemplate:
    return TriggerTemplate.model_validate({"name": "t", **kind})


def test_argo_workflow_defaults_and_kind() -> None:
    tpl = template(argoWorkflow={"source": {"resource": WORKFLOW}})
    assert tpl.kind == "argoWorkflow"
    assert tpl.argo_workflow is not None and tpl.argo_workflow.operation == "submit"
    assert tpl.argo_workflow.source.kind == "resource"
    empty_op = template(argoWorkflow={"source": {"inline": "{}"}, "operation": ""})
    assert empty_op.argo_workflow is not None and empty_op.argo_workflow.operation == "submit"


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"argoWorkflow": {"source": {"resource": WORKFLOW}, "args": ["--serviceaccount", "x"]}}, "argo CLI"),
        ({"argoWorkflow": {"source": {"git": {"url": "https://x"}}}}, "git source is not supported"),
        ({"argoWorkflow": {"source": {}}}, "exactly one of resource, inline, file, url, configmap, s3"),
        (
            {"argoWorkflow": {"source": {"inline": "a", "file": {"path": "/x"}}}},
            "found inline, file",
        ),
        ({"argoWorkflow": {"source": {"inline": "a"}, "operation": "delete"}}, "operation"),
        ({"k8s": {"source": {"inline": "a"}, "operation": "apply"}}, "operation"),
        ({"k8s": {"source": {"inline": "a"}, "patchStrategy": "text/plain"}}, "patchStrategy must be one of"),
        ({"k8s": {"source": {"s3": {"bucket": {"name": "b"}}}}}, "needs the object key"),
        ({"k8s": {"source": {"inline": "a"}}, "http": {"url": "http://x"}}, "exactly one trigger type"),
    ],
)
def test_invalid_kube_triggers_say_what_is_allowed(trigger: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        template(**trigger)


def test_k8s_trigger_fields() -> None:
    tpl = template(
        k8s={
            "source": {"configmap": {"name": "cm", "key": "obj.yaml"}},
            "operation": "patch",
            "patchStrategy": "application/json-patch+json",
            "liveObject": True,
            "parameters": [{"src": {"dependencyName": "d", "dataKey": "body.x"}, "dest": "metadata.name"}],
        }
    )
    assert tpl.kind == "k8s" and tpl.k8s is not None
    assert tpl.k8s.operation == "patch" and tpl.k8s.live_object
    assert tpl.k8s.source.configmap is not None and tpl.k8s.source.configmap.key == "obj.yaml"
    default = template(k8s={"source": {"url": {"path": "https://x/y.yaml"}}})
    assert default.k8s is not None
    assert default.k8s.operation == "create" and default.k8s.patch_strategy == "application/merge-patch+json"
    assert default.k8s.source.url is not None and default.k8s.source.url.verify_cert is False


def test_s3_source_and_policy() -> None:
    trig = Trigger.model_validate(
        {
            "template": {
                "name": "t",
                "k8s": {
                    "source": {
                        "s3": {
                            "bucket": {"name": "b", "key": "objs/wf.yaml"},
                            "endpoint": "minio:9000",
                            "accessKey": {"name": "s3", "key": "access"},
                            "secretKey": {"name": "s3", "key": "secret"},
                        }
                    }
                },
            },
            "policy": {
                "k8s": {"labels": {"workflows.argoproj.io/phase": "Succeeded"}, "errorOnBackoffTimeout": True}
            },
        }
    )
    assert trig.template.k8s is not None and trig.template.k8s.source.s3 is not None
    assert trig.template.k8s.source.s3.object_key == "objs/wf.yaml"
    assert (
        trig.policy is not None and trig.policy.k8s is not None and trig.policy.k8s.error_on_backoff_timeout
    )
