"""Per-trigger rate limit (Argo's ``rateLimit``): a leaky bucket without bursts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sensors.spec import RateLimit

_UNIT_SECONDS = {"Second": 1.0, "Minute": 60.0, "Hour": 3600.0}


class RateLimiter:
    """``await acquire()`` returns when the next request may go: at most N per unit, evenly spaced."""

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = 0.0
        if limit is not None and limit.requests_per_unit > 0:
            self.interval = _UNIT_SECONDS[limit.unit] / limit.requests_per_unit
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = self._clock()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
            if wait > 0:
                await self._sleep(wait)
