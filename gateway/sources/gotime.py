"""Timestamps written the way Go's ``time.Time.String()`` writes them, as Argo's payloads carry them.

Argo Events puts ``msg.Timestamp.String()`` into the ``timestamp`` field of Kafka and AMQP events,
for example ``2026-01-02 15:04:05.123 +0000 UTC``: Go's layout
``2006-01-02 15:04:05.999999999 -0700 MST`` (fraction without trailing zeros, left out when zero)
in the pod's time zone, which is UTC in the Argo images. An unset time prints Go's zero time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

GO_ZERO_TIME = "0001-01-01 00:00:00 +0000 UTC"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def go_time_string(t: datetime | None) -> str:
    """``t`` (converted to UTC; naive means UTC) as Go prints it; ``None`` gives Go's zero time."""
    if t is None:
        return GO_ZERO_TIME
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


def from_unix_millis(millis: int | None) -> datetime | None:
    """A Kafka record timestamp (milliseconds since the epoch); ``None`` or negative means unset."""
    if millis is None or millis < 0:
        return None
    return _EPOCH + timedelta(milliseconds=millis)
