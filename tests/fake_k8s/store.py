"""The fake's state: objects, the resourceVersion counter, watch history and watchers.

One re-entrant lock guards everything, so the HTTP handlers (on the server's event loop thread) and the
inspection helpers (on test threads) can be used at the same time. Stored objects are never mutated after
they are stored: every write builds a new dict, so a stored dict can be shared with watchers and serialized
without copying. Objects handed to callers are deep copies.

Semantics follow kube-apiserver's generic registry (``k8s.io/apiserver/pkg/registry/generic/registry``)
and the watch cache (``k8s.io/apiserver/pkg/storage/cacher``): see the README for what is and is not.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import json
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .patches import (
    PatchApplyError,
    PatchDecodeError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from .resources import Registry, ResourceType
from .selectors import FieldRequirement, Requirement, fields_match, labels_match
from .status import (
    STALE_OBJECT,
    ApiError,
    already_exists,
    bad_request,
    conflict,
    gone,
    invalid,
    no_such_resource,
    not_found,
    status_body,
    unprocessable,
    unsupported_media_type,
)
from .validation import (
    MAX_GENERATED_PREFIX,
    Cause,
    check_metadata_types,
    metadata_causes,
    name_causes,
)

NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
GENERATE_NAME_ATTEMPTS = 8
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
SERVER_OWNED_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
RETURN_DELETED_OBJECT = ("pods", "serviceaccounts", "namespaces")

ObjKey = tuple[str, str]  # (namespace or "", name)


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Change:
    """One committed write, as the watch cache records it. For DELETED, ``obj`` is the last state carrying
    the deletion's resourceVersion and ``prev`` the state before."""

    rt_key: tuple[str, str]
    rv: int
    type: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None


STOP = object()


@dataclass(eq=False)
class Watcher:
    """One open watch: filters changes for its resource, namespace and selectors, and hands the resulting
    ``(type, object)`` pairs to an asyncio queue on the server's loop (thread-safe)."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Any]
    rt: ResourceType
    namespace: str | None
    labels: list[Requirement] = field(default_factory=list)
    fields: list[FieldRequirement] = field(default_factory=list)

    def visible(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, obj) and fields_match(self.fields, obj)

    def translate(self, change: Change) -> tuple[str, dict[str, Any]] | None:
        """The event this watcher sees for ``change`` (the cacher's ``convertToWatchEvent``), or None."""
        if change.rt_key != self.rt.key:
            return None
        cur = change.type != "DELETED" and self.visible(change.obj)
        old = change.prev is not None and self.visible(change.prev)
        if cur and not old:
            return ("ADDED", change.obj)
        if cur and old:
            return ("MODIFIED", change.obj)
        if old:
            if change.type == "DELETED":
                return ("DELETED", change.obj)
            assert change.prev is not None
            gone_obj = copy.deepcopy(change.prev)
            gone_obj["metadata"]["resourceVersion"] = str(change.rv)
            return ("DELETED", gone_obj)
        return None

    def deliver(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the server's loop is closed: nobody is listening any more
            pass


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(raw["rv"]), str(raw["start"])
    except (ValueError, KeyError, TypeError) as e:
        raise bad_request(f"continue key is not valid: {e}") from None


def _encode_continue(rv: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _content_without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


class Store:
    """In-memory objects of every registered resource type, with kube-apiserver's write semantics."""

    def __init__(
        self,
        registry: Registry,
        *,
        history_size: int = 1000,
        clock: Callable[[], str] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.registry = registry
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str], dict[ObjKey, dict[str, Any]]] = {}
        self._rv = 0
        self._history_size = history_size
        self._history: dict[tuple[str, str], deque[Change]] = {}
        self._floor: dict[tuple[str, str], int] = {}
        self._watchers: set[Watcher] = set()
        self._clock = clock
        self._rng = rng or random.Random()

    # --- small helpers ---------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def _bucket(self, rt: ResourceType) -> dict[ObjKey, dict[str, Any]]:
        return self._objects.setdefault(rt.key, {})

    def _namespace_rt(self) -> ResourceType:
        rt = self.registry.lookup("", "v1", "namespaces")
        assert rt is not None
        return rt

    def namespace_exists(self, name: str) -> bool:
        with self._lock:
            return ("", name) in self._bucket(self._namespace_rt())

    def _commit(
        self, rt: ResourceType, kind: str, key: ObjKey, obj: dict[str, Any], prev: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Assign the next resourceVersion, store (or drop) the object, record and fan out the change."""
        self._rv += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self._rv)}}
        bucket = self._bucket(rt)
        if kind == "DELETED":
            bucket.pop(key, None)
        else:
            bucket[key] = obj
        change = Change(rt.key, self._rv, kind, obj, prev)
        history = self._history.setdefault(rt.key, deque())
        if len(history) >= self._history_size:
            self._floor[rt.key] = history.popleft().rv
        history.append(change)
        for watcher in list(self._watchers):
            event = watcher.translate(change)
            if event is not None:
                watcher.deliver(event)
        return obj

    def _check_kind(self, rt: ResourceType, body: dict[str, Any]) -> None:
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if not rt.builtin:
            if not kind:
                raise bad_request(f"Object 'Kind' is missing in '{json.dumps(body, separators=(',', ':'))}'")
            if not api_version:
                raise bad_request(
                    f"Object 'apiVersion' is missing in '{json.dumps(body, separators=(',', ':'))}'"
                )
        if api_version and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})"
            )
        if kind and kind != rt.kind:
            name = (body.get("metadata") or {}).get("name") or ""
            raise invalid(
                rt.group,
                rt.kind,
                name,
                [("kind", "FieldValueInvalid", f'Invalid value: "{kind}": must be {rt.kind}')],
            )

    def _prepare_body(self, rt: ResourceType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(
                f"the object provided is unrecognized: expected a JSON object for a {rt.kind}, "
                f"got {type(body).__name__}"
            )
        self._check_kind(rt, body)
        out = copy.deepcopy(body)
        out["apiVersion"] = rt.api_version
        out["kind"] = rt.kind
        out["metadata"] = dict(check_metadata_types(out.get("metadata")))
        return out

    def _normalize(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Server-side defaulting that the real registries do for a few built-in kinds."""
        if rt.builtin and rt.plural == "secrets" and isinstance(obj.get("stringData"), dict):
            data = dict(obj.get("data") or {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data

    # --- reads -----------------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._bucket(rt).get((namespace or "", name))
            if obj is None:
                raise not_found(rt.group, rt.plural, name)
            return copy.deepcopy(obj)

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: list[Requirement] | None = None,
        fields: list[FieldRequirement] | None = None,
        *,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        """A ``<Kind>List`` document, items sorted by namespace then name (etcd key order)."""
        with self._lock:
            items = sorted(
                (key, obj)
                for key, obj in self._bucket(rt).items()
                if (namespace is None or key[0] == namespace)
                and labels_match(labels or [], obj)
                and fields_match(fields or [], obj)
            )
            rv = self._rv
        if continue_token:
            _, start = _decode_continue(continue_token)
            items = [(k, o) for k, o in items if f"{k[0]}/{k[1]}" >= start]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and len(items) > limit:
            last = items[limit - 1][0]
            meta["continue"] = _encode_continue(rv, f"{last[0]}/{last[1]}\x00")
            if not labels and not fields:
                meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        out_items = []
        for _, obj in items:
            item = copy.deepcopy(obj)
            if rt.builtin:  # typed lists of built-in kinds carry no per-item kind/apiVersion
                item.pop("kind", None)
                item.pop("apiVersion", None)
            out_items.append(item)
        return {"apiVersion": rt.api_version, "kind": rt.list_kind, "metadata": meta, "items": out_items}

    # --- create ----------------------------------------------------------------------------------------

    def create(
        self, rt: ResourceType, namespace: str | None, body: Any, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """POST: validate, name (``generateName``), stamp system fields, store. Returns the stored object."""
        obj = self._prepare_body(rt, body)
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise ApiError(
                status_body(
                    500,
                    "InternalError",
                    "Internal error occurred: resourceVersion should not be set on objects to be created",
                    {"causes": [{"message": "resourceVersion should not be set on objects to be created"}]},
                )
            )
        name, generate = meta.get("name") or "", meta.get("generateName") or ""
        if not name and not generate:
            raise invalid(
                rt.group,
                rt.kind,
                "",
                [("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")],
            )
        causes: list[Cause] = []
        if name:
            causes += name_causes(rt, name)
        else:
            causes += name_causes(rt, generate[:MAX_GENERATED_PREFIX] + "abcde", "metadata.generateName")
        causes += metadata_causes(meta)
        if causes:
            raise invalid(rt.group, rt.kind, name or generate, causes)
        for owned in SERVER_OWNED_META:
            meta.pop(owned, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self._clock()
        if rt.tracks_generation:
            meta["generation"] = 1
        if rt.status_subresource:  # status is written through /status only
            obj.pop("status", None)
        if rt.builtin and rt.plural == "namespaces":
            obj["spec"] = {"finalizers": ["kubernetes"], **(obj.get("spec") or {})}
            obj["status"] = {"phase": "Active"}
        elif rt.builtin and rt.plural == "pods":
            obj["status"] = {"phase": "Pending"}
        self._normalize(rt, obj)
        with self._lock:
            if rt.namespaced and not self.namespace_exists(namespace or ""):
                raise not_found("", "namespaces", namespace or "")
            bucket = self._bucket(rt)
            if not name:
                prefix = generate[:MAX_GENERATED_PREFIX]
                for _ in range(GENERATE_NAME_ATTEMPTS):
                    name = prefix + "".join(self._rng.choice(NAME_ALPHABET) for _ in range(5))
                    if (meta.get("namespace") or "", name) not in bucket:
                        break
                meta["name"] = name
            key = (meta.get("namespace") or "", name)
            if key in bucket:
                raise already_exists(rt.group, rt.plural, name)
            if dry_run:
                return copy.deepcopy(obj)
            return copy.deepcopy(self._commit(rt, "ADDED", key, obj, None))

    # --- update / patch --------------------------------------------------------------------------------

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """PUT: optimistic concurrency on ``metadata.resourceVersion``; 404 when missing."""
        with self._lock:
            key = (namespace or "", name)
            old = self._bucket(rt).get(key)
            if old is None:
                raise not_found(rt.group, rt.plural, name)
            return self._write(rt, key, old, body, subresource=subresource, dry_run=dry_run)

    def _write(
        self,
        rt: ResourceType,
        key: ObjKey,
        old: dict[str, Any],
        body: Any,
        *,
        subresource: str | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        """Turn ``body`` into the next state of ``old`` and commit it (caller holds the lock)."""
        obj = self._prepare_body(rt, body)
        meta = obj["metadata"]
        name = key[1]
        if (meta.get("name") or "") != name:
            raise bad_request(
                f"the name of the object ({meta.get('name') or ''}) does not match the name on the URL "
                f"({name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != key[0]:
            raise bad_request(
                f"the namespace of the provided object ({meta['namespace']}) does not match the namespace "
                f"sent on the request ({key[0]})"
            )
        old_meta = old["metadata"]
        if meta.get("resourceVersion") and meta["resourceVersion"] != old_meta["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name, STALE_OBJECT)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise conflict(
                rt.group,
                rt.plural,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, "
                f"UID in object meta: {old_meta['uid']}",
            )
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
        else:
            new = obj
            if rt.status_subresource:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            causes = metadata_causes(meta)
            if causes:
                raise invalid(rt.group, rt.kind, name, causes)
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    raise invalid(
                        rt.group,
                        rt.kind,
                        name,
                        [
                            (
                                "metadata.finalizers",
                                "FieldValueForbidden",
                                "Forbidden: no new finalizers can be added if the object is being deleted, "
                                f"found new finalizers {sorted(added)!r}",
                            )
                        ],
                    )
            new_meta = new["metadata"]
            new_meta["name"] = name
            if rt.namespaced:
                new_meta["namespace"] = key[0]
            else:
                new_meta.pop("namespace", None)
            for field_name in SERVER_OWNED_META:
                if field_name in old_meta:
                    new_meta[field_name] = old_meta[field_name]
                else:
                    new_meta.pop(field_name, None)
            self._normalize(rt, new)
            if rt.tracks_generation:
                skip = ("metadata", "status") if rt.status_subresource or rt.builtin else ("metadata",)
                if _content_without(new, *skip) != _content_without(old, *skip):
                    new_meta["generation"] = int(old_meta.get("generation") or 0) + 1
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if new == old:  # a no-op write is not persisted: same resourceVersion, no watch event
            return copy.deepcopy(old)
        if dry_run:
            return copy.deepcopy(new)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return copy.deepcopy(self._commit(rt, "DELETED", key, new, old))
        return copy.deepcopy(self._commit(rt, "MODIFIED", key, new, old))

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """PATCH in one of the accepted formats. Returns (object, created); only apply-patch creates."""
        accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH] + ([STRATEGIC_PATCH] if rt.builtin else [])
        if content_type not in accepted:
            raise unsupported_media_type(content_type, accepted)
        if content_type == APPLY_PATCH and not field_manager:
            raise invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                [("fieldManager", "FieldValueRequired", "Required value: is required for apply patch")],
            )
        with self._lock:
            key = (namespace or "", name)
            old = self._bucket(rt).get(key)
            if old is None:
                if content_type == APPLY_PATCH and subresource is None:
                    if isinstance(patch, dict):
                        patch = {**patch, "metadata": {**(patch.get("metadata") or {}), "name": name}}
                    return self.create(rt, namespace, patch, dry_run=dry_run), True
                raise not_found(rt.group, rt.plural, name)
            try:
                if content_type == JSON_PATCH:
                    patched = json_patch(old, patch)
                elif content_type == STRATEGIC_PATCH:
                    patched = strategic_merge_patch(old, patch)
                else:
                    if not isinstance(patch, dict):
                        raise PatchDecodeError("the patch must be a JSON object")
                    if content_type == APPLY_PATCH:
                        self._check_kind(rt, patch)
                    patched = merge_patch(old, patch)
            except PatchDecodeError as e:
                raise bad_request(str(e)) from None
            except PatchApplyError as e:
                raise unprocessable(str(e)) from None
            if isinstance(patched, dict) and isinstance(patched.get("metadata"), dict):
                # the patched object inherits the current resourceVersion unless the patch set one
                patched["metadata"].setdefault("resourceVersion", old["metadata"]["resourceVersion"])
            return self._write(rt, key, old, patched, subresource=subresource, dry_run=dry_run), False

    # --- delete ----------------------------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """DELETE: honours ``preconditions`` and finalizers. Answers the object while finalizers hold it,
        and for the built-ins whose registry sets ``ReturnDeletedObject`` (pods, service accounts,
        namespaces); otherwise a ``Success`` Status naming the deleted object (custom resources included)."""
        with self._lock:
            key = (namespace or "", name)
            old = self._bucket(rt).get(key)
            if old is None:
                raise not_found(rt.group, rt.plural, name)
            pre = (options or {}).get("preconditions") or {}
            old_meta = old["metadata"]
            if pre.get("uid") and pre["uid"] != old_meta["uid"]:
                raise conflict(
                    rt.group,
                    rt.plural,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {old_meta['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != old_meta["resourceVersion"]:
                raise conflict(
                    rt.group,
                    rt.plural,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                    f"ResourceVersion in object meta: {old_meta['resourceVersion']}",
                )
            if old_meta.get("finalizers"):
                if old_meta.get("deletionTimestamp") or dry_run:
                    return copy.deepcopy(old)
                marked = copy.deepcopy(old)
                marked["metadata"]["deletionTimestamp"] = self._clock()
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                return copy.deepcopy(self._commit(rt, "MODIFIED", key, marked, old))
            if dry_run:
                gone_obj = copy.deepcopy(old)
            else:
                if rt.builtin and rt.plural == "namespaces":
                    self._delete_namespace_contents(name)
                gone_obj = copy.deepcopy(self._commit(rt, "DELETED", key, old, old))
            if rt.builtin and rt.plural in RETURN_DELETED_OBJECT:
                if rt.plural == "namespaces":
                    gone_obj["status"] = {"phase": "Terminating"}
                return gone_obj
            return status_body(
                200,
                "",
                "",
                {"name": name, "group": rt.group, "kind": rt.plural, "uid": old_meta["uid"]},
                success=True,
            )

    def _delete_namespace_contents(self, namespace: str) -> None:
        for rt in self.registry.all():
            if not rt.namespaced:
                continue
            bucket = self._bucket(rt)
            for key in sorted(k for k in bucket if k[0] == namespace):
                self._commit(rt, "DELETED", key, bucket[key], bucket[key])

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        options: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """DELETE on a collection: delete every matching object; answer the list of what was deleted."""
        with self._lock:
            doomed = self.list_objects(rt, namespace, labels, fields)["items"]
            items = []
            for item in doomed:
                meta = item["metadata"]
                result = self.delete(rt, meta.get("namespace"), meta["name"], options, dry_run=dry_run)
                items.append(result if result.get("kind") != "Status" else item)
            return {
                "apiVersion": rt.api_version,
                "kind": rt.list_kind,
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            }

    # --- watch -----------------------------------------------------------------------------------------

    def watch(
        self,
        watcher: Watcher,
        resource_version: int | None,
        *,
        send_initial_events: bool = False,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Register ``watcher`` and return the events it must see first, atomically with respect to writes.

        No resourceVersion (or ``0``): every current object as ADDED. ``N``: the recorded changes after N,
        or 410 Expired when they are no longer held. ``send_initial_events``: the current objects, then a
        BOOKMARK annotated ``k8s.io/initial-events-end``.
        """
        rt = watcher.rt
        with self._lock:
            backlog: list[tuple[str, dict[str, Any]]] = []
            if send_initial_events or not resource_version:
                for _, obj in sorted(self._bucket(rt).items()):
                    if watcher.visible(obj):
                        backlog.append(("ADDED", obj))
                if send_initial_events:
                    backlog.append(("BOOKMARK", self.bookmark(rt, {INITIAL_EVENTS_END: "true"})))
            else:
                floor = self._floor.get(rt.key, 0)
                if resource_version < floor:
                    raise gone(f"too old resource version: {resource_version} ({floor + 1})")
                for change in self._history.get(rt.key, ()):
                    if change.rv > resource_version:
                        event = watcher.translate(change)
                        if event is not None:
                            backlog.append(event)
            self._watchers.add(watcher)
            return backlog

    def bookmark(self, rt: ResourceType, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        with self._lock:
            meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        if annotations:
            meta["annotations"] = annotations
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}

    @property
    def watch_count(self) -> int:
        with self._lock:
            return len(self._watchers)

    def unwatch(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)

    def close_watchers(self) -> None:
        """End every open watch stream (used when the server stops)."""
        with self._lock:
            for watcher in list(self._watchers):
                watcher.deliver(STOP)

    def compact(self) -> int:
        """Forget all recorded changes, as etcd compaction does; watches from older versions get 410."""
        with self._lock:
            for rt_key in list(self._history):
                self._history[rt_key].clear()
                self._floor[rt_key] = self._rv
            for rt in self.registry.all():
                self._floor[rt.key] = self._rv
            return self._rv

    # --- direct seeding --------------------------------------------------------------------------------

    def upsert(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace without HTTP (test seeding), including ``status`` even for kinds with a
        ``/status`` subresource. Runs the same validation as create/update, except that a stale or missing
        resourceVersion or uid is ignored."""
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or "default") if rt.namespaced else None
        with self._lock:
            current = self._bucket(rt).get((namespace or "", meta.get("name") or ""))
            body = copy.deepcopy(obj)
            body.setdefault("apiVersion", rt.api_version)
            body.setdefault("kind", rt.kind)
            body["metadata"] = dict(body.get("metadata") or {})
            body["metadata"].pop("uid", None)
            if current is None:
                body["metadata"].pop("resourceVersion", None)
                if rt.namespaced and not self.namespace_exists(namespace or ""):
                    raise ValueError(
                        f"cannot seed {rt.kind} {meta.get('name')!r}: namespace {namespace!r} does not "
                        f"exist; seed a Namespace first or pass it in FakeKubeAPI(namespaces=...)"
                    )
                new = self.create(rt, namespace, body)
            else:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                new = self._write(
                    rt,
                    (namespace or "", current["metadata"]["name"]),
                    current,
                    body,
                    subresource=None,
                    dry_run=False,
                )
            if rt.status_subresource and "status" in obj:
                key = (namespace or "", new["metadata"]["name"])
                with_status = {**new, "status": copy.deepcopy(obj["status"])}
                new = self._write(
                    rt, key, self._bucket(rt)[key], with_status, subresource="status", dry_run=False
                )
            return new

    def remove(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Delete immediately, ignoring finalizers; returns the last state or None when absent."""
        with self._lock:
            key = ((namespace or "default") if rt.namespaced else "", name)
            old = self._bucket(rt).get(key)
            if old is None:
                return None
            return copy.deepcopy(self._commit(rt, "DELETED", key, old, old))

    def objects(self, rt: ResourceType, namespace: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(obj)
                for key, obj in sorted(self._bucket(rt).items())
                if namespace is None or key[0] == namespace
            ]

    def unknown_subresource(self) -> ApiError:
        return no_such_resource()
