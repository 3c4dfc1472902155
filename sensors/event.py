"""The event envelope: CloudEvents 1.0, built as Argo Events builds it.

``type`` is the event-source type (``webhook``), ``source`` the EventSource name, ``subject`` the
event name (the key under the source type), ``data`` the JSON payload of the source.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

SPEC_VERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"


class EnvelopeError(ValueError):
    """A stored or received envelope cannot be decoded."""


_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def random_event_id() -> str:
    """A unique 32-hex-character id for an event without upstream identity (Argo: a UUIDv4).

    A random 64-bit prefix chosen when the process starts, then a counter: unique across
    processes and restarts, and cheap enough for the webhook's hot path.
    """
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def deterministic_event_id(*parts: str) -> str:
    """A stable 32-hex-character id derived from upstream identity.

    A redelivered upstream message gives the same parts, hence the same id, and the bus drops it
    as a duplicate.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


def format_time(t: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix and microseconds where present."""
    t = t.astimezone(UTC)
    text = t.isoformat()
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise EnvelopeError(f"invalid event time {text!r}: {exc}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t


@dataclass(frozen=True, slots=True)
class Event:
    """One CloudEvent as it travels on the bus and through the engine."""

    id: str
    source: str
    subject: str
    type: str
    time: datetime
    data: Any
    datacontenttype: str = JSON_CONTENT_TYPE
    specversion: str = SPEC_VERSION
    extensions: dict[str, str] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        """The event context as Argo exposes it to ``contextKey`` parameters and context filters."""
        return {
            "id": self.id,
            "source": self.source,
            "specversion": self.specversion,
            "type": self.type,
            "datacontenttype": self.datacontenttype,
            "subject": self.subject,
            "time": format_time(self.time),
        }

    def data_bytes(self) -> bytes:
        """The data serialized as JSON bytes (what Argo calls the event's data)."""
        return orjson.dumps(self.data)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.context()
        for key, value in self.extensions.items():
            doc[key] = value
        doc["data"] = self.data
        return doc

    def to_json(self) -> bytes:
        """CloudEvents structured-mode JSON."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise EnvelopeError(f"event is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise EnvelopeError("event must be a JSON object")
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Event:
        try:
            known = {
                "id",
                "source",
                "subject",
                "type",
                "time",
                "data",
                "datacontenttype",
                "specversion",
            }
            return cls(
                id=str(doc["id"]),
                source=str(doc["source"]),
                subject=str(doc.get("subject", "")),
                type=str(doc["type"]),
                time=parse_time(str(doc["time"])),
                data=doc.get("data"),
                datacontenttype=str(doc.get("datacontenttype", JSON_CONTENT_TYPE)),
                specversion=str(doc.get("specversion", SPEC_VERSION)),
                extensions={k: str(v) for k, v in doc.items() if k not in known},
            )
        except KeyError as exc:
            raise EnvelopeError(f"event is missing the required attribute {exc.args[0]!r}") from None
