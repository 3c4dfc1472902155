"""The chart's Roles grant exactly the verbs that docs/rbac.md documents for each trigger operation.

The expectations are read from docs/rbac.md itself (its tables and its example Role), so the doc
and the chart cannot drift apart: change one and this fails until the other follows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.chart.rendering import FULLNAME, NAMESPACE, ROOT, Rendered, render, with_config

RBAC_DOC = ROOT / "docs" / "rbac.md"
ARGO = "argoproj.io"

Grants = dict[tuple[str, str], set[str]]  # (apiGroup, resource) -> verbs


# --------------------------------------------------------------------------- reading docs/rbac.md


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"docs/rbac.md has no section '## {heading}'"
    return match.group(1)


def _rows(section: str) -> Iterator[list[str]]:
    """The body rows of the section's table, as lists of cells."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    for line in lines[2:]:  # skip the header and the |---| line
        yield [cell.strip() for cell in line.strip().strip("|").split("|")]


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _verbs(cell: str) -> tuple[set[str], set[str]]:
    """(verbs always needed, verbs needed only when the object may not exist yet)."""
    always: set[str] = set()
    if_missing: set[str] = set()
    for part in cell.split(";"):
        (if_missing if "may not exist" in part else always).update(_ticked(part))
    return always, if_missing


def documented_argo() -> dict[str, Grants]:
    """The argoWorkflow table by row label: 'submit', 'submit-from a WorkflowTemplate', 'policy.k8s'..."""
    table: dict[str, Grants] = {}
    label = ""
    for first, resource_cell, verbs_cell in _rows(_section(RBAC_DOC.read_text(), "`argoWorkflow`")):
        if first:
            names = _ticked(first)
            qualifier = re.sub(r"`[^`]+`,?\s*", "", first).strip()
            labels = [f"{name} {qualifier}".strip() for name in names] or [first]
        group = "" if "(core)" in resource_cell else ARGO
        for label in labels:
            for resource in _ticked(resource_cell):
                table.setdefault(label, {}).setdefault((group, resource), set()).update(_verbs(verbs_cell)[0])
    return table


def documented_k8s() -> dict[str, tuple[set[str], set[str]]]:
    table = {}
    for operation, verbs_cell in _rows(_section(RBAC_DOC.read_text(), "`k8s`")):
        table[operation] = _verbs(verbs_cell)
    return table


def documented_example_role() -> dict[str, Any]:
    match = re.search(r"```yaml\n(.*?)```", _section(RBAC_DOC.read_text(), "Example"), flags=re.S)
    assert match, "docs/rbac.md has no example Role"
    role: dict[str, Any] = yaml.safe_load(match.group(1))
    return role


# --------------------------------------------------------------------------- reading the chart


def grants(rules: list[dict[str, Any]]) -> Grants:
    found: Grants = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                key = (group, resource)
                assert key not in found, f"{key} appears in two rules; the chart merges them into one"
                found[key] = set(rule["verbs"])
    return found


def role_grants(rendered: Rendered, namespace: str = NAMESPACE) -> Grants:
    roles = [r for r in rendered.all("Role") if r["metadata"]["namespace"] == namespace]
    if not roles:
        return {}
    assert len(roles) == 1
    return grants(roles[0]["rules"])


def cluster_grants(rendered: Rendered) -> Grants:
    found: Grants = {}
    for role in rendered.all("ClusterRole"):
        found.update(grants(role["rules"]))
    return found


def render_rbac(**rbac: Any) -> Rendered:
    settings: dict[str, Any] = {"argoWorkflow": {"operations": [], "templates": []}}
    settings.update(rbac)
    return render(with_config({"rbac": settings}))


# --------------------------------------------------------------------------- the doc can be read


def test_the_doc_tables_are_where_the_tests_read_them() -> None:
    argo = documented_argo()
    assert {"submit", "resubmit", "suspend", "terminate", "stop", "resume", "retry", "policy.k8s"} <= set(
        argo
    )
    assert argo["submit"] == {(ARGO, "workflows"): {"create", "get"}}
    assert argo["retry"][("", "pods")] == {"list", "delete"}
    assert documented_k8s()["`update`"] == ({"get", "update"}, {"create"})


# --------------------------------------------------------------------------- argoWorkflow


ARGO_OPERATIONS = ["submit", "submit-from", "resubmit", "suspend", "terminate", "stop", "resume", "retry"]


@pytest.mark.parametrize("operation", ARGO_OPERATIONS)
def test_each_argo_operation_grants_exactly_the_documented_verbs(operation: str) -> None:
    documented = documented_argo()
    if operation == "submit-from":  # documented per template kind; the workflows part is the same for each
        expected = {
            key: verbs
            for key, verbs in documented["submit-from a WorkflowTemplate"].items()
            if key == (ARGO, "workflows")
        }
    else:
        expected = documented[operation]
    rendered = render_rbac(argoWorkflow={"operations": [operation], "templates": []})
    assert role_grants(rendered) == expected
    assert rendered.all("ClusterRole") == []


@pytest.mark.parametrize("operation", ARGO_OPERATIONS)
def test_every_argo_operation_allows_policy_k8s(operation: str) -> None:
    ((key, verbs),) = documented_argo()["policy.k8s"].items()
    rendered = render_rbac(argoWorkflow={"operations": [operation], "templates": []})
    assert verbs <= role_grants(rendered)[key]


@pytest.mark.parametrize("kind", ["WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate"])
def test_submit_from_each_template_kind_grants_the_documented_verbs(kind: str) -> None:
    expected = documented_argo()[f"submit-from a {kind}"]
    rendered = render_rbac(argoWorkflow={"operations": ["submit-from"], "templates": [kind]})
    assert {**role_grants(rendered), **cluster_grants(rendered)} == expected
    if kind == "ClusterWorkflowTemplate":  # cluster-scoped: a ClusterRole, bound to the same ServiceAccount
        assert cluster_grants(rendered) == {(ARGO, "clusterworkflowtemplates"): {"get"}}
        binding = rendered.one("ClusterRoleBinding")
        assert binding["roleRef"]["name"] == rendered.one("ClusterRole")["metadata"]["name"]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
        assert (ARGO, "clusterworkflowtemplates") not in role_grants(rendered)


def test_load_time_checks_alone_grant_get_on_templates() -> None:
    documented = documented_argo()
    label = next(name for name in documented if name.startswith("load-time checks"))
    rendered = render_rbac(
        argoWorkflow={"operations": [], "templates": ["WorkflowTemplate", "ClusterWorkflowTemplate"]}
    )
    assert {**role_grants(rendered), **cluster_grants(rendered)} == documented[label]


def test_the_defaults_are_the_documented_example_role() -> None:
    example = documented_example_role()
    rendered = render(with_config())
    role = rendered.one("Role")
    assert role["metadata"]["namespace"] == example["metadata"]["namespace"] == NAMESPACE
    assert grants(role["rules"]) == grants(example["rules"])


def test_all_operations_together_merge_into_one_rule_per_resource() -> None:
    rendered = render_rbac(argoWorkflow={"operations": ARGO_OPERATIONS, "templates": ["WorkflowTemplate"]})
    assert role_grants(rendered) == {
        (ARGO, "workflows"): {"create", "get", "patch", "update"},
        (ARGO, "workflowtemplates"): {"get"},
        ("", "pods"): {"list", "delete"},
    }
    rules = rendered.one("Role")["rules"]
    assert all(rule["verbs"] == sorted(rule["verbs"]) for rule in rules)


# --------------------------------------------------------------------------- k8s trigger, sources, extras


@pytest.mark.parametrize("operation", ["create", "update", "patch", "delete"])
@pytest.mark.parametrize("create_missing", [False, True])
def test_each_k8s_operation_grants_the_documented_verbs(operation: str, create_missing: bool) -> None:
    always, if_missing = documented_k8s()[f"`{operation}`"]
    rendered = render_rbac(
        k8s=[
            {
                "apiGroup": "batch",
                "resource": "jobs",
                "operations": [operation],
                "createMissing": create_missing,
            }
        ]
    )
    expected = always | (if_missing if create_missing else set())
    assert role_grants(rendered) == {("batch", "jobs"): expected}


def test_k8s_objects_and_argo_workflows_share_a_role() -> None:
    rendered = render_rbac(
        argoWorkflow={"operations": ["submit"], "templates": []},
        k8s=[
            {"apiGroup": "", "resource": "configmaps", "operations": ["create", "delete"]},
            {"apiGroup": "argoproj.io", "resource": "workflows", "operations": ["delete"]},
        ],
    )
    assert role_grants(rendered) == {
        ("", "configmaps"): {"create", "delete", "get"},
        (ARGO, "workflows"): {"create", "delete", "get"},
    }


def test_a_configmap_source_grants_get_on_configmaps() -> None:
    text = _section(RBAC_DOC.read_text(), "Sources")
    row = next(cells for cells in _rows(text) if cells[0] == "`configmap`")
    assert _ticked(row[1])[:2] == ["configmaps", "get"]
    rendered = render_rbac(configMapSource=True)
    assert role_grants(rendered) == {("", "configmaps"): {"get"}}


def test_extra_rules_are_added_as_given() -> None:
    extra = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update"]}
    rendered = render_rbac(argoWorkflow={"operations": ["submit"], "templates": []}, extraRules=[extra])
    assert rendered.one("Role")["rules"][-1] == extra


def test_nothing_to_grant_means_no_role_and_no_binding() -> None:
    rendered = render_rbac()
    assert rendered.all("Role") == rendered.all("RoleBinding") == []


def test_rbac_create_false_renders_no_rbac_objects() -> None:
    rendered = render(
        with_config({"rbac": {"create": False, "argoWorkflow": {"templates": ["ClusterWorkflowTemplate"]}}})
    )
    kinds = {obj["kind"] for obj in rendered.objects}
    assert kinds.isdisjoint({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})


# --------------------------------------------------------------------------- namespaces and bindings


def test_one_role_and_binding_per_target_namespace_bound_to_the_release_service_account() -> None:
    rendered = render(with_config({"targetNamespaces": ["lab-a", "lab-b"]}))
    roles = {r["metadata"]["namespace"]: r for r in rendered.all("Role")}
    bindings = {b["metadata"]["namespace"]: b for b in rendered.all("RoleBinding")}
    assert set(roles) == set(bindings) == {"lab-a", "lab-b"}  # not the release namespace
    for namespace, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": FULLNAME,
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
        assert role_grants(rendered, namespace) == role_grants(render(with_config()), NAMESPACE)
    account = rendered.one("ServiceAccount")["metadata"]
    assert (account["name"], account["namespace"]) == (FULLNAME, NAMESPACE)
    assert rendered.pod["serviceAccountName"] == FULLNAME


def test_an_existing_service_account_is_bound_and_used() -> None:
    rendered = render(with_config({"serviceAccount": {"create": False, "name": "lab-gateway"}}))
    assert rendered.all("ServiceAccount") == []
    assert rendered.pod["serviceAccountName"] == "lab-gateway"
    assert rendered.one("RoleBinding")["subjects"][0]["name"] == "lab-gateway"


def test_service_account_annotations_are_kept() -> None:
    annotations = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/triggergate"}
    rendered = render(with_config({"serviceAccount": {"annotations": annotations}}))
    assert rendered.one("ServiceAccount")["metadata"]["annotations"] == annotations
