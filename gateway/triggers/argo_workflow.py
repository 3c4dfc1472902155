"""The ``argoWorkflow`` trigger: Argo Workflows operations through the Kubernetes API (no argo CLI).

Per firing: trigger-level ``parameters`` are applied to the template, the ``source`` object is
fetched, the resource-level ``argoWorkflow.parameters`` are applied to it, then the ``operation``:

* ``submit``: create the Workflow (``spec.workflowTemplateRef`` + ``spec.arguments.parameters``, or
  any inline Workflow).
* ``submit-from``: the source is a ``WorkflowTemplate``, ``ClusterWorkflowTemplate`` or
  ``CronWorkflow`` (by name); create a Workflow from it as ``argo submit --from`` does, with the
  source's ``spec.arguments.parameters`` as the Workflow's arguments.
* ``resubmit``: create a new Workflow from an existing one's spec, as ``argo resubmit`` does.
* ``retry``, ``resume``, ``suspend``, ``terminate``, ``stop``: change the existing Workflow named by
  the source's ``metadata.name`` as the Argo server does (see :mod:`sensors.workflows`).

Created Workflows get a name derived from the firing (exactly one per firing) and the lineage
labels; a changed Workflow gets the ``triggergate.io/last-firing`` annotation, so that a repeated
attempt of the same firing changes nothing. ``policy.k8s`` then waits for labels on the Workflow.
"""

from __future__ import annotations

from datetime import UTC, datetime
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
from sensors.params import ParameterError, apply_parameters
from sensors.spec import ArgoWorkflowTrigger as ArgoWorkflowSpec
from sensors.spec import K8sResourcePolicy, Trigger
from sensors.workflows import (
    API_VERSION,
    TEMPLATE_KINDS,
    WorkflowError,
    is_completed,
    is_fulfilled,
    missing_parameters,
    parameter_overrides,
    resubmit_workflow,
    resume_workflow,
    retry_workflow,
    workflow_from_cron,
    workflow_from_template,
)

CONFLICT_ATTEMPTS = 5
POD_NODE_ANNOTATION = "workflows.argoproj.io/node-id"
POD_WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
SHUTDOWN = {"terminate": "Terminate", "stop": "Stop"}


def _annotations(obj: KubeObject) -> dict[str, Any]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


class ArgoWorkflowTrigger(TriggerExecutor):
    kind = "argoWorkflow"

    def __init__(self, trigger: Trigger, context: TriggerContext) -> None:
        super().__init__(trigger, context)
        assert trigger.template.argo_workflow is not None
        self.spec = trigger.template.argo_workflow
        self.fetcher = SourceFetcher(self.spec.source, context, f"trigger '{trigger.name}' argoWorkflow")

    # -- the firing ------------------------------------------------------------------------------

    async def execute(self, fire: Fire) -> str:
        kube = self.context.kube
        if kube is None:
            raise TriggerError(
                "no Kubernetes API is configured for the argoWorkflow trigger", retriable=False
            )
        template = resolve_template(self.trigger, fire)
        spec = template.argo_workflow
        assert spec is not None
        obj = resolve_resource(await self.fetcher.fetch(spec.source), spec.parameters, fire)
        try:
            if spec.operation == "submit":
                return await self._submit(kube, fire, obj)
            if spec.operation == "submit-from":
                return await self._submit_from(kube, fire, obj)
            return await self._on_existing(kube, fire, obj, spec.operation)
        except WorkflowError as exc:
            raise TriggerError(f"{spec.operation}: {exc}", retriable=False) from exc

    async def _create(self, kube: KubeAPI, fire: Fire, obj: dict[str, Any], namespace: str) -> str:
        wf = identify(obj, fire, namespace)
        ref = ObjectRef(str(wf["apiVersion"]), str(wf["kind"]), wf["metadata"]["name"], namespace)
        _, created = await create_once(kube, wf, ref, fire.key)
        summary = f"created {ref}" if created else f"{ref} already exists (created by this firing before)"
        if kube.dry_run:
            summary += " in the outbox"
        return summary + await wait_for_labels(kube, ref, self._policy())

    async def _submit(self, kube: KubeAPI, fire: Fire, obj: dict[str, Any]) -> str:
        if obj.get("kind") != "Workflow" or not str(obj.get("apiVersion", "")).startswith("argoproj.io/"):
            raise TriggerError(
                f"submit needs a Workflow (apiVersion {API_VERSION}, kind Workflow), got "
                f"{obj.get('apiVersion')} {obj.get('kind')}; "
                "for a WorkflowTemplate use operation submit-from",
                retriable=False,
            )
        ref = await resolve_namespace(kube, obj, self.context.namespace)
        return await self._create(kube, fire, obj, ref.namespace)

    async def _submit_from(self, kube: KubeAPI, fire: Fire, source: dict[str, Any]) -> str:
        kind = source.get("kind")
        if kind not in TEMPLATE_KINDS:
            raise TriggerError(
                f"submit-from needs a {', '.join(TEMPLATE_KINDS)} as source, got kind {kind!r}",
                retriable=False,
            )
        ref = await resolve_namespace(kube, {**source, "apiVersion": source.get("apiVersion") or API_VERSION},
                                      self.context.namespace)
        if not ref.name:
            raise TriggerError(f"submit-from: the {kind} needs metadata.name", retriable=False)
        overrides = parameter_overrides(source)
        if kind == "CronWorkflow" or not kube.dry_run:  # the outbox holds no templates to check
            try:
                live = await kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
            except KubeError as exc:
                raise failure(exc, f"submit-from: read {ref}") from exc
        if kind == "CronWorkflow":
            wf = workflow_from_cron(live, overrides, datetime.now(UTC))
        else:
            wf = workflow_from_template({"kind": kind, "metadata": {"name": ref.name}}, overrides)
        own_namespace = (source.get("metadata") or {}).get("namespace")
        namespace = ref.namespace or str(own_namespace or self.context.namespace)
        return await self._create(kube, fire, wf, namespace)

    # -- operations on an existing Workflow ---------------------------------------------------------

    async def _on_existing(self, kube: KubeAPI, fire: Fire, obj: dict[str, Any], operation: str) -> str:
        api_version = str(obj.get("apiVersion") or API_VERSION)
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise TriggerError(
                f"{operation} needs metadata.name of an existing Workflow "
                "(set it in the source or from the event with a parameter, dest: metadata.name)",
                retriable=False,
            )
        namespace = str((obj.get("metadata") or {}).get("namespace") or self.context.namespace)
        ref = ObjectRef(api_version, "Workflow", str(name), namespace)
        if operation == "resubmit":
            live = await self._get(kube, ref, operation)
            resubmitted = resubmit_workflow(live, parameter_overrides(obj))
            return await self._create(kube, fire, resubmitted, namespace)
        for _ in range(CONFLICT_ATTEMPTS):
            live = await self._get(kube, ref, operation)
            if _annotations(live).get(LAST_FIRING_ANNOTATION) == fire.key:
                summary = f"{operation} of {ref} was already done by this firing"
                return summary + await wait_for_labels(kube, ref, self._policy())
            try:
                summary = await self._change(kube, fire, ref, live, operation)
            except KubeError as exc:
                if exc.conflict:
                    continue  # the Workflow changed since we read it: read it again
                raise failure(exc, f"{operation} {ref}") from exc
            return summary + await wait_for_labels(kube, ref, self._policy())
        raise TriggerError(
            f"{operation} {ref}: the Workflow kept changing while we updated it "
            f"({CONFLICT_ATTEMPTS} conflicts)",
            retriable=True,
        )

    async def _get(self, kube: KubeAPI, ref: ObjectRef, operation: str) -> KubeObject:
        try:
            return await kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        except KubeError as exc:
            raise failure(exc, f"{operation}: read {ref}") from exc

    def _policy(self) -> K8sResourcePolicy | None:
        return self.trigger.policy.k8s if self.trigger.policy else None

    async def _change(
        self, kube: KubeAPI, fire: Fire, ref: ObjectRef, live: KubeObject, operation: str
    ) -> str:
        version = (live.get("metadata") or {}).get("resourceVersion")
        mark = {"annotations": {LAST_FIRING_ANNOTATION: fire.key}, "resourceVersion": version}
        now = datetime.now(UTC)
        if operation == "suspend":
            if is_completed(live):
                raise WorkflowError(f"cannot suspend {ref}: it has completed")
            if (live.get("spec") or {}).get("suspend"):
                return f"{ref} is already suspended"
            await kube.patch(ref.api_version, ref.kind, ref.name, ref.namespace,
                             {"metadata": mark, "spec": {"suspend": True}})
            return f"suspended {ref}"
        if operation in SHUTDOWN:
            strategy = SHUTDOWN[operation]
            if (live.get("spec") or {}).get("shutdown") == strategy:
                return f"{ref} already has shutdown: {strategy}"
            if is_fulfilled(live):
                phase = (live.get("status") or {}).get("phase")
                raise WorkflowError(f"cannot {operation} {ref}: it has completed ({phase})")
            await kube.patch(ref.api_version, ref.kind, ref.name, ref.namespace,
                             {"metadata": mark, "spec": {"shutdown": strategy}})
            return f"set shutdown: {strategy} on {ref}"
        if operation == "resume":
            resumed = resume_workflow(live, now, f"Resumed by triggergate sensor {fire.sensor}")
            if resumed is None:
                return f"{ref} is not suspended; nothing to resume"
            resumed["metadata"].setdefault("annotations", {})[LAST_FIRING_ANNOTATION] = fire.key
            await kube.replace(resumed, ref.namespace)
            return f"resumed {ref}"
        if operation == "retry":
            retried, pods = retry_workflow(live, now)
            deleted = await self._delete_pods(kube, ref, pods)
            retried["metadata"].setdefault("annotations", {})[LAST_FIRING_ANNOTATION] = fire.key
            await kube.replace(retried, ref.namespace)
            return f"retried {ref} ({len(pods)} failed node(s) reset, {deleted} pod(s) deleted)"
        raise TriggerError(f"unknown argoWorkflow operation {operation!r}", retriable=False)

    async def _delete_pods(self, kube: KubeAPI, ref: ObjectRef, node_ids: list[str]) -> int:
        """Delete the pods of the reset nodes (found by the workflow label and node-id annotation)."""
        if not node_ids:
            return 0
        wanted = set(node_ids)
        try:
            selector = f"{POD_WORKFLOW_LABEL}={ref.name}"
            pods = await kube.list("v1", "Pod", ref.namespace, label_selector=selector)
        except KubeError as exc:
            raise failure(exc, f"retry {ref}: list its pods") from exc
        deleted = 0
        for pod in pods:
            if _annotations(pod).get(POD_NODE_ANNOTATION) not in wanted:
                continue
            name = pod["metadata"]["name"]
            try:
                await kube.delete("v1", "Pod", name, ref.namespace)
                deleted += 1
            except KubeError as exc:
                if not exc.not_found:
                    raise failure(exc, f"retry {ref}: delete pod {name}") from exc
        return deleted

    # -- load-time checks ---------------------------------------------------------------------------

    async def preflight(self) -> list[str]:
        """The referenced WorkflowTemplate exists and gets every parameter it has no default for."""
        kube = self.context.kube
        if kube is None or kube.dry_run:
            return []
        spec: ArgoWorkflowSpec = self.spec
        static = spec.source.resource is not None or bool(spec.source.inline)
        if spec.operation not in ("submit", "submit-from") or not static:
            return []
        try:
            obj = await self.fetcher.fetch(spec.source)
            obj = apply_parameters(obj, [p for p in spec.parameters if p.src.value is not None], {})
        except (TriggerError, ParameterError):
            return []
        if spec.operation == "submit":
            ref_spec = (obj.get("spec") or {}).get("workflowTemplateRef") or {}
            if not ref_spec.get("name"):
                return []
            kind = "ClusterWorkflowTemplate" if ref_spec.get("clusterScope") else "WorkflowTemplate"
            name = str(ref_spec["name"])
            arguments = (obj.get("spec") or {}).get("arguments") or {}
            supplied = [p.get("name") for p in arguments.get("parameters") or [] if isinstance(p, dict)]
        else:
            kind = str(obj.get("kind"))
            name = str((obj.get("metadata") or {}).get("name") or "")
            if kind not in ("WorkflowTemplate", "ClusterWorkflowTemplate") or not name:
                return []
            supplied = [p["name"] for p in parameter_overrides(obj)]
        namespace = "" if kind == "ClusterWorkflowTemplate" else str(
            (obj.get("metadata") or {}).get("namespace") or self.context.namespace
        )
        target = ObjectRef(API_VERSION, kind, name, namespace)
        where = f"sensor {self.context.sensor} trigger '{self.trigger.name}'"
        try:
            template = await kube.get(API_VERSION, kind, name, namespace)
        except KubeError as exc:
            if exc.not_found:
                return [f"{where}: {target} does not exist in the cluster; its Workflows will fail"]
            return [f"{where}: cannot check {target}: {exc}"]
        missing = missing_parameters(template, [str(s) for s in supplied if s])
        if missing:
            return [
                f"{where}: {target} needs parameter(s) {', '.join(missing)} without a default, and the "
                "trigger does not supply them in spec.arguments.parameters"
            ]
        return []

    async def close(self) -> None:
        await self.fetcher.close()


__all__ = ["ArgoWorkflowTrigger"]
