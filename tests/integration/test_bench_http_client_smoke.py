"""``bench/http_client.py`` at its smallest runs end to end and prints every figure and ratio it promises.

Only the shape of the report is checked, never a timing (timings belong to the benchmark's output).
The benchmark's own checks (every request answered 200, every firing succeeded) decide its exit
status, so they are asserted through it. The server (uvicorn + FastAPI) and every client run for real.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "http_client.py"
SMALLEST = ["--quick", "--requests", "50", "--firings", "50", "--warmup-requests", "10"]

# One row of a table: label, rate, CPU/req, srv/req, client, server, other, the two ratios to httpx
# (rate, CPU per request), statuses.
_US, _PCT = r"(?:n/a|\d+ us)", r"(?:n/a|\d+%)"
ROW = re.compile(
    rf"^  (?P<label>\S.*?)\s+(?P<rate>\d+)\s+{_US}\s+{_US}\s+{_PCT}\s+{_PCT}\s+{_PCT}\s+"
    r"(?P<ratio>\d+\.\d\d)\s+(?P<cpu_ratio>\d+\.\d\d)\s+(?P<statuses>\{.*\})$"
)


def rows_of(out: str, title: str) -> dict[str, re.Match[str]]:
    """The rows of the table under ``title``, by label."""
    lines = out.splitlines()
    start = lines.index(title)
    assert "x httpx rate" in lines[start + 1] and "httpx CPU / this" in lines[start + 1], lines[start + 1]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        match = ROW.match(line)
        assert match, f"not a row with its figures and ratios: {line!r}\n{out}"
        rows[match["label"]] = match
    return rows


@pytest.mark.timeout(60)
def test_smallest_run_prints_every_figure_and_ratio() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *SMALLEST, "--baseline-seconds", "0.4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{out}\nstderr:\n{done.stderr[-3000:]}"
    assert out.startswith("triggergate http client benchmark, ")
    assert "server: bench/baseline_server.py (uvicorn + FastAPI) on 127.0.0.1" in out

    clients = rows_of(out, "1. clients: 50 requests after 10 of warm-up")
    expected = ["loadgen (raw)", "httpx", "aiohttp", "gateway"]
    if importlib.util.find_spec("httpx_aiohttp") is not None:
        expected.insert(3, "httpx+aiohttp")
    else:
        assert "(httpx+aiohttp: not installed, skipped)" in out
    assert list(clients) == expected, out
    for label in expected[1:]:
        assert clients[label]["statuses"] == "{'200': 50}", out
    assert clients["loadgen (raw)"]["statuses"].startswith("{'200': "), out

    trigger = rows_of(out, "2. FiringRunner + HttpTrigger: 50 firings after 10 of warm-up, 256 in flight")
    assert list(trigger) == ["httpx", "aiohttp"], out
    for row in trigger.values():
        assert row["statuses"] == "{'succeeded': 50}", out

    for table in (clients, trigger):  # the reference row is the ratios' denominator
        assert (table["httpx"]["ratio"], table["httpx"]["cpu_ratio"]) == ("1.00", "1.00"), out
    assert out.rstrip().endswith("result: OK") and "FAILED" not in out


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--requests", "0"], "--requests must be >= 1, got 0"),
        (["--baseline-seconds", "0"], "--baseline-seconds must be > 0, got 0.0"),
    ],
)
def test_bad_options_are_refused_with_the_reason(option: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *option],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
