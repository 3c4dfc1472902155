"""``bench/sources.py --quick`` runs end to end and prints every figure it promises.

Only the shape of the report is checked, never a timing (timings belong to the benchmark's output).
The benchmark's own correctness checks (triggergate processed exactly the messages sent, fired
nothing) decide its exit status, so they are asserted through it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.brokers import rabbitmq_reachable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "sources.py"


@pytest.mark.timeout(150)
def test_quick_run_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=140, check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{out}\nstderr:\n{done.stderr[-3000:]}"
    labels = [
        "machine:",
        "[kafka] throughput, 5,000 messages",
        "raw aiokafka (getmany + json.loads + commit per batch)",
        "kafka source only (publisher that stores nothing)",
        "triggergate (kafka source -> SQLite bus -> engine)",
        "events/s",
        "ratio source only/raw:",
        "ratio triggergate/raw:",
        "load average at the end:",
        "result: OK",
    ]
    if rabbitmq_reachable():
        labels += [
            "[amqp] throughput, 1,000 messages",
            "raw aio-pika (manual ack per message, prefetch 256)",
            "amqp source only (publisher that stores nothing)",
            "triggergate (amqp source -> SQLite bus -> engine)",
        ]
    else:
        labels.append("[amqp] skipped:")
    for label in labels:
        assert label in out, f"{label!r} missing from the report:\n{out}"
    assert "FAILED" not in out


def test_bad_options_are_refused_with_the_reason() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--kafka-messages", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "--kafka-messages must be >= 1, got 0" in done.stderr
