"""How long a broker source waits before it connects again.

The delays follow the event's ``connectionBackoff`` (Argo's ``Backoff``): the first wait is
``duration`` (default 1 s), each next one is ``factor`` times longer (default 1, Argo's default),
and each is stretched by up to ``jitter`` times itself (default 1, Argo's default). Unlike Argo, a
source never gives up after ``steps`` attempts: a broker that comes back later is picked up again
without a restart. The wait is capped at :data:`MAX_DELAY` seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sensors.spec import Backoff, parse_go_duration

MAX_DELAY = 60.0


class ReconnectDelays:
    """``next()`` is the wait before the next attempt; ``reset()`` after a successful connection."""

    def __init__(
        self, backoff: Backoff | None, *, cap: float = MAX_DELAY, rand: Callable[[], float] = random.random
    ) -> None:
        self.first = 1.0
        self.factor = 1.0
        self.jitter = 1.0
        if backoff is not None:
            if backoff.duration is not None:
                self.first = parse_go_duration(backoff.duration)
            if backoff.factor is not None and backoff.factor > 0:
                self.factor = backoff.factor
            if backoff.jitter is not None:
                self.jitter = max(0.0, backoff.jitter)
        self.cap = cap
        self._rand = rand
        self._current = self.first

    def next(self) -> float:
        base = self._current
        self._current = min(self.cap, self._current * self.factor)
        return min(self.cap, base + self._rand() * self.jitter * base)

    def reset(self) -> None:
        self._current = self.first
