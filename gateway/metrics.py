"""Prometheus metrics of one gateway process: read from the live objects at scrape time.

Nothing here sits on the hot path. Sources, sensor workers and firing runners keep plain ints (and
``Counter``s) that they bump on the event loop without a lock (:class:`~gateway.sources.base.
ReceivedCounts`, ``SensorWorker.processed``, ``FiringRunner.outcomes``...); :class:`GatewayMetrics`
is a ``prometheus_client`` collector that turns them into metric families when Prometheus scrapes.
A scrape runs on the event loop too, so it reads consistent values and engine state that only the
loop changes. Each process (or test) has its own :class:`~prometheus_client.CollectorRegistry`:
the global default registry is not used.

Wiring: the runtime builds one :class:`GatewayMetrics` with :func:`instrument` once its bus, store,
sensor workers, runners and sources exist; HTTP sources then serve it on ``GET /metrics`` of every
port, and :class:`MetricsServer` serves it on a port of its own (``triggergate run --metrics-port``).

The metrics (``docs/operations.md`` says what each means and which alerts matter):

* ``triggergate_build_info{version}``
* ``triggergate_events_received_total{source,event,outcome}``
* ``triggergate_bus_published_total{outcome}``, ``triggergate_bus_publish_errors_total``,
  ``triggergate_bus_pending{group}`` (embedded bus only)
* ``triggergate_sensor_events_processed_total{sensor}``, ``triggergate_sensor_pending_keys{sensor}``,
  ``triggergate_sensor_expired_total{sensor}``, ``triggergate_sensor_rebalances_total{sensor}``
* ``triggergate_firings_total{sensor,trigger,outcome}``,
  ``triggergate_firing_attempts_total{sensor,trigger}``, ``triggergate_firings_in_flight{sensor}``,
  ``triggergate_firing_duration_seconds{sensor,trigger}``
* ``triggergate_fanout_items_total{sensor,trigger,outcome}``
* ``triggergate_dead_letters{sensor}`` (counted in the state store when scraped)
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.firing import DURATION_BUCKETS, FiringRunner
from gateway.httpserver import HttpServer
from gateway.sources.base import HealthReporter, MetricsExporter, ReceivedCounts, Source
from gateway.store import SqliteStore
from sensors.engine import SensorEngine

logger = logging.getLogger("triggergate.metrics")

__all__ = ["FIRING_OUTCOMES", "METRICS_PATH", "GatewayMetrics", "MetricsServer", "instrument"]

METRICS_PATH = "/metrics"
FIRING_OUTCOMES = ("succeeded", "dead-lettered", "already-done")
RECEIVED_OUTCOMES = ("accepted", "duplicate", "failed")  # always present; rejections when they happen
STORE_QUERY_TIMEOUT = 2.0  # seconds a scrape waits for the dead-letter count
_TEXT = "text/plain; charset=utf-8"


class SensorWorkerLike(Protocol):
    """What the collector reads of a ``gateway.runtime.SensorWorker`` (``engine`` is read at each
    scrape: a rebalance replaces it)."""

    @property
    def engine(self) -> SensorEngine: ...

    @property
    def processed(self) -> int: ...

    @property
    def expired(self) -> int: ...

    @property
    def rebalances(self) -> int: ...

    @property
    def runners(self) -> Mapping[str, FiringRunner]: ...


class RuntimeLike(Protocol):
    """What :func:`instrument` reads of a ``gateway.runtime.Runtime`` (after ``start``)."""

    @property
    def bus(self) -> Any: ...

    @property
    def store(self) -> SqliteStore | None: ...

    @property
    def sources(self) -> Sequence[Source]: ...

    @property
    def workers(self) -> Sequence[SensorWorkerLike]: ...

    @property
    def runners(self) -> Mapping[tuple[str, str], FiringRunner]: ...


def package_version() -> str:
    try:
        return metadata.version("triggergate")
    except metadata.PackageNotFoundError:
        return "unknown"


class GatewayMetrics(Collector):
    """The metrics of one gateway process: a collector over the objects registered with it.

    ``metrics = GatewayMetrics(); metrics.set_bus(bus); metrics.add_worker(worker);
    metrics.add_runner(sensor, trigger, runner); metrics.add_source(source)``, then
    ``await metrics.render(accept)`` (or ``generate_latest(metrics.registry)``). Registering the
    same object twice counts it once.
    """

    def __init__(self, *, version: str | None = None) -> None:
        self.version = version or package_version()
        self.registry = CollectorRegistry(auto_describe=False)
        self.bus: Any = None
        self.store: SqliteStore | None = None
        self._sources: list[Source] = []
        self._workers: list[SensorWorkerLike] = []
        self._runners: list[tuple[str, str, FiringRunner]] = []
        self._known: set[int] = set()  # ids of registered objects
        self._dead_letters: dict[str, int] | None = None
        self._store_failing = False
        self.registry.register(self)

    # -- registration ------------------------------------------------------------------------

    def _first_time(self, obj: object) -> bool:
        if id(obj) in self._known:
            return False
        self._known.add(id(obj))
        return True

    def set_bus(self, bus: Any) -> None:
        """The bus: ``triggergate_bus_pending`` when it has a ``pending_counts()`` (the embedded bus)."""
        self.bus = bus

    def set_store(self, store: SqliteStore) -> None:
        """The state store: ``triggergate_dead_letters`` is counted in it at each scrape."""
        self.store = store

    def add_source(self, source: Source) -> None:
        """A source: its :meth:`~gateway.sources.base.Source.event_counts`; an HTTP source (it has
        ``expose_metrics``) serves these metrics on ``GET /metrics`` of its port from now on."""
        if not self._first_time(source):
            return
        self._sources.append(source)
        expose = getattr(source, "expose_metrics", None)
        if callable(expose):
            expose(self)

    def add_worker(self, worker: SensorWorkerLike) -> None:
        """A sensor worker, and the runners of its triggers (named as in ``worker.runners``)."""
        if self._first_time(worker):
            self._workers.append(worker)
        for trigger, runner in worker.runners.items():
            self.add_runner(worker.engine.name, trigger, runner)

    def add_runner(self, sensor: str, trigger: str, runner: FiringRunner) -> None:
        """The runner of ``trigger`` of ``sensor``, with its ``dlqTrigger`` and ``onIncomplete`` runners."""
        if not self._first_time(runner):
            return
        self._runners.append((sensor, trigger, runner))
        for extra in (runner.dlq, getattr(runner, "on_incomplete", None)):
            if isinstance(extra, FiringRunner):
                self.add_runner(sensor, extra.trigger.name, extra)

    # -- exposition ----------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Reads what needs I/O before a scrape: the dead letters per sensor in the state store."""
        store = self.store
        if store is None:
            return
        try:  # one GROUP BY over a table of failures is cheap
            counts = await asyncio.wait_for(store.dead_letter_counts(), STORE_QUERY_TIMEOUT)
        except Exception as exc:  # a scrape must not fail because the store is slow or closed
            if not self._store_failing:
                logger.warning("metrics: cannot count the dead letters in the state store: %r", exc)
            self._store_failing = True
            self._dead_letters = None
            return
        self._store_failing = False
        self._dead_letters = counts

    async def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition body and content type for a scrape with this ``Accept`` header (the
        Prometheus text format unless OpenMetrics is asked for)."""
        await self.refresh()
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    # -- the collector -------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "triggergate_build_info", "The running triggergate version (always 1).", labels=["version"]
        )
        info.add_metric([self.version], 1)
        yield info
        yield from self._collect_sources()
        yield from self._collect_sensors()
        yield from self._collect_runners()

    def _collect_sources(self) -> Iterator[Metric]:
        received: Counter[tuple[str, str, str]] = Counter()
        bus: Counter[str] = Counter({"stored": 0, "duplicate": 0})
        errors = 0
        seen: set[int] = set()
        for source in self._sources:
            for counts in source.event_counts():
                if id(counts) in seen:
                    continue
                seen.add(id(counts))
                errors += _add_received(received, counts)
                bus["stored"] += counts.accepted
                bus["duplicate"] += counts.duplicate
        family = CounterMetricFamily(
            "triggergate_events_received",
            "Events (accepted, duplicate, failed) and refused requests or messages (rejected-*) per "
            "EventSource event, by outcome.",
            labels=["source", "event", "outcome"],
        )
        for labels, value in sorted(received.items()):
            family.add_metric(list(labels), value)
        yield family
        published = CounterMetricFamily(
            "triggergate_bus_published",
            "Events the sources published to the bus: stored, or duplicate (already stored).",
            labels=["outcome"],
        )
        for outcome, value in sorted(bus.items()):
            published.add_metric([outcome], value)
        yield published
        yield CounterMetricFamily(
            "triggergate_bus_publish_errors",
            "Publish calls the bus refused (upstream was told to send again).",
            value=errors,
        )
        pending_counts = getattr(self.bus, "pending_counts", None)
        if callable(pending_counts):
            pending = GaugeMetricFamily(
                "triggergate_bus_pending",
                "Events on the embedded bus not acknowledged yet, per consumer group.",
                labels=["group"],
            )
            for group, value in sorted(pending_counts().items()):
                pending.add_metric([group], value)
            yield pending

    def _collect_sensors(self) -> Iterator[Metric]:
        processed: Counter[str] = Counter()
        expired: Counter[str] = Counter()
        rebalances: Counter[str] = Counter()
        keys: Counter[str] = Counter()
        for worker in self._workers:
            engine = worker.engine  # read each time: a rebalance replaces it
            name = engine.name
            processed[name] += worker.processed
            expired[name] += worker.expired
            rebalances[name] += worker.rebalances
            keys[name] += sum(len(sets) for sets in engine.pending_keys().values())
        yield _family(
            CounterMetricFamily,
            "triggergate_sensor_events_processed",
            "Events the sensor's engine observed (replays after a restart or rebalance included).",
            processed,
        )
        yield _family(
            GaugeMetricFamily,
            "triggergate_sensor_pending_keys",
            "Correlation sets (keys) waiting for more events.",
            keys,
        )
        yield _family(
            CounterMetricFamily,
            "triggergate_sensor_expired",
            "Correlation sets whose window expired incomplete (dead-lettered).",
            expired,
        )
        yield _family(
            CounterMetricFamily,
            "triggergate_sensor_rebalances",
            "Times the Kafka bus moved the sensor's partitions (its state was rebuilt).",
            rebalances,
        )
        if self._dead_letters is not None:
            letters: Counter[str] = Counter({name: 0 for name in processed})
            letters.update(self._dead_letters)
            yield _family(
                GaugeMetricFamily,
                "triggergate_dead_letters",
                "Dead letters in the state store (triggergate dlq list), per sensor.",
                letters,
            )

    def _collect_runners(self) -> Iterator[Metric]:
        firings: Counter[tuple[str, str, str]] = Counter()
        attempts: Counter[tuple[str, str]] = Counter()
        in_flight: Counter[str] = Counter({worker.engine.name: 0 for worker in self._workers})
        durations: dict[tuple[str, str], tuple[list[int], list[float]]] = {}  # bucket counts, [sum]
        items: Counter[tuple[str, str, str]] = Counter()
        for sensor, trigger, runner in self._runners:
            for outcome in FIRING_OUTCOMES:
                firings[(sensor, trigger, outcome)] += runner.outcomes[outcome]
            attempts[(sensor, trigger)] += runner.attempts
            in_flight[sensor] += runner.in_flight
            buckets, total = durations.setdefault(
                (sensor, trigger), ([0] * (len(DURATION_BUCKETS) + 1), [0.0])
            )
            for index, count in enumerate(runner.durations.buckets):
                buckets[index] += count
            total[0] += runner.durations.sum
            counts = getattr(runner, "counts", None)  # FanOutRunner: item outcomes
            if isinstance(counts, Counter):
                for outcome, value in counts.items():
                    items[(sensor, trigger, outcome)] += value
        yield _family(
            CounterMetricFamily,
            "triggergate_firings",
            "Durable firing outcomes per trigger (a fanOut trigger counts its marker and each item).",
            firings,
            labels=["sensor", "trigger", "outcome"],
        )
        yield _family(
            CounterMetricFamily,
            "triggergate_firing_attempts",
            "Calls of the trigger (retries included).",
            attempts,
            labels=["sensor", "trigger"],
        )
        yield _family(
            GaugeMetricFamily,
            "triggergate_firings_in_flight",
            "Firings started and not finished (waiting for a rate limit or a retry included).",
            in_flight,
        )
        histogram = HistogramMetricFamily(
            "triggergate_firing_duration_seconds",
            "Time from a firing's start to its durable outcome (retries and rate-limit waits included).",
            labels=["sensor", "trigger"],
        )
        for labels, (counts, total) in sorted(durations.items()):
            cumulative = 0
            cumulated: list[tuple[str, float]] = []
            for bound, count in zip((*DURATION_BUCKETS, float("inf")), counts, strict=True):
                cumulative += count
                cumulated.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            histogram.add_metric(list(labels), cumulated, sum_value=total[0])
        yield histogram
        yield _family(
            CounterMetricFamily,
            "triggergate_fanout_items",
            "Items of fanOut triggers by outcome (fired, already-done, dead-lettered, incomplete, "
            "skipped, marker-dead-lettered).",
            items,
            labels=["sensor", "trigger", "outcome"],
        )


def _add_received(received: Counter[tuple[str, str, str]], counts: ReceivedCounts) -> int:
    """Adds ``counts`` to ``received``; returns its publish errors."""
    for outcome, value in counts.outcomes().items():
        received[(counts.event_source, counts.event, outcome)] += value
    return counts.publish_errors


def _family(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    documentation: str,
    values: Mapping[Any, float],
    *,
    labels: Sequence[str] = ("sensor",),
) -> Metric:
    family = kind(name, documentation, labels=list(labels))
    for key, value in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


def instrument(runtime: RuntimeLike, *, version: str | None = None) -> GatewayMetrics:
    """The metrics of a started runtime: its bus, store, sensor workers, runners and sources.

    Call it once ``Runtime.start`` has built everything; every webhook (and s3 webhook) port then
    answers ``GET /metrics``.
    """
    metrics = GatewayMetrics(version=version)
    if runtime.bus is not None:
        metrics.set_bus(runtime.bus)
    if runtime.store is not None:
        metrics.set_store(runtime.store)
    for worker in runtime.workers:
        metrics.add_worker(worker)
    for (sensor, trigger), runner in runtime.runners.items():
        metrics.add_runner(sensor, trigger, runner)
    for source in runtime.sources:
        metrics.add_source(source)
    return metrics


class MetricsServer:
    """``GET /metrics`` (and ``GET /health``) on a port of its own: ``triggergate run --metrics-port``.

    For deployments without a webhook port, or that scrape another port. The same embedded uvicorn
    server as the webhook ports (:class:`~gateway.httpserver.HttpServer`); ``/health`` answers as
    on a webhook port (``503`` while the bus is unhealthy). Other paths: ``404``.
    """

    def __init__(
        self,
        exporter: MetricsExporter,
        *,
        host: str,
        port: int,
        health: HealthReporter | None = None,
        graceful_timeout: float | None = 5.0,
    ) -> None:
        self.app = MetricsApp(exporter, health)
        self._server = HttpServer(
            self.app, host=host, port=port, name=f"metrics :{port}", graceful_timeout=graceful_timeout
        )

    @property
    def port(self) -> int:
        """The bound port once started."""
        return self._server.port

    async def start(self) -> None:
        """Listen; a port in use raises ``ConfigError`` naming it."""
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()


class MetricsApp:
    """The ASGI app of :class:`MetricsServer`: ``/metrics``, ``/health``, else ``404``."""

    def __init__(self, exporter: MetricsExporter, health: HealthReporter | None = None) -> None:
        self.exporter = exporter
        self.health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await self._respond(scope)
        await response(scope, receive, send)

    async def _respond(self, scope: Scope) -> Response:
        path, method = scope["path"], scope["method"]
        if path not in (METRICS_PATH, "/health"):
            return Response(
                b"not found: this port serves GET /metrics and GET /health", 404, media_type=_TEXT
            )
        if method not in ("GET", "HEAD"):
            return Response(b"method not allowed", 405, headers={"Allow": "GET, HEAD"}, media_type=_TEXT)
        if path == "/health":
            if self.health is not None and not await _healthy(self.health):
                return Response(b"event bus unavailable", 503, headers={"Retry-After": "1"}, media_type=_TEXT)
            return Response(b"OK", 200, media_type=_TEXT)
        try:
            body, content_type = await self.exporter.render(Headers(scope=scope).get("accept"))
        except Exception:
            logger.exception("rendering the metrics failed")
            return Response(b"rendering the metrics failed", 500, media_type=_TEXT)
        return Response(body, 200, media_type=content_type)


async def _healthy(reporter: HealthReporter) -> bool:
    try:
        return await reporter.healthy()
    except Exception:
        logger.exception("the bus health check failed")
        return False


def health_of(bus: Any) -> HealthReporter | None:
    """``bus`` as a :class:`HealthReporter` when it is one (every ``Bus`` is)."""
    return bus if isinstance(bus, HealthReporter) else None
