"""The resource types the fake serves, and the discovery documents that describe them.

A :class:`ResourceType` is what a real cluster learns from a built-in API group or from a
CustomResourceDefinition: group, version, plural, Kind, scope, and a few behaviours the fake needs
(whether it is a built-in type, whether it has a ``/status`` subresource, whether it tracks
``metadata.generation``). :class:`Registry` holds them and renders ``/api``, ``/apis``,
``/apis/{group}`` and ``/apis/{group}/{version}`` the way kube-apiserver does.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One servable resource.

    ``builtin`` False means "installed by a CRD": strategic-merge patch is refused with 415 and list items
    keep ``kind``/``apiVersion`` (both as the real server does for custom resources).
    ``name_rule`` is ``"subdomain"`` (RFC 1123 DNS subdomain, most kinds) or ``"label"`` (namespaces).
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    builtin: bool = False
    status_subresource: bool = False
    tracks_generation: bool = True
    name_rule: str = "subdomain"
    verbs: tuple[str, ...] = field(default=ALL_VERBS)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the stored collection (one served version per group and plural)."""
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        """``workflows.argoproj.io``; ``configmaps`` for the core group."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> list[dict[str, Any]]:
        """APIResource entries for ``/apis/{group}/{version}`` (the resource, then its subresources)."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        digest = hashlib.sha256(f"{self.group}/{self.version}/{self.plural}".encode()).digest()
        entry["storageVersionHash"] = digest[:8].hex()
        entries = [entry]
        if self.status_subresource:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


def _builtin(group: str, version: str, plural: str, kind: str, **kw: Any) -> ResourceType:
    return ResourceType(group, version, plural, kind, builtin=True, **kw)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _builtin(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        tracks_generation=False,
        name_rule="label",
        status_subresource=True,
    ),
    _builtin("", "v1", "configmaps", "ConfigMap", short_names=("cm",), tracks_generation=False),
    _builtin("", "v1", "secrets", "Secret", tracks_generation=False),
    _builtin("", "v1", "pods", "Pod", short_names=("po",), categories=("all",), status_subresource=True),
    _builtin(
        "",
        "v1",
        "services",
        "Service",
        short_names=("svc",),
        categories=("all",),
        status_subresource=True,
        tracks_generation=False,
    ),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",), tracks_generation=False),
    _builtin("", "v1", "events", "Event", short_names=("ev",), tracks_generation=False),
    _builtin(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        categories=("all",),
        status_subresource=True,
    ),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease", tracks_generation=False),
    _builtin("batch", "v1", "jobs", "Job", categories=("all",), status_subresource=True),
    # Argo Workflows' CRDs declare `subresources: {}`: no /status, the controller writes whole objects.
    ResourceType("argoproj.io", "v1alpha1", "workflows", "Workflow", short_names=("wf",)),
    ResourceType("argoproj.io", "v1alpha1", "workflowtemplates", "WorkflowTemplate", short_names=("wftmpl",)),
    ResourceType(
        "argoproj.io",
        "v1alpha1",
        "clusterworkflowtemplates",
        "ClusterWorkflowTemplate",
        namespaced=False,
        short_names=("clusterwftmpl", "cwft"),
    ),
    ResourceType("argoproj.io", "v1alpha1", "cronworkflows", "CronWorkflow", short_names=("cwf", "cronwf")),
    # Argo Events, for tests that read EventSources and Sensors from a cluster.
    ResourceType("argoproj.io", "v1alpha1", "eventsources", "EventSource", short_names=("es",)),
    ResourceType("argoproj.io", "v1alpha1", "sensors", "Sensor", short_names=("sn",)),
    ResourceType("argoproj.io", "v1alpha1", "eventbus", "EventBus", singular="eventbus", short_names=("eb",)),
)


class Registry:
    """Thread-safe set of served resource types, keyed by (group, version, plural)."""

    def __init__(self, types: tuple[ResourceType, ...] = BUILTIN_TYPES) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rt in types:
            self.add(rt)

    def add(self, rt: ResourceType) -> ResourceType:
        with self._lock:
            for existing in self._types.values():
                if existing.key == rt.key and existing.version != rt.version:
                    raise ValueError(
                        f"{rt.qualified} is already served at version {existing.version}; the fake "
                        f"serves one version per resource, register {rt.version} under another plural"
                    )
            self._types[(rt.group, rt.version, rt.plural)] = rt
        return rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for rt in self._types.values():
                if rt.group == group and rt.version == version and rt.kind == kind:
                    return rt
        return None

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def has_group_version(self, group: str, version: str) -> bool:
        return any(rt.group == group and rt.version == version for rt in self.all())

    def has_group(self, group: str) -> bool:
        return any(rt.group == group for rt in self.all())

    # --- discovery documents ---------------------------------------------------------------------------

    def api_versions(self, server_address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        }

    def _group_doc(self, group: str) -> dict[str, Any]:
        versions = sorted({rt.version for rt in self.all() if rt.group == group}, reverse=True)
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def api_group_list(self) -> dict[str, Any]:
        groups = sorted({rt.group for rt in self.all() if rt.group})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group_doc(g) for g in groups]}

    def api_group(self, group: str) -> dict[str, Any]:
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group)}

    def api_resource_list(self, group: str, version: str) -> dict[str, Any]:
        types = sorted(
            (rt for rt in self.all() if rt.group == group and rt.version == version), key=lambda rt: rt.plural
        )
        resources = [entry for rt in types for entry in rt.discovery()]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }
