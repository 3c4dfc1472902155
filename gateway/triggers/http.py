"""The ``http`` trigger: an HTTP request whose payload is built from the firing's events.

Semantics follow Argo Events (payload parameters, ``parameters`` applied to the HTTP spec, headers,
``secureHeaders``, ``basicAuth``, ``timeout``, ``policy.status.allow``) with one deliberate
difference: without ``policy.status.allow`` a response of 400 or more is a failure (Argo counts it
as success and the firing is lost). Every request carries ``Idempotency-Key`` with the firing's
key so that a receiver can drop a repeated delivery after a crash or a replay.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from gateway.errors import TriggerError
from gateway.triggers.base import TriggerContext, TriggerExecutor
from sensors.engine import Fire
from sensors.params import ParameterError, apply_parameters, construct_payload
from sensors.spec import HTTPTrigger, Trigger, TriggerTemplate

RETRIABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpTrigger(TriggerExecutor):
    kind = "http"

    def __init__(self, trigger: Trigger, context: TriggerContext) -> None:
        super().__init__(trigger, context)
        assert trigger.template.http is not None
        self.spec = trigger.template.http
        # At most this many requests of this trigger at once: the shared connection pool is
        # bounded too, and a long queue inside httpcore costs CPU per request (see bench/).
        self._concurrency = asyncio.Semaphore(32)
        policy = trigger.policy.status if trigger.policy else None
        self.allow: frozenset[int] | None = frozenset(policy.allow) if policy else None

    def _resolve_spec(self, fire: Fire) -> HTTPTrigger:
        spec = self.spec
        if self.trigger.parameters:
            doc = self.trigger.template.model_dump(by_alias=True, exclude_none=True)
            doc = apply_parameters(doc, self.trigger.parameters, fire.events)
            template = TriggerTemplate.model_validate(doc)
            assert template.http is not None
            spec = template.http
        if spec.parameters:
            doc = spec.model_dump(by_alias=True, exclude_none=True)
            doc = apply_parameters(doc, spec.parameters, fire.events)
            spec = HTTPTrigger.model_validate(doc)
        return spec

    def _headers(self, spec: HTTPTrigger, fire: Fire, body: bytes) -> dict[str, str]:
        headers = dict(spec.headers)
        for secure in spec.secure_headers:
            ref = secure.value_from.secret_key_ref
            if ref is not None:
                headers[secure.name] = self.context.secrets.get(ref).reveal()
        if spec.basic_auth is not None:
            user = (
                self.context.secrets.get(spec.basic_auth.username).reveal()
                if spec.basic_auth.username
                else ""
            )
            password = (
                self.context.secrets.get(spec.basic_auth.password).reveal()
                if spec.basic_auth.password
                else ""
            )
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        if body and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = fire.key
        headers["X-Triggergate-Sensor"] = fire.sensor
        headers["X-Triggergate-Trigger"] = fire.trigger
        return headers

    async def execute(self, fire: Fire) -> str:
        try:
            spec = self._resolve_spec(fire)
            body = construct_payload(spec.payload, fire.events) if spec.payload else b""
        except (ParameterError, ValueError) as exc:
            raise TriggerError(f"cannot build the HTTP request: {exc}", retriable=False) from exc
        if body == b"null":
            body = b""
        headers = self._headers(spec, fire, body)
        try:
            async with self._concurrency:
                response = await self.context.http.request(
                    spec.method, spec.url, content=body, headers=headers, timeout=float(spec.timeout)
                )
        except httpx.InvalidURL as exc:
            raise TriggerError(f"invalid url {spec.url!r}: {exc}", retriable=False) from exc
        except httpx.UnsupportedProtocol as exc:
            raise TriggerError(f"unsupported url {spec.url!r}: {exc}", retriable=False) from exc
        except httpx.TimeoutException as exc:
            raise TriggerError(
                f"{spec.method} {spec.url} timed out after {spec.timeout}s", retriable=True
            ) from exc
        except httpx.HTTPError as exc:
            raise TriggerError(f"{spec.method} {spec.url} failed: {exc!r}", retriable=True) from exc
        status = response.status_code
        summary = f"{spec.method} {spec.url} -> HTTP {status}"
        ok = status in self.allow if self.allow is not None else status < 400
        if ok:
            return summary
        reason = response.text[:300].strip()
        raise TriggerError(
            f"{summary}"
            + (f": {reason}" if reason else "")
            + ("" if self.allow is None else f" (policy.status.allow: {sorted(self.allow)})"),
            retriable=status in RETRIABLE_STATUS or status >= 500,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )
