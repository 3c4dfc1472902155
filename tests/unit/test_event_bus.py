"""The ``EventBus`` manifest and ``--bus``: which bus ``triggergate run`` uses, and the errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.bus import parse_bus_url
from gateway.cli import app, select_bus
from gateway.config import ManifestError, Manifests, event_bus_url, load_manifests
from gateway.errors import ConfigError

SENSOR = """\
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: seq}
spec:
  dependencies: [{name: up, eventSourceName: uploads, eventName: fastq}]
  triggers: [{template: {name: t, log: {}}}]
"""


def bus_manifest(spec: str, name: str = "default", namespace: str = "lab") -> str:
    head = "apiVersion: argoproj.io/v1alpha1\nkind: EventBus\n"
    head += f"metadata: {{name: {name}, namespace: {namespace}}}\n"
    return head + "spec:\n" + textwrap.indent(textwrap.dedent(spec), "  ")


def load(tmp_path: Path, *texts: str) -> Manifests:
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"m{i}.yaml"
        path.write_text(text)
        paths.append(path)
    return load_manifests(paths, secrets_dir=None)


def problems(tmp_path: Path, *texts: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load(tmp_path, *texts)
    return caught.value.problems


def test_an_argo_kafka_event_bus_becomes_the_bus_url(tmp_path: Path) -> None:
    manifests = load(
        tmp_path,
        SENSOR,
        bus_manifest(
            """\
            kafka:
              url: kafka-0.kafka:9092, kafka-1.kafka:9092
              topic: lab-events
              version: 2.5.0
              consumerGroup: {groupName: lab-gw, startOldest: true, rebalanceStrategy: sticky}
            """
        ),
    )
    loaded = manifests.event_bus
    assert loaded is not None and loaded.name == "default"
    assert loaded.origin.file == tmp_path / "m1.yaml" and loaded.origin.line == 1
    url = event_bus_url(loaded.model)
    assert url == "kafka://kafka-0.kafka:9092,kafka-1.kafka:9092/lab-events?consumerGroup=lab-gw"
    assert parse_bus_url(url)[0] == "kafka"
    assert len(manifests.sensors) == 1 and manifests.notes == []


def test_tls_and_sasl_become_secret_references_of_the_bus_url(tmp_path: Path) -> None:
    spec = """\
        kafka:
          url: k:9093
          tls: {caCertSecret: {name: kafka-ca, key: ca.crt}}
          sasl:
            mechanism: SCRAM-SHA-512
            userSecret: {name: kafka-user, key: user}
            passwordSecret: {name: kafka-user, key: password}
        """
    manifests = load(tmp_path, bus_manifest(spec))
    assert manifests.event_bus is not None
    url = event_bus_url(manifests.event_bus.model)
    assert url == (
        "kafka://k:9093/lab-default?consumerGroup=lab-default&tls=true&tlsCaSecret=kafka-ca/ca.crt"
        "&saslMechanism=SCRAM-SHA-512&saslUserSecret=kafka-user/user&saslPasswordSecret=kafka-user/password"
    )
    kind, options = parse_bus_url(url)
    assert (kind, options["tls_ca_secret"], options["sasl_password_secret"]) == (
        "kafka",
        "kafka-ca/ca.crt",
        "kafka-user/password",
    )
    # The secrets are checked when the manifests load, like every other secret reference.
    (tmp_path / "secrets" / "kafka-ca").mkdir(parents=True)
    (tmp_path / "secrets" / "kafka-ca" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ManifestError) as caught:
        load_manifests([tmp_path / "m0.yaml"], secrets_dir=tmp_path / "secrets")
    assert [p.field for p in caught.value.details] == [
        "spec.kafka.sasl.userSecret",
        "spec.kafka.sasl.passwordSecret",
    ]


def test_argo_defaults_for_topic_and_group(tmp_path: Path) -> None:
    manifests = load(tmp_path, bus_manifest("kafka: {url: 'kafka:9092'}", name="main", namespace="seq"))
    assert manifests.event_bus is not None
    assert event_bus_url(manifests.event_bus.model) == "kafka://kafka:9092/seq-main?consumerGroup=seq-main"


@pytest.mark.parametrize(
    ("spec", "line", "message"),
    [
        (
            "jetstream: {version: latest}",
            5,
            "spec.jetstream: an EventBus of type 'jetstream' is not supported by triggergate; use 'kafka'",
        ),
        ("nats: {native: {}}", 5, "spec.nats: an EventBus of type 'nats' is not supported by triggergate"),
        ("{}", 4, "an EventBus needs 'kafka' (url, topic, consumerGroup)"),
        ("kafka: {topic: x}", 5, "spec.kafka.url: required field is missing"),
        (
            "kafka: {url: 'kafka://k:9092'}",
            5,
            "url must list the Kafka brokers as host:port separated by commas",
        ),
        (
            "kafka: {url: 'k:9092', tls: {clientCertSecret: {name: c, key: crt}, "
            "clientKeySecret: {name: c, key: k}}}",
            5,
            "clientCertSecret, clientKeySecret and insecureSkipVerify are not supported",
        ),
        ("kafka: {url: 'k:9092', sasl: {mechanism: GSSAPI}}", 5, "SASL mechanism GSSAPI is not supported"),
        ("kafka: {url: 'k:9092', partitions: 3}", 5, "spec.kafka.partitions: unknown field"),
        (
            "kafka: {url: 'k:9092', topic: 'a/b'}",
            5,
            "spec.kafka.topic: 'a/b' is not allowed; topic must be 1-249",
        ),
        (
            "kafka: {url: 'k:9092', consumerGroup: {groupName: 'lab gw'}}",
            5,
            "spec.kafka.consumerGroup.groupName: 'lab gw' is not allowed; groupName must be 1-249 characters",
        ),
    ],
)
def test_what_cannot_be_used_is_an_error_at_its_line(
    tmp_path: Path, spec: str, line: int, message: str
) -> None:
    (problem,) = problems(tmp_path, bus_manifest(spec))
    assert problem.startswith(f"{tmp_path / 'm0.yaml'}:{line}:")
    assert "(EventBus 'default')" in problem
    assert message in problem


def test_one_event_bus_at_most(tmp_path: Path) -> None:
    first = bus_manifest("kafka: {url: 'k:9092'}")
    (problem,) = problems(tmp_path, first, bus_manifest("kafka: {url: 'k:9092'}", name="other"))
    assert f"a second EventBus (the first is 'default' at {tmp_path / 'm0.yaml'}:1)" in problem
    assert problem.startswith(f"{tmp_path / 'm1.yaml'}:3:")


def test_the_flag_wins_over_the_manifest_and_sqlite_is_the_default(tmp_path: Path) -> None:
    with_bus = load(tmp_path, SENSOR, bus_manifest("kafka: {url: 'k:9092', topic: t}"))
    assert select_bus(None, with_bus) == "kafka://k:9092/t?consumerGroup=lab-default"
    assert select_bus("sqlite", with_bus) == "sqlite"
    assert select_bus("kafka://a:1/x?consumerGroup=g", with_bus) == "kafka://a:1/x?consumerGroup=g"
    assert select_bus(None, load(tmp_path, SENSOR)) == "sqlite"


def test_a_bad_flag_names_the_flag_and_what_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        select_bus("nats://n:4222", load(tmp_path, SENSOR))
    (problem,) = caught.value.problems
    assert problem.startswith("--bus (or $TRIGGERGATE_BUS) 'nats://n:4222' is not a bus; use sqlite, memory")
    assert "kafka://host:port" in problem
    with pytest.raises(ConfigError) as caught:
        select_bus("kafka://k:9092/t?consumerGroup=g&bogus=1", load(tmp_path, SENSOR))
    (problem,) = caught.value.problems
    flag = "--bus (or $TRIGGERGATE_BUS) 'kafka://k:9092/t?consumerGroup=g&bogus=1'"
    assert problem.startswith(f"{flag}: unknown query parameter 'bogus'")
    assert problem.endswith(
        "allowed: sqlite (embedded, one process), memory (not durable; tests) or "
        "kafka://host:port[,host:port]/<topic>?consumerGroup=<prefix>[&partitions=N&sessionTimeout=10s...]"
    )


def test_credentials_in_a_bad_flag_are_not_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        select_bus("nats://user:hunter2@n:4222", load(tmp_path, SENSOR))
    assert "hunter2" not in caught.value.problems[0]


def test_run_refuses_to_start_on_a_bad_bus(tmp_path: Path) -> None:
    manifest = tmp_path / "sensor.yaml"
    manifest.write_text(SENSOR)
    state = tmp_path / "state"
    args = ["run", str(manifest), "--state-dir", str(state), "--secrets-dir", str(tmp_path)]
    env = {**os.environ, "TRIGGERGATE_BUS": "rabbit://x"}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "--bus (or $TRIGGERGATE_BUS) 'rabbit://x'" in done.stderr
    assert "not starting: the bus is not usable" in done.stderr
    assert not state.exists()


def test_validate_shows_the_bus_of_the_event_bus(tmp_path: Path) -> None:
    bus = tmp_path / "bus.yaml"
    bus.write_text(bus_manifest("kafka: {url: 'k:9092', topic: t, consumerGroup: {groupName: g}}"))
    result = CliRunner().invoke(app, ["validate", str(bus), "--no-secrets"])
    assert result.exit_code == 0, result.output
    assert f"EventBus 'default' (namespace lab) at {bus}:1 (document 1)" in result.output
    assert "bus: kafka://k:9092/t?consumerGroup=g (used by `triggergate run` without --bus)" in result.output
