"""fanOut in manifests: where `triggergate validate` puts its errors, parameters naming the item,
and the S3 connection the fan-out lists buckets with."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.config import ManifestError, load_manifests
from gateway.fanout import fan_out_connection, fan_out_runner
from gateway.firing import FiringRunner
from gateway.secrets import SecretStore
from gateway.store import SqliteStore
from gateway.triggers import build_executor
from gateway.triggers.base import TriggerContext
from sensors.spec import EventSource, Sensor

SOURCE = """\
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: uploads
spec:
  s3:
    run-files:
      sqs:
        queue: uploads
        endpoint: http://127.0.0.1:5000
        accessKey: {name: aws, key: access}
        secretKey: {name: aws, key: secret}
      bucket: seq
"""

SENSOR = """\
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: sequencer
spec:
  dependencies:
    - name: marker
      eventSourceName: uploads
      eventName: run-files
  triggers:
    - template:
        name: align
        conditions: marker
        fanOut:
          parser: illumina
          onIncomplete:
            template: {name: notify-lab, log: {}}
        argoWorkflow:
          operation: submit
          source:
            resource:
              apiVersion: argoproj.io/v1alpha1
              kind: Workflow
              metadata: {generateName: bwa-align-}
              spec:
                workflowTemplateRef: {name: bwa-align}
                arguments:
                  parameters: [{name: sample}, {name: fastq1}]
          parameters:
            - src: {dependencyName: sample, dataKey: sample}
              dest: spec.arguments.parameters.0.value
            - src: {dependencyName: sample, dataKey: fastq1}
              dest: spec.arguments.parameters.1.value
"""


def write(tmp: Path, sensor: str = SENSOR, source: str = SOURCE) -> Path:
    path = tmp / "manifests.yaml"
    path.write_text(source + "---\n" + sensor)
    return path


def secrets(tmp: Path) -> Path:
    root = tmp / "secrets"
    (root / "aws").mkdir(parents=True, exist_ok=True)
    (root / "aws" / "access").write_text("AKIAFANOUT")
    (root / "aws" / "secret").write_text("fan-out-secret\n")
    return root


def problems(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifests([path], secrets_dir=None)
    return info.value.problems


def line_of(path: Path, needle: str) -> int:
    lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert len(lines) == 1, lines
    return lines[0]


def test_parameters_may_name_the_item_of_their_own_fan_out(tmp_path: Path) -> None:
    loaded = load_manifests([write(tmp_path)], secrets_dir=secrets(tmp_path))
    (sensor,) = loaded.sensors
    fan_out = sensor.model.spec.triggers[0].template.fan_out
    assert fan_out is not None and fan_out.as_ == "sample"


def test_other_triggers_may_not_name_the_item(tmp_path: Path) -> None:
    other = SENSOR + "    - template:\n        name: audit\n        conditions: marker\n        http:\n"
    other += "          url: http://127.0.0.1:1/audit\n          payload:\n"
    other += "            - {src: {dependencyName: sample, dataKey: sample}, dest: sample}\n"
    path = write(tmp_path, other)
    (problem,) = problems(path)
    line = line_of(path, "- {src: {dependencyName: sample")
    assert problem.startswith(f"{path}:{line}:")
    assert (
        "spec.triggers[1].template.http.payload[0].src.dependencyName: 'sample' is not a dependency"
        in problem
    )
    assert problem.endswith("dependencies: marker")
    typo = write(
        tmp_path,
        SENSOR.replace("dependencyName: sample, dataKey: fastq1", "dependencyName: sampel, dataKey: fastq1"),
    )
    (problem,) = problems(typo)
    assert "'sampel' is not a dependency of this sensor; dependencies: marker, sample" in problem


@pytest.mark.parametrize(
    ("change", "needle", "field", "message"),
    [
        (
            ("parser: illumina", "parser: pacbio"),
            "parser: pacbio",
            "spec.triggers[0].template.fanOut.parser",
            "unknown key parser 'pacbio'; known parsers: illumina, mgi, ont",
        ),
        (
            ("parser: illumina", "parser: illumina\n          groupBy: barcode"),
            "fanOut:",
            "spec.triggers[0].template.fanOut",
            "groupBy 'barcode' is not a field of the illumina parser",
        ),
        (
            ("parser: illumina", "parser: illumina\n          as: marker"),
            "spec:",
            "spec",
            "trigger 'align' fanOut.as is 'marker', which is also a dependency's name",
        ),
        (
            ("parser: illumina", "parser: illumina\n          sorce: manifest"),
            "sorce: manifest",
            "spec.triggers[0].template.fanOut.sorce",
            "unknown field",
        ),
    ],
)
def test_fan_out_errors_name_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], needle: str, field: str, message: str
) -> None:
    path = write(tmp_path, SENSOR.replace(*change))
    found = problems(path)
    assert len(found) == 1, found
    (problem,) = found
    lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert re.match(
        rf"{re.escape(str(path))}:({'|'.join(map(str, lines))}):\d+: document 2 \(Sensor 'sequencer'\): ",
        problem,
    )
    assert f": {field}: " in problem and message in problem


# --------------------------------------------------------------------------- the S3 connection


def sensor_and_sources(
    tmp_path: Path, sensor: str = SENSOR, source: str = SOURCE
) -> tuple[Sensor, list[EventSource], SecretStore]:
    loaded = load_manifests([write(tmp_path, sensor, source)], secrets_dir=secrets(tmp_path))
    return loaded.sensors[0].model, [s.model for s in loaded.event_sources], SecretStore(tmp_path / "secrets")


def test_the_default_connection_is_the_event_sources(tmp_path: Path) -> None:
    sensor, sources, store = sensor_and_sources(tmp_path)
    connection, origin = fan_out_connection(sensor.spec.triggers[0], sensor, sources, store)
    assert (connection.endpoint, connection.region, connection.access_key, connection.secret_key) == (
        "http://127.0.0.1:5000",
        "us-east-1",
        "AKIAFANOUT",
        "fan-out-secret",
    )
    assert origin == "EventSource uploads/run-files sqs"
    assert "fan-out-secret" not in connection.describe() + repr(connection)


def test_reconcile_wins_over_sqs_and_fan_out_s3_over_both(tmp_path: Path) -> None:
    source = SOURCE + "      reconcile:\n        endpoint: http://127.0.0.1:7000\n        region: eu-west-1\n"
    sensor, sources, store = sensor_and_sources(tmp_path, source=source)
    connection, origin = fan_out_connection(sensor.spec.triggers[0], sensor, sources, store)
    assert (connection.endpoint, connection.region, connection.access_key, origin) == (
        "http://127.0.0.1:7000",
        "eu-west-1",
        None,
        "EventSource uploads/run-files reconcile",
    )
    own = SENSOR.replace(
        "          parser: illumina\n",
        "          parser: illumina\n          s3:\n            endpoint: http://minio:9000\n"
        "            accessKey: {name: aws, key: access}\n            secretKey: {name: aws, key: secret}\n",
    )
    sensor, sources, store = sensor_and_sources(tmp_path, sensor=own, source=source)
    connection, origin = fan_out_connection(sensor.spec.triggers[0], sensor, sources, store)
    assert (connection.endpoint, connection.region, connection.access_key, origin) == (
        "http://minio:9000",
        "us-east-1",
        "AKIAFANOUT",
        "fanOut.s3",
    )


def test_without_an_s3_source_the_environment_is_used(tmp_path: Path) -> None:
    webhook = SOURCE.replace("  s3:\n", "  webhook:\n").split("      sqs:")[0]
    webhook += '      port: "12000"\n      endpoint: /runs\n'
    sensor, sources, store = sensor_and_sources(tmp_path, source=webhook)
    connection, origin = fan_out_connection(sensor.spec.triggers[0], sensor, sources, store)
    assert (connection.endpoint, connection.access_key) == (None, None)
    assert origin.startswith("the environment")


async def test_the_runtime_builds_a_fan_out_runner_with_its_on_incomplete_runner(tmp_path: Path) -> None:
    loaded = load_manifests([write(tmp_path)], secrets_dir=secrets(tmp_path))
    trigger = loaded.sensors[0].model.spec.triggers[0]
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    try:
        async with httpx.AsyncClient() as http:
            context = TriggerContext("sequencer", "default", SecretStore(tmp_path / "secrets"), http)
            plain = FiringRunner(build_executor(trigger, context), store)
            built: list[str] = []

            def build(each: object) -> FiringRunner:
                built.append(getattr(each, "name", ""))
                return FiringRunner(build_executor(each, context), store)  # type: ignore[arg-type]

            runner = fan_out_runner(plain, context, loaded, build)
            assert runner.executor is plain.executor and runner.trigger is trigger
            assert built == ["notify-lab"] and runner.on_incomplete is not None
            assert runner.resolver.client.connection.endpoint == "http://127.0.0.1:5000"  # type: ignore[attr-defined]
            assert await runner.resolver.preflight() == []
            await runner.resolver.close()
    finally:
        await store.close()


def test_the_documented_fan_out_sensor_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "correlation.md").read_text()
    section = doc.split("## Completion markers and fan-out", 1)[1]
    block = re.search(r"```yaml\n(apiVersion: argoproj.io/v1alpha1\nkind: Sensor\n.*?)```", section, re.S)
    assert block is not None
    sensor = Sensor.model_validate(yaml.safe_load(textwrap.dedent(block.group(1))))
    fan_out = sensor.spec.triggers[0].template.fan_out
    assert fan_out is not None and fan_out.parser == "illumina"


def test_on_aws_a_reconcile_block_without_region_takes_the_queues_region(tmp_path: Path) -> None:
    aws = (
        "apiVersion: argoproj.io/v1alpha1\nkind: EventSource\nmetadata:\n  name: uploads\nspec:\n  s3:\n"
        "    run-files:\n      bucket: seq-landing\n"
        "      sqs:\n        queue: https://sqs.eu-west-2.amazonaws.com/123456789012/seq-landing\n"
        "      reconcile:\n        interval: 5m\n"
    )
    sensor, sources, store = sensor_and_sources(tmp_path, source=aws)
    connection, origin = fan_out_connection(sensor.spec.triggers[0], sensor, sources, store)
    assert (connection.endpoint, connection.region, origin) == (
        None,
        "eu-west-2",
        "EventSource uploads/run-files reconcile",
    )
