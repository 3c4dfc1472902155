"""Parse kube-apiserver URL paths into what they address.

Resource paths have these shapes (``prefix`` is ``/api/v1`` for the core group, ``/apis/{group}/{version}``
otherwise)::

    {prefix}/{plural}                                   collection: cluster-scoped, or all namespaces
    {prefix}/{plural}/{name}[/{subresource}]            cluster-scoped object
    {prefix}/namespaces/{ns}/{plural}                   namespaced collection
    {prefix}/namespaces/{ns}/{plural}/{name}[/{sub}]    namespaced object

``/api/v1/namespaces/{name}/status`` and ``.../finalize`` are subresources of the Namespace itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """What a path addresses. ``kind`` is one of: ``root``, ``version``, ``health``, ``api`` (``/api``),
    ``apis`` (``/apis``), ``group`` (``/apis/{g}``), ``resources`` (``/api/v1``, ``/apis/{g}/{v}``),
    ``resource`` (a collection, object or subresource), ``unknown``."""

    kind: str
    group: str = ""
    version: str = ""
    plural: str = ""
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


NAMESPACE_SUBRESOURCES = ("status", "finalize")


def parse_path(path: str) -> Target:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return Target("root")
    head = parts[0]
    if head == "version" and len(parts) == 1:
        return Target("version")
    if head in ("healthz", "livez", "readyz") and len(parts) == 1:
        return Target("health")
    if head == "api":
        if len(parts) == 1:
            return Target("api")
        group, version, rest = "", parts[1], parts[2:]
    elif head == "apis":
        if len(parts) == 1:
            return Target("apis")
        if len(parts) == 2:
            return Target("group", group=parts[1])
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return Target("unknown")
    if not rest:
        return Target("resources", group=group, version=version)
    namespace: str | None = None
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and not (group == "" and len(rest) == 3 and rest[2] in NAMESPACE_SUBRESOURCES)
    ):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return Target("unknown")
    return Target(
        "resource",
        group=group,
        version=version,
        plural=rest[0],
        namespace=namespace,
        name=rest[1] if len(rest) > 1 else None,
        subresource=rest[2] if len(rest) > 2 else None,
    )
