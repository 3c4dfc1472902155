"""What the ``argoWorkflow`` and ``k8s`` executors share: parameters, namespaces, create-exactly-once,
the ``policy.k8s`` wait, and turning :class:`~gateway.k8s.KubeError` into ``TriggerError``.

:func:`create_once` is the exactly-once rule (``docs/adr/0003-exactly-one-workflow-per-firing.md``):
the object's name is derived from the firing's key, so a repeated attempt gets 409 AlreadyExists;
the existing object is then read, and if its ``triggergate.io/firing`` label is this firing's key,
the firing is already done. Any other owner is a genuine name conflict: not retriable.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import ValidationError

from gateway.errors import TriggerError
from gateway.k8s import KubeAPI, KubeError, KubeObject
from sensors.engine import Fire
from sensors.objects import ObjectError, ObjectRef, assign_name, created_by, object_ref, stamp
from sensors.params import ParameterError, apply_parameters
from sensors.spec import K8sResourcePolicy, Trigger, TriggerParameter, TriggerTemplate, parse_go_duration

__all__ = [
    "create_once",
    "failure",
    "identify",
    "now_ms",
    "policy_delays",
    "resolve_namespace",
    "resolve_resource",
    "resolve_template",
    "wait_for_labels",
]

Sleep = Callable[[float], Awaitable[None]]


def now_ms() -> int:
    return int(time.time() * 1000)


def failure(exc: KubeError, doing: str) -> TriggerError:
    """A ``TriggerError`` for a failed API call, keeping its retriable flag and ``Retry-After``."""
    return TriggerError(f"{doing}: {exc}", retriable=exc.retriable, retry_after=exc.retry_after)


def resolve_template(trigger: Trigger, fire: Fire) -> TriggerTemplate:
    """The trigger template with the trigger-level ``parameters`` applied (Argo's template parameters)."""
    if not trigger.parameters:
        return trigger.template
    doc = trigger.template.model_dump(by_alias=True, exclude_none=True)
    try:
        doc = apply_parameters(doc, trigger.parameters, fire.events)
        return TriggerTemplate.model_validate(doc)
    except ParameterError as exc:
        raise TriggerError(f"trigger parameters: {exc}", retriable=False) from exc
    except ValidationError as exc:
        raise TriggerError(
            f"the trigger template is invalid after applying its parameters: {exc}", retriable=False
        ) from exc


def resolve_resource(
    obj: Mapping[str, Any], parameters: list[TriggerParameter], fire: Fire
) -> dict[str, Any]:
    """The object with the resource-level ``parameters`` applied."""
    try:
        result = apply_parameters(dict(obj), parameters, fire.events)
    except ParameterError as exc:
        raise TriggerError(f"resource parameters: {exc}", retriable=False) from exc
    if not isinstance(result, dict):
        raise TriggerError("the object is not a mapping after applying its parameters", retriable=False)
    return result


async def resolve_namespace(kube: KubeAPI, obj: Mapping[str, Any], default: str) -> ObjectRef:
    """The object's reference with Argo's namespace rule: its own namespace, else the sensor's;
    none for cluster-scoped kinds."""
    try:
        ref = object_ref(obj, default)
    except ObjectError as exc:
        raise TriggerError(str(exc), retriable=False) from exc
    try:
        namespaced = await kube.is_namespaced(ref.api_version, ref.kind)
    except KubeError as exc:
        raise failure(exc, f"look up {ref.kind} {ref.api_version}") from exc
    return ref if namespaced else ObjectRef(ref.api_version, ref.kind, ref.name, "")


def identify(obj: Mapping[str, Any], fire: Fire, namespace: str) -> dict[str, Any]:
    """The object as it is created for ``fire``: its deterministic name, its namespace (when it has
    one) and the lineage labels and annotation."""
    try:
        named = assign_name(obj, fire.key)
        stamped = stamp(
            named,
            sensor=fire.sensor,
            trigger=fire.trigger,
            key=fire.key,
            event_ids=fire.event_ids,
            now_ms=now_ms(),
        )
    except ObjectError as exc:
        raise TriggerError(str(exc), retriable=False) from exc
    if namespace:
        stamped["metadata"]["namespace"] = namespace
    else:
        stamped["metadata"].pop("namespace", None)
    return stamped


async def create_once(
    kube: KubeAPI, obj: Mapping[str, Any], ref: ObjectRef, key: str
) -> tuple[KubeObject, bool]:
    """Create ``obj`` (named and stamped by :func:`identify`); ``(object, True)`` when created now,
    ``(existing object, False)`` when this firing created it before."""
    try:
        return await kube.create(obj, ref.namespace), True
    except KubeError as exc:
        if not exc.already_exists:
            raise failure(exc, f"create {ref}") from exc
    try:
        existing = await kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
    except KubeError as exc:
        raise failure(exc, f"{ref} already exists; reading it to check who created it") from exc
    owner = created_by(existing)
    if owner != key:
        raise TriggerError(
            f"{ref} already exists and was not created by this firing "
            f"(its triggergate.io/firing label is {owner or 'absent'}, this firing is {key}); "
            "use metadata.generateName so that each firing gets its own name, or delete the object",
            retriable=False,
        )
    return existing, False


def policy_delays(policy: K8sResourcePolicy, rand: Callable[[], float] = random.random) -> list[float]:
    """The sleeps between the checks of ``policy.k8s``: ``backoff.steps`` checks (default 5), the
    first sleep ``backoff.duration`` (default 1s), each next one multiplied by ``factor``, plus
    ``rand() * jitter * sleep``."""
    backoff = policy.backoff
    steps = 5 if backoff is None or not backoff.steps else backoff.steps
    duration = 1.0 if backoff is None or backoff.duration is None else parse_go_duration(backoff.duration)
    factor = 1.0 if backoff is None or not backoff.factor else backoff.factor
    jitter = 0.0 if backoff is None or not backoff.jitter else backoff.jitter
    delays = []
    for _ in range(steps - 1):
        delays.append(duration + rand() * jitter * duration)
        duration *= factor
    return delays


def _labels_match(obj: Mapping[str, Any], want: Mapping[str, str]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in want.items())


async def wait_for_labels(
    kube: KubeAPI, ref: ObjectRef, policy: K8sResourcePolicy | None, sleep: Sleep = asyncio.sleep
) -> str:
    """Argo's ``policy.k8s``: poll the object until it has every label of ``policy.labels``.

    Returns a note for the result summary (empty without a policy). When the checks run out, the
    firing fails only with ``errorOnBackoffTimeout`` (retriable: the next attempt waits again, and
    creates nothing new). In the outbox nothing ever changes, so the policy is not checked there.
    """
    if policy is None or not policy.labels:
        return ""
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(policy.labels.items()))
    if kube.dry_run:
        return f"; policy.k8s ({wanted}) not checked in the outbox"
    delays = policy_delays(policy)
    for attempt in range(len(delays) + 1):
        try:
            current = await kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        except KubeError as exc:
            if not exc.retriable:
                raise failure(exc, f"policy.k8s: read {ref}") from exc
            current = {}
        if _labels_match(current, policy.labels):
            return f"; labels {wanted} reached"
        if attempt < len(delays):
            await sleep(delays[attempt])
    if policy.error_on_backoff_timeout:
        raise TriggerError(
            f"policy.k8s: {ref} did not get the labels {wanted} after {len(delays) + 1} checks "
            "(errorOnBackoffTimeout)",
            retriable=True,
        )
    return f"; policy.k8s labels {wanted} not reached after {len(delays) + 1} checks (ignored)"
