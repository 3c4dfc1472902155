"""Every example loads, and the filters/conditions/parameters example does what its comments say."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.config import load_manifests
from tests.integration.gatewayproc import GatewayProcess, free_port
from tests.integration.receiver import Receiver

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_example_validates(example: str) -> None:
    manifests = load_manifests([EXAMPLES / example], secrets_dir=None)
    assert manifests.sensors or manifests.event_sources


def s3_record(key: str, size: int = 1024, name: str = "s3:ObjectCreated:Put") -> dict[str, object]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "minio:s3",
                "eventName": name,
                "s3": {"bucket": {"name": "seq-raw"}, "object": {"key": key, "size": size, "eTag": "abc"}},
            }
        ]
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver().start()
    yield rec
    rec.stop()


@pytest.mark.integration
def test_fastq_pair_example(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    for name in ("event-source.yaml", "sensor.yaml"):
        text = (EXAMPLES / "fastq-pair" / name).read_text()
        text = text.replace('"12100"', f'"{port}"').replace("http://127.0.0.1:12101", receiver.url)
        (tmp_path / name).write_text(text)
    gw = GatewayProcess([tmp_path], tmp_path / "state", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        run = "runs/240102_A002"
        # an empty R1 (size 0) and a removal are filtered out; the real R1 and R2 pair up
        httpx.post(f"{base}/s3", json=s3_record(f"{run}/NA12878_S1_L001_R1_001.fastq.gz", size=0))
        httpx.post(f"{base}/s3", json=s3_record(f"{run}/x_R1_001.fastq.gz", name="s3:ObjectRemoved:Delete"))
        httpx.post(f"{base}/s3", json=s3_record(f"{run}/NA12878_S1_L001_R1_001.fastq.gz"))
        httpx.post(f"{base}/s3", json=s3_record(f"{run}/NA12878_S1_L001_R2_001.fastq.gz"))
        (pair,) = receiver.wait_for(1)
        body = pair.json()
        assert body["sample"] == "NA12878_S1"
        assert body["bucket"] == "seq-raw"
        assert body["fastq1"] == f"{run}/NA12878_S1_L001_R1_001.fastq.gz"
        assert body["fastq2"] == f"{run}/NA12878_S1_L001_R2_001.fastq.gz"
        assert body["run"] == "(none)"  # run-complete did not take part: its default value
        assert len(body["lineage"]["r1"]) == 32
        # the run-complete marker fires alone (the || branch); r1/r2 did not take part
        httpx.post(f"{base}/run-complete", json={"run": "240102_A002", "status": "CompletedAsPlanned"})
        httpx.post(f"{base}/run-complete", json={"run": "240102_A002", "status": "Failed"})  # filtered
        second = receiver.wait_for(2)[1].json()
        assert second == {"fastq1": "", "fastq2": "", "run": "240102_A002"}
    finally:
        assert gw.terminate() == 0
    logs = gw.logs()
    assert logs.count("trigger fastq-pair/audit fired by") == 2
    assert len(receiver.snapshot()) == 2
