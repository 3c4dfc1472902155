"""The ``log`` trigger: logs each dependency's event, as Argo Events' log trigger does."""

from __future__ import annotations

import logging
import time

from gateway.triggers.base import TriggerContext, TriggerExecutor
from sensors.engine import Fire
from sensors.spec import Trigger

logger = logging.getLogger("triggergate.trigger.log")


class LogTrigger(TriggerExecutor):
    kind = "log"

    def __init__(self, trigger: Trigger, context: TriggerContext) -> None:
        super().__init__(trigger, context)
        assert trigger.template.log is not None
        self.interval = float(trigger.template.log.interval_seconds)
        self._last = 0.0

    async def execute(self, fire: Fire) -> str:
        now = time.monotonic()
        if self.interval and now - self._last < self.interval:
            return "logged nothing (within intervalSeconds)"
        self._last = now
        for dep, event in sorted(fire.events.items()):
            logger.info(
                "trigger %s/%s fired by %s: %s",
                fire.sensor,
                fire.trigger,
                dep,
                event.data_bytes().decode("utf-8", "replace"),
                extra={
                    "sensor": fire.sensor,
                    "trigger": fire.trigger,
                    "dependency": dep,
                    "event_id": event.id,
                    "event_source": event.source,
                    "event_name": event.subject,
                    "firing": fire.key,
                },
            )
        return f"logged {len(fire.events)} event(s)"
