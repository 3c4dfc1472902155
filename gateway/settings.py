"""The Helm chart's values as pydantic models: the one source of ``values.schema.json`` and ``values.yaml``.

``charts/triggergate/values.schema.json`` and ``charts/triggergate/values.yaml`` are generated from
:class:`ChartValues` (descriptions become the YAML comments) and a test fails when either drifts::

    python -m gateway.settings --write charts/triggergate   # regenerate both files
    python -m gateway.settings --check charts/triggergate   # exit 1 when they differ from the model
    python -m gateway.settings --schema                     # print the schema (--values: the YAML)

Field names are the chart's (camelCase). Rules that span fields are written three times on purpose,
because each layer can be bypassed on its own: a model validator here (Python callers and tests),
an ``if``/``then`` in the JSON schema (``helm install`` and ``helm lint``), and a ``fail`` in the
templates (``helm install --skip-schema-validation``):

- more than one replica needs ``bus.kind: kafka`` (the embedded bus is one SQLite file that one
  process owns; two processes on it would both fire every event);
- ``bus.kind: kafka`` needs ``bus.kafka.url``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema

# --------------------------------------------------------------------------- shared field types

#: A namespace or other DNS-1123 label (RFC 1123: lower case, digits, '-'; at most 63 characters).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: A Secret, ConfigMap or ServiceAccount name (DNS-1123 subdomain; at most 253 characters).
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#: A ConfigMap key that ``triggergate run`` loads: a file name ending in .yaml, .yml or .json.
MANIFEST_FILE = r"^[-._a-zA-Z0-9]+\.(yaml|yml|json)$"
#: Broker addresses as Argo's EventBus ``kafka.url``: ``host:port`` separated by commas, no scheme.
KAFKA_BROKERS = r"^([^,/\s]+:[0-9]+)(,[^,/\s]+:[0-9]+)*$"
#: An absolute path in the container.
ABSOLUTE_PATH = r"^/[^\s]*$"

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)]
DnsSubdomain = Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)]
ManifestFile = Annotated[str, StringConstraints(pattern=MANIFEST_FILE, max_length=253)]
ContainerPath = Annotated[str, StringConstraints(pattern=ABSOLUTE_PATH)]
Port = Annotated[int, Field(ge=1, le=65535)]

ArgoOperation = Literal[
    "submit", "submit-from", "resubmit", "suspend", "terminate", "stop", "resume", "retry"
]
ArgoTemplateKind = Literal["WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"]
K8sOperation = Literal["create", "update", "patch", "delete"]
AccessMode = Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"]


def _no_repeats(items: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item in seen:
            raise ValueError(f"{item!r} is listed twice; list each value once")
        seen.append(item)
    return items


def _unique_list(
    description: str, default: list[Any], *, min_length: int | None = None, examples: Any = None
) -> Any:
    """A list field whose items must differ: ``uniqueItems`` in the schema; pair it with :data:`NoRepeats`."""
    return Field(
        default_factory=lambda: list(default),
        description=description,
        min_length=min_length,
        examples=examples,
        json_schema_extra={"uniqueItems": True},
    )


#: Marks a list whose items must differ (the Python side of ``uniqueItems``).
NoRepeats = AfterValidator(_no_repeats)


class Values(BaseModel):
    """Base of every values model: camelCase keys, unknown keys are errors (typos do not pass)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", validate_default=True
    )


# --------------------------------------------------------------------------- parts


class ImageValues(Values):
    repository: str = Field(
        "triggergate",
        min_length=1,
        description="Image repository, built from the repository's Dockerfile and pushed to your registry.",
    )
    tag: str = Field(
        "",
        description="Image tag; empty means the chart's appVersion. Never `latest`.",
        json_schema_extra={"not": {"const": "latest"}},
    )
    digest: str = Field(
        "",
        pattern=r"^(sha256:[0-9a-f]{64})?$",
        description="Image digest (sha256:...); when set it pins the image and wins over the tag.",
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="imagePullPolicy of the gateway container."
    )

    @model_validator(mode="after")
    def _not_latest(self) -> ImageValues:
        if self.tag == "latest":
            raise ValueError("image.tag: `latest` is not allowed; use a version tag or image.digest")
        return self


class KafkaBusValues(Values):
    url: str = Field(
        "",
        description=(
            "Kafka brokers, `host:port` separated by commas (Argo's EventBus `kafka.url`). "
            "Required when bus.kind is kafka."
        ),
        pattern=f"^$|{KAFKA_BROKERS}",
    )
    topic: str = Field(
        "triggergate-events",
        min_length=1,
        pattern=r"^[a-zA-Z0-9._-]+$",
        description="Topic that carries the events.",
    )
    consumer_group: str = Field(
        "triggergate",
        min_length=1,
        pattern=r"^[a-zA-Z0-9._-]+$",
        description="Consumer group name; every replica joins it, so the replicas share the work.",
    )
    options: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "More query parameters of the `--bus` URL, passed through to the Kafka bus backend as they are "
            "(URL-encoded)."
        ),
    )


class BusValues(Values):
    kind: Literal["embedded", "kafka"] = Field(
        "embedded",
        description=(
            "embedded: the SQLite bus in the state directory, one replica only (keep persistence on). "
            "kafka: `--bus kafka://<url>/<topic>?consumerGroup=<consumerGroup>`; needed for replicas > 1."
        ),
    )
    kafka: KafkaBusValues = Field(
        default_factory=KafkaBusValues, description="The Kafka bus (bus.kind: kafka)."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"kind": {"const": "kafka"}}, "required": ["kind"]},
            "then": {"properties": {"kafka": {"properties": {"url": {"minLength": 1}}, "required": ["url"]}}},
        }
    )

    @model_validator(mode="after")
    def _kafka_needs_url(self) -> BusValues:
        if self.kind == "kafka" and not self.kafka.url:
            raise ValueError("bus.kafka.url is required when bus.kind is kafka (e.g. kafka-0.kafka:9092)")
        return self


class ConfigValues(Values):
    existing_config_map: str = Field(
        "",
        description=(
            "Name of a ConfigMap (in the release namespace) holding the EventSource and Sensor YAML, one "
            "file per key (*.yaml, *.yml or *.json). When set, config.manifests is ignored."
        ),
        pattern=f"^$|{DNS_SUBDOMAIN}",
        max_length=253,
    )
    manifests: dict[ManifestFile, str] = Field(
        default_factory=dict,
        description=(
            "EventSource and Sensor YAML by file name, rendered into the chart's ConfigMap. "
            "Set this or existingConfigMap: the chart refuses to render without either."
        ),
        json_schema_extra={"additionalProperties": False},
        examples=[
            {
                "sequencer.yaml": (
                    "apiVersion: argoproj.io/v1alpha1\n"
                    "kind: EventSource\n"
                    "metadata: {name: sequencer}\n"
                    "spec:\n"
                    "  webhook:\n"
                    '    run-complete: {port: "12000", endpoint: /run-complete, method: POST}\n'
                ),
            }
        ],
    )
    mount_path: ContainerPath = Field(
        "/etc/triggergate/manifests",
        description="Where the manifests are mounted; passed to `triggergate run`.",
    )


class SecretsValues(Values):
    existing_secrets: Annotated[list[DnsSubdomain], NoRepeats] = _unique_list(
        "Secrets to mount, each at <mountPath>/<name>, so that a SecretKeySelector {name, key} in a "
        "manifest reads <mountPath>/<name>/<key>. Create them before installing.",
        [],
        examples=[["lims-token", "minio-credentials"]],
    )
    mount_path: ContainerPath = Field(
        "/var/run/triggergate/secrets", description="The secrets directory (`--secrets-dir`)."
    )


class PersistenceValues(Values):
    enabled: bool = Field(
        True,
        description=(
            "Keep the state directory (embedded bus, firing records, dead letters) on a "
            "PersistentVolumeClaim per replica. Off: an emptyDir, and every event not yet "
            "acknowledged is lost with the pod."
        ),
    )
    size: str = Field(
        "1Gi",
        pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$",
        description="Requested size of each claim.",
    )
    storage_class: str | None = Field(
        None, description='StorageClass of the claims; null: the cluster default; "": no class (static PVs).'
    )
    access_modes: list[AccessMode] = Field(
        default_factory=lambda: list[AccessMode](["ReadWriteOnce"]),
        min_length=1,
        description="Access modes of each claim; one pod writes each volume.",
    )
    mount_path: ContainerPath = Field(
        "/var/lib/triggergate", description="The state directory (`--state-dir`)."
    )


class WebhookValues(Values):
    ports: Annotated[list[Port], NoRepeats] = _unique_list(
        "The ports your webhook EventSources listen on (their `port` fields): container ports and "
        "Service ports. The first one also answers the probes (GET /health).",
        [12000],
        min_length=1,
    )


class ServiceValues(Values):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", description="Type of the Service in front of the webhook ports."
    )
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations of the Service.")


class K8sObjectRbac(Values):
    api_group: str = Field(..., description='API group of the objects ("" for the core group).')
    resource: str = Field(..., min_length=1, description="Resource (plural, lower case), e.g. configmaps.")
    operations: Annotated[list[K8sOperation], NoRepeats] = _unique_list(
        "Operations of the k8s triggers on it.", ["create"], min_length=1
    )
    create_missing: bool = Field(
        False,
        description="update/patch create the object when it does not exist yet: grant `create` for that.",
    )


class ArgoWorkflowRbac(Values):
    operations: Annotated[list[ArgoOperation], NoRepeats] = _unique_list(
        "Operations of your argoWorkflow triggers; each grants exactly the verbs of docs/rbac.md. "
        "[] grants nothing on workflows.",
        ["submit"],
    )
    templates: Annotated[list[ArgoTemplateKind], NoRepeats] = _unique_list(
        "Kinds the triggers submit from or check at load time: `get` on workflowtemplates, cronworkflows or "
        "(a ClusterRole) clusterworkflowtemplates.",
        ["WorkflowTemplate"],
    )


class RbacValues(Values):
    create: bool = Field(
        True,
        description="Create a Role and RoleBinding in each target namespace (and a ClusterRole if needed).",
    )
    argo_workflow: ArgoWorkflowRbac = Field(
        default_factory=ArgoWorkflowRbac, description="What the argoWorkflow triggers need."
    )
    k8s: list[K8sObjectRbac] = Field(
        default_factory=list,
        alias="k8s",
        description="What the k8s triggers need, one entry per resource they touch.",
        examples=[
            [{"apiGroup": "", "resource": "configmaps", "operations": ["create"], "createMissing": False}]
        ],
    )
    config_map_source: bool = Field(
        False, description="A trigger's source is a `configmap`: grant `get` on configmaps."
    )
    extra_rules: list[dict[str, Any]] = Field(
        default_factory=list, description="More PolicyRules for every namespaced Role."
    )


class ServiceAccountValues(Values):
    create: bool = Field(True, description="Create the ServiceAccount.")
    name: str = Field(
        "",
        description="Its name; empty: the release's full name (or `default` when create is false).",
        pattern=f"^$|{DNS_SUBDOMAIN}",
        max_length=253,
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations, e.g. a cloud IAM role for the S3 source."
    )


class ProbeValues(Values):
    enabled: bool = Field(True, description="Whether to set this probe.")
    initial_delay_seconds: int = Field(0, ge=0, description="Seconds before the first probe.")
    period_seconds: int = Field(10, ge=1, description="Seconds between probes.")
    timeout_seconds: int = Field(3, ge=1, description="Seconds to wait for an answer.")
    failure_threshold: int = Field(3, ge=1, description="Failures in a row that count.")


class ProbesValues(Values):
    port: Port | None = Field(
        None, description="Port that answers GET /health; null: the first of webhook.ports."
    )
    startup: ProbeValues = Field(
        default_factory=lambda: ProbeValues(period_seconds=2, timeout_seconds=2, failure_threshold=60),
        description="Until the manifests are loaded, the bus is open and the webhook servers listen.",
    )
    liveness: ProbeValues = Field(
        default_factory=lambda: ProbeValues(period_seconds=10, timeout_seconds=3, failure_threshold=6),
        description="Restarts the container after a minute of failing /health (503: the bus is unhealthy).",
    )
    readiness: ProbeValues = Field(
        default_factory=lambda: ProbeValues(period_seconds=5, timeout_seconds=3, failure_threshold=2),
        description="Takes the pod out of the Service while /health fails.",
    )


class PdbValues(Values):
    enabled: bool = Field(True, description="Create a PodDisruptionBudget.")
    min_available: int | str | None = Field(
        None, description="minAvailable (a number or a percentage); when set it replaces maxUnavailable."
    )
    max_unavailable: int | str = Field(1, description="maxUnavailable (a number or a percentage).")


class ServiceMonitorValues(Values):
    enabled: bool = Field(False, description="Create a prometheus-operator ServiceMonitor (needs its CRD).")
    interval: str = Field("30s", pattern=r"^[0-9]+(ms|s|m|h)$", description="Scrape interval.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="More labels, e.g. the one your Prometheus selects on."
    )


class MetricsValues(Values):
    port: Port | None = Field(
        None,
        description=(
            "Port that Prometheus scrapes; null: the first of webhook.ports (every webhook port serves "
            "GET /metrics). Another port gets a listener of its own (`--metrics-port`), e.g. when no "
            "webhook source runs."
        ),
    )
    path: Literal["/metrics"] = Field(
        "/metrics", description="Path that serves the metrics: the gateway serves them at /metrics only."
    )
    scrape_annotations: bool = Field(
        False, description="Add prometheus.io/scrape, /port and /path annotations to the pods."
    )
    service_monitor: ServiceMonitorValues = Field(
        default_factory=ServiceMonitorValues, description="The prometheus-operator way."
    )


def _default_resources() -> dict[str, Any]:
    return {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}


def _default_pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _default_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


# --------------------------------------------------------------------------- the chart's values


class ChartValues(Values):
    """Everything ``charts/triggergate`` reads from ``.Values``; its defaults are ``values.yaml``."""

    name_override: str = Field("", description="Replaces the chart name in object names.")
    fullname_override: str = Field("", description="Replaces the full name (release-chart) of the objects.")
    image: ImageValues = Field(default_factory=ImageValues, description="The gateway image.")
    image_pull_secrets: Annotated[list[DnsSubdomain], NoRepeats] = _unique_list(
        "Names of docker-registry Secrets for pulling it.", []
    )
    replicas: int = Field(
        1,
        ge=1,
        description="Gateway processes. More than 1 needs bus.kind: kafka (the chart refuses otherwise).",
    )
    bus: BusValues = Field(
        default_factory=BusValues, description="The event bus between sources and sensors."
    )
    config: ConfigValues = Field(
        default_factory=ConfigValues,
        description="The EventSource and Sensor manifests that the gateway runs.",
    )
    secrets: SecretsValues = Field(
        default_factory=SecretsValues,
        description="Secrets the manifests refer to (authSecret, credentials...).",
    )
    persistence: PersistenceValues = Field(
        default_factory=PersistenceValues,
        description="The state directory. See docs/adr/0004-chart-embedded-bus-storage.md.",
    )
    webhook: WebhookValues = Field(default_factory=WebhookValues, description="Webhook ports.")
    service: ServiceValues = Field(
        default_factory=ServiceValues, description="The Service for the webhook ports."
    )
    target_namespaces: Annotated[list[DnsLabel], NoRepeats] = _unique_list(
        "Namespaces the triggers create Workflows (or other objects) in; [] means the release namespace.",
        [],
    )
    rbac: RbacValues = Field(
        default_factory=RbacValues, description="Exactly the API verbs your triggers need (docs/rbac.md)."
    )
    service_account: ServiceAccountValues = Field(
        default_factory=ServiceAccountValues, description="The identity the gateway talks to Kubernetes with."
    )
    pod_annotations: dict[str, str] = Field(default_factory=dict, description="More annotations of the pods.")
    pod_labels: dict[str, str] = Field(default_factory=dict, description="More labels of the pods.")
    resources: dict[str, Any] = Field(
        default_factory=_default_resources,
        description="Resource requests and limits of the gateway container.",
    )
    probes: ProbesValues = Field(default_factory=ProbesValues, description="HTTP probes on GET /health.")
    pdb: PdbValues = Field(default_factory=PdbValues, description="PodDisruptionBudget.")
    pod_security_context: dict[str, Any] = Field(
        default_factory=_default_pod_security_context,
        description="Pod securityContext; the UID/GID are the image's (10001).",
    )
    security_context: dict[str, Any] = Field(
        default_factory=_default_security_context,
        description="Container securityContext: non-root, read-only root fs, no privilege escalation.",
    )
    metrics: MetricsValues = Field(default_factory=MetricsValues, description="Prometheus scraping.")
    log_format: Literal["text", "json"] = Field("json", description="`--log-format`: text or json lines.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="`--log-level`.")
    dry_run: bool = Field(
        False,
        description="`--dry-run`: write Kubernetes objects to <state dir>/outbox instead of creating them.",
    )
    shutdown_grace: int = Field(
        30,
        ge=0,
        description=(
            "`--shutdown-grace` seconds for in-flight firings on stop; the pod's "
            "terminationGracePeriodSeconds is this plus 15."
        ),
    )
    extra_args: list[str] = Field(
        default_factory=list,
        description="More arguments for `triggergate run`, e.g. [--max-in-flight, '64'].",
    )
    extra_env: list[dict[str, Any]] = Field(
        default_factory=list, description="More environment variables of the container (EnvVar objects)."
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="nodeSelector of the pods.")
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="tolerations of the pods.")
    affinity: dict[str, Any] = Field(default_factory=dict, description="affinity of the pods.")
    global_: dict[str, Any] = Field(
        default_factory=dict,
        alias="global",
        description="Values a parent chart shares with its subcharts; unused here.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            # More than one replica needs the Kafka bus. Written as a limit on `replicas`, so that the
            # schema error points at the value to change: at '/replicas': maximum: got 2, want 1.
            "if": {"properties": {"bus": {"properties": {"kind": {"const": "embedded"}}}}},
            "then": {"properties": {"replicas": {"maximum": 1}}},
        }
    )

    @model_validator(mode="after")
    def _replicas_need_kafka(self) -> ChartValues:
        if self.replicas > 1 and self.bus.kind != "kafka":
            raise ValueError(
                f"replicas: {self.replicas} needs bus.kind: kafka (and bus.kafka.url); the embedded bus is "
                "one SQLite file that only one process may use. Set replicas: 1 or configure the Kafka bus."
            )
        return self


# --------------------------------------------------------------------------- generated files


class _ChartSchemaGenerator(GenerateJsonSchema):
    """Pydantic's JSON schema without the ``title`` noise that it adds to every model and field."""

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        return cast(JsonSchemaValue, _drop_titles(super().generate(schema, mode)))


def _drop_titles(node: Any, *, in_properties: bool = False) -> Any:
    if isinstance(node, dict):
        return {
            key: _drop_titles(value, in_properties=(key in ("properties", "$defs") and not in_properties))
            for key, value in node.items()
            if in_properties or key != "title"
        }
    if isinstance(node, list):
        return [_drop_titles(item) for item in node]
    return node


def values_schema() -> dict[str, Any]:
    """``values.schema.json``: JSON Schema 2020-12 of :class:`ChartValues`, by alias, without titles."""
    schema = ChartValues.model_json_schema(by_alias=True, schema_generator=_ChartSchemaGenerator)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    """The exact text of the committed ``values.schema.json``."""
    return json.dumps(values_schema(), indent=2, ensure_ascii=False) + "\n"


def values_text() -> str:
    """The exact text of the committed ``values.yaml``: the defaults, each field's description above it."""
    from gateway.values_yaml import commented_yaml

    header = (
        "# Default values of the triggergate chart.\n"
        "# GENERATED from gateway/settings.py (ChartValues): edit the model, not this file, then run\n"
        "#   python -m gateway.settings --write charts/triggergate\n"
        "# which also writes values.schema.json from the same model.\n\n"
    )
    return header + commented_yaml(ChartValues())


GENERATED = {"values.schema.json": schema_text, "values.yaml": values_text}


def drifted(chart_dir: Path) -> list[str]:
    """Names of the generated files in ``chart_dir`` that are missing or differ from the model."""
    stale = []
    for name, render in GENERATED.items():
        path = chart_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render():
            stale.append(name)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.settings", description="The chart's values.schema.json and values.yaml."
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--schema", action="store_true", help="print values.schema.json")
    group.add_argument("--values", action="store_true", help="print values.yaml")
    group.add_argument("--write", metavar="CHART_DIR", type=Path, help="write both files into CHART_DIR")
    group.add_argument("--check", metavar="CHART_DIR", type=Path, help="exit 1 if they differ from the model")
    args = parser.parse_args(argv)
    if args.schema:
        sys.stdout.write(schema_text())
    elif args.values:
        sys.stdout.write(values_text())
    elif args.write is not None:
        for name, render in GENERATED.items():
            (args.write / name).write_text(render(), encoding="utf-8")
    else:
        stale = drifted(args.check)
        for name in stale:
            print(
                f"{args.check / name} differs from gateway/settings.py; "
                f"regenerate it with `python -m gateway.settings --write {args.check}`",
                file=sys.stderr,
            )
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
