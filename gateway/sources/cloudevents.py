"""CloudEvents received over HTTP (CloudEvents 1.0 HTTP protocol binding), as pure helpers.

Three modes are recognised on a webhook request that carries a body:

* **structured**: ``Content-Type: application/cloudevents+json``; the body is one CloudEvent
  object (``specversion``, ``id``, ``source``, ``type`` required);
* **batched**: ``Content-Type: application/cloudevents-batch+json``; the body is a JSON array of
  such objects, one event each;
* **binary**: a ``ce-specversion`` header; the attributes are ``ce-*`` headers (``ce-id``,
  ``ce-source``, ``ce-type`` required; values percent-decoded) and the body is the event data.

The webhook source keeps Argo's payload shape (``{"header", "body", "metadata"}``; ``body`` is the
whole CloudEvent object in structured/batched mode and the request body in binary mode) and its
envelope (``source`` = EventSource name, ``subject`` = event name, ``type`` = ``webhook``), so
Sensor dependencies match as they do in Argo. What the sender said goes into envelope extensions:
``ceid``, ``cesource``, ``cetype`` and every upstream extension attribute. The envelope id is
derived from (EventSource, event, ce source, ce id): a sender's retry of the same CloudEvent gets
the same id and the bus stores it once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from sensors.event import deterministic_event_id

STRUCTURED_MEDIA_TYPE = "application/cloudevents+json"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
SUPPORTED_SPEC_VERSIONS = ("1.0", "0.3")
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")

# Context attributes of CloudEvents 1.0 (and 0.3), never copied as extensions: the envelope
# has its own values for them.
_CONTEXT_ATTRIBUTES = frozenset(
    {
        "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
        "schemaurl", "datacontentencoding", "data", "data_base64",
    }
)
# Set by us from the upstream attributes; upstream extensions of the same name are overridden.
UPSTREAM_ID, UPSTREAM_SOURCE, UPSTREAM_TYPE = "ceid", "cesource", "cetype"
_EXTENSION_NAME = re.compile(r"[a-z0-9]+")


class CloudEventError(ValueError):
    """The request claims to be a CloudEvent but is not a valid one (answered with HTTP 400)."""


@dataclass(frozen=True, slots=True)
class IncomingCloudEvent:
    """The identity of one received CloudEvent and the value that becomes the payload ``body``."""

    id: str
    source: str
    type: str
    specversion: str
    body: Any
    upstream_extensions: dict[str, str] = field(default_factory=dict)

    def event_id(self, event_source: str, event_name: str) -> str:
        """The envelope id: the same CloudEvent (ce source + ce id) always gets the same id."""
        return deterministic_event_id("webhook", event_source, event_name, self.source, self.id)

    def extensions(self) -> dict[str, str]:
        """Envelope extensions: upstream extension attributes, then ``ceid``/``cesource``/``cetype``."""
        result = dict(self.upstream_extensions)
        result[UPSTREAM_ID] = self.id
        result[UPSTREAM_SOURCE] = self.source
        result[UPSTREAM_TYPE] = self.type
        return result


def media_type(content_type: str | None) -> str:
    """``application/json`` from ``Application/JSON; charset=utf-8``; ``""`` when absent."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _extension_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _extensions(items: Iterable[tuple[str, Any]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in items:
        if name in _CONTEXT_ATTRIBUTES or not _EXTENSION_NAME.fullmatch(name):
            continue
        text = _extension_value(value)
        if text is not None:
            result[name] = text
    return result


def _required(attributes: dict[str, Any], what: str) -> tuple[str, str, str, str]:
    values: list[str] = []
    for name in REQUIRED_ATTRIBUTES:
        value = attributes.get(name)
        if value is None:
            raise CloudEventError(f"{what} is missing the required attribute '{name}'")
        if not isinstance(value, str) or not value:
            raise CloudEventError(f"{what}: attribute '{name}' must be a non-empty string")
        values.append(value)
    specversion, ce_id, source, ce_type = values
    if specversion not in SUPPORTED_SPEC_VERSIONS:
        raise CloudEventError(
            f"{what}: specversion {specversion!r} is not supported; use one of "
            + ", ".join(SUPPORTED_SPEC_VERSIONS)
        )
    return specversion, ce_id, source, ce_type


def parse_structured(doc: Any, *, what: str = "structured CloudEvent") -> IncomingCloudEvent:
    """One CloudEvent from the parsed JSON body of a structured-mode request."""
    if not isinstance(doc, dict):
        raise CloudEventError(f"{what} must be a JSON object, not {type(doc).__name__}")
    specversion, ce_id, source, ce_type = _required(doc, what)
    return IncomingCloudEvent(
        id=ce_id,
        source=source,
        type=ce_type,
        specversion=specversion,
        body=doc,
        upstream_extensions=_extensions(doc.items()),
    )


def parse_batch(doc: Any) -> list[IncomingCloudEvent]:
    """The CloudEvents of a batched-mode body (a JSON array; it may be empty)."""
    if not isinstance(doc, list):
        raise CloudEventError(f"a CloudEvents batch must be a JSON array, not {type(doc).__name__}")
    return [parse_structured(item, what=f"CloudEvent {index} of the batch") for index, item in enumerate(doc)]


def binary_attributes(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str] | None:
    """The ``ce-*`` attributes of a binary-mode request, or ``None`` without ``ce-specversion``.

    ``headers`` are ASGI header pairs (lower-case names). Values are percent-decoded as the HTTP
    binding requires; the first value of a repeated header wins.
    """
    attributes: dict[str, str] = {}
    for raw_name, raw_value in headers:
        if raw_name[:3] != b"ce-":
            continue
        name = raw_name[3:].decode("latin-1")
        if name not in attributes:
            attributes[name] = unquote(raw_value.decode("latin-1"), encoding="utf-8", errors="replace")
    if "specversion" not in attributes:
        return None
    return attributes


def parse_binary(attributes: dict[str, str], body: Any) -> IncomingCloudEvent:
    """One CloudEvent from binary-mode attributes (see :func:`binary_attributes`) and the body."""
    missing = [name for name in REQUIRED_ATTRIBUTES if not attributes.get(name)]
    if missing:
        raise CloudEventError(
            "binary-mode CloudEvent (it has a ce-specversion header) is missing the header "
            + ", ".join(f"ce-{name}" for name in missing)
        )
    specversion, ce_id, source, ce_type = _required(dict(attributes), "binary-mode CloudEvent")
    return IncomingCloudEvent(
        id=ce_id,
        source=source,
        type=ce_type,
        specversion=specversion,
        body=body,
        upstream_extensions=_extensions(attributes.items()),
    )
