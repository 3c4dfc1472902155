"""Carry out a ``fanOut`` trigger: a run's completion marker becomes one firing per sample.

:class:`FanOutRunner` is the :class:`~gateway.firing.FiringRunner` of a trigger with ``fanOut``
(same ``run(fire) -> Outcome``). For the marker's firing (the *parent*) it

1. returns ``already-done`` when the store knows the parent's key (a re-delivered marker);
2. finds the run folder (:func:`sensors.fanout.locate_run`), lists it through ``gateway/aws.py``
   and, for ``source: manifest`` / ``sampleSheet``, reads that file; retriable AWS errors are
   retried with the trigger's ``retryStrategy`` backoff; a permanent one (``NoSuchBucket``,
   ``AccessDenied``, a missing manifest) or the last retriable one dead-letters the parent with the
   reason (``triggergate dlq replay`` resolves the run again);
3. plans the items (:func:`sensors.fanout.plan_run`) and carries them out concurrently (at most
   :data:`ITEMS_IN_FLIGHT` at a time): a complete item through the normal firing path (idempotency
   check, rate limit, retries, dead letter, ``dlqTrigger``) keyed by the item, not by the marker
   event; an incomplete one is *reported*: a warning, the ``incomplete`` counter, a dead letter
   with a deterministic key holding the marker event, the item and the reason, and the
   ``onIncomplete`` trigger (once per item);
4. records the parent's firing once every item has a durable outcome, so a replayed marker is
   ``already-done`` and a re-uploaded one (another event id) finds every item done.

Replays (``triggergate dlq replay``) come back here too: an item's dead letter (its event under
the ``as`` name, source ``triggergate.fanout``) is fired again as it was; an incomplete item's
report resolves the run again and launches the item if its files are there now, or reports it
again.

Counts per outcome are kept in :attr:`FanOutRunner.counts`, logged per marker and exported as
``triggergate_fanout_items_total`` (``gateway.metrics``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from gateway.aws import AwsClient, AwsConnection, AwsError
from gateway.config import Manifests
from gateway.firing import FiringRunner, Outcome
from gateway.secrets import SecretStore
from gateway.sources.s3 import queue_connection, reconcile_connection, s3_entries
from gateway.sources.sqs_poller import aws_connection
from gateway.store import DeadLetter, SqliteStore
from gateway.triggers.base import TriggerContext, TriggerExecutor
from sensors.engine import Fire
from sensors.event import Event
from sensors.fanout import (
    FANOUT_SOURCE,
    FanOutError,
    Item,
    Plan,
    RunLocation,
    incomplete_fire,
    item_fire,
    locate_run,
    marker_dependency,
    marker_of,
    plan_run,
    report_key,
)
from sensors.spec import EventSource, FanOut, Sensor, Trigger

logger = logging.getLogger("triggergate.fanout")

__all__ = [
    "ITEMS_IN_FLIGHT",
    "FanOutRunner",
    "Resolver",
    "RunResolver",
    "fan_out_connection",
    "fan_out_runner",
]

ITEMS_IN_FLIGHT = 8
"""Items of one trigger carried out at the same time (the trigger's rateLimit applies on top)."""


class Resolver(Protocol):
    """Where a fan-out reads runs from: the keys under a run folder and the manifest's text.
    :class:`RunResolver` reads a bucket; tests may hold a bucket in memory."""

    async def resolve(self, spec: FanOut, location: RunLocation) -> tuple[list[str], str | None]: ...

    async def preflight(self) -> list[str]: ...

    async def close(self) -> None: ...


class RunResolver:
    """Reads a run folder through one :class:`~gateway.aws.AwsClient`: the keys under its prefix
    (``ListObjectsV2``, every page) and, when the spec names one, the manifest's text."""

    def __init__(self, client: AwsClient) -> None:
        self.client = client

    async def resolve(self, spec: FanOut, location: RunLocation) -> tuple[list[str], str | None]:
        keys: list[str] = []
        async for page in self.client.list_objects(location.bucket, location.prefix):
            keys.extend(obj.key for obj in page)
        text = None
        if spec.manifest is not None:
            raw = await self.client.get_object(location.bucket, location.prefix + spec.manifest)
            text = raw.decode("utf-8-sig", errors="replace")
        return keys, text

    async def preflight(self) -> list[str]:
        """Nothing to check at start: the bucket is known only when a marker names it."""
        return []

    async def close(self) -> None:
        await self.client.close()


def _letter_events(fire: Fire) -> list[dict[str, Any]]:
    return [{"dependency": dep, **event.to_dict()} for dep, event in fire.events.items()]


class FanOutRunner(FiringRunner):
    """The runner of a ``fanOut`` trigger: plans a marker's run and fires each item through the
    inherited :meth:`FiringRunner.run` (see the module docstring)."""

    def __init__(
        self,
        executor: TriggerExecutor,
        store: SqliteStore,
        *,
        resolver: Resolver,
        dlq: FiringRunner | None = None,
        on_incomplete: FiringRunner | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        items_in_flight: int = ITEMS_IN_FLIGHT,
    ) -> None:
        super().__init__(executor, store, sleep=sleep, clock=clock, dlq=dlq)
        fan_out = self.trigger.template.fan_out
        if fan_out is None:
            raise ValueError(f"trigger {self.trigger.name!r} has no fanOut")
        self.fan_out = fan_out
        self.resolver = resolver
        self.on_incomplete = on_incomplete
        self.counts: Counter[str] = Counter()  # item outcomes: fired, already-done, dead-lettered, ...
        self._slots = asyncio.Semaphore(items_in_flight)
        self._locks: dict[str, asyncio.Lock] = {}  # per item key, while someone uses it
        self._waiting: Counter[str] = Counter()

    async def run(self, fire: Fire) -> Outcome:
        item = fire.events.get(self.fan_out.as_)
        if item is not None and item.source == FANOUT_SOURCE:  # a replayed item or report
            if isinstance(item.data, dict) and "missing" in item.data:
                return await self._recheck(fire, item)
            return await self._fire_item(fire)
        if await self.already_done(fire):  # this marker event was fanned out (or dead-lettered)
            return Outcome("already-done", 0, "")
        started = self._clock()
        try:
            location = locate_run(marker_of(self.fan_out, fire.events)[1])
        except FanOutError as exc:
            self.counts["marker-dead-lettered"] += 1
            return await self.give_up(fire, f"fan-out: {exc}", 0)
        plan, attempts, error = await self._plan(fire, location)
        if plan is None:
            self.counts["marker-dead-lettered"] += 1
            return await self.give_up(fire, error, attempts)
        counts = await self._carry_out(fire, plan)
        summary = self._summary(plan, counts)
        await self.record_success(fire, attempts, summary, started)
        logger.info(
            "trigger %s/%s fanned out %s",
            fire.sensor,
            fire.trigger,
            summary,
            extra={"firing": fire.key, "sensor": fire.sensor, "trigger": fire.trigger},
        )
        return Outcome("succeeded", attempts, summary)

    # -- planning ---------------------------------------------------------------------------------

    async def _plan(self, fire: Fire, location: RunLocation) -> tuple[Plan | None, int, str]:
        """The plan, the attempts it took, and the reason when there is no plan."""
        where = f"s3://{location.bucket}/{location.prefix}"
        attempts = 0
        while True:
            attempts += 1
            try:
                keys, text = await self.resolver.resolve(self.fan_out, location)
                return plan_run(self.fan_out, fire.sensor, fire.trigger, location, keys, text), attempts, ""
            except FanOutError as exc:
                return None, attempts, f"fan-out of {where}: {exc}"
            except AwsError as exc:
                more = exc.retriable and attempts <= len(self.delays)
                logger.warning(
                    "trigger %s/%s: resolving run %s failed (attempt %d%s): %s",
                    fire.sensor,
                    fire.trigger,
                    where,
                    attempts,
                    "" if more else ", giving up",
                    exc,
                    extra={"firing": fire.key, "sensor": fire.sensor, "trigger": fire.trigger},
                )
                if not more:
                    return None, attempts, f"fan-out: cannot resolve run {where}: {exc}"
                await self._sleep(self.delays[attempts - 1])

    # -- items ------------------------------------------------------------------------------------

    async def _carry_out(self, parent: Fire, plan: Plan) -> Counter[str]:
        """Every item of ``plan`` to a durable outcome; raises the first error after all finished."""
        time_ = plan.location.time
        work = [self._launch(item_fire(parent, item, self.fan_out.as_, time_)) for item in plan.items]
        work += [self._report(parent, item, time_) for item in plan.incomplete]
        results = await asyncio.gather(*work, return_exceptions=True)
        counts: Counter[str] = Counter({"skipped": len(plan.skipped)})
        self.counts["skipped"] += len(plan.skipped)
        for result in results:
            if isinstance(result, BaseException):
                raise result
            counts[result] += 1
        return counts

    async def _launch(self, fire: Fire) -> str:
        async with self._slots:
            outcome = await self._fire_item(fire)
        status = "fired" if outcome.status == "succeeded" else outcome.status
        self.counts[status] += 1
        return status

    async def _fire_item(self, fire: Fire) -> Outcome:
        """One item through the normal firing path; one at a time per item key in this process."""
        lock = self._locks.setdefault(fire.key, asyncio.Lock())
        self._waiting[fire.key] += 1
        try:
            async with lock:
                return await super().run(fire)
        finally:
            self._waiting[fire.key] -= 1
            if self._waiting[fire.key] <= 0:
                del self._waiting[fire.key], self._locks[fire.key]

    async def _report(self, parent: Fire, item: Item, time_: datetime) -> str:
        """Report an incomplete item: warning, counter, dead letter (stable key), ``onIncomplete``."""
        async with self._slots:
            fire = item_fire(parent, item, self.fan_out.as_, time_)
            letter_id = await self.store.dead_letter(
                DeadLetter(
                    key=report_key(item.key),
                    sensor=fire.sensor,
                    trigger=fire.trigger,
                    reason=item.reason,
                    attempts=0,
                    events=_letter_events(fire),
                    created_at=self._clock(),
                )
            )
            self.counts["incomplete"] += 1
            logger.warning(
                "sensor %s: trigger %s: %s; not launched, reported as dead letter %s "
                "(replay it with `triggergate dlq replay %s` once the files are there)",
                fire.sensor,
                fire.trigger,
                item.reason,
                letter_id,
                letter_id,
                extra={
                    "firing": fire.key,
                    "sensor": fire.sensor,
                    "trigger": fire.trigger,
                    "dead_letter": letter_id,
                },
            )
            if self.on_incomplete is not None:
                name = self.on_incomplete.trigger.name
                await self.on_incomplete.run(incomplete_fire(parent, item, self.fan_out.as_, time_, name))
        return "incomplete"

    async def _recheck(self, fire: Fire, item: Event) -> Outcome:
        """A replayed report: resolve the run again; launch the item if it is complete now."""
        as_ = self.fan_out.as_
        parent = Fire(fire.sensor, fire.trigger, {n: e for n, e in fire.events.items() if n != as_}, fire.key)
        try:
            location = locate_run(marker_of(self.fan_out, parent.events)[1])
        except FanOutError as exc:
            return await self.give_up(fire, f"fan-out: {exc}", 0)
        plan, attempts, error = await self._plan(parent, location)
        if plan is None:
            return await self.give_up(fire, error, attempts)
        group = str(item.data.get(self.fan_out.group_field, ""))
        found = plan.find(group)
        if found is None:  # no file of the group is left in the bucket (or it is skipped now)
            reason = (
                f"{self.fan_out.group_field} {group} of run {location.run} is incomplete: "
                "no file of it is in the bucket any more"
            )
            data = {**item.data, "missing": ["all files"], "reason": reason}
            found = Item(group, str(item.data.get("item_key", "")), data, ("all files",))
        if found.complete:
            return await self._fire_item(item_fire(parent, found, as_, location.time))
        await self._report(parent, found, location.time)
        return Outcome("dead-lettered", attempts, found.reason)

    def _summary(self, plan: Plan, counts: Counter[str]) -> str:
        loc = plan.location
        parts = [f"{counts[k]} {k.replace('-', ' ')}" for k in ("fired", "already-done", "dead-lettered")]
        parts.append(f"{counts['incomplete']} incomplete (reported)")
        if plan.skipped:
            parts.append(f"skipped {', '.join(plan.skipped)}")
        if plan.ignored:
            parts.append(f"not in {self.fan_out.manifest}: {', '.join(plan.ignored)}")
        return f"run {loc.run} (s3://{loc.bucket}/{loc.prefix}): {', '.join(parts)}"


# --------------------------------------------------------------------------- building


def fan_out_connection(
    trigger: Trigger, sensor: Sensor, event_sources: Sequence[EventSource], secrets: SecretStore | None
) -> tuple[AwsConnection, str]:
    """How ``trigger``'s fan-out reaches the bucket, and where that came from: its ``fanOut.s3``
    block, else the ``reconcile`` (or ``sqs``) block of the ``s3`` EventSource entry that the marker
    dependency names, else boto3's environment chain."""
    spec = trigger.template.fan_out
    assert spec is not None
    where = f"Sensor {sensor.metadata.name} trigger {trigger.name} fanOut.s3"
    if spec.s3 is not None:
        s3 = spec.s3
        connection = aws_connection(
            secrets,
            where,
            region=s3.region or ("us-east-1" if s3.endpoint else None),
            endpoint=s3.endpoint,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            session_token=s3.session_token,
        )
        return connection, "fanOut.s3"
    names = [dep.name for dep in sensor.spec.dependencies]
    name = marker_dependency(spec, trigger.template.conditions, names)
    dependency = next((dep for dep in sensor.spec.dependencies if dep.name == name), None)
    if dependency is not None:
        sources = [
            es
            for es in event_sources
            if es.metadata.name == dependency.event_source_name
            and es.metadata.namespace == sensor.metadata.namespace
        ]
        for entry in s3_entries(sources):
            if entry.event_name != dependency.event_name:
                continue
            if entry.spec.reconcile is not None:
                return reconcile_connection(entry, secrets), f"EventSource {entry.label} reconcile"
            if entry.spec.sqs is not None:
                return queue_connection(entry, secrets), f"EventSource {entry.label} sqs"
    return AwsConnection(), "the environment (no fanOut.s3 and no s3 EventSource with sqs or reconcile)"


def fan_out_runner(
    runner: FiringRunner,
    context: TriggerContext,
    manifests: Manifests,
    build: Callable[[Trigger], FiringRunner],
) -> FanOutRunner:
    """The :class:`FanOutRunner` that replaces ``runner`` (the plain runner of a ``fanOut`` trigger);
    ``build`` makes the ``onIncomplete`` trigger's runner."""
    trigger = runner.trigger
    spec = trigger.template.fan_out
    assert spec is not None
    sensor = next(
        loaded.model
        for loaded in manifests.sensors
        if loaded.model.metadata.name == context.sensor
        and loaded.model.metadata.namespace == context.namespace
    )
    sources = [loaded.model for loaded in manifests.event_sources]
    connection, origin = fan_out_connection(trigger, sensor, sources, context.secrets)
    logger.info(
        "sensor %s: trigger %s fans out runs (%s, source %s) reading the bucket through %s, from %s",
        context.sensor,
        trigger.name,
        spec.parser,
        spec.source,
        connection.describe(),
        origin,
    )
    resolver = RunResolver(AwsClient(connection, workers=2, name=f"fanout-{trigger.name}"))
    on_incomplete = build(spec.on_incomplete) if spec.on_incomplete is not None else None
    return FanOutRunner(
        runner.executor,
        runner.store,
        resolver=resolver,
        dlq=runner.dlq,
        on_incomplete=on_incomplete,
        sleep=runner._sleep,
        clock=runner._clock,
    )
