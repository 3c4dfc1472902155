"""examples/sequencer-upload: the manifests and the WorkflowTemplate hold together; the demo's part
three does what it prints; and the issue's end-to-end check on the moto server through SQS: a
NovaSeq-style run of 24 samples, kill -9 in the middle of the fan-out, duplicate deliveries, exactly
one Workflow per complete sample in the (fake) cluster."""

# ruff: noqa: F811  (pytest fixtures imported from moto_support are redefined as arguments)
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from sensors.fanout import item_key
from sensors.objects import EVENT_IDS_ANNOTATION, FIRING_LABEL, deterministic_name
from tests.fake_k8s import FakeKubeAPI
from tests.integration.gatewayproc import ROOT, GatewayProcess, free_port
from tests.integration.moto_support import (  # noqa: F401 - fixtures
    MotoServer,
    bucket_to_queue,
    moto,
    moto_server,
    queue_counts,
    write_keys,
)

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "sequencer-upload"
SENSOR, TRIGGER = "sequencer-upload", "align"
STAGES = ("bwaprepare", "bwamap", "bwaindex")


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((EXAMPLE / name).read_text())
    assert isinstance(doc, dict)
    return doc


def triggergate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def wait_until(condition: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --------------------------------------------------------------------------- (a) the manifests


def test_triggergate_validate_accepts_the_example() -> None:
    result = triggergate("validate", str(EXAMPLE.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 1 EventSource and 1 Sensor from 3 files" in result.stdout
    assert "event 'run-files': s3 webhook POST :12000/s3/run-files, sqs seq-landing-events" in result.stdout
    assert "WorkflowTemplate 'bwa-align'): skipped" in result.stderr


def stage_commands(template: dict[str, Any]) -> str:
    """Every command line a stage runs, in container order."""
    containers = (
        template["containerSet"]["containers"] if "containerSet" in template else [template["container"]]
    )
    return "\n".join(" ".join(c["command"] + c.get("args", [])) for c in containers)


def test_the_workflow_template_is_the_issues_pipeline() -> None:
    wft = load("workflowtemplate.yaml")
    assert (wft["apiVersion"], wft["kind"], wft["metadata"]["name"]) == (
        "argoproj.io/v1alpha1",
        "WorkflowTemplate",
        "bwa-align",
    )
    spec = wft["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    entry = templates[spec["entrypoint"]]
    tasks = {t["name"]: t for t in entry["dag"]["tasks"]}
    # the DAG: bwaprepare -> bwamap (twice, in parallel) -> bwaindex
    assert [tasks[s]["template"] for s in STAGES] == list(STAGES)
    assert "dependencies" not in tasks["bwaprepare"]
    assert tasks["bwamap"]["dependencies"] == ["bwaprepare"]
    assert tasks["bwaindex"]["dependencies"] == ["bwamap"]
    assert tasks["bwamap"]["withItems"] == [1, 2]  # one task, two items: two pods at once
    assert tasks["bwamap"]["arguments"]["parameters"] == [{"name": "read", "value": "{{item}}"}]
    aln = stage_commands(templates["bwamap"])
    assert "bwa aln" in aln and "r{{inputs.parameters.read}}.fastq.gz" in aln
    # the commands of each stage, in order
    prepare = stage_commands(templates["bwaprepare"])
    assert "$REFERENCE_URL" in prepare and "$FASTQ1" in prepare and "$FASTQ2" in prepare
    assert prepare.index("r1.fastq.gz") < prepare.index("bwa index /work/ref/ref.fa")
    index = stage_commands(templates["bwaindex"])
    steps = ["bwa sampe", "samtools import", "samtools sort", "samtools index", "s3 cp"]
    assert [index.index(s) for s in steps] == sorted(index.index(s) for s in steps)
    # retryStrategy (limit, backoff, policy) on every stage
    for stage in STAGES:
        retry = templates[stage]["retryStrategy"]
        assert retry["limit"] >= 1 and retry["retryPolicy"] in ("OnFailure", "Always"), stage
        assert {"duration", "factor"} <= set(retry["backoff"]), stage
    # one shared ReadWriteOnce volume, mounted by every stage at /work
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "work" and claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    for stage in STAGES:
        t = templates[stage]
        mounts = t["containerSet"]["volumeMounts"] if "containerSet" in t else t["container"]["volumeMounts"]
        assert {"name": "work", "mountPath": "/work"} in mounts, stage
    # real, pinned images
    images = {
        c["image"]
        for t in templates.values()
        for c in [*t.get("containerSet", {}).get("containers", []), t.get("container") or {}]
        if c
    }
    assert images == {
        "amazon/aws-cli:2.17.0",
        "quay.io/biocontainers/bwa:0.7.17--hed695b0_7",
        "quay.io/biocontainers/samtools:1.11--h6270b1f_0",
    }
    # every {{workflow.parameters.X}} the stages use is declared
    declared = {p["name"] for p in spec["arguments"]["parameters"]}
    used = set(re.findall(r"\{\{workflow\.parameters\.([\w-]+)\}\}", yaml.safe_dump(spec)))
    assert used == declared == {"sample", "run", "fastq1", "fastq2", "output", "reference-url", "s3-endpoint"}


def test_the_sensor_sets_exactly_the_templates_parameters() -> None:
    wft = load("workflowtemplate.yaml")
    declared = {p["name"]: p for p in wft["spec"]["arguments"]["parameters"]}
    required = {name for name, p in declared.items() if "value" not in p}
    sensor = load("sensor.yaml")
    (trigger,) = sensor["spec"]["triggers"]
    template = trigger["template"]
    argo = template["argoWorkflow"]
    workflow = argo["source"]["resource"]
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "bwa-align"}
    given = [p["name"] for p in workflow["spec"]["arguments"]["parameters"]]
    assert set(given) <= set(declared) and required <= set(given), (given, sorted(declared))
    # each parameter of the item lands on the argument of the same meaning
    dests = {}
    for param in argo["parameters"]:
        dest = re.fullmatch(r"spec\.arguments\.parameters\.(\d+)\.value", param["dest"])
        assert dest is not None, param
        index = int(dest[1])
        assert param["src"]["dependencyName"] == template["fanOut"]["as"] == "sample"
        dests[given[index]] = param["src"].get("dataKey") or param["src"]["dataTemplate"]
    assert dests == {
        "sample": "sample",
        "run": "run",
        "fastq1": "fastq1",
        "fastq2": "fastq2",
        "output": "s3://seq-results/bwa-align/{{ .Input.run }}/{{ .Input.sample }}/",
    }
    source = load("eventsource.yaml")
    entry = source["spec"]["s3"]["run-files"]
    assert {"webhook", "sqs"} <= set(entry)  # both modes
    (dependency,) = sensor["spec"]["dependencies"]
    assert (dependency["eventSourceName"], dependency["eventName"]) == (
        source["metadata"]["name"],
        "run-files",
    )


# --------------------------------------------------------------------------- (b) the demo, part three


def demo_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("triggergate_demo", ROOT / "examples" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parameters(wf: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}


def test_demo_part_three_prints_one_workflow_per_complete_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = demo_module()
    assert demo.sequencer_demo(tmp_path, port=free_port()) == 0
    out = capsys.readouterr().out
    run, folder = demo.RUN, f"s3://seq-landing/runs/{demo.RUN}/Fastq"
    files = sorted((tmp_path / "sequencer" / "state" / "outbox" / "argo").glob("*.yaml"))
    workflows = {parameters(wf)["sample"]: wf for wf in (yaml.safe_load(f.read_text()) for f in files)}
    assert len(files) == len(workflows) == 6
    numbers = {"NA12878": 1, "NA12891": 2, "NA12892": 3, "HG00096": 4, "HG00097": 5, "HG00099": 6}
    assert set(workflows) == set(numbers)
    for sample, n in numbers.items():
        wf = workflows[sample]
        assert parameters(wf) == {
            "sample": sample,
            "run": run,
            "fastq1": " ".join(f"{folder}/{sample}_S{n}_L00{lane}_R1_001.fastq.gz" for lane in (1, 2)),
            "fastq2": " ".join(f"{folder}/{sample}_S{n}_L00{lane}_R2_001.fastq.gz" for lane in (1, 2)),
            "output": f"s3://seq-results/bwa-align/{run}/{sample}/",
            "reference-url": parameters(wf)["reference-url"],
        }
        key = item_key(SENSOR, TRIGGER, "seq-landing", f"runs/{run}/", sample)
        assert wf["metadata"]["name"] == deterministic_name("bwa-align-", key)
        assert wf["metadata"]["labels"][FIRING_LABEL] == key
        marker_id, item_id = wf["metadata"]["annotations"][EVENT_IDS_ANNOTATION].split(",")
        assert item_id == key and len(marker_id) == 32
        assert f"sample {sample}" in out and wf["metadata"]["name"] in out
    # the printed walkthrough: both notifications of the marker, the skip, the report, the letter
    assert "answers: {200: 43}" in out
    assert out.count("CopyComplete.txt) -> 200") == 2
    assert "6 fired, 0 already done, 0 dead lettered, 1 incomplete (reported), skipped Undetermined" in out
    assert re.search(r"sequencer-upload/align\s+attempts=0\s+sample NA19240 of run \S+ is incomplete", out)
    assert "OK: 6 Workflows for 6 complete samples, none for Undetermined, 1 report for NA19240" in out
    # the moto server it started is gone
    started = re.search(r"moto server pid (\d+)", out)
    assert started is not None
    with pytest.raises(ProcessLookupError):
        os.kill(int(started[1]), 0)


# --------------------------------------------------------------------------- (c) end to end, SQS

E2E_RUN = "250304_A01234_0042_BHXXYYDSXC"
E2E_FOLDER = f"runs/{E2E_RUN}"
E2E_INCOMPLETE = "NA19240"  # sample 13: lane 2 has no R2


def e2e_samples() -> list[tuple[str, int]]:
    names = [f"LIB{n:04d}" for n in range(1, 25)]
    names[12] = E2E_INCOMPLETE
    return [(name, n) for n, name in enumerate(names, start=1)]


def fastq(sample: str, number: int, lane: int, read: str) -> str:
    return f"{E2E_FOLDER}/Fastq/{sample}_S{number}_L{lane:03d}_{read}_001.fastq.gz"


def e2e_manifests(tmp: Path, port: int, moto_url: str) -> Path:
    """The example as it is, but for ports and the queue: the webhook on ``port``, SQS on moto with
    the test keys; the fan-out lists the bucket through the EventSource's sqs connection (default)."""
    target = tmp / "manifests"
    target.mkdir()
    source = load("eventsource.yaml")
    entry = source["spec"]["s3"]["run-files"]
    entry["webhook"]["port"] = str(port)
    entry["sqs"].update(
        endpoint=moto_url,
        region="us-east-1",
        waitTimeSeconds=1,
        visibilityTimeout=5,
        accessKey={"name": "aws", "key": "access"},
        secretKey={"name": "aws", "key": "secret"},
    )
    (target / "eventsource.yaml").write_text(yaml.safe_dump(source))
    (target / "sensor.yaml").write_text((EXAMPLE / "sensor.yaml").read_text())
    (target / "workflowtemplate.yaml").write_text((EXAMPLE / "workflowtemplate.yaml").read_text())
    return target


def aws_notification(key: str, etag: str, size: int) -> str:
    """An S3 notification as S3 puts it on the queue (for re-sending a delivery)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2025-03-04T10:15:30.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": "seq-landing", "arn": "arn:aws:s3:::seq-landing"},
            "object": {"key": key, "size": size, "eTag": etag},
        },
    }
    return json.dumps({"Records": [record]})


@pytest.fixture
def k8s() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI().start() as api:
        yield api


def fanned_out(gw: GatewayProcess) -> list[str]:
    return [line for line in gw.logs().splitlines() if "fanned out run" in line]


@pytest.mark.timeout(90)
def test_novaseq_run_through_sqs_with_kill_9_and_duplicates_gives_one_workflow_per_sample(
    moto: MotoServer, k8s: FakeKubeAPI, tmp_path: Path
) -> None:
    url = bucket_to_queue(moto, "seq-landing", "seq-landing-events", prefix="runs/")
    k8s.put(load("workflowtemplate.yaml"))
    secrets = tmp_path / "secrets"
    write_keys(secrets)
    port = free_port()
    manifests = e2e_manifests(tmp_path, port, moto.url)
    kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig")
    state = tmp_path / "state"
    args = ["--kubeconfig", str(kubeconfig)]
    s3, sqs = moto.client("s3"), moto.client("sqs")

    def workflows() -> list[dict[str, Any]]:
        return k8s.objects("argoproj.io", "v1alpha1", "workflows", "argo")

    samples = e2e_samples()
    objects = [f"{E2E_FOLDER}/RunInfo.xml", f"{E2E_FOLDER}/SampleSheet.csv"]
    for sample, number in [*samples, ("Undetermined", 0)]:
        for lane in (1, 2):
            for read in ("R1", "R2"):
                if (sample, lane, read) != (E2E_INCOMPLETE, 2, "R2"):
                    objects.append(fastq(sample, number, lane, read))
    assert len(objects) == 2 + 24 * 4 - 1 + 4

    gw = GatewayProcess([manifests], state, port, secrets_dir=secrets, extra_args=args).start()
    etags = {}
    for key in objects:
        etags[key] = s3.put_object(Bucket="seq-landing", Key=key, Body=key.encode())["ETag"].strip('"')
    # the Workflow creations are slow (0.4 s each, 8 at a time): kill -9 in the middle of the fan-out
    k8s.delay_next("POST", r"/namespaces/argo/workflows$", 0.4, times=None)
    marker = f"{E2E_FOLDER}/CopyComplete.txt"
    s3.put_object(Bucket="seq-landing", Key=marker, Body=b"")
    wait_until(workflows, timeout=30, what="the first Workflows")
    gw.kill()
    at_kill = len(workflows())
    assert 0 < at_kill < 23, at_kill
    assert not fanned_out(gw)
    time.sleep(0.5)  # creations the dead gateway had in flight still land (as on a real API server)
    k8s.clear_faults()

    gw2 = GatewayProcess([manifests], state, port, secrets_dir=secrets, extra_args=args).start()
    try:
        wait_until(lambda: len(workflows()) >= 23 and fanned_out(gw2), timeout=30, what="the fan-out")
        # duplicates: S3 re-delivers the marker and two FASTQ notifications; the instrument's copy job
        # rewrites CopyComplete.txt (a new object version: another event, another marker firing)
        for key in (marker, objects[5], objects[40]):
            size = len(key.encode()) if key != marker else 0
            etag = etags.get(key) or s3.head_object(Bucket="seq-landing", Key=key)["ETag"].strip('"')
            sqs.send_message(QueueUrl=url, MessageBody=aws_notification(key, etag, size))
        s3.put_object(Bucket="seq-landing", Key=marker, Body=b"copy complete, again\n")
        wait_until(lambda: len(fanned_out(gw2)) >= 2, timeout=30, what="the second marker's fan-out")
        wait_until(lambda: queue_counts(sqs, url) == (0, 0), what="the queue to be drained")
        time.sleep(1.0)  # nothing more may be created
    finally:
        assert gw2.terminate() == 0, gw2.logs()

    created = workflows()
    by_sample = Counter(parameters(wf)["sample"] for wf in created)
    complete = {sample: number for sample, number in samples if sample != E2E_INCOMPLETE}
    assert len(created) == 23 and by_sample == Counter(list(complete)), by_sample
    for wf in created:
        p = parameters(wf)
        sample, number = p["sample"], complete[p["sample"]]
        assert p["run"] == E2E_RUN
        for param, read in (("fastq1", "R1"), ("fastq2", "R2")):  # both lanes, lane order
            assert p[param] == " ".join(
                f"s3://seq-landing/{fastq(sample, number, lane, read)}" for lane in (1, 2)
            )
        assert p["output"] == f"s3://seq-results/bwa-align/{E2E_RUN}/{sample}/"
        key = item_key(SENSOR, TRIGGER, "seq-landing", f"{E2E_FOLDER}/", sample)
        assert wf["metadata"]["name"] == deterministic_name("bwa-align-", key)
        assert wf["metadata"]["labels"]["events.argoproj.io/sensor"] == SENSOR
        assert wf["metadata"]["labels"][FIRING_LABEL] == key
    # the second marker found every sample done; the incomplete one is reported once
    logs = gw2.logs()
    summaries = [json.loads(line)["msg"] for line in fanned_out(gw2)]
    # the replayed marker after the restart, and the rewritten one; the re-sent marker notification
    # is the same event as the first (same bucket, key, ETag): a third fan-out would show here
    assert len(summaries) == 2, summaries
    assert "1 incomplete (reported), skipped Undetermined" in summaries[0]
    assert "0 fired, 23 already done, 0 dead lettered, 1 incomplete (reported)" in summaries[1]
    after_first = logs[logs.index(fanned_out(gw2)[0]) :]
    assert "notify-lab fired by" not in after_first  # onIncomplete once per sample, not per marker
    listed = triggergate("dlq", "list", "--state-dir", str(state))
    letters = [line for line in listed.stdout.splitlines() if f"{SENSOR}/{TRIGGER}" in line]
    assert len(letters) == 1, listed.stdout
    assert f"sample {E2E_INCOMPLETE} of run {E2E_RUN} is incomplete" in letters[0]
    assert "lane 2" in letters[0] and "R2" in letters[0]
    assert "Traceback" not in logs
