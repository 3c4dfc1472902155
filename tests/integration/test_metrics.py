"""``triggergate run`` serves Prometheus metrics on every webhook port and on ``--metrics-port``.

A real gateway process (webhook source, embedded bus, a ``log`` trigger) gets events, duplicates and
a bad request; both ports must then show the same counters, moved by exactly what was sent.
"""

from __future__ import annotations

import textwrap
import time
from importlib import metadata
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.gatewayproc import GatewayProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def manifests(port: int) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: EventSource
        metadata: {{name: lab}}
        spec:
          webhook:
            samples: {{port: "{port}", endpoint: /samples, method: POST}}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Sensor
        metadata: {{name: intake}}
        spec:
          dependencies:
            - {{name: sample, eventSourceName: lab, eventName: samples}}
          triggers:
            - template: {{name: log-sample, log: {{}}}}
        """
    )


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def wait_for(url: str, name: str, labels: dict[str, str], expected: float, within: float = 15.0) -> Samples:
    deadline = time.monotonic() + within
    while True:
        samples = scrape(url)
        if value(samples, name, **labels) == expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def test_metrics_on_the_webhook_port_and_on_the_metrics_port(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    (tmp_path / "lab.yaml").write_text(manifests(port))
    gateway = GatewayProcess(
        [tmp_path / "lab.yaml"],
        tmp_path / "state",
        port,
        extra_args=["--metrics-port", str(metrics_port)],
    ).start()
    try:
        base = f"http://127.0.0.1:{port}"
        baseline = scrape(f"{base}/metrics")
        assert value(baseline, "triggergate_events_received_total", source="lab", event="samples",
                     outcome="accepted") == 0  # fmt: skip
        with httpx.Client(base_url=base, timeout=5) as client:
            for sample in ("NA1", "NA2", "NA3"):
                assert client.post("/samples", json={"sample": sample}).status_code == 200
            cloudevent = orjson.dumps(
                {"specversion": "1.0", "id": "s-4", "source": "lims", "type": "sample", "data": {}}
            )
            headers = {"Content-Type": "application/cloudevents+json"}
            for _ in range(2):  # the sender retries: the same CloudEvent is stored once
                assert client.post("/samples", content=cloudevent, headers=headers).status_code == 200
            assert client.post("/samples", content=b"{oops").status_code == 400
        on_webhook = wait_for(
            f"{base}/metrics", "triggergate_firings_total",
            {"sensor": "intake", "trigger": "log-sample", "outcome": "succeeded"}, 4,
        )  # fmt: skip
        on_metrics_port = wait_for(
            f"http://127.0.0.1:{metrics_port}/metrics", "triggergate_firings_total",
            {"sensor": "intake", "trigger": "log-sample", "outcome": "succeeded"}, 4,
        )  # fmt: skip
    finally:
        assert gateway.terminate() == 0, gateway.logs()
    for samples in (on_webhook, on_metrics_port):
        received = {
            dict(labels)["outcome"]: v
            for (name, labels), v in samples.items()
            if name == "triggergate_events_received_total"
        }
        assert received == {"accepted": 4, "duplicate": 1, "failed": 0, "rejected-invalid": 1}
        assert value(samples, "triggergate_bus_published_total", outcome="stored") == 4
        assert value(samples, "triggergate_bus_published_total", outcome="duplicate") == 1
        assert value(samples, "triggergate_bus_publish_errors_total") == 0
        assert value(samples, "triggergate_sensor_events_processed_total", sensor="intake") == 4
        assert value(samples, "triggergate_firings_total", sensor="intake", trigger="log-sample",
                     outcome="succeeded") == 4  # fmt: skip
        assert value(samples, "triggergate_firings_total", sensor="intake", trigger="log-sample",
                     outcome="dead-lettered") == 0  # fmt: skip
        assert value(samples, "triggergate_firing_attempts_total", sensor="intake", trigger="log-sample") == 4
        assert value(samples, "triggergate_firing_duration_seconds_count", sensor="intake",
                     trigger="log-sample") == 4  # fmt: skip
        assert value(samples, "triggergate_firings_in_flight", sensor="intake") == 0
        assert value(samples, "triggergate_dead_letters", sensor="intake") == 0
        assert value(samples, "triggergate_build_info", version=metadata.version("triggergate")) == 1


def test_the_metrics_port_alone_serves_metrics_and_health(tmp_path: Path) -> None:
    """A gateway without any webhook port (here: a sensor whose events come from elsewhere) is
    scraped and probed on ``--metrics-port``."""
    metrics_port = free_port()
    (tmp_path / "sensor.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: argoproj.io/v1alpha1
            kind: Sensor
            metadata: {name: intake}
            spec:
              dependencies:
                - {name: sample, eventSourceName: lab, eventName: samples}
              triggers:
                - template: {name: log-sample, log: {}}
            """
        )
    )
    gateway = GatewayProcess(
        [tmp_path / "sensor.yaml"], tmp_path / "state", metrics_port,
        extra_args=["--metrics-port", str(metrics_port)],
    ).start()  # fmt: skip
    try:
        samples = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/health", timeout=5).text == "OK"
    finally:
        assert gateway.terminate() == 0, gateway.logs()
    assert value(samples, "triggergate_sensor_events_processed_total", sensor="intake") == 0
    assert value(samples, "triggergate_bus_published_total", outcome="stored") == 0
    assert value(samples, "triggergate_firings_total", sensor="intake", trigger="log-sample",
                 outcome="succeeded") == 0  # fmt: skip
