"""The outbox: :class:`~gateway.k8s.KubeAPI` without a cluster, objects as YAML files.

With no cluster configured, or with ``triggergate run --dry-run``, the Kubernetes triggers write the
objects they would create to ``<state-dir>/outbox/<namespace>/<name>.yaml`` (cluster-scoped objects
to ``<state-dir>/outbox/_cluster/<name>.yaml``). It behaves like a small API server, so the triggers
run the same code in both modes: ``create`` answers 409 AlreadyExists when the file exists (which is
how a repeated firing is recognised), ``get``/``list``/``replace``/``patch``/``delete`` work on the
files, ``resourceVersion`` is checked on ``replace``. One file per namespace and name: a second
object of another kind with the same name is a conflict. Strategic-merge and apply patches are
applied as JSON merge patches (there is no schema to merge lists by key).

``triggergate outbox list`` shows what is there (:func:`list_outbox`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from gateway.k8s import MERGE_PATCH, KubeError, KubeObject
from sensors.objects import FIRING_LABEL
from sensors.patches import PatchError, json_patch, merge_patch

__all__ = ["CLUSTER_DIR", "CLUSTER_SCOPED_KINDS", "Outbox", "OutboxEntry", "list_outbox"]

CLUSTER_DIR = "_cluster"
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "IngressClass",
        "RuntimeClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "APIService",
        "CSIDriver",
        "ClusterWorkflowTemplate",
        "ClusterIssuer",
    }
)
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName alphabet


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _match_selector(labels: Mapping[str, Any], selector: str | None) -> bool:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, comma-separated."""
    if not selector:
        return True
    for requirement in (r.strip() for r in selector.split(",")):
        if not requirement:
            continue
        if "!=" in requirement:
            key, value = (p.strip() for p in requirement.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in requirement:
            key, value = (p.strip() for p in requirement.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif requirement.startswith("!"):
            if requirement[1:].strip() in labels:
                return False
        elif requirement not in labels:
            return False
    return True


class Outbox:
    """:class:`~gateway.k8s.KubeAPI` over YAML files under ``root`` (``<state-dir>/outbox``)."""

    dry_run = True

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = f"outbox {self.root} (no cluster: objects are written as YAML files)"

    # -- files ---------------------------------------------------------------------------------

    def path_for(self, kind: str, name: str, namespace: str) -> Path:
        if not name or "/" in name or name in (".", ".."):
            raise KubeError(f"invalid object name {name!r}", status=422, reason="Invalid")
        folder = CLUSTER_DIR if kind in CLUSTER_SCOPED_KINDS else (namespace or "default")
        if "/" in folder or folder in (".", ".."):
            raise KubeError(f"invalid namespace {folder!r}", status=422, reason="Invalid")
        return self.root / folder / f"{name}.yaml"

    @staticmethod
    def _read(path: Path) -> KubeObject | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        loaded = yaml.safe_load(text)
        return loaded if isinstance(loaded, dict) else None

    @staticmethod
    def _write(path: Path, obj: Mapping[str, Any], *, exclusive: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(dict(obj), sort_keys=False, allow_unicode=True)
        # The whole file is written and synced under a temporary name first, so that a reader (or a
        # crash) never sees a half-written object under its real name.
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if exclusive:  # link() is atomic and raises FileExistsError when the object exists
                os.link(tmp, path)
            else:
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _existing(self, api_version: str, kind: str, name: str, namespace: str) -> tuple[Path, KubeObject]:
        path = self.path_for(kind, name, namespace)
        obj = self._read(path)
        if obj is None or obj.get("kind") != kind or obj.get("apiVersion") != api_version:
            raise KubeError(
                f'{kind} "{name}" not found in the outbox ({path})', status=404, reason="NotFound"
            )
        return path, obj

    # -- KubeAPI -------------------------------------------------------------------------------

    async def is_namespaced(self, api_version: str, kind: str) -> bool:
        return kind not in CLUSTER_SCOPED_KINDS

    async def get(self, api_version: str, kind: str, name: str, namespace: str) -> KubeObject:
        return await asyncio.to_thread(lambda: self._existing(api_version, kind, name, namespace)[1])

    async def list(
        self, api_version: str, kind: str, namespace: str, *, label_selector: str | None = None
    ) -> list[KubeObject]:
        def scan() -> list[KubeObject]:
            folder = self.path_for(kind, "x", namespace).parent
            found = []
            for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
                obj = self._read(path)
                if obj is None or obj.get("kind") != kind or obj.get("apiVersion") != api_version:
                    continue
                if _match_selector((obj.get("metadata") or {}).get("labels") or {}, label_selector):
                    found.append(obj)
            return found

        return await asyncio.to_thread(scan)

    async def create(self, obj: Mapping[str, Any], namespace: str) -> KubeObject:
        def create() -> KubeObject:
            kind = str(obj.get("kind") or "")
            if not obj.get("apiVersion") or not kind:
                raise KubeError("the object needs apiVersion and kind", status=400, reason="BadRequest")
            new = dict(obj)
            metadata = dict(new.get("metadata") or {})
            if not metadata.get("name"):
                prefix = metadata.pop("generateName", None)
                if not prefix:
                    raise KubeError(
                        "metadata.name or metadata.generateName is required", status=422, reason="Invalid"
                    )
                metadata["name"] = prefix + "".join(secrets.choice(_ALPHANUMS) for _ in range(5))
            if kind not in CLUSTER_SCOPED_KINDS:
                metadata["namespace"] = namespace or metadata.get("namespace") or "default"
            else:
                metadata.pop("namespace", None)
            metadata.update(
                uid=str(uuid.uuid4()), resourceVersion="1", generation=1, creationTimestamp=_now()
            )
            new["metadata"] = metadata
            path = self.path_for(kind, metadata["name"], namespace)
            try:
                self._write(path, new, exclusive=True)
            except FileExistsError:
                raise KubeError(
                    f'{kind} "{metadata["name"]}" already exists in the outbox ({path})',
                    status=409,
                    reason="AlreadyExists",
                ) from None
            return new

        return await asyncio.to_thread(create)

    def _store_update(self, path: Path, old: KubeObject, new: KubeObject) -> KubeObject:
        metadata = dict(new.get("metadata") or {})
        old_meta = old.get("metadata") or {}
        for key in ("uid", "creationTimestamp", "namespace", "name"):
            if key in old_meta:
                metadata[key] = old_meta[key]
        metadata["resourceVersion"] = str(int(old_meta.get("resourceVersion") or "0") + 1)
        new = {**new, "metadata": metadata}
        self._write(path, new, exclusive=False)
        return new

    async def replace(self, obj: Mapping[str, Any], namespace: str) -> KubeObject:
        def replace() -> KubeObject:
            api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
            name = str((obj.get("metadata") or {}).get("name") or "")
            path, old = self._existing(api_version, kind, name, namespace)
            want = (obj.get("metadata") or {}).get("resourceVersion")
            have = (old.get("metadata") or {}).get("resourceVersion")
            if want and want != have:
                raise KubeError(
                    f'Operation cannot be fulfilled on {kind} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                    status=409,
                    reason="Conflict",
                )
            return self._store_update(path, old, dict(obj))

        return await asyncio.to_thread(replace)

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str,
        body: Any,
        content_type: str = MERGE_PATCH,
    ) -> KubeObject:
        def patch() -> KubeObject:
            path, old = self._existing(api_version, kind, name, namespace)
            try:
                if content_type == "application/json-patch+json":
                    new = json_patch(old, body)
                else:
                    new = merge_patch(old, body)
            except PatchError as exc:
                raise KubeError(f"cannot patch {kind} {name}: {exc}", status=422, reason="Invalid") from exc
            if not isinstance(new, dict):
                raise KubeError(f"cannot patch {kind} {name}: the result is not an object", status=422)
            return self._store_update(path, old, new)

        return await asyncio.to_thread(patch)

    async def delete(self, api_version: str, kind: str, name: str, namespace: str) -> None:
        def delete() -> None:
            path, _ = self._existing(api_version, kind, name, namespace)
            path.unlink()

        await asyncio.to_thread(delete)

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One file of the outbox, for ``triggergate outbox list``."""

    path: Path
    namespace: str
    name: str
    kind: str
    firing: str | None
    created: str


def list_outbox(root: Path) -> list[OutboxEntry]:
    """Every object in the outbox under ``root``, oldest first."""
    entries = []
    for path in Path(root).glob("*/*.yaml"):
        try:
            obj = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(obj, dict):
            continue
        metadata = obj.get("metadata") or {}
        entries.append(
            OutboxEntry(
                path=path,
                namespace="" if path.parent.name == CLUSTER_DIR else path.parent.name,
                name=str(metadata.get("name") or path.stem),
                kind=str(obj.get("kind") or "?"),
                firing=(metadata.get("labels") or {}).get(FIRING_LABEL),
                created=str(metadata.get("creationTimestamp") or ""),
            )
        )
    return sorted(entries, key=lambda e: (e.created, str(e.path)))
