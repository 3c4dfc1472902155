"""Identity and lineage of the Kubernetes objects a firing creates (pure).

Exactly one object per firing: the firing's idempotency key becomes the object's identity.

* :func:`assign_name`: an object with ``metadata.generateName: X`` gets the name ``X`` + a
  10-character lowercase base32 digest of the key (the prefix is shortened so that the name fits
  in 63 characters, the limit Argo Workflows puts on Workflow names). The name is deterministic, so
  a retry, a replay or a restart asks the API server for the *same* name and gets 409
  AlreadyExists instead of a second run. A fixed ``metadata.name`` is kept as it is.
* :func:`stamp`: the labels and annotations every created object carries: Argo Events' three
  labels (``events.argoproj.io/sensor``, ``.../trigger``, ``.../action-timestamp`` in ms), plus
  ``triggergate.io/firing: <key>`` (which tells "created by this firing" from a genuine name
  conflict) and the annotation ``triggergate.io/event-ids`` (the lineage: the ids of the events
  that fired it, comma-separated).

See ``docs/adr/0003-exactly-one-workflow-per-firing.md``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACTION_TIMESTAMP_LABEL",
    "EVENT_IDS_ANNOTATION",
    "FIRING_LABEL",
    "LAST_FIRING_ANNOTATION",
    "MAX_NAME_LENGTH",
    "NAME_DIGEST_LENGTH",
    "SENSOR_LABEL",
    "TRIGGER_LABEL",
    "ObjectError",
    "ObjectRef",
    "assign_name",
    "created_by",
    "deterministic_name",
    "name_digest",
    "object_ref",
    "stamp",
]

SENSOR_LABEL = "events.argoproj.io/sensor"
TRIGGER_LABEL = "events.argoproj.io/trigger"
ACTION_TIMESTAMP_LABEL = "events.argoproj.io/action-timestamp"
FIRING_LABEL = "triggergate.io/firing"
EVENT_IDS_ANNOTATION = "triggergate.io/event-ids"
# Set on an existing object that a firing changed (suspend, resume, retry, ...): a repeated attempt
# of the same firing sees it and knows the change is already made.
LAST_FIRING_ANNOTATION = "triggergate.io/last-firing"

MAX_NAME_LENGTH = 63
NAME_DIGEST_LENGTH = 10


class ObjectError(ValueError):
    """The trigger's object cannot be used as it is (no name, no kind, not a mapping, ...)."""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Which object: ``apiVersion``, ``kind``, ``metadata.name`` and the namespace it lives in
    (empty for cluster-scoped kinds)."""

    api_version: str
    kind: str
    name: str
    namespace: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def name_digest(key: str, length: int = NAME_DIGEST_LENGTH) -> str:
    """A short, lowercase, DNS-label-safe digest of ``key`` (base32 of its SHA-256)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:length]


def deterministic_name(generate_name: str, key: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """``generate_name`` + the digest of ``key``, the prefix cut so that the result fits ``max_length``."""
    digest = name_digest(key)
    return generate_name[: max_length - len(digest)] + digest


def assign_name(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A copy of ``obj`` whose ``metadata.name`` is fixed: kept if given, else derived from
    ``metadata.generateName`` and ``key`` (and ``generateName`` removed)."""
    result = _copy_object(obj)
    metadata = result.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise ObjectError("metadata must be a mapping")
    if metadata.get("name"):
        return result
    generate_name = metadata.pop("generateName", None)
    if not generate_name or not isinstance(generate_name, str):
        kind = result.get("kind", "object")
        raise ObjectError(
            f"the {kind} needs metadata.name or metadata.generateName "
            "(with generateName, triggergate derives a name from the firing, so that it runs once)"
        )
    metadata["name"] = deterministic_name(generate_name, key)
    return result


def stamp(
    obj: Mapping[str, Any],
    *,
    sensor: str,
    trigger: str,
    key: str,
    event_ids: Iterable[str],
    now_ms: int,
) -> dict[str, Any]:
    """A copy of ``obj`` with the lineage labels and annotation set (existing ones are kept)."""
    result = _copy_object(obj)
    metadata = result.setdefault("metadata", {})
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    if not isinstance(labels, dict) or not isinstance(annotations, dict):
        raise ObjectError("metadata.labels and metadata.annotations must be mappings")
    labels = dict(labels)
    annotations = dict(annotations)
    labels[SENSOR_LABEL] = sensor
    labels[TRIGGER_LABEL] = trigger
    labels[ACTION_TIMESTAMP_LABEL] = str(now_ms)
    labels[FIRING_LABEL] = key
    annotations[EVENT_IDS_ANNOTATION] = ",".join(dict.fromkeys(event_ids))
    metadata["labels"] = labels
    metadata["annotations"] = annotations
    return result


def created_by(obj: Mapping[str, Any]) -> str | None:
    """The firing key an object was created by (its ``triggergate.io/firing`` label), if any."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    value = labels.get(FIRING_LABEL)
    return value if isinstance(value, str) else None


def object_ref(obj: Mapping[str, Any], default_namespace: str, *, namespaced: bool = True) -> ObjectRef:
    """The reference of ``obj``: its namespace, else ``default_namespace`` (none if not ``namespaced``)."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not api_version:
        raise ObjectError("the object needs apiVersion (e.g. argoproj.io/v1alpha1)")
    if not isinstance(kind, str) or not kind:
        raise ObjectError("the object needs kind (e.g. Workflow)")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ObjectError("metadata must be a mapping")
    name = metadata.get("name") or ""
    namespace = (metadata.get("namespace") or default_namespace) if namespaced else ""
    return ObjectRef(api_version, kind, str(name), str(namespace))


def _copy_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise ObjectError(f"the trigger's source must be a Kubernetes object (a mapping), got {obj!r}")
    return copy.deepcopy(dict(obj))
