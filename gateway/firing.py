"""Carry out a ``Fire`` decision: idempotency check, rate limit, attempts with backoff, outcome.

The outcome is durable before the runner returns: a ``FiringRecord`` on success (with the firing's
events, kept for ``triggergate lineage``), a dead letter (with the events and the last reason) when
the attempts run out or the failure cannot be retried.
Only then may the runtime acknowledge the firing's events on the bus. A firing whose key the
store already knows is not carried out again (a replay after a crash, or a duplicate delivery).

Counts for ``/metrics`` (plain ints, no lock: a runner lives on the event loop; ``gateway.metrics``
reads them at scrape time): :attr:`FiringRunner.outcomes` counts each durable outcome
(``succeeded``, ``dead-lettered``, ``already-done``) where it is recorded, so a ``fanOut``
trigger's marker and each of its items count; ``attempts`` counts executor calls; ``in_flight``
and ``durations`` cover :meth:`FiringRunner.run` (rate-limit waits and backoff included; the
``already-done`` answers are not timed).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.errors import TriggerError
from gateway.ratelimit import RateLimiter
from gateway.store import DeadLetter, FiringRecord, SqliteStore
from gateway.triggers.base import TriggerExecutor
from sensors.engine import Fire, idempotency_key
from sensors.spec import Backoff, parse_go_duration

logger = logging.getLogger("triggergate.firing")


def backoff_delays(backoff: Backoff | None, rand: Callable[[], float] = random.random) -> list[float]:
    """The sleeps between attempts, Argo style: ``steps`` total attempts, ``duration`` grows by
    ``factor``; each sleep is ``d + rand() * jitter * d``. No strategy: one attempt, no sleep."""
    if backoff is None:
        return []
    attempts = backoff.attempts()
    duration = 1.0 if backoff.duration is None else parse_go_duration(backoff.duration)
    factor = 1.0 if backoff.factor is None else backoff.factor
    jitter = 0.0 if backoff.jitter is None else backoff.jitter
    delays: list[float] = []
    for _ in range(attempts - 1):
        delays.append(duration + (rand() * jitter * duration if jitter > 0 else 0.0))
        if factor > 0:
            duration *= factor
    return delays


#: Upper bounds (seconds) of the firing-duration histogram buckets (``le`` in Prometheus terms).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Durations:
    """A histogram without a lock: ``buckets[i]`` counts the observations ``<= DURATION_BUCKETS[i]``
    that fell in no earlier bucket (the last one is ``+Inf``); ``sum`` and ``count`` as Prometheus."""

    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.count += 1
        self.sum += seconds


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # "succeeded" | "dead-lettered" | "already-done"
    attempts: int
    result: str


class FiringRunner:
    """Runs the firings of one trigger."""

    def __init__(
        self,
        executor: TriggerExecutor,
        store: SqliteStore,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        dlq: FiringRunner | None = None,
    ) -> None:
        self.executor = executor
        self.dlq = dlq
        self.store = store
        self.trigger = executor.trigger
        self.delays = backoff_delays(self.trigger.retry_strategy)
        self.limiter = RateLimiter(self.trigger.rate_limit, sleep=sleep)
        self._sleep = sleep
        self._clock = clock
        self.outcomes: Counter[str] = Counter()  # durable outcomes: succeeded, dead-lettered, already-done
        self.attempts = 0  # executor calls
        self.in_flight = 0  # run() calls not returned yet
        self.durations = Durations()  # run() to a durable outcome (not already-done)

    async def run(self, fire: Fire) -> Outcome:
        self.in_flight += 1
        started = time.monotonic()
        try:
            outcome = await self._execute(fire)
        finally:
            self.in_flight -= 1
        if outcome.status != "already-done":
            self.durations.observe(time.monotonic() - started)
        return outcome

    async def _execute(self, fire: Fire) -> Outcome:
        if await self.already_done(fire):
            return Outcome("already-done", 0, "")
        started = self._clock()
        attempts = 0
        last: TriggerError | None = None
        while True:
            await self.limiter.acquire()
            attempts += 1
            self.attempts += 1
            try:
                result = await self.executor.execute(fire)
            except TriggerError as exc:
                last = exc
            except Exception as exc:  # an executor bug must not lose the firing: dead-letter it
                logger.exception("trigger %s/%s raised unexpectedly", fire.sensor, fire.trigger)
                last = TriggerError(f"unexpected error: {exc!r}", retriable=False)
            else:
                await self.record_success(fire, attempts, result, started)
                logger.info(
                    "trigger %s/%s succeeded: %s",
                    fire.sensor,
                    fire.trigger,
                    result,
                    extra={
                        "firing": fire.key,
                        "sensor": fire.sensor,
                        "trigger": fire.trigger,
                        "event_ids": list(fire.event_ids),
                        "attempts": attempts,
                    },
                )
                return Outcome("succeeded", attempts, result)
            more = attempts <= len(self.delays) and last.retriable
            logger.warning(
                "trigger %s/%s attempt %d failed%s: %s",
                fire.sensor,
                fire.trigger,
                attempts,
                "" if more else " (giving up)",
                last,
                extra={"firing": fire.key, "sensor": fire.sensor, "trigger": fire.trigger},
            )
            if not more:
                break
            delay = self.delays[attempts - 1]
            if last.retry_after is not None:
                delay = max(delay, last.retry_after)
            await self._sleep(delay)
        assert last is not None
        return await self.give_up(fire, str(last), attempts)

    async def already_done(self, fire: Fire) -> bool:
        """Whether the store has an outcome for ``fire``'s key (then it is not carried out again)."""
        if not await self.store.firing_done(fire.key):
            return False
        self.outcomes["already-done"] += 1
        logger.info(
            "firing %s of %s/%s was already carried out; not repeating it",
            fire.key,
            fire.sensor,
            fire.trigger,
            extra={"firing": fire.key, "sensor": fire.sensor, "trigger": fire.trigger},
        )
        return True

    async def record_success(self, fire: Fire, attempts: int, result: str, started: float) -> None:
        """Store durably that ``fire`` succeeded: from now on it is "already done"."""
        await self.store.record_firing(
            FiringRecord(
                key=fire.key,
                sensor=fire.sensor,
                trigger=fire.trigger,
                event_ids=list(fire.event_ids),
                dependencies={dep: ev.id for dep, ev in fire.events.items()},
                status="succeeded",
                attempts=attempts,
                result=result,
                started_at=started,
                finished_at=self._clock(),
            ),
            events={dep: ev.to_dict() for dep, ev in fire.events.items()},
        )
        self.outcomes["succeeded"] += 1

    async def give_up(self, fire: Fire, reason: str, attempts: int) -> Outcome:
        """Dead-letter ``fire`` with ``reason`` (durably), then fire the ``dlqTrigger`` if there is one."""
        dlq_id = await self.store.dead_letter(
            DeadLetter(
                key=fire.key,
                sensor=fire.sensor,
                trigger=fire.trigger,
                reason=reason,
                attempts=attempts,
                events=[{"dependency": dep, **ev.to_dict()} for dep, ev in fire.events.items()],
                created_at=self._clock(),
            )
        )
        self.outcomes["dead-lettered"] += 1
        logger.error(
            "trigger %s/%s failed after %d attempt(s); dead letter %s: %s",
            fire.sensor,
            fire.trigger,
            attempts,
            dlq_id,
            reason,
            extra={"firing": fire.key, "sensor": fire.sensor, "trigger": fire.trigger, "dead_letter": dlq_id},
        )
        if self.dlq is not None:
            dlq_name = self.dlq.trigger.name
            dlq_fire = Fire(
                fire.sensor, dlq_name, fire.events, idempotency_key(fire.sensor, dlq_name, fire.events)
            )
            dlq_outcome = await self.dlq.run(dlq_fire)
            logger.info(
                "dlqTrigger %s/%s for firing %s: %s",
                fire.sensor,
                dlq_name,
                fire.key,
                dlq_outcome.status,
                extra={"firing": fire.key, "sensor": fire.sensor, "trigger": dlq_name},
            )
        return Outcome("dead-lettered", attempts, reason)
