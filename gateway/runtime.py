"""Wires config -> bus -> sources -> engine -> triggers into one process, and shuts it down cleanly.

Per sensor, one worker consumes the bus as its own group, feeds each event to the pure engine and
carries out the resulting firings concurrently (bounded). An event is acknowledged on the bus only
when the engine no longer holds it *and* every firing that carries it has a durable outcome, so a
crash at any moment loses nothing: the unacknowledged tail is replayed on restart, which rebuilds
the engine state, and firings whose outcome was recorded are not repeated.

Expired correlation sets (``Decisions.expired``) are carried out like firings: logged, counted,
stored as a dead letter, the correlation's ``onExpire`` trigger fired, and only then are their
events acknowledged.

With several processes on one Kafka bus, the bus asks the router (:meth:`Runtime.route`) where each
event belongs: per sensor, its partition key (:meth:`SensorEngine.partition_keys`), so that all the
events one piece of engine state needs reach one consumer. When a rebalance moves partitions, the
bus calls the worker's ``on_revoke``: the worker drops everything built from earlier deliveries (a
fresh engine) and the bus redelivers what is unacknowledged on the partitions it now holds, which
rebuilds the state. Firings already running finish; a set that fires again carries the same
idempotency key, and waits for the earlier run of that key in this process, so it is not repeated.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from gateway.bus import create_bus, parse_bus_url
from gateway.bus.base import Bus, Delivery
from gateway.config import Manifests
from gateway.fanout import FanOutRunner, fan_out_runner
from gateway.firing import FiringRunner
from gateway.k8s import KubeAPI, KubeClient, find_cluster
from gateway.metrics import GatewayMetrics, MetricsServer, instrument
from gateway.outbox import Outbox
from gateway.replay import ReplayWorker
from gateway.secrets import SecretStore
from gateway.sources import build_sources
from gateway.sources.base import Source
from gateway.store import DeadLetter, SqliteStore
from gateway.triggers import build_executor
from gateway.triggers.base import TriggerContext
from gateway.triggers.http import AiohttpClient
from sensors.engine import Decisions, Expire, Fire, SensorEngine
from sensors.event import Event
from sensors.spec import Trigger

logger = logging.getLogger("triggergate.runtime")


@dataclass(frozen=True)
class Settings:
    state_dir: Path = Path(".triggergate")
    secrets_dir: Path = Path("secrets")
    host: str = "0.0.0.0"
    bus: str = "sqlite"
    max_in_flight: int = 256
    shutdown_grace: float = 30.0
    dedup_window: float = 86400.0
    dry_run: bool = False
    kube_context: str | None = None
    kubeconfig: Path | None = None
    replay_interval: float = 1.0
    metrics_port: int | None = None  # also serve GET /metrics (and /health) here


KUBE_TRIGGER_KINDS = ("argoWorkflow", "k8s")
PREFLIGHT_TIMEOUT = 30.0  # seconds for each executor's load-time checks
# After start, the bus replays the unacknowledged tail: clock-driven decisions (correlation expiry,
# conditionsReset) wait until it has arrived (the bus is idle this long, an event newer than the
# start arrives, or CATCH_UP_LIMIT passes), so a replayed set is judged with all of its events.
CATCH_UP_IDLE = 0.5
CATCH_UP_LIMIT = 30.0


def needs_kube(manifests: Manifests) -> bool:
    """Whether a trigger (or dlqTrigger) of the loaded sensors talks to Kubernetes."""
    for loaded in manifests.sensors:
        for trigger in loaded.model.spec.triggers:
            kinds = {trigger.template.kind}
            if trigger.dlq_trigger is not None:
                kinds.add(trigger.dlq_trigger.template.kind)
            correlation = trigger.template.correlation
            fan_out = trigger.template.fan_out
            for extra in (correlation and correlation.on_expire, fan_out and fan_out.on_incomplete):
                if extra:
                    kinds.add(extra.template.kind)
                    if extra.dlq_trigger is not None:
                        kinds.add(extra.dlq_trigger.template.kind)
            if kinds & set(KUBE_TRIGGER_KINDS):
                return True
    return False


def open_kube(settings: Settings) -> KubeAPI:
    """The cluster, or the outbox with ``--dry-run`` or when no cluster is configured."""
    outbox = settings.state_dir / "outbox"
    if settings.dry_run:
        logger.info("dry run: Kubernetes objects are written to %s, not to a cluster", outbox)
        return Outbox(outbox)
    cluster = find_cluster(settings.kubeconfig, settings.kube_context)
    if cluster is None:
        logger.warning(
            "no Kubernetes cluster is configured (no in-cluster service account, KUBECONFIG or "
            "~/.kube/config): Kubernetes objects are written to %s instead",
            outbox,
        )
        return Outbox(outbox)
    client = KubeClient(cluster)
    logger.info("Kubernetes triggers use the %s", client.description)
    return client


class SensorWorker:
    """Consumes the bus for one sensor and carries out its firings."""

    def __init__(
        self,
        engine: SensorEngine,
        runners: dict[str, FiringRunner],
        bus: Bus,
        *,
        max_in_flight: int = 256,
        store: SqliteStore | None = None,
    ) -> None:
        self.engine = engine
        self.runners = runners
        self.bus = bus
        self.store = store
        self.group = f"sensor.{engine.spec.metadata.namespace}.{engine.name}"
        self._deliveries: dict[str, list[Delivery]] = {}
        self._inflight: Counter[str] = Counter()
        self._released_waiting: set[str] = set()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self.processed = 0
        self.fired = 0
        self.expired = 0  # correlation expiries handled (one whose recording failed counts again on replay)
        self.rebalances = 0
        self._generation = 0  # bumped by a rebalance: work of earlier generations keeps off the books
        self._running: dict[str, asyncio.Task[None]] = {}  # firing / dead letter key -> its latest run
        self._started = datetime.now(UTC)
        self._started_clock = time.monotonic()
        self._caught_up = False

    async def run(self, stop: asyncio.Event) -> None:
        iterator = self.bus.subscribe(self.group, on_revoke=self._revoked).__aiter__()
        stopping: asyncio.Task[Any] = asyncio.ensure_future(stop.wait())
        nxt: asyncio.Task[list[Delivery]] | None = None
        try:
            while not stop.is_set():
                if nxt is None:
                    nxt = asyncio.ensure_future(iterator.__anext__())
                waiting: set[asyncio.Task[Any]] = {nxt, stopping}
                done, _ = await asyncio.wait(
                    waiting, timeout=self._until_deadline(), return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # a conditionsReset tick or a correlation deadline is due
                    self._caught_up = True
                    await self._tick()
                    continue
                if nxt not in done:
                    break
                current, nxt = nxt, None
                try:
                    batch = current.result()
                except StopAsyncIteration:
                    break
                await self._process(batch)
        finally:
            if nxt is not None:
                nxt.cancel()
            stopping.cancel()
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except (RuntimeError, asyncio.CancelledError):
                    pass

    async def _revoked(self) -> None:
        """A rebalance: the bus redelivers every unacknowledged event of the partitions this worker
        holds next, so drop everything built from earlier deliveries and wait for that replay.

        Firings and expiries already running finish (and record their outcome) but no longer touch
        the bookkeeping; the replayed set that fires again has the same key and waits for them.
        """
        keys = sum(len(sets) for sets in self.engine.pending_keys().values())
        waiting = len({event_id for slots in self.engine.pending().values() for event_id in slots.values()})
        unacked = sum(len(deliveries) for deliveries in self._deliveries.values())
        running = sum(1 for task in self._tasks if not task.done())
        self._generation += 1
        self.rebalances += 1
        self.engine = SensorEngine(self.engine.spec)
        self._deliveries.clear()
        self._inflight.clear()
        self._released_waiting.clear()
        self._started = datetime.now(UTC)
        self._started_clock = time.monotonic()
        self._caught_up = False
        logger.info(
            "sensor %s: bus partitions rebalanced; dropped %d pending correlation key(s), %d waiting "
            "event(s) and %d unacknowledged deliveries, to be rebuilt from what the bus redelivers "
            "(%d firing(s) in flight finish)",
            self.engine.name,
            keys,
            waiting,
            unacked,
            running,
            extra={"sensor": self.engine.name, "rebalances": self.rebalances},
        )

    def _until_deadline(self) -> float | None:
        deadline = self.engine.next_deadline()
        if deadline is None:
            return None
        wait = max(0.0, (deadline - datetime.now(UTC)).total_seconds())
        if not self._caught_up and time.monotonic() - self._started_clock < CATCH_UP_LIMIT:
            wait = max(wait, CATCH_UP_IDLE)
        return wait

    async def _tick(self) -> None:
        decisions = self.engine.tick(datetime.now(UTC))
        ready = await self._carry_out(decisions, self._generation)
        reset = len(decisions.released) - sum(len(e.event_ids) for e in decisions.expired)
        if reset > 0:
            logger.info(
                "sensor %s: conditionsReset cleared the saved state (%d event(s) released)",
                self.engine.name,
                reset,
            )
        if ready:
            await self.bus.ack(self.group, ready)

    def _released(self, event_ids: list[str]) -> list[Delivery]:
        ready: list[Delivery] = []
        for event_id in event_ids:
            if self._inflight[event_id] > 0:
                self._released_waiting.add(event_id)
            else:
                self._inflight.pop(event_id, None)
                ready.extend(self._deliveries.pop(event_id, ()))
        return ready

    async def _process(self, batch: list[Delivery]) -> None:
        ready: list[Delivery] = []
        generation = self._generation
        for delivery in batch:
            if self._generation != generation:
                break  # a rebalance while carrying out the batch: the bus delivers the rest again
            event = delivery.event
            self._deliveries.setdefault(event.id, []).append(delivery)
            decisions = self.engine.observe(event, datetime.now(UTC))
            self.processed += 1
            if not self._caught_up and event.time >= self._started:
                self._caught_up = True  # past the replayed tail
            self._log_decisions(decisions)
            ready.extend(await self._carry_out(decisions, generation))
        if ready:
            await self.bus.ack(self.group, ready)

    async def _carry_out(self, decisions: Decisions, generation: int) -> list[Delivery]:
        """Start the firings and expiries of ``decisions``; the deliveries that may be acked now."""
        for event_ids in [f.event_ids for f in decisions.fires] + [e.event_ids for e in decisions.expired]:
            for event_id in event_ids:
                self._inflight[event_id] += 1
        ready = self._released(decisions.released)
        for fire in decisions.fires:
            await self._slots.acquire()
            earlier = self._running.get(fire.key)
            self._start(self._fire(fire, generation, earlier), f"fire {fire.sensor}/{fire.trigger}", fire.key)
        for expire in decisions.expired:
            await self._slots.acquire()
            earlier = self._running.get(expire.letter_key)
            self._start(
                self._expire(expire, generation, earlier),
                f"expire {expire.sensor}/{expire.trigger} {expire.key}",
                expire.letter_key,
            )
        return ready

    def _start(self, work: Coroutine[Any, Any, None], name: str, key: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        self._running[key] = task

        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            if self._running.get(key) is task:
                del self._running[key]

        task.add_done_callback(done)

    @staticmethod
    async def _after(earlier: asyncio.Task[None] | None) -> None:
        """Wait for an earlier run of the same firing (started before a rebalance) to end, so that
        the firing store answers "already done" instead of the trigger running twice at once."""
        if earlier is not None and not earlier.done():
            await asyncio.wait({earlier})

    async def _fire(self, fire: Fire, generation: int, earlier: asyncio.Task[None] | None = None) -> None:
        self.fired += 1
        try:
            await self._after(earlier)
            await self.runners[fire.trigger].run(fire)
        except asyncio.CancelledError:
            logger.warning(
                "firing %s of %s/%s interrupted; it will run again after restart",
                fire.key,
                fire.sensor,
                fire.trigger,
            )
            raise
        except Exception:
            logger.exception(
                "the outcome of firing %s of %s/%s could not be recorded; its events stay "
                "unacknowledged and are replayed after a restart",
                fire.key,
                fire.sensor,
                fire.trigger,
            )
            return
        finally:
            self._slots.release()
        await self._finished(fire.event_ids, generation)

    async def _expire(
        self, expire: Expire, generation: int, earlier: asyncio.Task[None] | None = None
    ) -> None:
        """Log, count and dead-letter an expired correlation set, fire ``onExpire``; then ack."""
        self.expired += 1
        await self._after(earlier)
        logger.warning(
            "sensor %s: trigger %s: correlation window expired for key %s: missing %s (have %s)",
            expire.sensor,
            expire.trigger,
            expire.key,
            ", ".join(expire.missing) or "-",
            ", ".join(f"{dep}={ev.id}" for dep, ev in expire.events.items()) or "-",
            extra={"sensor": expire.sensor, "trigger": expire.trigger, "event_ids": list(expire.event_ids)},
        )
        try:
            if self.store is not None:
                await self.store.dead_letter(
                    DeadLetter(
                        key=expire.letter_key,
                        sensor=expire.sensor,
                        trigger=expire.trigger,
                        reason=expire.reason,
                        attempts=0,
                        events=[{"dependency": dep, **ev.to_dict()} for dep, ev in expire.events.items()],
                        created_at=time.time(),
                    )
                )
            if expire.on_expire is not None:
                await self.runners[expire.on_expire.trigger].run(expire.on_expire)
        except asyncio.CancelledError:
            logger.warning(
                "expiry of key %s of %s/%s interrupted; it is carried out again after restart",
                expire.key,
                expire.sensor,
                expire.trigger,
            )
            raise
        except Exception:
            logger.exception(
                "the expiry of key %s of %s/%s could not be recorded; its events stay unacknowledged "
                "and are replayed after a restart",
                expire.key,
                expire.sensor,
                expire.trigger,
            )
            return
        finally:
            self._slots.release()
        await self._finished(expire.event_ids, generation)

    async def _finished(self, event_ids: tuple[str, ...], generation: int) -> None:
        """A firing or expiry carrying ``event_ids`` has a durable outcome: ack what is now free.

        Not for work started before a rebalance: its deliveries are gone from the books, and the
        events are redelivered and acknowledged by the replayed firing (which finds it done)."""
        if generation != self._generation:
            return
        ready: list[Delivery] = []
        for event_id in event_ids:
            self._inflight[event_id] -= 1
            if self._inflight[event_id] <= 0:
                self._inflight.pop(event_id, None)
                if event_id in self._released_waiting and not self.engine.holds(event_id):
                    self._released_waiting.discard(event_id)
                    ready.extend(self._deliveries.pop(event_id, ()))
        if ready:
            await self.bus.ack(self.group, ready)

    def _log_decisions(self, decisions: Decisions) -> None:
        for item in decisions.discarded:
            logger.debug(
                "sensor %s: event %s %s of %s%s",
                self.engine.name,
                item.event_id,
                f"has no key for trigger {item.trigger}" if item.trigger else "did not pass the filters",
                item.dependency,
                f": {'; '.join(item.errors)}" if item.errors else "",
            )
        for warning in decisions.warnings:
            logger.warning(
                "sensor %s: event %s passed the filters of %s with errors: %s",
                self.engine.name,
                warning.event_id,
                warning.dependency,
                "; ".join(warning.errors),
            )

    async def drain(self, grace: float) -> None:
        """Wait for in-flight firings; cancel what is left after ``grace`` seconds."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class Runtime:
    manifests: Manifests
    settings: Settings = field(default_factory=Settings)
    secrets: SecretStore | None = None

    def __post_init__(self) -> None:
        self.bus: Bus | None = None
        self.store: SqliteStore | None = None
        self.sources: list[Source] = []
        self.workers: list[SensorWorker] = []
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        self._http_client: AiohttpClient | None = None  # the http trigger's (bench/http_client.py)
        self.executors: list[object] = []
        self.kube: KubeAPI | None = None
        self.runners: dict[tuple[str, str], FiringRunner] = {}
        self._background: list[asyncio.Task[None]] = []
        self._routes: dict[tuple[str, str], list[SensorWorker]] = {}
        self._bus_started = False
        self.metrics: GatewayMetrics | None = None
        self._metrics_server: MetricsServer | None = None

    async def start(self) -> None:
        settings = self.settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        secrets = self.secrets or SecretStore(settings.secrets_dir)
        kind, options = parse_bus_url(settings.bus)
        options = {"dedup_window": settings.dedup_window, **options}  # the URL's dedupWindow wins
        if kind == "kafka":  # TLS CA and SASL credentials are secret references
            options["secrets_dir"] = settings.secrets_dir
        self.bus = create_bus(kind, settings.state_dir, **options)
        self.store = SqliteStore(settings.state_dir / "state.db")
        await self.store.start()
        # Bounded pool: httpcore matches queued requests against connections linearly, so a pool
        # sized for every in-flight firing costs more CPU than it saves (measured in bench/).
        self._http = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32, keepalive_expiry=30.0),
        )
        self._http_client = AiohttpClient(max_connections=32, keepalive_expiry=30.0)
        logger.info("state in %s (bus: %s)", settings.state_dir.resolve(), describe_bus(settings.bus))
        if needs_kube(self.manifests):
            self.kube = open_kube(settings)
        for loaded in self.manifests.sensors:
            sensor = loaded.model
            engine = SensorEngine(sensor)
            context = TriggerContext(
                sensor=sensor.metadata.name,
                namespace=sensor.metadata.namespace,
                secrets=secrets,
                http=self._http,
                kube=self.kube,
                http_client=self._http_client,
            )
            runners: dict[str, FiringRunner] = {}
            for trigger in sensor.spec.triggers:
                correlation = trigger.template.correlation
                on_expire = [correlation.on_expire] if correlation and correlation.on_expire else []
                for each in [trigger, *on_expire]:  # onExpire runs like a trigger of its own
                    runners[each.name] = self._runner(each, context)
                    self.runners[(engine.name, each.name)] = runners[each.name]
                    made = runners[each.name]
                    if isinstance(made, FanOutRunner) and made.on_incomplete is not None:  # for replays
                        self.runners[(engine.name, made.on_incomplete.trigger.name)] = made.on_incomplete
            worker = SensorWorker(
                engine, runners, self.bus, max_in_flight=settings.max_in_flight, store=self.store
            )
            self.workers.append(worker)
            logger.info(
                "sensor %s: dependencies %s; triggers %s",
                engine.name,
                ", ".join(
                    f"{d.name} <- {d.event_source_name}/{d.event_name}" for d in sensor.spec.dependencies
                ),
                ", ".join(f"{t.name} ({t.template.kind})" for t in sensor.spec.triggers),
            )
        # Before the bus starts: where each event goes (a no-op on the embedded bus).
        self._routes = self._route_table(self.workers)
        if kind == "kafka" and self.manifests.event_sources and not self.workers:
            logger.warning(
                "no Sensor is loaded: on the Kafka bus an event goes to the sensors of the process that "
                "receives it, so what this process's sources receive is not stored; load the same "
                "Sensors in every replica"
            )
        self.bus.set_router(self.route, [worker.group for worker in self.workers])
        await self.bus.start()
        self._bus_started = True
        for worker in self.workers:
            self._worker_tasks.append(
                asyncio.create_task(worker.run(self._stop), name=f"sensor {worker.engine.name}")
            )
        self.sources = build_sources(
            [loaded.model for loaded in self.manifests.event_sources],
            self.bus,
            secrets,
            host=settings.host,
            dead_letters=self.store,
        )
        for source in self.sources:
            await source.start()
        self.metrics = instrument(self)  # from now on every webhook port answers GET /metrics
        if settings.metrics_port is not None:
            self._metrics_server = MetricsServer(
                self.metrics, host=settings.host, port=settings.metrics_port, health=self.bus
            )
            await self._metrics_server.start()
        replays = ReplayWorker(self.store, self.runners, interval=settings.replay_interval)
        self._background.append(asyncio.create_task(replays.run(self._stop), name="dlq replays"))
        if self.kube is not None and not self.kube.dry_run:
            self._background.append(asyncio.create_task(self._preflight(), name="load-time checks"))

    @staticmethod
    def _route_table(workers: Sequence[SensorWorker]) -> dict[tuple[str, str], list[SensorWorker]]:
        table: dict[tuple[str, str], list[SensorWorker]] = {}
        for worker in workers:
            for route in sorted(worker.engine.routes()):
                table.setdefault(route, []).append(worker)
        return table

    def route(self, event: Event) -> list[tuple[str, str]]:
        """The bus's router: ``(consumer group, partition key)`` for each sensor that wants ``event``
        (none: no sensor listens to its EventSource and event name, so it need not be stored)."""
        pairs: list[tuple[str, str]] = []
        for worker in self._routes.get((event.source, event.subject), ()):
            engine = worker.engine
            try:
                keys = engine.partition_keys(event)
            except Exception:  # a bug in routing must not lose the event: keep the sensor together
                logger.exception("sensor %s: no partition key for event %s", engine.name, event.id)
                keys = [engine.partition_name]
            pairs.extend((worker.group, key) for key in keys)
        return pairs

    def _runner(self, trigger: Trigger, context: TriggerContext) -> FiringRunner:
        assert self.store is not None
        executor = build_executor(trigger, context)
        self.executors.append(executor)
        dlq: FiringRunner | None = None
        if trigger.dlq_trigger is not None:
            dlq_executor = build_executor(trigger.dlq_trigger, context)
            self.executors.append(dlq_executor)
            dlq = FiringRunner(dlq_executor, self.store)
        runner = FiringRunner(executor, self.store, dlq=dlq)
        if trigger.template.fan_out is not None:  # a run's marker -> one firing per sample
            runner = fan_out_runner(runner, context, self.manifests, lambda t: self._runner(t, context))
            self.executors.append(runner.resolver)  # its S3 client is closed with the executors
        return runner

    async def _preflight(self) -> None:
        """Log the warnings of the executors' load-time checks (e.g. a missing WorkflowTemplate)."""
        for executor in self.executors:
            try:
                warnings = await asyncio.wait_for(
                    executor.preflight(),  # type: ignore[attr-defined]
                    PREFLIGHT_TIMEOUT,
                )
            except Exception as exc:
                logger.warning("load-time check of %s skipped: %s", executor, exc)
                continue
            for warning in warnings:
                logger.warning("%s", warning)

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        """Stop accepting, finish what is in flight, flush, close. Safe to call once after start."""
        logger.info("shutting down: no new events are accepted; finishing what is in flight")
        for source in self.sources:
            try:
                await source.stop()
            except Exception:
                logger.exception("source %s did not stop cleanly", getattr(source, "name", source))
        if self._metrics_server is not None:
            await self._metrics_server.stop()
        self._stop.set()
        if self._worker_tasks:
            await asyncio.gather(*self._worker_tasks, return_exceptions=True)
        for worker in self.workers:
            await worker.drain(self.settings.shutdown_grace)
        if self._background:
            _, pending = await asyncio.wait(self._background, timeout=self.settings.shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
        for executor in self.executors:
            await executor.close()  # type: ignore[attr-defined]
        if self.kube is not None:
            await self.kube.close()
        if self._http is not None:
            await self._http.aclose()
        if self._http_client is not None:
            await self._http_client.close()
        if self.bus is not None and self._bus_started:
            await self.bus.close()
        if self.store is not None:
            await self.store.close()
        logger.info("stopped")


def describe_bus(url: str) -> str:
    """The bus URL for logs: scheme, brokers and topic; no credentials, no query options."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable bus url)"
    if not parts.scheme:
        return url.split("?", 1)[0]
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


async def serve(manifests: Manifests, settings: Settings, secrets: SecretStore | None = None) -> int:
    """Run until SIGTERM or SIGINT; returns the process exit code."""
    runtime = Runtime(manifests, settings, secrets)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.request_stop)
    try:
        await runtime.start()
    except Exception:
        await runtime.stop()
        raise
    logger.info("triggergate is running; send SIGTERM or press Ctrl-C to stop")
    await runtime.wait()
    await runtime.stop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    return 0
