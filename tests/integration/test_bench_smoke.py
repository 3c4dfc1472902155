"""``bench/webhook_ingest.py --quick`` runs end to end and prints every figure it promises.

Only the shape of the report is checked, never a timing: timings belong to the benchmark's own
output (bench/README.md), not to the test suite. The correctness checks the benchmark makes (bus
count = answers 200, every accepted event fired) do decide its exit status, so they are asserted
through the exit status.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "webhook_ingest.py"


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the benchmark in ``tmp_path/work`` with its temporary files under ``tmp_path/tmp``."""
    (tmp_path / "work").mkdir()
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *args],
        cwd=tmp_path / "work", env=env, capture_output=True, text=True, timeout=100, check=False,
    )


@pytest.mark.timeout(120)
def test_quick_run_prints_every_figure_and_passes_its_checks(tmp_path: Path) -> None:
    done = run_bench(tmp_path, "--generator", "python")
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{out}\nstderr:\n{done.stderr}"
    for label in (
        "load generator: bench/loadgen.py",
        "shares the",
        "payload:",
        "[ingest] throughput",
        "baseline",
        "triggergate",
        "events/s",
        "p50 ms",
        "p99 ms",
        "ratio triggergate/baseline:",
        "triggergate sensor: a sensor whose data filter matches no event",
        "bus check: bus.db holds",
        "[e2e] end-to-end latency",
        "arrived at the receiver:",
        "POST -> trigger received: p50",
        "p90",
        "max",
        "POST -> 200 (durable):",
        "webhook kept up with",
        "triggers kept up:",
        "result: OK",
    ):
        assert label in out, f"{label!r} missing from the report:\n{out}"
    assert "FAILED" not in out
    assert list((tmp_path / "work").iterdir()) == [], "the benchmark left files in its working directory"
    assert list((tmp_path / "tmp").iterdir()) == [], "the benchmark did not remove its temporary directory"


def test_bad_options_are_refused_with_the_reason(tmp_path: Path) -> None:
    done = run_bench(tmp_path, "--connections", "0", "--rate", "-5")
    assert done.returncode == 2
    assert "--connections must be >= 1, got 0" in done.stderr
    assert "--rate must be > 0 events/s, got -5" in done.stderr
