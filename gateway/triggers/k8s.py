"""The ``k8s`` trigger: create, update, patch or delete any Kubernetes object (Argo's standard K8s trigger).

Per firing: trigger-level ``parameters`` are applied to the template, the object is fetched from
``source`` (for ``update`` with ``liveObject: true``: the live object named by the source), the
resource-level ``k8s.parameters`` are applied, and the namespace defaults to the sensor's (none
for cluster-scoped kinds). Then, as Argo does:

* ``create``: create the object with a name derived from the firing (``generateName``) and the
  lineage labels; 409 AlreadyExists from an earlier attempt of the same firing means done.
* ``update``: read the live object; not found: create it; else merge the object over it (objects
  recursively, other values replaced) and replace it with its ``resourceVersion`` (a conflict reads
  it again).
* ``patch``: read the live object; not found: create it; else patch with ``patchStrategy``: merge
  (default), strategic merge, apply, or JSON patch, whose operations are the object's ``patch``
  list (Argo sends the object itself, which the API server rejects: argo-events #3032).
* ``delete``: read the live object; not found: nothing to do; else delete it.

``update`` and ``patch`` also set the ``triggergate.io/last-firing`` annotation, so that a repeated
attempt of the same firing (e.g. after a lost response) does not apply a JSON patch twice.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import TriggerError
from gateway.k8s import KubeAPI, KubeError, KubeObject
from gateway.triggers.artifacts import SourceFetcher
from gateway.triggers.base import TriggerContext, TriggerExecutor
from gateway.triggers.kube_actions import (
    create_once,
    failure,
    identify,
    resolve_namespace,
    resolve_resource,
    resolve_template,
    wait_for_labels,
)
from sensors.engine import Fire
from sensors.objects import LAST_FIRING_ANNOTATION, ObjectRef
from sensors.patches import merge_override
from sensors.spec import StandardK8STrigger, Trigger

CONFLICT_ATTEMPTS = 5
JSON_PATCH = "application/json-patch+json"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class K8sTrigger(TriggerExecutor):
    kind = "k8s"

    def __init__(self, trigger: Trigger, context: TriggerContext) -> None:
        super().__init__(trigger, context)
        assert trigger.template.k8s is not None
        self.spec = trigger.template.k8s
        self.fetcher = SourceFetcher(self.spec.source, context, f"trigger '{trigger.name}' k8s")

    async def execute(self, fire: Fire) -> str:
        kube = self.context.kube
        if kube is None:
            raise TriggerError("no Kubernetes API is configured for the k8s trigger", retriable=False)
        template = resolve_template(self.trigger, fire)
        spec = template.k8s
        assert spec is not None
        obj = await self.fetcher.fetch(spec.source)
        if spec.live_object and spec.operation == "update":
            obj = await self._live_base(kube, obj)
        obj = resolve_resource(obj, spec.parameters, fire)
        ref = await resolve_namespace(kube, obj, self.context.namespace)
        policy = self.trigger.policy.k8s if self.trigger.policy else None
        if spec.operation == "delete":
            return await self._delete(kube, ref)
        if spec.operation == "create":
            summary, target = await self._create(kube, fire, obj, ref)
        else:
            summary, target = await self._change(kube, fire, spec, obj, ref)
        return summary + await wait_for_labels(kube, target, policy)

    async def _live_base(self, kube: KubeAPI, obj: dict[str, Any]) -> KubeObject:
        """``liveObject``: the live object named by the source is what the parameters apply to."""
        ref = await resolve_namespace(kube, obj, self.context.namespace)
        if not ref.name:
            raise TriggerError("liveObject needs metadata.name in the source", retriable=False)
        try:
            return await kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        except KubeError as exc:
            raise failure(exc, f"liveObject: read {ref}") from exc

    async def _create(
        self, kube: KubeAPI, fire: Fire, obj: dict[str, Any], ref: ObjectRef
    ) -> tuple[str, ObjectRef]:
        new = identify(obj, fire, ref.namespace)
        named = ObjectRef(ref.api_version, ref.kind, new["metadata"]["name"], ref.namespace)
        _, created = await create_once(kube, new, named, fire.key)
        if not created:
            return f"{named} already exists (created by this firing before)", named
        return f"created {named}" + (" in the outbox" if kube.dry_run else ""), named

    async def _delete(self, kube: KubeAPI, ref: ObjectRef) -> str:
        self._require_name(ref, "delete")
        try:
            await kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
            await kube.delete(ref.api_version, ref.kind, ref.name, ref.namespace)
        except KubeError as exc:
            if exc.not_found:
                return f"{ref} does not exist; nothing to delete"
            raise failure(exc, f"delete {ref}") from exc
        return f"deleted {ref}"

    @staticmethod
    def _require_name(ref: ObjectRef, operation: str) -> None:
        if not ref.name:
            raise TriggerError(
                f"{operation} needs metadata.name of the object (set it in the source or with a parameter)",
                retriable=False,
            )

    async def _change(
        self, kube: KubeAPI, fire: Fire, spec: StandardK8STrigger, obj: dict[str, Any], ref: ObjectRef
    ) -> tuple[str, ObjectRef]:
        self._require_name(ref, spec.operation)
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                live = await kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
            except KubeError as exc:
                if exc.not_found:
                    return await self._create(kube, fire, obj, ref)
                raise failure(exc, f"{spec.operation}: read {ref}") from exc
            annotations = (live.get("metadata") or {}).get("annotations") or {}
            if annotations.get(LAST_FIRING_ANNOTATION) == fire.key:
                return f"{spec.operation} of {ref} was already done by this firing", ref
            try:
                if spec.operation == "update":
                    await kube.replace(self._updated(live, obj, fire), ref.namespace)
                    return f"updated {ref}", ref
                await self._patch(kube, spec.patch_strategy, live, obj, ref, fire)
                return f"patched {ref} ({spec.patch_strategy})", ref
            except KubeError as exc:
                if exc.conflict:
                    continue
                raise failure(exc, f"{spec.operation} {ref}") from exc
        raise TriggerError(
            f"{spec.operation} {ref}: the object kept changing ({CONFLICT_ATTEMPTS} conflicts)",
            retriable=True,
        )

    @staticmethod
    def _updated(live: KubeObject, obj: dict[str, Any], fire: Fire) -> dict[str, Any]:
        merged: dict[str, Any] = merge_override(live, obj)
        metadata = merged.setdefault("metadata", {})
        metadata["resourceVersion"] = (live.get("metadata") or {}).get("resourceVersion")
        metadata.setdefault("annotations", {})[LAST_FIRING_ANNOTATION] = fire.key
        return merged

    @staticmethod
    async def _patch(
        kube: KubeAPI, strategy: str, live: KubeObject, obj: dict[str, Any], ref: ObjectRef, fire: Fire
    ) -> None:
        if strategy == JSON_PATCH:
            operations = obj.get("patch")
            if not isinstance(operations, list):
                raise TriggerError(
                    "patchStrategy application/json-patch+json needs the operations as a list in the "
                    "object's 'patch' field, e.g. patch: [{op: add, path: /spec/servers/-, value: ...}]",
                    retriable=False,
                )
            if (live.get("metadata") or {}).get("annotations") is None:
                value = {LAST_FIRING_ANNOTATION: fire.key}
                mark = {"op": "add", "path": "/metadata/annotations", "value": value}
            else:
                path = f"/metadata/annotations/{_escape(LAST_FIRING_ANNOTATION)}"
                mark = {"op": "add", "path": path, "value": fire.key}
            body: Any = [*operations, mark]
        else:
            body = {k: v for k, v in obj.items() if k != "patch"}
            metadata = dict(body.get("metadata") or {})
            annotations = dict(metadata.get("annotations") or {})
            annotations[LAST_FIRING_ANNOTATION] = fire.key
            metadata["annotations"] = annotations
            body["metadata"] = metadata
        await kube.patch(ref.api_version, ref.kind, ref.name, ref.namespace, body, strategy)

    async def close(self) -> None:
        await self.fetcher.close()


__all__ = ["K8sTrigger"]
