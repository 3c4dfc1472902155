"""charts/triggergate without a cluster: lint it, render it with variations of its values, validate the
objects against the Kubernetes 1.30 and latest schemas, and check what the gateway would see.

The last part goes further than the YAML: the pod's volumes are laid out on disk as the kubelet
would (ConfigMap and Secret volumes with their ``..data`` links) and the real ``triggergate``
command line parses the container's arguments and loads the mounted manifests and secrets.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.main
import yaml
from typer.testing import CliRunner, Result

from gateway.bus import parse_bus_url
from gateway.cli import app
from gateway.settings import ChartValues
from tests.chart.rendering import (
    CHART,
    FULLNAME,
    NAMESPACE,
    ROOT,
    Rendered,
    chart_without_schema,
    example_manifests,
    helm_sdk,
    lint,
    render,
    with_config,
)

KAFKA: dict[str, Any] = {
    "kind": "kafka",
    "kafka": {"url": "kafka-0.kafka:9092,kafka-1.kafka:9092", "topic": "lab-events"},
}

#: Values the chart must accept; each is rendered, schema-validated and validated as Kubernetes objects.
VARIATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "kafka-3-replicas": {"replicas": 3, "bus": KAFKA, "pdb": {"minAvailable": 2}},
    "existing-configmap": {"config": {"existingConfigMap": "lab-manifests"}},
    "secrets": {"secrets": {"existingSecrets": ["lims-token", "minio.credentials"]}},
    "target-namespaces": {
        "targetNamespaces": ["argo", "lab-a"],
        "rbac": {
            "argoWorkflow": {
                "operations": ["submit", "submit-from", "retry", "terminate"],
                "templates": ["WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"],
            },
            "k8s": [
                {"apiGroup": "", "resource": "configmaps", "operations": ["patch"], "createMissing": True}
            ],
            "configMapSource": True,
        },
    },
    "everything-else": {
        "persistence": {"enabled": False},
        "metrics": {"port": 9090, "scrapeAnnotations": True, "serviceMonitor": {"enabled": True}},
        "webhook": {"ports": [12000, 12001]},
        "probes": {"port": 12001, "startup": {"enabled": False}},
        "service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "internal"}},
        "image": {"repository": "registry.example.com/lab/triggergate", "digest": "sha256:" + "a" * 64},
        "imagePullSecrets": ["regcred"],
        "dryRun": True,
        "extraArgs": ["--max-in-flight", "64"],
        "extraEnv": [{"name": "AWS_REGION", "value": "eu-west-1"}],
        "podAnnotations": {"example.com/team": "genomics"},
        "podLabels": {"example.com/cost-center": "seq"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "lab", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                            ]
                        }
                    ]
                }
            }
        },
        "pdb": {"enabled": False},
        "serviceAccount": {"create": False, "name": "lab-gateway"},
        "logFormat": "text",
        "logLevel": "debug",
        "shutdownGrace": 120,
    },
}

#: Kinds that are custom resources: kubernetes-validate has no schema for them (checked by hand below).
CUSTOM_KINDS = {"ServiceMonitor"}


def kubernetes_validate() -> ModuleType:
    try:
        module = importlib.import_module("kubernetes_validate")
    except ImportError:
        pytest.skip("kubernetes-validate is not installed (it is a dev dependency: pip install -e '.[dev]')")
    return module


def _values(name: str) -> dict[str, Any]:
    return with_config(VARIATIONS[name])


# --------------------------------------------------------------------------- lint, schema, Kubernetes schemas


def test_lint_with_default_values_reports_no_problem() -> None:
    report = lint()
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_lint_strict_passes_for_every_variation(variation: str) -> None:
    report = lint(_values(variation), strict=True)
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_every_variation_is_valid_for_the_settings_model(variation: str) -> None:
    ChartValues.model_validate(_values(variation))


@pytest.mark.parametrize("version", ["1.30", "latest"])
@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_rendered_objects_are_valid_kubernetes(variation: str, version: str) -> None:
    validator = kubernetes_validate()
    desired = validator.latest_version() if version == "latest" else version
    rendered = render(_values(variation))
    assert rendered.objects
    for obj in rendered.objects:
        where = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
        if obj["kind"] in CUSTOM_KINDS:
            with pytest.raises(validator.SchemaNotFoundError):
                validator.validate(obj, desired, strict=True)
            continue
        try:
            validator.validate(obj, desired, strict=True)
        except validator.ValidationError as exc:
            pytest.fail(f"{variation}: {where} is not valid Kubernetes {desired}: {exc}")


def test_every_object_is_named_and_labelled_for_the_release() -> None:
    rendered = render(_values("target-namespaces"))
    kinds = sorted(obj["kind"] for obj in rendered.objects)
    assert kinds == sorted(
        ["ConfigMap", "PodDisruptionBudget", "Service", "ServiceAccount", "StatefulSet"]
        + ["Role", "RoleBinding"] * 2
        + ["ClusterRole", "ClusterRoleBinding"]
    )
    for obj in rendered.objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "tg"
        assert labels["app.kubernetes.io/name"] == "triggergate"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        if obj["kind"] not in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == NAMESPACE


# --------------------------------------------------------------------------- the workload


def test_the_workload_is_one_statefulset_with_a_state_claim() -> None:
    rendered = render(_values("defaults"))
    statefulset = rendered.one("StatefulSet")
    spec = statefulset["spec"]
    assert spec["replicas"] == 1
    assert spec["serviceName"] == rendered.one("Service")["metadata"]["name"] == FULLNAME
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim["spec"]  # null: the cluster's default class
    assert not any(volume["name"] == "state" for volume in rendered.pod["volumes"])
    mounts = {m["name"]: m for m in rendered.container["volumeMounts"]}
    assert mounts["state"]["mountPath"] == "/var/lib/triggergate"


@pytest.mark.parametrize(("storage_class", "expected"), [("fast-ssd", "fast-ssd"), ("", "")])
def test_the_storage_class_is_passed_as_given(storage_class: str, expected: str) -> None:
    rendered = render(with_config({"persistence": {"storageClass": storage_class, "size": "20Gi"}}))
    (claim,) = rendered.one("StatefulSet")["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == expected
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"


def test_without_persistence_the_state_is_an_empty_dir_and_the_notes_warn() -> None:
    rendered = render(with_config({"persistence": {"enabled": False}}))
    assert "volumeClaimTemplates" not in rendered.one("StatefulSet")["spec"]
    volumes = {v["name"]: v for v in rendered.pod["volumes"]}
    assert volumes["state"] == {"name": "state", "emptyDir": {}}
    assert "WARNING: persistence.enabled is false" in rendered.notes
    assert "WARNING" not in render(_values("defaults")).notes


def test_the_container_is_locked_down() -> None:
    rendered = render(_values("defaults"))
    security = rendered.container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    pod = rendered.pod["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == pod["runAsGroup"] == pod["fsGroup"] == 10001
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    # A read-only root filesystem still needs a writable /tmp.
    assert {"name": "tmp", "mountPath": "/tmp"} in rendered.container["volumeMounts"]
    assert rendered.pod["enableServiceLinks"] is False


def test_probes_ask_for_health_on_the_first_webhook_port() -> None:
    rendered = render(with_config({"webhook": {"ports": [12000, 13000]}}))
    container = rendered.container
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": 12000}
    assert container["livenessProbe"]["failureThreshold"] * container["livenessProbe"]["periodSeconds"] == 60
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] == 120


def test_probes_follow_probes_port_and_can_be_switched_off() -> None:
    rendered = render(_values("everything-else"))
    assert "startupProbe" not in rendered.container
    assert rendered.container["livenessProbe"]["httpGet"]["port"] == 12001
    assert rendered.container["readinessProbe"]["httpGet"]["port"] == 12001


def test_resources_have_requests_and_a_memory_limit() -> None:
    resources = render(_values("defaults")).container["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert resources["limits"] == {"memory": "512Mi"}


def test_webhook_ports_are_container_ports_and_service_ports() -> None:
    rendered = render(with_config({"webhook": {"ports": [12000, 12001]}}))
    assert rendered.container["ports"] == [
        {"name": "http-12000", "containerPort": 12000, "protocol": "TCP"},
        {"name": "http-12001", "containerPort": 12001, "protocol": "TCP"},
    ]
    service = rendered.one("Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http-12000", "port": 12000, "targetPort": "http-12000", "protocol": "TCP"},
        {"name": "http-12001", "port": 12001, "targetPort": "http-12001", "protocol": "TCP"},
    ]
    pod_labels = rendered.one("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_the_termination_grace_covers_the_shutdown_grace() -> None:
    assert render(_values("defaults")).pod["terminationGracePeriodSeconds"] == 45
    assert render(_values("everything-else")).pod["terminationGracePeriodSeconds"] == 135


def test_the_image_defaults_to_the_app_version_and_a_digest_pins_it() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert render(_values("defaults")).container["image"] == f"triggergate:{chart['appVersion']}"
    assert render(with_config({"image": {"tag": "0.2.0"}})).container["image"] == "triggergate:0.2.0"
    pinned = render(_values("everything-else"))
    assert pinned.container["image"] == "registry.example.com/lab/triggergate@sha256:" + "a" * 64
    assert pinned.pod["imagePullSecrets"] == [{"name": "regcred"}]


def test_the_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert chart["name"] == "triggergate"
    assert chart["apiVersion"] == "v2"


def test_pod_scheduling_and_extras_are_passed_through() -> None:
    values = VARIATIONS["everything-else"]
    rendered = render(_values("everything-else"))
    pod = rendered.pod
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"]
    assert rendered.container["env"] == values["extraEnv"]
    metadata = rendered.one("StatefulSet")["spec"]["template"]["metadata"]
    assert metadata["labels"]["example.com/cost-center"] == "seq"
    assert metadata["annotations"]["example.com/team"] == "genomics"
    assert rendered.one("Service")["metadata"]["annotations"] == {"example.com/lb": "internal"}


# --------------------------------------------------------------------------- PDB and metrics


def test_the_pdb_allows_one_pod_down_by_default() -> None:
    pdb = render(_values("defaults")).one("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "triggergate",
        "app.kubernetes.io/instance": "tg",
    }


def test_min_available_replaces_max_unavailable() -> None:
    pdb = render(_values("kafka-3-replicas")).one("PodDisruptionBudget")
    assert pdb["spec"] == {**pdb["spec"], "minAvailable": 2}
    assert "maxUnavailable" not in pdb["spec"]
    assert render(_values("everything-else")).all("PodDisruptionBudget") == []


def test_a_pdb_that_blocks_every_eviction_is_pointed_out() -> None:
    assert "node drains wait forever" in render(with_config({"pdb": {"minAvailable": 1}})).notes
    assert "node drains wait forever" not in render(_values("kafka-3-replicas")).notes


def test_metrics_are_off_by_default() -> None:
    rendered = render(_values("defaults"))
    assert rendered.all("ServiceMonitor") == []
    annotations = rendered.one("StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    assert not any(key.startswith("prometheus.io/") for key in annotations)


def test_metrics_on_their_own_port_get_annotations_a_port_and_a_service_monitor() -> None:
    rendered = render(_values("everything-else"))
    annotations = rendered.one("StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9090"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in rendered.container["ports"]
    service_ports = {p["name"]: p for p in rendered.one("Service")["spec"]["ports"]}
    assert service_ports["metrics"] == {
        "name": "metrics",
        "port": 9090,
        "targetPort": "metrics",
        "protocol": "TCP",
    }
    monitor = rendered.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items()
        <= rendered.one("Service")["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_metrics_on_a_webhook_port_reuse_its_service_port() -> None:
    rendered = render(
        with_config({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}})
    )
    monitor = rendered.one("ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "http-12000"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert [p["name"] for p in rendered.container["ports"]] == ["http-12000"]
    assert "--metrics-port" not in rendered.args  # the webhook port serves GET /metrics itself


def test_a_metrics_port_of_its_own_makes_the_gateway_listen_there() -> None:
    args = render(_values("everything-else")).args
    assert args[args.index("--metrics-port") + 1] == "9090"
    assert args.count("--metrics-port") == 1
    # without scraping configured too: the gateway listens, and the pod declares the port
    rendered = render(with_config({"metrics": {"port": 9100}}))
    assert rendered.args[rendered.args.index("--metrics-port") + 1] == "9100"
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in rendered.container["ports"]
    assert "metrics" not in [p["name"] for p in rendered.one("Service")["spec"]["ports"]]


@pytest.mark.parametrize("port", [12000, 12001])
def test_a_metrics_port_that_is_a_webhook_port_adds_no_listener(port: int) -> None:
    values = with_config({"webhook": {"ports": [12000, 12001]}, "metrics": {"port": port}})
    rendered = render(values)
    assert "--metrics-port" not in rendered.args
    assert [p["name"] for p in rendered.container["ports"]] == ["http-12000", "http-12001"]


def test_the_metrics_path_is_the_one_the_gateway_serves() -> None:
    with pytest.raises(Exception, match="metrics"):
        render(with_config({"metrics": {"path": "/prometheus"}}))


# --------------------------------------------------------------------------- the replicas / bus rule


def test_two_replicas_on_the_embedded_bus_are_refused_by_the_schema() -> None:
    helm = helm_sdk()
    with pytest.raises(helm.HelmValuesError, match=r"/replicas': maximum: got 2, want 1"):
        render(with_config({"replicas": 2}))


def test_two_replicas_on_the_embedded_bus_are_refused_by_the_templates_too(tmp_path: Path) -> None:
    """``helm install --skip-schema-validation`` still gets a message that says what to change."""
    helm = helm_sdk()
    chart = chart_without_schema(tmp_path)
    with pytest.raises(helm.HelmRenderError, match=r"replicas: 2 needs bus.kind: kafka"):
        render(with_config({"replicas": 2}), chart=chart)
    with pytest.raises(helm.HelmRenderError, match=r"bus.kafka.url is required when bus.kind is kafka"):
        render(with_config({"bus": {"kind": "kafka"}}), chart=chart)
    with pytest.raises(helm.HelmRenderError, match=r"image.tag: latest is not allowed"):
        render(with_config({"image": {"tag": "latest"}}), chart=chart)
    assert (
        render(with_config({"replicas": 2, "bus": KAFKA}), chart=chart).one("StatefulSet")["spec"]["replicas"]
        == 2
    )


def test_the_kafka_bus_needs_its_url() -> None:
    helm = helm_sdk()
    with pytest.raises(helm.HelmValuesError, match=r"/bus/kafka/url': minLength"):
        render(with_config({"replicas": 3, "bus": {"kind": "kafka"}}))


def test_the_kafka_bus_allows_many_replicas() -> None:
    rendered = render(_values("kafka-3-replicas"))
    assert rendered.one("StatefulSet")["spec"]["replicas"] == 3
    assert rendered.one("StatefulSet")["spec"]["podManagementPolicy"] == "Parallel"
    assert "3 replicas, kafka bus" in rendered.notes


def test_nothing_to_run_is_refused_with_what_to_set() -> None:
    helm = helm_sdk()
    with pytest.raises(helm.HelmRenderError, match=r"config: nothing to run\. Set config\.manifests"):
        render({})


# --------------------------------------------------------------------------- arguments of `triggergate run`


def test_the_default_arguments() -> None:
    assert render(_values("defaults")).args == [
        "run", "/etc/triggergate/manifests",
        "--state-dir", "/var/lib/triggergate",
        "--secrets-dir", "/var/run/triggergate/secrets",
        "--log-format", "json",
        "--log-level", "info",
        "--host", "0.0.0.0",
        "--shutdown-grace", "30",
    ]  # fmt: skip


def test_the_kafka_bus_is_passed_as_a_bus_url() -> None:
    values = with_config(
        {
            "replicas": 2,
            "bus": {
                **KAFKA,
                "kafka": {
                    **KAFKA["kafka"],
                    "consumerGroup": "lab-gw",
                    "options": {"tls": "true", "clientId": "x&y z"},
                },
            },
        }
    )
    args = render(values).args
    bus = args[args.index("--bus") + 1]
    assert bus == (
        "kafka://kafka-0.kafka:9092,kafka-1.kafka:9092/lab-events?consumerGroup=lab-gw&clientId=x%26y+z&tls=true"
    )
    # ... and the gateway reads it back as the chart meant it
    kind, options = parse_bus_url(bus)
    assert kind == "kafka"
    assert (
        options["bootstrap"] == "kafka-0.kafka:9092,kafka-1.kafka:9092" and options["topic"] == "lab-events"
    )
    assert (options["consumer_group"], options["client_id"], options["tls"]) == ("lab-gw", "x&y z", True)
    assert "--bus" not in render(_values("defaults")).args


def test_options_and_extra_args_come_last() -> None:
    args = render(_values("everything-else")).args
    assert args[-3:] == ["--dry-run", "--max-in-flight", "64"]
    assert args[args.index("--log-format") + 1] == "text"
    assert args[args.index("--log-level") + 1] == "debug"
    assert args[args.index("--shutdown-grace") + 1] == "120"


def _run_command() -> Any:
    """The ``run`` command as the CLI builds it (typer's click ``Command``), to parse arguments with."""
    group: Any = typer.main.get_command(app)
    return group.commands["run"]


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_the_real_run_command_accepts_the_arguments(variation: str) -> None:
    args = render(_values(variation)).args
    assert args[0] == "run"
    command = _run_command()
    with command.make_context("run", args[1:]) as ctx:
        params = ctx.params
    values = ChartValues.model_validate(_values(variation))
    assert params["paths"] == [Path(values.config.mount_path)]
    assert params["state_dir"] == Path(values.persistence.mount_path)
    assert params["secrets_dir"] == Path(values.secrets.mount_path)
    assert params["log_format"].value == values.log_format
    assert params["log_level"].value == values.log_level
    assert params["dry_run"] is values.dry_run
    assert params["shutdown_grace"] == values.shutdown_grace
    extra_metrics_port = values.metrics.port is not None and values.metrics.port not in values.webhook.ports
    assert params["metrics_port"] == (values.metrics.port if extra_metrics_port else None)
    if values.bus.kind == "kafka":
        assert parse_bus_url(params["bus"])[0] == "kafka"
    else:
        assert params["bus"] is None  # the embedded bus (or an EventBus manifest in the config)


# --------------------------------------------------------------------------- config and secrets, as mounted


def test_the_manifests_become_a_config_map_mounted_read_only() -> None:
    rendered = render(_values("defaults"))
    config_map = rendered.one("ConfigMap")
    assert config_map["metadata"]["name"] == FULLNAME
    assert config_map["data"] == example_manifests()
    volumes = {v["name"]: v for v in rendered.pod["volumes"]}
    assert volumes["manifests"]["configMap"] == {"name": FULLNAME}
    mounts = {m["name"]: m for m in rendered.container["volumeMounts"]}
    assert mounts["manifests"] == {
        "name": "manifests",
        "mountPath": "/etc/triggergate/manifests",
        "readOnly": True,
    }


def test_an_existing_config_map_is_mounted_instead() -> None:
    rendered = render(_values("existing-configmap"))
    assert rendered.all("ConfigMap") == []
    volumes = {v["name"]: v for v in rendered.pod["volumes"]}
    assert volumes["manifests"]["configMap"] == {"name": "lab-manifests"}
    assert "lab-manifests (yours" in rendered.notes


def test_a_changed_config_rolls_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        annotations = render(values).one("StatefulSet")["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    manifests = example_manifests()
    changed = {**manifests, "sensor.yaml": manifests["sensor.yaml"].replace("GRCh38", "T2T-CHM13")}
    first = checksum(_values("defaults"))
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert checksum(_values("defaults")) == first
    assert checksum({"config": {"manifests": changed}}) != first


def test_each_secret_is_one_volume_mounted_at_its_name() -> None:
    rendered = render(_values("secrets"))
    volumes = {v["name"]: v for v in rendered.pod["volumes"]}
    mounts = {m["name"]: m for m in rendered.container["volumeMounts"]}
    assert volumes["secret-0"] == {"name": "secret-0", "secret": {"secretName": "lims-token"}}
    assert volumes["secret-1"] == {"name": "secret-1", "secret": {"secretName": "minio.credentials"}}
    assert mounts["secret-0"] == {
        "name": "secret-0", "mountPath": "/var/run/triggergate/secrets/lims-token", "readOnly": True
    }  # fmt: skip
    assert mounts["secret-1"]["mountPath"] == "/var/run/triggergate/secrets/minio.credentials"
    assert "Secrets: lims-token, minio.credentials under" in rendered.notes


AUTH_SOURCE = """\
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: lims, namespace: argo}
spec:
  webhook:
    run-uploaded:
      port: "12001"
      endpoint: /run-uploaded
      method: POST
      authSecret: {name: lims-token, key: token}
"""


def _write_atomic_volume(directory: Path, files: dict[str, str]) -> None:
    """A ConfigMap or Secret volume as the kubelet writes it: files behind a ``..data`` link."""
    stamp = directory / "..2026_11_22_10_00_00.000000001"
    stamp.mkdir(parents=True)
    for key, text in files.items():
        (stamp / key).write_text(text)
        (directory / key).symlink_to(Path("..data") / key)
    (directory / "..data").symlink_to(stamp.name)


def _materialize(
    rendered: Rendered, root: Path, *, config: dict[str, str], secrets: dict[str, dict[str, str]]
) -> None:
    """Lay out the container's mounts under ``root`` from the rendered volumes and the given contents."""
    volumes = {v["name"]: v for v in rendered.pod["volumes"]}
    for mount in rendered.container["volumeMounts"]:
        target = root / mount["mountPath"].lstrip("/")
        volume = volumes.get(mount["name"], {"persistentVolumeClaim": {}})  # claim templates are not volumes
        if "configMap" in volume:
            _write_atomic_volume(target, config)
        elif "secret" in volume:
            _write_atomic_volume(target, secrets[volume["secret"]["secretName"]])
        else:
            target.mkdir(parents=True)


def _validate_as_mounted(rendered: Rendered, root: Path) -> Result:
    """``triggergate validate`` with the paths of the container's arguments, under ``root``."""
    args = rendered.args
    config_dir = root / args[1].lstrip("/")
    secrets_dir = root / args[args.index("--secrets-dir") + 1].lstrip("/")
    return CliRunner().invoke(app, ["validate", str(config_dir), "--secrets-dir", str(secrets_dir)])


def test_the_gateway_loads_the_mounted_manifests_and_secrets(tmp_path: Path) -> None:
    manifests = {**example_manifests(), "lims.yaml": AUTH_SOURCE}
    values = {"config": {"manifests": manifests}, "secrets": {"existingSecrets": ["lims-token"]}}
    rendered = render(values)
    config = rendered.one("ConfigMap")["data"]
    _materialize(rendered, tmp_path, config=config, secrets={"lims-token": {"token": "s3cr3t\n"}})
    result = _validate_as_mounted(rendered, tmp_path)
    assert result.exit_code == 0, result.output
    assert "OK: 2 EventSources and 1 Sensor from 3 files" in result.output
    assert "bearer token" in result.output


def test_a_secret_that_is_not_mounted_is_reported_by_the_gateway(tmp_path: Path) -> None:
    manifests = {**example_manifests(), "lims.yaml": AUTH_SOURCE}
    rendered = render({"config": {"manifests": manifests}})  # lims-token not in secrets.existingSecrets
    _materialize(rendered, tmp_path, config=rendered.one("ConfigMap")["data"], secrets={})
    result = _validate_as_mounted(rendered, tmp_path)
    assert result.exit_code == 1
    assert "lims-token" in result.output
