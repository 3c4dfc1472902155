"""The in-memory bus: the bus contract without durability, for tests and ``--bus memory``.

``MemoryBus`` keeps events in a list in this process. It keeps every promise of
``gateway.bus.base`` except surviving a restart: order, batches, per-group acknowledgements in
any order, dedup by id within ``dedup_window`` seconds, wake-up on publish. Events that every
known group has acknowledged and that are older than ``retention`` seconds are dropped, so memory
stays bounded while consumers keep up (as the SQLite bus's retention does).

This module also holds ``AckCursor``, the per-group acknowledgement bookkeeping that every
backend keeping its own offsets shares (the SQLite bus persists it).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncGenerator, Iterable, Sequence

from gateway.bus.base import Bus, Delivery, OnRevoke
from gateway.errors import BusError
from sensors.event import Event


class AckCursor:
    """The acknowledgements of one group.

    Every ``seq <= cursor`` is done; ``above`` holds the seqs acknowledged (or known never to
    exist) beyond the cursor, because acks arrive out of order. The cursor advances over
    contiguous done seqs, so ``above`` only holds what is acknowledged past the oldest pending one.
    """

    __slots__ = ("above", "cursor")

    def __init__(self, cursor: int = 0, above: Iterable[int] = ()) -> None:
        self.cursor = cursor
        self.above: set[int] = {seq for seq in above if seq > cursor}
        self._advance()

    def is_done(self, seq: int) -> bool:
        return seq <= self.cursor or seq in self.above

    def ack(self, seq: int) -> bool:
        """Mark ``seq`` done. Returns True if that changed anything."""
        if seq <= self.cursor or seq in self.above:
            return False
        if seq == self.cursor + 1:
            self.cursor = seq
            self._advance()
        else:
            self.above.add(seq)
        return True

    def skip(self, first: int, last: int) -> bool:
        """Mark the seqs ``first..last`` (which will never be delivered) done."""
        if last < first or last <= self.cursor:
            return False
        if first <= self.cursor + 1:
            self.cursor = last
            self.above = {seq for seq in self.above if seq > last} if self.above else self.above
            self._advance()
            return True
        changed = False
        for seq in range(first, last + 1):
            changed = self.ack(seq) or changed
        return changed

    def _advance(self) -> None:
        above = self.above
        while above and self.cursor + 1 in above:
            self.cursor += 1
            above.discard(self.cursor)


class MemoryBus(Bus):
    """The bus contract in memory. Not durable: everything is gone when the process ends."""

    def __init__(self, *, dedup_window: float = 86400.0, retention: float = 3600.0) -> None:
        for name, value in (("dedup_window", dedup_window), ("retention", retention)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {value}")
        self._dedup_window = dedup_window
        self._retention = retention
        self._log: list[Delivery] = []
        self._times: list[float] = []  # publish time of each entry of self._log
        self._first_seq = 1  # seq of self._log[0] (or of the next event when the log is empty)
        self._head = 0  # the highest seq ever published
        self._seen: dict[str, float] = {}  # event id -> publish time, oldest first
        self._groups: dict[str, AckCursor] = {}
        self._waiters: set[asyncio.Future[None]] = set()
        self._started = False
        self._closed = False

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        self._closed = True
        self._wake()

    async def healthy(self) -> bool:
        return self._started and not self._closed

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise BusError(f"cannot {action}: the memory bus is closed")
        if not self._started:
            raise BusError(f"cannot {action}: the memory bus is not started (call start() first)")

    async def publish(self, events: Sequence[Event]) -> list[bool]:
        self._check_open("publish")
        now = time.monotonic()
        self._forget_before(now - self._dedup_window)
        stored: list[bool] = []
        for event in events:
            if event.id in self._seen:
                stored.append(False)
                continue
            self._seen[event.id] = now
            self._head += 1
            self._log.append(Delivery(self._head, event))
            self._times.append(now)
            stored.append(True)
        if any(stored):
            self._wake()
            self._drop_acknowledged(now)
        return stored

    def _forget_before(self, horizon: float) -> None:
        seen = self._seen
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] >= horizon:
                break
            del seen[oldest]

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def _group(self, name: str) -> AckCursor:
        state = self._groups.get(name)
        if state is None:
            state = self._groups[name] = AckCursor(self._first_seq - 1)
        return state

    async def subscribe(
        self, group: str, *, batch_size: int = 512, on_revoke: OnRevoke | None = None
    ) -> AsyncGenerator[list[Delivery], None]:
        # ``on_revoke`` is accepted and ignored: this bus never takes events away from a subscription.
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._check_open("subscribe")
        state = self._group(group)
        position = state.cursor
        loop = asyncio.get_running_loop()
        while not self._closed:
            if position < self._first_seq - 1:  # dropped meanwhile: acknowledged by every group
                position = self._first_seq - 1
            start = position + 1 - self._first_seq
            chunk = self._log[start : start + batch_size]
            if chunk:
                position = chunk[-1].seq
                batch = [d for d in chunk if not state.is_done(d.seq)]
                if batch:
                    yield batch
                continue
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                self._waiters.discard(waiter)

    async def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        self._check_open("ack")
        state = self._group(group)
        for delivery in deliveries:
            if not 0 < delivery.seq <= self._head:
                raise ValueError(
                    f"cannot ack seq {delivery.seq} for group {group!r}: it was never published on this bus"
                )
            state.ack(delivery.seq)
        self._drop_acknowledged(time.monotonic())

    def _drop_acknowledged(self, now: float) -> None:
        """Drop the events every known group acknowledged that are older than ``retention``."""
        if not self._groups:
            return
        done = min(state.cursor for state in self._groups.values())
        count = min(done - self._first_seq + 1, bisect.bisect_left(self._times, now - self._retention))
        # Drop in chunks so that a steady stream of acks costs amortized O(1).
        if count > 0 and (count >= 1024 or count == len(self._log)):
            del self._log[:count]
            del self._times[:count]
            self._first_seq += count

    async def get(self, event_id: str) -> Event | None:
        """The retained event with this id, or None."""
        for delivery in reversed(self._log):
            if delivery.event.id == event_id:
                return delivery.event
        return None

    async def stats(self) -> dict[str, object]:
        """Counts for operators: retained events, the head seq, per group cursor and pending."""
        groups: dict[str, dict[str, int]] = {}
        for name, state in sorted(self._groups.items()):
            pending = sum(1 for d in self._log if not state.is_done(d.seq))
            groups[name] = {"cursor": state.cursor, "pending": pending}
        return {"backend": "memory", "events": len(self._log), "head": self._head, "groups": groups}
