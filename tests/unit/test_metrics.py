"""Prometheus metrics (gateway/metrics.py): counters kept on the live objects, read at scrape time.

The end-to-end tests start a real :class:`~gateway.runtime.Runtime` (webhook source, embedded bus,
log and http triggers) in this event loop, wire it with :func:`gateway.metrics.instrument` as the
runtime does, send requests to its webhook port and read ``GET /metrics`` there and on a
:class:`~gateway.metrics.MetricsServer`, parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio
import socket
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from gateway.aws import SqsMessage
from gateway.bus.memory import MemoryBus
from gateway.bus.sqlite import SqliteBus
from gateway.config import load_manifests
from gateway.errors import BusError, TriggerError
from gateway.fanout import FanOutRunner
from gateway.firing import DURATION_BUCKETS, Durations, FiringRunner
from gateway.metrics import GatewayMetrics, MetricsServer, instrument
from gateway.outbox import Outbox
from gateway.runtime import Runtime, Settings
from gateway.secrets import SecretStore
from gateway.sources.base import ReceivedCounts, rejection_outcome
from gateway.sources.s3 import S3WebhookServer, build_s3_sources
from gateway.sources.sqs_poller import Outcome as SqsOutcome
from gateway.sources.sqs_poller import SqsPoller
from gateway.sources.webhook import WebhookEvent, WebhookServer
from gateway.store import DeadLetter, SqliteStore
from gateway.triggers import build_executor
from gateway.triggers.base import TriggerContext, TriggerExecutor
from sensors.engine import Fire, idempotency_key
from sensors.event import Event
from sensors.spec import EventSource, Trigger, WebhookContext, WebhookEventSource
from tests.unit.test_fanout_runner import MemoryBucket, align_trigger, marker, parent, upload_run

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (sample name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def rendered(metrics: GatewayMetrics) -> Samples:
    body, content_type = await metrics.render(None)
    assert content_type.startswith("text/plain")
    return parse(body.decode())


async def eventually(check: Callable[[], Any], within: float = 10.0) -> None:
    """Waits until ``check()`` (sync or async) stops raising AssertionError."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                await result
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- the whole runtime


def shop_manifests(port: int, closed_port: int) -> str:
    """An EventSource ``shop`` (orders, payments on one port) and two sensors: ``orders`` logs every
    order and posts it to a closed port (dead-lettered, no retries); ``pairs`` fires ``ship`` once
    per sample that has an order and a payment (keyed correlation)."""
    return textwrap.dedent(
        f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: EventSource
        metadata: {{name: shop}}
        spec:
          webhook:
            orders: {{port: "{port}", endpoint: /orders, method: POST}}
            payments: {{port: "{port}", endpoint: /payments, method: POST}}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Sensor
        metadata: {{name: orders}}
        spec:
          dependencies:
            - {{name: order, eventSourceName: shop, eventName: orders}}
          triggers:
            - template: {{name: log-order, log: {{}}}}
            - template:
                name: notify
                http: {{url: "http://127.0.0.1:{closed_port}/notify", method: POST}}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Sensor
        metadata: {{name: pairs}}
        spec:
          dependencies:
            - {{name: order, eventSourceName: shop, eventName: orders}}
            - {{name: payment, eventSourceName: shop, eventName: payments}}
          triggers:
            - template:
                name: ship
                conditions: "order && payment"
                correlation:
                  window: 1h
                  dependencies:
                    order: {{path: body.sample}}
                    payment: {{path: body.sample}}
                log: {{}}
        """
    )


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[Runtime, int]]:
    port, closed_port = free_port(), free_port()
    (tmp_path / "shop.yaml").write_text(shop_manifests(port, closed_port))
    manifests = load_manifests([tmp_path / "shop.yaml"], secrets_dir=None)
    settings = Settings(
        state_dir=tmp_path / "state", secrets_dir=tmp_path / "secrets", host="127.0.0.1", shutdown_grace=5
    )
    runtime = Runtime(manifests, settings)
    try:
        await runtime.start()
        yield runtime, port
    finally:
        await runtime.stop()


async def send_shop_traffic(client: httpx.AsyncClient, base: str) -> None:
    """4 orders (one of them a CloudEvent sent twice), 1 payment, 1 invalid body, 1 wrong method."""
    for sample in ("a", "b", "c"):
        assert (await client.post(f"{base}/orders", json={"sample": sample})).status_code == 200
    cloudevent = {  # the payload body is the whole CloudEvent: ``sample`` is an extension attribute
        "specversion": "1.0", "id": "order-d", "source": "lims", "type": "order", "sample": "d", "data": {},
    }  # fmt: skip
    headers = {"Content-Type": "application/cloudevents+json"}
    for _ in range(2):
        response = await client.post(f"{base}/orders", content=orjson.dumps(cloudevent), headers=headers)
        assert response.status_code == 200
    assert (await client.post(f"{base}/payments", json={"sample": "a"})).status_code == 200
    assert (await client.post(f"{base}/orders", content=b"{not json")).status_code == 400
    assert (await client.get(f"{base}/orders")).status_code == 405


async def test_the_runtime_counts_what_it_received_stored_fired_and_dead_lettered(
    shop: tuple[Runtime, int],
) -> None:
    runtime, port = shop
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=10) as client:
        metrics = instrument(runtime, version="9.9.9")  # as Runtime.start does (this one wins)
        await send_shop_traffic(client, base)

        async def settled() -> None:
            response = await client.get(f"{base}/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=")
            samples = parse(response.text)
            assert (
                value(
                    samples,
                    "triggergate_firings_total",
                    sensor="orders",
                    trigger="notify",
                    outcome="dead-lettered",
                )
                == 4
            )
            assert (
                value(
                    samples,
                    "triggergate_firings_total",
                    sensor="orders",
                    trigger="log-order",
                    outcome="succeeded",
                )
                == 4
            )
            assert (
                value(
                    samples, "triggergate_firings_total", sensor="pairs", trigger="ship", outcome="succeeded"
                )
                == 1
            )
            assert value(samples, "triggergate_firings_in_flight", sensor="orders") == 0
            assert value(samples, "triggergate_dead_letters", sensor="orders") == 4
            assert value(samples, "triggergate_bus_pending", group="sensor.default.orders") == 0

        await eventually(settled)
        samples = parse((await client.get(f"{base}/metrics")).text)

    received = {
        labels: v for (name, labels), v in samples.items() if name == "triggergate_events_received_total"
    }
    assert received == {
        (("event", "orders"), ("outcome", "accepted"), ("source", "shop")): 4,
        (("event", "orders"), ("outcome", "duplicate"), ("source", "shop")): 1,
        (("event", "orders"), ("outcome", "failed"), ("source", "shop")): 0,
        (("event", "orders"), ("outcome", "rejected-invalid"), ("source", "shop")): 1,
        (("event", "orders"), ("outcome", "rejected-method"), ("source", "shop")): 1,
        (("event", "payments"), ("outcome", "accepted"), ("source", "shop")): 1,
        (("event", "payments"), ("outcome", "duplicate"), ("source", "shop")): 0,
        (("event", "payments"), ("outcome", "failed"), ("source", "shop")): 0,
    }
    assert value(samples, "triggergate_build_info", version="9.9.9") == 1
    assert value(samples, "triggergate_bus_published_total", outcome="stored") == 5
    assert value(samples, "triggergate_bus_published_total", outcome="duplicate") == 1
    assert value(samples, "triggergate_bus_publish_errors_total") == 0
    # the embedded bus delivers every event to every sensor
    assert value(samples, "triggergate_sensor_events_processed_total", sensor="orders") == 5
    assert value(samples, "triggergate_sensor_events_processed_total", sensor="pairs") == 5
    assert value(samples, "triggergate_sensor_pending_keys", sensor="pairs") == 3  # b, c, d wait
    assert value(samples, "triggergate_sensor_pending_keys", sensor="orders") == 0
    assert value(samples, "triggergate_sensor_expired_total", sensor="pairs") == 0
    assert value(samples, "triggergate_bus_pending", group="sensor.default.pairs") == 3  # held by the engine
    assert value(samples, "triggergate_dead_letters", sensor="pairs") == 0
    assert value(samples, "triggergate_firing_attempts_total", sensor="orders", trigger="notify") == 4
    assert (
        value(samples, "triggergate_firings_total", sensor="orders", trigger="notify", outcome="succeeded")
        == 0
    )
    assert (
        value(samples, "triggergate_firing_duration_seconds_count", sensor="orders", trigger="log-order") == 4
    )
    assert (
        value(
            samples, "triggergate_firing_duration_seconds_bucket", sensor="pairs", trigger="ship", le="+Inf"
        )
        == 1
    )
    assert value(samples, "triggergate_firing_duration_seconds_sum", sensor="pairs", trigger="ship") >= 0  # type: ignore[operator]
    # the same registry on a port of its own
    server = MetricsServer(metrics, host="127.0.0.1", port=0, health=runtime.bus)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
            dedicated = parse((await client.get("/metrics")).text)
            assert (await client.get("/health")).text == "OK"
            assert (await client.get("/events")).status_code == 404
            assert (await client.post("/metrics")).status_code == 405
    finally:
        await server.stop()
    assert value(dedicated, "triggergate_bus_published_total", outcome="stored") == 5
    assert (
        value(
            dedicated, "triggergate_firings_total", sensor="orders", trigger="notify", outcome="dead-lettered"
        )
        == 4
    )


async def test_openmetrics_is_served_when_prometheus_asks_for_it(shop: tuple[Runtime, int]) -> None:
    runtime, port = shop
    instrument(runtime)
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept": accept})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


# --------------------------------------------------------------------------- firing runners


class Flaky(TriggerExecutor):
    """An executor whose first ``failures`` calls fail (retriable), then succeed."""

    def __init__(self, trigger: Trigger, context: TriggerContext, failures: int) -> None:
        super().__init__(trigger, context)
        self.failures = failures

    async def execute(self, fire: Fire) -> str:
        if self.failures > 0:
            self.failures -= 1
            raise TriggerError("receiver answered 503", retriable=True)
        return "ok"


def log_trigger(name: str, steps: int | None = None) -> Trigger:
    spec: dict[str, Any] = {"template": {"name": name, "log": {}}}
    if steps is not None:
        spec["retryStrategy"] = {"steps": steps, "duration": "1s"}
    return Trigger.model_validate(spec)


def a_fire(event_id: str, trigger: str = "t") -> Fire:
    from datetime import UTC, datetime

    events = {
        "d": Event(id=event_id, source="es", subject="e", type="webhook", time=datetime.now(UTC), data={})
    }
    return Fire("s", trigger, events, idempotency_key("s", trigger, events))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    yield store
    await store.close()


@pytest.fixture
async def context(tmp_path: Path) -> AsyncIterator[TriggerContext]:
    async with httpx.AsyncClient() as http:
        yield TriggerContext(
            "s", "default", SecretStore(tmp_path / "secrets"), http, kube=Outbox(tmp_path / "o")
        )


async def no_sleep(_: float) -> None:
    return None


async def test_a_runner_counts_outcomes_attempts_and_durations(
    store: SqliteStore, context: TriggerContext
) -> None:
    runner = FiringRunner(Flaky(log_trigger("t", steps=3), context, failures=2), store, sleep=no_sleep)
    assert (await runner.run(a_fire("e1"))).status == "succeeded"  # third attempt
    assert (await runner.run(a_fire("e1"))).status == "already-done"
    runner.executor.failures = 5  # type: ignore[attr-defined]
    assert (await runner.run(a_fire("e2"))).status == "dead-lettered"  # 3 attempts, gives up
    assert dict(runner.outcomes) == {"succeeded": 1, "already-done": 1, "dead-lettered": 1}
    assert runner.attempts == 6
    assert runner.in_flight == 0
    assert runner.durations.count == 2  # already-done is not timed
    metrics = GatewayMetrics()
    metrics.add_runner("s", "t", runner)
    metrics.add_runner("s", "t", runner)  # counted once
    samples = await rendered(metrics)
    assert value(samples, "triggergate_firings_total", sensor="s", trigger="t", outcome="succeeded") == 1
    assert value(samples, "triggergate_firings_total", sensor="s", trigger="t", outcome="dead-lettered") == 1
    assert value(samples, "triggergate_firings_total", sensor="s", trigger="t", outcome="already-done") == 1
    assert value(samples, "triggergate_firing_attempts_total", sensor="s", trigger="t") == 6
    assert value(samples, "triggergate_firing_duration_seconds_count", sensor="s", trigger="t") == 2


async def test_in_flight_counts_firings_that_have_not_finished(
    store: SqliteStore, context: TriggerContext
) -> None:
    gate = asyncio.Event()

    class Held(TriggerExecutor):
        async def execute(self, fire: Fire) -> str:
            await gate.wait()
            return "ok"

    runner = FiringRunner(Held(log_trigger("t"), context), store)
    metrics = GatewayMetrics()
    metrics.add_runner("s", "t", runner)
    tasks = [asyncio.create_task(runner.run(a_fire(f"e{i}"))) for i in range(3)]
    await eventually(lambda: _assert(runner.in_flight == 3))
    assert value(await rendered(metrics), "triggergate_firings_in_flight", sensor="s") == 3
    gate.set()
    await asyncio.gather(*tasks)
    assert value(await rendered(metrics), "triggergate_firings_in_flight", sensor="s") == 0


def _assert(condition: bool) -> None:
    assert condition


async def test_the_dlq_trigger_runner_is_counted_under_its_own_name(
    store: SqliteStore, context: TriggerContext
) -> None:
    dlq = FiringRunner(build_executor(log_trigger("tell-someone"), context), store)
    runner = FiringRunner(Flaky(log_trigger("t"), context, failures=1), store, dlq=dlq)
    assert (await runner.run(a_fire("e1"))).status == "dead-lettered"
    metrics = GatewayMetrics()
    metrics.add_runner("s", "t", runner)
    samples = await rendered(metrics)
    assert value(samples, "triggergate_firings_total", sensor="s", trigger="t", outcome="dead-lettered") == 1
    assert (
        value(samples, "triggergate_firings_total", sensor="s", trigger="tell-someone", outcome="succeeded")
        == 1
    )


def test_durations_fall_in_the_first_bucket_whose_bound_they_do_not_exceed() -> None:
    durations = Durations()
    for seconds in (0.0, DURATION_BUCKETS[0], 0.006, 1.0, 1.0000001, 10_000.0):
        durations.observe(seconds)
    assert durations.buckets[0] == 2  # 0 and exactly 5 ms
    assert durations.buckets[1] == 1  # 6 ms <= 10 ms
    assert durations.buckets[DURATION_BUCKETS.index(1.0)] == 1
    assert durations.buckets[DURATION_BUCKETS.index(2.5)] == 1
    assert durations.buckets[-1] == 1  # +Inf
    assert durations.count == 6
    assert durations.sum == pytest.approx(10_002.0110001)


async def test_the_histogram_is_cumulative_with_an_inf_bucket(
    store: SqliteStore, context: TriggerContext
) -> None:
    runner = FiringRunner(Flaky(log_trigger("t"), context, failures=0), store)
    for seconds in (0.001, 0.2, 0.2, 400.0):
        runner.durations.observe(seconds)
    metrics = GatewayMetrics()
    metrics.add_runner("s", "t", runner)
    samples = await rendered(metrics)
    bucket = "triggergate_firing_duration_seconds_bucket"
    assert value(samples, bucket, sensor="s", trigger="t", le="0.005") == 1
    assert value(samples, bucket, sensor="s", trigger="t", le="0.1") == 1
    assert value(samples, bucket, sensor="s", trigger="t", le="0.25") == 3
    assert value(samples, bucket, sensor="s", trigger="t", le="300.0") == 3
    assert value(samples, bucket, sensor="s", trigger="t", le="+Inf") == 4
    assert value(
        samples, "triggergate_firing_duration_seconds_sum", sensor="s", trigger="t"
    ) == pytest.approx(400.401)


async def test_fan_out_items_are_counted_by_outcome(store: SqliteStore, context: TriggerContext) -> None:
    bucket = MemoryBucket()
    upload_run(bucket)  # 2 complete samples, 1 incomplete, Undetermined skipped
    trigger = align_trigger()
    assert trigger.template.fan_out is not None and trigger.template.fan_out.on_incomplete is not None
    on_incomplete = FiringRunner(build_executor(trigger.template.fan_out.on_incomplete, context), store)
    runner = FanOutRunner(
        build_executor(trigger, context), store, resolver=bucket, on_incomplete=on_incomplete
    )
    assert (await runner.run(parent(marker()))).status == "succeeded"
    metrics = GatewayMetrics()
    metrics.add_runner("seq", "align", runner)
    samples = await rendered(metrics)
    items = {
        dict(labels)["outcome"]: v
        for (name, labels), v in samples.items()
        if name == "triggergate_fanout_items_total"
    }
    assert items == {"fired": 2, "incomplete": 1, "skipped": 1}
    # the marker's own outcome and each item's firing are durable outcomes of the trigger
    assert (
        value(samples, "triggergate_firings_total", sensor="seq", trigger="align", outcome="succeeded") == 3
    )
    assert (
        value(samples, "triggergate_firings_total", sensor="seq", trigger="notify-lab", outcome="succeeded")
        == 1
    )


# --------------------------------------------------------------------------- sources


def test_received_counts_by_outcome() -> None:
    counts = ReceivedCounts("shop", "orders")
    counts.published([True, False, True])
    counts.published((True,))
    counts.publish_failed(3)
    counts.rejected[rejection_outcome(413)] += 1
    counts.rejected[rejection_outcome(500)] += 1  # the auth secret could not be read
    assert counts.outcomes() == {"accepted": 3, "duplicate": 1, "failed": 4, "rejected-too-large": 1}
    assert counts.publish_errors == 1
    assert [rejection_outcome(s) for s in (400, 401, 403, 405, 404, 503)] == [
        "rejected-invalid", "rejected-unauthorized", "rejected-forbidden", "rejected-method",
        "rejected-404", "failed",
    ]  # fmt: skip


class BrokenBus(MemoryBus):
    async def publish(self, events: Any) -> list[bool]:
        raise BusError("disk full")


def webhook_server(bus: Any) -> WebhookServer:
    port = free_port()
    event = WebhookEvent("shop", "orders", WebhookEventSource(port=str(port), endpoint="/orders"))
    return WebhookServer(port, [event], bus, None)


async def test_a_bus_failure_counts_failed_events_and_a_publish_error() -> None:
    bus = BrokenBus()
    await bus.start()
    server = webhook_server(bus)
    metrics = GatewayMetrics()
    metrics.add_source(server)
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.post("/orders", json={"n": 1})).status_code == 503
        assert (await client.post("/orders", json={"n": 2})).status_code == 503
        samples = parse((await client.get("/metrics")).text)
    await bus.close()
    assert (
        value(samples, "triggergate_events_received_total", source="shop", event="orders", outcome="failed")
        == 2
    )
    assert value(samples, "triggergate_bus_publish_errors_total") == 2
    assert value(samples, "triggergate_bus_published_total", outcome="stored") == 0


async def test_too_large_and_unauthorized_requests_are_counted_on_their_event(tmp_path: Path) -> None:
    (tmp_path / "secrets" / "hook").mkdir(parents=True)
    (tmp_path / "secrets" / "hook" / "token").write_text("s3cret")
    bus = MemoryBus()
    await bus.start()
    event = WebhookEvent(
        "shop", "orders",
        WebhookEventSource.model_validate(
            {"port": "12000", "endpoint": "/orders", "maxPayloadSize": 10,
             "authSecret": {"name": "hook", "key": "token"}}
        ),
    )  # fmt: skip
    server = WebhookServer(12000, [event], bus, SecretStore(tmp_path / "secrets"))
    server.expose_metrics(GatewayMetrics())
    metrics = GatewayMetrics()
    metrics.add_source(server)
    transport = httpx.ASGITransport(app=server.app)
    auth = {"Authorization": "Bearer s3cret"}
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.post("/orders", json={"n": 1})).status_code == 401
        assert (await client.post("/orders", json={"n": "x" * 20}, headers=auth)).status_code == 413
        assert (await client.post("/orders", json={"n": 1}, headers=auth)).status_code == 200
    await bus.close()
    samples = await rendered(metrics)
    outcomes = {
        dict(labels)["outcome"]: v
        for (name, labels), v in samples.items()
        if name == "triggergate_events_received_total"
    }
    assert outcomes == {
        "accepted": 1, "duplicate": 0, "failed": 0, "rejected-unauthorized": 1, "rejected-too-large": 1,
    }  # fmt: skip


async def test_metrics_answer_503_until_the_runtime_exposes_them() -> None:
    bus = MemoryBus()
    await bus.start()
    server = webhook_server(bus)
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        waiting = await client.get("/metrics")
        assert (waiting.status_code, waiting.headers["retry-after"]) == (503, "1")
        GatewayMetrics().add_source(server)  # add_source exposes the metrics on an HTTP source
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.post("/metrics")).status_code == 405  # never an event path
    await bus.close()


def test_an_event_endpoint_cannot_be_the_metrics_path() -> None:
    with pytest.raises(ValidationError, match="'/metrics' is reserved for the Prometheus metrics"):
        WebhookContext(port="12000", endpoint="/metrics")


async def test_the_inputs_of_an_s3_entry_share_its_counts_and_are_counted_once() -> None:
    source = EventSource.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": "lab"},
            "spec": {"s3": {"up": {"webhook": {"port": "12000", "endpoint": "/up"}, "sqs": {"queue": "q"}}}},
        }
    )
    bus = MemoryBus()
    await bus.start()
    webhook, poller = build_s3_sources([source], bus, None)
    assert isinstance(webhook, S3WebhookServer) and isinstance(poller, SqsPoller)
    metrics = GatewayMetrics()
    for each in (webhook, poller):
        metrics.add_source(each)
    notification = {"Records": [s3_record("runs/a.fq")]}
    transport = httpx.ASGITransport(app=webhook.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.post("/up", content=orjson.dumps(notification))).status_code == 200
        assert (await client.post("/up", content=b"<not a notification/>")).status_code == 400
        # the same object announced again through the queue: a duplicate of the same entry
        sqs_message = SqsMessage("m-1", "rh-1", orjson.dumps(notification).decode(), {}, {})
        assert await poller.handler(sqs_message) is SqsOutcome.DELETE
        samples = parse((await client.get("/metrics")).text)  # the s3 webhook port serves them too
    await bus.close()
    outcomes = {
        dict(labels)["outcome"]: v
        for (name, labels), v in samples.items()
        if name == "triggergate_events_received_total"
    }
    assert outcomes == {"accepted": 1, "duplicate": 1, "failed": 0, "rejected-invalid": 1}


def s3_record(key: str) -> dict[str, Any]:
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2025-03-04T10:15:30.123Z",
        "s3": {"bucket": {"name": "landing"}, "object": {"key": key, "size": 3, "eTag": "abc"}},
    }


async def test_two_gateways_in_one_process_have_their_own_registries(
    store: SqliteStore, context: TriggerContext
) -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    runner = FiringRunner(Flaky(log_trigger("t"), context, failures=0), store)
    await runner.run(a_fire("e1"))
    first.add_runner("s", "t", runner)
    assert (
        value(
            await rendered(first), "triggergate_firings_total", sensor="s", trigger="t", outcome="succeeded"
        )
        == 1
    )
    assert (
        value(
            await rendered(second), "triggergate_firings_total", sensor="s", trigger="t", outcome="succeeded"
        )
        is None
    )


# --------------------------------------------------------------------------- the embedded bus


async def test_the_sqlite_bus_pending_counts_match_its_stats(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    bus = SqliteBus(tmp_path / "bus.db")
    await bus.start()
    try:
        now = datetime.now(UTC)
        events = [
            Event(id=f"e{i}", source="es", subject="e", type="webhook", time=now, data={}) for i in range(6)
        ]
        await bus.publish(events)
        subscription = bus.subscribe("g").__aiter__()
        batch = await subscription.__anext__()
        assert len(batch) == 6
        await bus.ack("g", [batch[0], batch[3], batch[4]])  # out of order: 1, 2, 5 stay pending
        assert bus.pending_counts() == {"g": 3}
        stats = await bus.stats()
        assert stats["groups"]["g"]["pending"] == 3  # type: ignore[index]
        await bus.publish([Event(id="e9", source="es", subject="e", type="webhook", time=now, data={})])
        assert bus.pending_counts() == {"g": 4}
        metrics = GatewayMetrics()
        metrics.set_bus(bus)
        assert value(await rendered(metrics), "triggergate_bus_pending", group="g") == 4
        await subscription.aclose()  # type: ignore[attr-defined]
    finally:
        await bus.close()


async def test_dead_letters_are_counted_in_the_store_and_left_out_when_it_fails(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    metrics = GatewayMetrics()
    metrics.set_store(store)
    letter = DeadLetter(key="k1", sensor="orders", trigger="notify", reason="HTTP 500", attempts=1, events=[],
                        created_at=time.time())  # fmt: skip
    await store.dead_letter(letter)
    assert value(await rendered(metrics), "triggergate_dead_letters", sensor="orders") == 1
    await store.close()
    samples = await rendered(metrics)  # the scrape still answers, without the gauge
    assert [key for key in samples if key[0] == "triggergate_dead_letters"] == []
    assert value(samples, "triggergate_build_info", version=metrics.version) == 1
