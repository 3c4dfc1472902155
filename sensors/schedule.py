"""Cron schedules for ``conditionsReset.byTime``: 5-field cron in an IANA time zone (default UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter


class ScheduleError(ValueError):
    """The cron expression or the time zone is invalid."""


def zone(name: str | None) -> tzinfo:
    """The time zone called ``name`` (IANA, e.g. ``Europe/Berlin``); UTC when empty."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r}: use an IANA name such as 'UTC' or 'America/Los_Angeles'"
        ) from None


@dataclass(frozen=True, slots=True)
class CronSchedule:
    cron: str
    tz: tzinfo

    @classmethod
    def parse(cls, cron: str, timezone: str | None = None) -> CronSchedule:
        fields = cron.split()
        if len(fields) != 5 or not croniter.is_valid(cron):
            raise ScheduleError(
                f"invalid cron expression {cron!r}: use 5 fields (minute hour day-of-month month "
                "day-of-week), for example '59 23 * * *'"
            )
        return cls(cron, zone(timezone))

    def previous(self, now: datetime) -> datetime:
        """The latest tick at or before ``now``."""
        local = now.astimezone(self.tz)
        itr = croniter(self.cron, local)
        on_tick = local.second == 0 and local.microsecond == 0
        if on_tick and itr.match(self.cron, local):
            return local
        prev: datetime = itr.get_prev(datetime)
        return prev

    def following(self, now: datetime) -> datetime:
        """The first tick strictly after ``now``."""
        nxt: datetime = croniter(self.cron, now.astimezone(self.tz)).get_next(datetime)
        return nxt
