"""Lineage answers: which events made a firing, what it created, and back from an object to its events.

What is kept where (user docs: ``docs/operations.md#lineage``):

- ``<state-dir>/state.db`` (:mod:`gateway.store`): each firing record with its event ids per
  dependency, the events themselves as CloudEvents (truncated beyond ``LINEAGE_EVENT_LIMIT``), and
  the dead letters with their events. It outlives the bus's retention; nothing is pruned. Each
  replica keeps the firings it carried out in its own state directory.
- The objects the ``argoWorkflow`` and ``k8s`` triggers create: the ``triggergate.io/firing`` label
  (the firing key) and the ``triggergate.io/event-ids`` annotation; ``triggergate.io/last-firing``
  on an object a later firing changed. They are read from ``<state-dir>/outbox``, the cluster or a file.
- A firing's ``result`` names the objects it created (``created Workflow argo/x``).

This module assembles the answers as data (:class:`EventLineage`, :class:`FiringLineage`,
:class:`ObjectLineage`); ``gateway.cli_state`` renders them as text or JSON. A question that cannot
be answered as asked raises :class:`LineageError`, whose message says what to do.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import GatewayError
from gateway.k8s import ClusterConfig, KubeClient, KubeError, find_cluster
from gateway.outbox import CLUSTER_SCOPED_KINDS, Outbox
from gateway.store import DeadLetter, FiringRecord, SqliteStore, StoredEvent
from sensors.fanout import FANOUT_SOURCE
from sensors.objects import EVENT_IDS_ANNOTATION, FIRING_LABEL, LAST_FIRING_ANNOTATION, created_by

__all__ = [
    "KNOWN_API_VERSIONS",
    "EventLineage",
    "FiringLineage",
    "FoundObject",
    "LineageError",
    "MadeObject",
    "ObjectLineage",
    "ObjectSummary",
    "event_lineage",
    "firing_lineage",
    "object_lineage",
    "objects_in_file",
    "objects_made",
    "read_object",
    "replica_hint",
]

#: apiVersion of the kinds ``lineage object --kind`` knows without ``--api-version``.
KNOWN_API_VERSIONS = {
    **dict.fromkeys(
        ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow", "Sensor", "EventSource"),
        "argoproj.io/v1alpha1",
    ),
    **dict.fromkeys(("Pod", "ConfigMap", "Secret", "Service", "PersistentVolumeClaim", "Namespace"), "v1"),
    **dict.fromkeys(("Job", "CronJob"), "batch/v1"),
    **dict.fromkeys(("Deployment", "StatefulSet", "DaemonSet"), "apps/v1"),
}

# "created Workflow argo/x", "Workflow argo/x already exists (created by this firing before)"
_MADE = re.compile(
    r"(?:^|; )created (?P<kind>[A-Za-z][\w.]*) (?P<where>[^\s;]+)"
    r"|^(?P<kind2>[A-Za-z][\w.]*) (?P<where2>[^\s;]+) already exists \(created by this firing"
)


class LineageError(GatewayError):
    """A lineage question cannot be answered as asked (no such object, unreadable file, ...)."""


def replica_hint(state_dir: Path, command: str) -> str:
    """Where else to ask when ``state_dir`` does not know the answer to ``lineage COMMAND``."""
    return (
        "lineage is kept in the state directory of the replica that fired: with several replicas, ask "
        f"each (kubectl exec triggergate-N -- triggergate lineage {command} --state-dir {state_dir})"
    )


# --------------------------------------------------------------------------- events and firings


@dataclass(frozen=True, slots=True)
class EventLineage:
    """An event (None when the store did not keep it), the firings that used it, its dead letters."""

    event_id: str
    kept: StoredEvent | None
    firings: list[FiringRecord]
    dead_letters: list[DeadLetter]


@dataclass(frozen=True, slots=True)
class MadeObject:
    """An object a firing created (named in its result), and its file when it is in the outbox."""

    kind: str
    namespace: str
    name: str
    outbox: Path | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}" + (f" (outbox file {self.outbox})" if self.outbox else "")


@dataclass(frozen=True, slots=True)
class FiringLineage:
    """A firing with its events, what it created, its dead letter and the other firings of its events."""

    record: FiringRecord
    events: list[StoredEvent]
    not_kept: list[tuple[str, str]]  # (dependency, event id) of events the store did not keep
    objects: list[MadeObject]
    letter: DeadLetter | None
    related: list[FiringRecord]

    def roles(self) -> list[str]:
        """What each of ``events`` is in a fan-out item's firing: ``fan-out item``, ``fan-out marker``
        (the one other event), else empty."""
        return _roles(self.events)


def _roles(events: Sequence[StoredEvent]) -> list[str]:
    items = [event.event.get("source") == FANOUT_SOURCE for event in events]
    if not any(items):
        return [""] * len(events)
    others = items.count(False)
    return ["fan-out item" if item else ("fan-out marker" if others == 1 else "") for item in items]


async def event_lineage(store: SqliteStore, event_id: str) -> EventLineage:
    """What the store knows about the event ``event_id`` (empty lists when nothing used it)."""
    return EventLineage(
        event_id=event_id,
        kept=await store.event_kept(event_id),
        firings=await store.firings_for_event(event_id),
        dead_letters=await store.dead_letters_for_event(event_id),
    )


def objects_made(record: FiringRecord, outbox: Path) -> list[MadeObject]:
    """The objects a succeeded firing created, as its ``result`` names them (``created Workflow
    argo/x``, ``Workflow argo/x already exists (created by this firing before)``), with the outbox
    file of each that is in the outbox with the firing's ``triggergate.io/firing`` label."""
    if record.status != "succeeded":
        return []
    made: dict[tuple[str, str, str], MadeObject] = {}
    for match in _MADE.finditer(record.result):
        kind = match.group("kind") or match.group("kind2")
        namespace, _, name = (match.group("where") or match.group("where2")).rpartition("/")
        path: Path | None = None
        try:
            candidate = Outbox(outbox).path_for(kind, name, namespace)
            obj = yaml.safe_load(candidate.read_text(encoding="utf-8"))
        except (KubeError, OSError, yaml.YAMLError):
            obj = None
        if isinstance(obj, dict) and obj.get("kind") == kind and created_by(obj) == record.key:
            path = candidate
        made[(kind, namespace, name)] = MadeObject(kind, namespace, name, path)
    return list(made.values())


async def firing_lineage(store: SqliteStore, key: str, outbox: Path) -> FiringLineage | None:
    """Everything the store knows about the firing ``key``; None if it has no such firing."""
    record = await store.get_firing(key)
    if record is None:
        return None
    events = await store.firing_events_kept(key)
    kept = {(event.dependency, event.event_id) for event in events}
    kept_ids = {event.event_id for event in events}
    not_kept = [
        (dep, event_id) for dep, event_id in record.dependencies.items() if (dep, event_id) not in kept
    ]
    named = set(record.dependencies.values())
    not_kept += [("", event_id) for event_id in record.event_ids if event_id not in named | kept_ids]
    related: dict[str, FiringRecord] = {}
    for event_id in dict.fromkeys([*record.event_ids, *record.dependencies.values()]):
        for other in await store.firings_for_event(event_id):
            if other.key != key:
                related[other.key] = other
    return FiringLineage(
        record=record,
        events=events,
        not_kept=not_kept,
        objects=await asyncio.to_thread(objects_made, record, outbox),
        letter=await store.dead_letter_for_firing(key),
        related=sorted(related.values(), key=lambda r: (r.finished_at, r.key)),
    )


# --------------------------------------------------------------------------- objects


@dataclass(frozen=True, slots=True)
class FoundObject:
    """A Kubernetes object as read, and where: ``outbox file ...``, ``Kubernetes API via ...``, a file."""

    obj: dict[str, Any]
    origin: str


@dataclass(frozen=True, slots=True)
class ObjectSummary:
    """What an object says about its lineage: its firing label and event-ids annotation."""

    api_version: str | None
    kind: str | None
    namespace: str
    name: str
    origin: str
    firing: str | None  # the triggergate.io/firing label: the key of the firing that created it
    event_ids: list[str]  # the triggergate.io/event-ids annotation
    last_firing: str | None  # the triggergate.io/last-firing annotation: the firing that last changed it

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @classmethod
    def of(cls, found: FoundObject) -> ObjectSummary:
        obj = found.obj
        metadata = obj.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        ids = str(annotations.get(EVENT_IDS_ANNOTATION) or "")
        return cls(
            api_version=obj.get("apiVersion"),
            kind=obj.get("kind"),
            namespace=metadata.get("namespace") or "",
            name=metadata.get("name") or "",
            origin=found.origin,
            firing=created_by(obj),
            event_ids=[event_id for event_id in ids.split(",") if event_id],
            last_firing=annotations.get(LAST_FIRING_ANNOTATION),
        )


@dataclass(frozen=True, slots=True)
class ObjectLineage:
    """An object's summary and the lineage of the firing that created it, or why there is none."""

    summary: ObjectSummary
    lineage: FiringLineage | None
    problem: str | None  # set exactly when ``lineage`` is None


def objects_in_file(file: Path) -> list[FoundObject]:
    """The Kubernetes objects in a YAML or JSON file (``-`` is standard input); a ``List`` gives its items."""
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        docs = list(yaml.safe_load_all(text))
    except OSError as exc:
        raise LineageError(f"cannot read {file}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise LineageError(f"{file} is not YAML or JSON: {exc}") from exc
    found: list[dict[str, Any]] = []
    for doc in docs:
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and "items" in doc:
            found.extend(item for item in doc.get("items") or [] if isinstance(item, dict))
        elif isinstance(doc, dict):
            found.append(doc)
    if not found:
        raise LineageError(
            f"no Kubernetes object in {file}; give a file as `kubectl get wf NAME -o yaml` writes it"
        )
    return [FoundObject(obj, str(file)) for obj in found]


def _cluster(kubeconfig: Path | None, context: str | None) -> ClusterConfig | None:
    """The cluster to read from: the one ``kubeconfig`` / ``context`` name, else the pod's own."""
    try:
        cluster = find_cluster(kubeconfig, context)
    except KubeError as exc:
        raise LineageError(str(exc)) from exc
    if kubeconfig is None and context is None and (cluster is None or cluster.source != "in-cluster"):
        return None
    return cluster


async def read_object(
    ref: str,
    kind: str,
    api_version: str | None,
    outbox: Path,
    *,
    kubeconfig: Path | None = None,
    kube_context: str | None = None,
) -> FoundObject:
    """The object ``ref`` (``NAMESPACE/NAME``, or ``NAME`` for a cluster-scoped kind) from the outbox,
    else from the cluster that ``kubeconfig`` / ``kube_context`` name (or the pod's service account
    when run in-cluster). ``api_version`` defaults to :data:`KNOWN_API_VERSIONS` of ``kind``."""
    cluster = await asyncio.to_thread(_cluster, kubeconfig, kube_context)
    namespace, _, name = ref.rpartition("/")
    if not name or (not namespace and kind not in CLUSTER_SCOPED_KINDS):
        raise LineageError(f"give the object as NAMESPACE/NAME (e.g. argo/run-align-abc), not {ref!r}")
    where = f"{namespace}/{name}" if namespace else name
    try:
        path = Outbox(outbox).path_for(kind, name, namespace)
    except KubeError as exc:  # a name no object can have ("..", "a/b")
        raise LineageError(f"{ref!r} is not a valid object name: {exc.message}") from exc
    try:
        obj = await asyncio.to_thread(lambda: yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError):
        obj = None
    if isinstance(obj, dict) and obj.get("kind") == kind and api_version in (None, obj.get("apiVersion")):
        return FoundObject(obj, f"outbox file {path}")
    if cluster is None:
        raise LineageError(
            f"{kind} {where} is not in the outbox {outbox}; to read it from a cluster pass --kubeconfig "
            "or --kube-context (in the gateway's pod the service account is used), or give the object "
            f"with -f (kubectl get {kind.lower()} -n {namespace or '<namespace>'} {name} -o yaml > wf.yaml)"
        )
    version = api_version or KNOWN_API_VERSIONS.get(kind)
    if version is None:
        raise LineageError(f"pass --api-version for kind {kind} (e.g. batch/v1 for Job)")
    try:
        client = KubeClient(cluster, workers=1)
    except KubeError as exc:
        raise LineageError(str(exc)) from exc
    try:
        return FoundObject(await client.get(version, kind, name, namespace), client.description)
    except KubeError as exc:
        if exc.not_found:
            raise LineageError(
                f"{kind} {where} is neither in the outbox {outbox} nor in the cluster ({client.description})"
            ) from exc
        raise LineageError(f"cannot read {kind} {where} from the {client.description}: {exc}") from exc
    finally:
        await client.close()


async def object_lineage(store: SqliteStore, found: FoundObject, state_dir: Path) -> ObjectLineage:
    """The lineage of the firing that created ``found`` (by its label), or why there is none."""
    summary = ObjectSummary.of(found)
    key = summary.firing
    title = f"{summary.kind} {summary.where}"
    if key is None:
        problem = f"{title} ({found.origin}) has no {FIRING_LABEL} label: triggergate did not create it"
        return ObjectLineage(summary, None, problem)
    lineage = await firing_lineage(store, key, state_dir / "outbox")
    if lineage is None:
        ids = ", ".join(summary.event_ids) or "none"
        problem = (
            f"{title} was created by firing {key} (its events: {ids}), but there is no firing with key "
            f"{key} in {state_dir / 'state.db'}; " + replica_hint(state_dir, f"firing {key}")
        )
        return ObjectLineage(summary, None, problem)
    return ObjectLineage(summary, lineage, None)
