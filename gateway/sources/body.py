"""The ``body`` of a broker message in an Argo payload (Kafka, AMQP).

Argo puts the message bytes into its payload structs as ``[]byte`` (``jsonBody: false``), which
Go's JSON encoder writes as base64 text, or as ``json.RawMessage`` (``jsonBody: true``), which
embeds them as JSON and fails when they are not JSON. A missing value (a Kafka tombstone) is
``null`` either way.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson


class InvalidBody(ValueError):
    """A message body that is not JSON although ``jsonBody`` is true."""


def encode_body(value: bytes | None, json_body: bool) -> Any:
    """The payload ``body``: the bytes as JSON (``jsonBody``) or as base64 text; raises InvalidBody."""
    if value is None:
        return None
    if json_body:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidBody(f"jsonBody is true but the body is not JSON: {exc}") from None
    return base64.b64encode(value).decode("ascii")
