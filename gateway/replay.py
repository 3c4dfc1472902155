"""Carry out ``triggergate dlq replay``: fire dead letters again, with their idempotency keys.

The CLI only records a request in the state store (``SqliteStore.request_replay``, with a copy of
the letter). The running gateway's :class:`ReplayWorker` looks for requests every ``interval``
seconds and, for each: releases the dead letter (its firing record goes too, so the firing may
run), rebuilds the ``Fire`` from the stored events and key, runs it through the trigger's
``FiringRunner`` (retries, rate limit, dead letter again on failure) and records the outcome on the
request. Because the key is the same, a Workflow that the first attempts did create is found again
(409 AlreadyExists with this firing's label) instead of being created twice.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Mapping

from gateway.firing import FiringRunner
from gateway.store import ReplayRequest, SqliteStore
from sensors.engine import Fire
from sensors.event import EnvelopeError, Event

logger = logging.getLogger("triggergate.replay")

__all__ = ["ReplayWorker", "fire_from_letter"]


def fire_from_letter(request: ReplayRequest) -> Fire:
    """The ``Fire`` a dead letter came from (same sensor, trigger, events and key)."""
    letter = request.letter
    events: dict[str, Event] = {}
    for doc in letter.events:
        doc = copy.deepcopy(doc)
        dependency = doc.pop("dependency", None)
        if not dependency:
            raise EnvelopeError(f"dead letter {letter.id}: an event has no 'dependency'")
        events[str(dependency)] = Event.from_dict(doc)
    return Fire(letter.sensor, letter.trigger, events, letter.key)


class ReplayWorker:
    """Polls the store for replay requests and carries them out with the gateway's runners."""

    def __init__(
        self,
        store: SqliteStore,
        runners: Mapping[tuple[str, str], FiringRunner],
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.runners = runners
        self.interval = interval
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.replay_pending()
            except Exception:
                logger.exception("replaying dead letters failed; trying again in %.0f s", self.interval)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass

    async def replay_pending(self) -> int:
        """Carry out every pending request; returns how many were handled."""
        requests = await self.store.pending_replays()
        for request in requests:
            await self.replay(request)
        return len(requests)

    async def replay(self, request: ReplayRequest) -> None:
        letter = request.letter
        runner = self.runners.get((letter.sensor, letter.trigger))
        if runner is None:
            await self._finish(
                request,
                "failed",
                f"this gateway does not run trigger {letter.trigger!r} of sensor {letter.sensor!r}; "
                "start it with the manifests that define it",
            )
            return
        try:
            fire = fire_from_letter(request)
        except EnvelopeError as exc:
            await self._finish(request, "failed", f"the dead letter's events cannot be read: {exc}")
            return
        await self.store.release_dead_letter(letter.id)
        logger.info(
            "replaying dead letter %s: firing %s of %s/%s",
            letter.id,
            letter.key,
            letter.sensor,
            letter.trigger,
            extra={"firing": letter.key, "sensor": letter.sensor, "trigger": letter.trigger},
        )
        outcome = await runner.run(fire)
        await self._finish(request, outcome.status, outcome.result)

    async def _finish(self, request: ReplayRequest, status: str, outcome: str) -> None:
        letter = request.letter
        await self.store.finish_replay(letter.id, status, outcome, self._clock())
        log = logger.warning if status in ("failed", "dead-lettered") else logger.info
        log(
            "replay of dead letter %s (%s/%s): %s%s",
            letter.id,
            letter.sensor,
            letter.trigger,
            status,
            f": {outcome}" if outcome else "",
            extra={"firing": letter.key, "sensor": letter.sensor, "trigger": letter.trigger},
        )
