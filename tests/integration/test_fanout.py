"""Completion-marker fan-out through a real ``triggergate run --dry-run`` against the moto server.

A small run is uploaded to a bucket whose notifications go to SQS (3 complete samples x 2 lanes, an
``Undetermined`` pair, a sample without its lane-2 R2), then ``CopyComplete.txt``. The s3 source
polls the queue; the marker fires the fan-out, which lists the run folder through boto3 with the
EventSource's connection. Expected: one Workflow per complete sample in the outbox with its R1/R2
URLs in lane order, none for Undetermined, one dead letter for the incomplete sample; nothing more
after the marker is uploaded again and after a restart.
"""

# ruff: noqa: F811  (pytest fixtures imported from moto_support are redefined as arguments)
from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.aws import AwsClient, AwsConnection, AwsError
from gateway.fanout import RunResolver
from sensors.event import Event
from sensors.fanout import RunLocation, locate_run
from sensors.spec import FanOut
from tests.integration.gatewayproc import ROOT, GatewayProcess, free_port
from tests.integration.moto_support import (  # noqa: F401 - fixtures
    KEYS,
    REGION,
    MotoServer,
    bucket_to_queue,
    moto,
    moto_server,
    queue_counts,
    write_keys,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

RUN = "250304_A01234_0042_BHXXYYDSXC"
PREFIX = f"runs/{RUN}/"
COMPLETE = {"NA12878": 1, "NA12879": 2, "Tumor_01_FFPE": 3}


def fastqs(sample: str, number: int) -> list[str]:
    return [
        f"{PREFIX}Data/{sample}_S{number}_L00{lane}_R{read}_001.fastq.gz"
        for lane in (1, 2)
        for read in (1, 2)
    ]


def manifests(tmp: Path, port: int, moto: MotoServer) -> Path:
    path = tmp / "manifests.yaml"
    path.write_text(
        f"""
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: uploads}}
spec:
  s3:
    run-files:
      webhook: {{port: "{port}", endpoint: /s3}}
      sqs:
        queue: uploads
        endpoint: {moto.url}
        waitTimeSeconds: 1
        visibilityTimeout: 10
        accessKey: {{name: aws, key: access}}
        secretKey: {{name: aws, key: secret}}
      bucket: seq
      events: ["s3:ObjectCreated:*"]
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: sequencer}}
spec:
  dependencies:
    - name: marker
      eventSourceName: uploads
      eventName: run-files
      filters:
        data: [{{path: key, type: string, value: ['(^|/)CopyComplete\\.txt$']}}]
  triggers:
    - template:
        name: align
        conditions: marker
        fanOut:
          parser: illumina
          onIncomplete:
            template: {{name: notify-lab, log: {{}}}}
        argoWorkflow:
          operation: submit
          source:
            resource:
              apiVersion: argoproj.io/v1alpha1
              kind: Workflow
              metadata: {{generateName: bwa-align-}}
              spec:
                workflowTemplateRef: {{name: bwa-align}}
                arguments:
                  parameters: [{{name: sample}}, {{name: fastq1}}, {{name: fastq2}}]
          parameters:
            - src: {{dependencyName: sample, dataKey: sample}}
              dest: spec.arguments.parameters.0.value
            - src: {{dependencyName: sample, dataKey: fastq1}}
              dest: spec.arguments.parameters.1.value
            - src: {{dependencyName: sample, dataKey: fastq2}}
              dest: spec.arguments.parameters.2.value
      retryStrategy: {{steps: 3, duration: 100ms}}
"""
    )
    return path


def workflows(state: Path) -> dict[str, list[str]]:
    """sample -> [fastq1, fastq2] of each Workflow in the outbox (a second one for a sample fails)."""
    out: dict[str, list[str]] = {}
    for path in sorted((state / "outbox").glob("*/*.yaml")):
        doc = yaml.safe_load(path.read_text())
        assert doc["kind"] == "Workflow" and doc["spec"]["workflowTemplateRef"] == {"name": "bwa-align"}
        values = [p["value"] for p in doc["spec"]["arguments"]["parameters"]]
        assert values[0] not in out, f"a second Workflow for {values[0]}: {path}"
        out[values[0]] = values[1:]
    return out


def cli(state: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--state-dir", str(state)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_until(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def urls(sample: str, read: int) -> str:
    return " ".join(f"s3://seq/{k}" for k in fastqs(sample, COMPLETE[sample]) if f"_R{read}_" in k)


def test_a_run_fans_out_once_per_complete_sample(moto: MotoServer, tmp_path: Path) -> None:
    url = bucket_to_queue(moto, "seq", "uploads", prefix="runs/")
    s3 = moto.client("s3")
    sqs = moto.client("sqs")
    secrets = tmp_path / "secrets"
    write_keys(secrets)
    port = free_port()
    path = manifests(tmp_path, port, moto)
    state = tmp_path / "state"
    keys = [k for sample, n in COMPLETE.items() for k in fastqs(sample, n)] + fastqs("Undetermined", 0)
    keys += fastqs("NA12880", 4)[:3]  # lane 2 has R1 but no R2
    for key in keys:
        s3.put_object(Bucket="seq", Key=key, Body=b"@r\nACGT\n+\nFFFF\n")
    s3.put_object(Bucket="seq", Key=f"{PREFIX}RunInfo.xml", Body=b"<RunInfo/>")
    s3.put_object(Bucket="seq", Key=f"{PREFIX}CopyComplete.txt", Body=b"")
    gw = GatewayProcess([path], state, port, secrets_dir=secrets, extra_args=["--dry-run"]).start()
    try:
        wait_until(lambda: len(workflows(state)) >= 3, "three Workflows in the outbox")
        wait_until(
            lambda: "is incomplete" in cli(state, "dlq", "list"), "the incomplete sample's dead letter"
        )
        wait_until(lambda: queue_counts(sqs, url) == (0, 0), "the queue to be drained")
        assert workflows(state) == {sample: [urls(sample, 1), urls(sample, 2)] for sample in COMPLETE}
        # the marker is uploaded again (another ETag: a new event, a new parent firing)
        s3.put_object(Bucket="seq", Key=f"{PREFIX}CopyComplete.txt", Body=b"again")
        wait_until(lambda: gw.logs().count("fanned out run ") >= 2, "the second marker to be fanned out")
        wait_until(lambda: queue_counts(sqs, url) == (0, 0), "the queue to be drained again")
    finally:
        assert gw.terminate() == 0, gw.logs()
    logs = gw.logs()
    assert "0 fired, 3 already done, 0 dead lettered, 1 incomplete (reported), skipped Undetermined" in logs
    assert "testing" not in logs  # the access and secret keys
    gw = GatewayProcess([path], state, port, secrets_dir=secrets, extra_args=["--dry-run"]).start()
    try:
        time.sleep(2.0)  # a restart replays nothing: every event was acknowledged
    finally:
        assert gw.terminate() == 0, gw.logs()
    assert workflows(state) == {sample: [urls(sample, 1), urls(sample, 2)] for sample in COMPLETE}
    letters = [line for line in cli(state, "dlq", "list").splitlines() if "is incomplete" in line]
    assert len(letters) == 1, letters
    assert f"sample NA12880 of run {RUN} is incomplete: lane 2 has R1 but no R2" in letters[0]


async def test_the_resolver_reads_runs_and_says_what_cannot_be_retried(moto: MotoServer) -> None:
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="seq")
    for key in fastqs("NA12878", 1):
        s3.put_object(Bucket="seq", Key=key, Body=b"x")
    s3.put_object(Bucket="seq", Key=f"{PREFIX}Reports/fastq_list.csv", Body=b"\xef\xbb\xbfRGID,RGSM\n")
    s3.put_object(Bucket="seq", Key="runs/other/x.fastq.gz", Body=b"x")
    connection = AwsConnection(
        region=REGION,
        endpoint=moto.url,
        access_key=KEYS["aws_access_key_id"],
        secret_key=KEYS["aws_secret_access_key"],
    )
    resolver = RunResolver(AwsClient(connection, name="test-fanout"))
    try:

        def location(bucket: str) -> RunLocation:
            data = {"bucket": bucket, "key": f"{PREFIX}CopyComplete.txt"}
            now = datetime.now(UTC)
            return locate_run(
                Event(id="m", source="uploads", subject="run-files", type="s3", time=now, data=data)
            )

        keys, text = await resolver.resolve(FanOut(parser="illumina"), location("seq"))
        assert (sorted(keys), text) == (
            sorted([*fastqs("NA12878", 1), f"{PREFIX}Reports/fastq_list.csv"]),
            None,
        )
        _, text = await resolver.resolve(
            FanOut.model_validate({"parser": "illumina", "source": "manifest"}), location("seq")
        )
        assert text == "RGID,RGSM\n"
        with pytest.raises(AwsError) as missing:
            await resolver.resolve(FanOut(parser="illumina"), location("no-such-bucket"))
        assert (missing.value.code, missing.value.retriable) == ("NoSuchBucket", False)
        with pytest.raises(AwsError) as no_sheet:
            await resolver.resolve(
                FanOut.model_validate({"parser": "illumina", "source": "sampleSheet"}), location("seq")
            )
        assert (no_sheet.value.code, no_sheet.value.retriable) == ("NoSuchKey", False)
    finally:
        await resolver.close()
