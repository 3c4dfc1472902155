"""Commit bookkeeping of the Kafka source: which offsets are durable, so commits never pass one
that is not."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from aiokafka import TopicPartition


class OffsetRange:
    """Offsets ``first..end-1`` of one partition, fetched together; ``done`` once durable."""

    __slots__ = ("done", "end", "first")

    def __init__(self, first: int, end: int) -> None:
        self.first = first
        self.end = end
        self.done = False


class OffsetTracker:
    """Which offsets of each partition are durable, so that commits never pass a pending one.

    Ranges are added in fetch order (increasing offsets per partition) and marked done in any
    order; :meth:`committable` is the offset to commit (the next one to read) once every range
    before it is done. Dropping a partition (revoked, or sought back) forgets its ranges; a stale
    range marked done afterwards changes nothing.
    """

    def __init__(self) -> None:
        self._ranges: dict[TopicPartition, deque[OffsetRange]] = {}
        self._committable: dict[TopicPartition, int] = {}

    def add(self, tp: TopicPartition, first: int, last: int) -> OffsetRange:
        rng = OffsetRange(first, last + 1)
        self._ranges.setdefault(tp, deque()).append(rng)
        return rng

    def done(self, ranges: Iterable[OffsetRange]) -> None:
        for rng in ranges:
            rng.done = True

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition, the offset up to which (exclusive) everything is durable, if it moved."""
        moved: dict[TopicPartition, int] = {}
        for tp, ranges in self._ranges.items():
            end = None
            while ranges and ranges[0].done:
                end = ranges.popleft().end
            if end is not None and end > self._committable.get(tp, -1):
                self._committable[tp] = end
                moved[tp] = end
        return moved

    def restart_points(self) -> dict[TopicPartition, int]:
        """Per partition with pending ranges, the first offset not yet durable."""
        return {tp: ranges[0].first for tp, ranges in self._ranges.items() if ranges}

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self._ranges.pop(tp, None)
            self._committable.pop(tp, None)

    def partitions(self) -> list[TopicPartition]:
        return list(self._ranges)


