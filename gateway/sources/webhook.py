"""The ``webhook`` event source: Argo Events' generic HTTP endpoint, with CloudEvents ingestion.

Every event under ``spec.webhook`` of every EventSource is an (endpoint, method) on a port. One
HTTP server runs per port and serves all events on that port, whatever EventSource they belong to;
``GET /health`` answers on every port. A request becomes one event (a batched CloudEvents request
becomes several), published to the bus; the caller gets ``200 success`` only once the bus has made
it durable, so a caller that retries on failure gets at-least-once delivery.

Request handling, in order (Argo's order where Argo has the step):

1. unknown path -> ``404``.
2. ``authSecret`` set: no ``Authorization: Bearer <token>`` header -> ``401 Invalid Authorization
   Header``; wrong token (compared in constant time) -> ``401 Invalid Auth token``; both with
   ``WWW-Authenticate: Bearer``. The secret file cannot be read -> ``500 Error loading auth token``.
3. method other than the event's -> ``405`` with ``Allow``.
4. body: ``GET`` -> the query string as ``{name: [values...]}`` (``{}`` without one). Other
   methods: ``application/x-www-form-urlencoded`` -> the form, same shape; anything else must be
   JSON (parsed; empty or invalid -> ``400`` saying why). More than ``maxPayloadSize`` bytes
   (default 1 MiB; checked on ``Content-Length`` and while the body streams in) -> ``413``.
5. payload ``{"header": {Canonical-Name: [values...]}, "body": ..., "metadata": {...}}``; header
   names in Go's canonical form (Argo users write ``header.Content-Type``), ``Host`` and
   ``Transfer-Encoding`` left out as Go's server does, the ``Authorization`` value replaced by
   ``*** Masked Auth Secret ***`` (whether or not ``authSecret`` is set); ``metadata`` left out when
   the event has none (Go's ``omitempty``).
6. envelope: CloudEvents 1.0 with ``type=webhook``, ``source`` = EventSource name, ``subject`` =
   event name, a random 32-hex id and the current UTC time.
7. ``await publisher.publish(events)``: returned -> ``200 success`` (also when the bus reports a
   duplicate); ``BusError`` -> ``503 failed to record event`` with ``Retry-After: 1``.

``GET /health`` answers ``200 OK``, or ``503`` while the publisher's ``healthy()`` says False.
``GET /metrics`` answers the gateway's Prometheus metrics (``gateway.metrics``; ``503`` until the
runtime has set them up with :meth:`WebhookServer.expose_metrics`). Both paths are reserved: an
event's ``endpoint`` cannot be ``/health`` or ``/metrics`` (the manifest is refused at load).
Each event counts what it received (:class:`~gateway.sources.base.ReceivedCounts`): events
accepted, duplicate and failed, and requests rejected by status (a ``405`` on a path that serves
several events is not counted: no single event is meant).
A missing ``authSecret`` file fails :meth:`WebhookServer.start` (``optional: true``: a warning,
and ``500 Error loading auth token`` until the file exists).

CloudEvents (see :mod:`gateway.sources.cloudevents`): structured (``application/cloudevents+json``),
batched (``application/cloudevents-batch+json``) and binary (``ce-*`` headers) requests keep the
payload shape above. Their envelope id is derived from the upstream ``source`` and ``id``, so a
sender retrying the same CloudEvent is stored once; ``ceid``/``cesource``/``cetype`` and upstream
extension attributes become envelope extensions. An invalid CloudEvent -> ``400`` naming the
attribute.

Where this differs from Argo Events (v1.9):

* wrong method: ``405`` with ``Allow`` (Argo: ``400 http method does not match``); an endpoint
  serves ``PUT``/``PATCH``/``DELETE`` events like ``POST`` (Argo only handles ``GET``/``POST``).
* several events may share a port and endpoint with different methods (Argo silently routes all
  of them to the first one registered); the same port, endpoint and method twice is a config error.
* body too large: ``413`` (Argo: ``400``); the limit also applies to form bodies (Argo: 10 MB).
* bus failure: ``503`` with ``Retry-After`` (Argo: ``500``, after its own publish retries).
* the form content type is matched on the media type alone (``...; charset=utf-8`` is a form);
  Argo needs the exact string ``application/x-www-form-urlencoded``.
* JSON bodies are parsed (orjson): integers beyond 64 bits become floats; Argo keeps the raw text.
* trailing-slash paths are not redirected (as Argo: ``/example/`` is a different path -> 404).
* CloudEvents: Argo (unreleased master) overwrites the envelope's id/source/type/subject/time with
  the incoming CloudEvent's; we keep Argo's release envelope and put the upstream attributes in
  extensions, and derive a deterministic id (Argo: random, or the sender's id as is).
* ``traceparent``/``tracestate`` request headers are copied into envelope extensions.
* the auth token is read once and cached by the ``SecretStore`` (Argo re-reads the file on every
  request, so a rotated token needs a restart here).
* ``/health`` answers ``GET``/``HEAD`` only (Argo: any method) and ``503`` while the bus is
  unhealthy; unknown paths get FastAPI's ``{"detail": "Not Found"}`` (Argo: ``404 page not found``).
* query strings and form bodies are decoded by Python's ``parse_qs``: a pair with a bad ``%``
  escape is kept as written and ``;`` is not a separator (Go drops such pairs).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.errors import BusError, ConfigError
from gateway.httpserver import HttpServer
from gateway.secrets import SecretNotFound, SecretStore
from gateway.sources import cloudevents
from gateway.sources.base import (
    HealthReporter,
    MetricsExporter,
    Publisher,
    ReceivedCounts,
    Source,
    rejection_outcome,
)
from sensors.event import Event, random_event_id
from sensors.spec import EventSource, SecretKeySelector, WebhookEventSource

logger = logging.getLogger("triggergate.webhook")

SOURCE_TYPE = "webhook"
DEFAULT_HOST = "0.0.0.0"
MASKED_AUTHORIZATION = "*** Masked Auth Secret ***"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_TEXT = "text/plain; charset=utf-8"
_DROPPED_HEADERS = frozenset({b"host", b"transfer-encoding"})
_TRACE_HEADERS = {b"traceparent": "traceparent", b"tracestate": "tracestate"}


# --------------------------------------------------------------------------- pure helpers


class RequestRejected(Exception):
    """A request that is answered with ``status`` and the plain-text ``reason``."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers

    def response(self) -> Response:
        return Response(self.reason, self.status, headers=self.headers, media_type=_TEXT)


def canonical_header_name(name: str) -> str:
    """Go's ``http.CanonicalHeaderKey``: ``x-foo-bar`` -> ``X-Foo-Bar``, ``content-type`` -> ``Content-Type``.

    Names with characters outside an HTTP token are returned unchanged, as Go does.
    """
    if not name or any(c not in _TOKEN_CHARS for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_CANONICAL_CACHE: dict[bytes, str] = {}
_CANONICAL_CACHE_LIMIT = 4096


def _canonical(raw_name: bytes) -> str:
    name = _CANONICAL_CACHE.get(raw_name)
    if name is None:
        name = canonical_header_name(raw_name.decode("latin-1"))
        if len(_CANONICAL_CACHE) < _CANONICAL_CACHE_LIMIT:
            _CANONICAL_CACHE[raw_name] = name
    return name


@dataclass(slots=True)
class RequestHeaders:
    """What one pass over the ASGI headers yields.

    ``header`` is the payload's header map (canonical names, values in order, ``Authorization``
    masked, ``Host``/``Transfer-Encoding`` left out); the other fields are first values, raw.
    """

    header: dict[str, list[str]] = field(default_factory=dict)
    authorization: bytes | None = None
    content_type: str | None = None
    content_length: bytes | None = None
    cloudevent: bool = False
    trace: dict[str, str] | None = None


def collect_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> RequestHeaders:
    """Builds :class:`RequestHeaders` from ASGI header pairs (lower-case names, raw values)."""
    result = RequestHeaders()
    header = result.header
    for raw_name, raw_value in raw_headers:
        if raw_name == b"authorization":
            if result.authorization is None:
                result.authorization = raw_value
            # Argo: Header.Set("Authorization", masked) when the value is not empty.
            header["Authorization"] = [MASKED_AUTHORIZATION] if raw_value else [""]
            continue
        if raw_name in _DROPPED_HEADERS:
            continue
        value = raw_value.decode("utf-8", "replace")
        if raw_name == b"content-type":
            if result.content_type is None:
                result.content_type = value
        elif raw_name == b"content-length":
            if result.content_length is None:
                result.content_length = raw_value
        elif raw_name[:3] == b"ce-":
            result.cloudevent = True
        elif raw_name in _TRACE_HEADERS:
            if result.trace is None:
                result.trace = {}
            result.trace.setdefault(_TRACE_HEADERS[raw_name], value)
        name = _canonical(raw_name)
        values = header.get(name)
        if values is None:
            header[name] = [value]
        else:
            values.append(value)
    return result


def query_to_arrays(query: str | bytes) -> dict[str, list[str]]:
    """A query string or form body as Go's ``url.Values``.

    ``x=1&x=2&y`` -> ``{"x": ["1", "2"], "y": [""]}``; ``+`` and ``%XX`` are decoded.
    """
    if isinstance(query, bytes):
        query = query.decode("utf-8", "replace")
    if not query:
        return {}
    return parse_qs(query, keep_blank_values=True, encoding="utf-8", errors="replace")


def parse_json_body(raw: bytes) -> Any:
    """The JSON document of a request body; ``RequestRejected(400)`` when empty or not JSON."""
    if not raw or raw.isspace():
        raise RequestRejected(400, "request body is empty: send a JSON document (or a form)")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestRejected(400, f"request body is not valid JSON: {exc}") from None


def parse_body(content_type: str | None, raw: bytes) -> Any:
    """The payload ``body`` of a request with a body (any method but GET)."""
    if cloudevents.media_type(content_type) == FORM_MEDIA_TYPE:
        return query_to_arrays(raw)
    return parse_json_body(raw)


def check_content_length(content_length: bytes | None, limit: int) -> None:
    """``RequestRejected(413)`` when the announced body is larger than ``limit`` bytes."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise RequestRejected(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"request body too large: the limit of this endpoint is {limit} bytes (maxPayloadSize)"


def webhook_payload(header: dict[str, list[str]], body: Any, metadata: dict[str, str]) -> dict[str, Any]:
    """Argo's ``WebhookEventData``: ``metadata`` is left out when empty (``omitempty``)."""
    data: dict[str, Any] = {"header": header, "body": body}
    if metadata:
        data["metadata"] = dict(metadata)
    return data


def check_bearer(authorization: bytes | None, secret: Any) -> None:
    """Argo's bearer check; ``secret`` is a ``SecretValue`` (``matches`` is constant time)."""
    if authorization is None or not authorization.startswith(b"Bearer "):
        raise RequestRejected(401, "Invalid Authorization Header", {"WWW-Authenticate": "Bearer"})
    if not secret.matches(authorization[7:]):
        raise RequestRejected(401, "Invalid Auth token", {"WWW-Authenticate": "Bearer"})


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One ``spec.webhook`` entry of one EventSource."""

    event_source: str
    event_name: str
    spec: WebhookEventSource

    @property
    def label(self) -> str:
        return f"{self.event_source}/{self.event_name}"


_SUCCESS = Response(b"success", 200, media_type=_TEXT)
_HEALTHY = Response(b"OK", 200, media_type=_TEXT)


class _Endpoint:
    """The handler of one (port, endpoint, method): auth, body, envelope, publish."""

    __slots__ = (
        "_auth",
        "_limit",
        "_metadata",
        "_name",
        "_publisher",
        "_secrets",
        "_source",
        "counts",
        "event",
    )

    def __init__(self, event: WebhookEvent, publisher: Publisher, secrets: SecretStore | None) -> None:
        self.event = event
        self._source = event.event_source
        self._name = event.event_name
        self._metadata = dict(event.spec.metadata)
        self._limit = event.spec.max_payload_size
        self._auth: SecretKeySelector | None = event.spec.auth_secret
        self._publisher = publisher
        self._secrets = secrets
        self.counts = ReceivedCounts(event.event_source, event.event_name)

    @property
    def has_auth(self) -> bool:
        return self._auth is not None

    def authorize(self, authorization: bytes | None) -> None:
        if self._auth is None:
            return
        assert self._secrets is not None  # WebhookServer refuses authSecret without a store
        try:
            secret = self._secrets.get(self._auth)
        except ConfigError as exc:
            logger.error("webhook %s: cannot load authSecret: %s", self.event.label, exc)
            raise RequestRejected(500, "Error loading auth token") from None
        check_bearer(authorization, secret)

    async def handle(self, request: Request, headers: RequestHeaders) -> Response:
        scope = request.scope
        if scope["method"] == "GET":
            items: list[tuple[Any, cloudevents.IncomingCloudEvent | None]] = [
                (query_to_arrays(scope["query_string"]), None)
            ]
        else:
            raw = await _read_body(request, headers.content_length, self._limit)
            items = self._body_items(headers, raw, scope["headers"])
        now = datetime.now(UTC)
        events = []
        for body, incoming in items:
            data = webhook_payload(headers.header, body, self._metadata)
            if incoming is None:
                events.append(Event(
                    id=random_event_id(), source=self._source, subject=self._name, type=SOURCE_TYPE,
                    time=now, data=data, extensions=dict(headers.trace) if headers.trace else {},
                ))
            else:
                extensions = incoming.extensions()
                if headers.trace:
                    extensions = {**headers.trace, **extensions}
                events.append(Event(
                    id=incoming.event_id(self._source, self._name), source=self._source,
                    subject=self._name, type=SOURCE_TYPE, time=now, data=data, extensions=extensions,
                ))
        if events:
            return await self._publish(events)
        return _SUCCESS

    def _body_items(
        self, headers: RequestHeaders, raw: bytes, raw_headers: Sequence[tuple[bytes, bytes]]
    ) -> list[tuple[Any, cloudevents.IncomingCloudEvent | None]]:
        mtype = cloudevents.media_type(headers.content_type)
        try:
            if mtype == cloudevents.STRUCTURED_MEDIA_TYPE:
                incoming = cloudevents.parse_structured(parse_json_body(raw))
                return [(incoming.body, incoming)]
            if mtype == cloudevents.BATCH_MEDIA_TYPE:
                return [(ce.body, ce) for ce in cloudevents.parse_batch(parse_json_body(raw))]
            body = parse_body(headers.content_type, raw)
            if headers.cloudevent:
                attributes = cloudevents.binary_attributes(raw_headers)
                if attributes is not None:
                    return [(body, cloudevents.parse_binary(attributes, body))]
            return [(body, None)]
        except cloudevents.CloudEventError as exc:
            raise RequestRejected(400, str(exc)) from None

    async def _publish(self, events: list[Event]) -> Response:
        try:
            results = await self._publisher.publish(events)
        except BusError as exc:
            self.counts.publish_failed(len(events))
            logger.warning(
                "webhook %s: could not record %d event(s), answered 503: %s",
                self.event.label, len(events), exc,
            )
            return Response(b"failed to record event", 503, headers={"Retry-After": "1"}, media_type=_TEXT)
        except Exception:
            self.counts.publish_failed(len(events))
            logger.exception("webhook %s: publishing failed unexpectedly, answered 500", self.event.label)
            return Response(b"failed to record event", 500, media_type=_TEXT)
        self.counts.published(results)
        if logger.isEnabledFor(logging.DEBUG):
            for event, stored in zip(events, results, strict=False):
                logger.debug(
                    "webhook %s: event %s %s", self.event.label, event.id,
                    "recorded" if stored else "was a duplicate (already recorded)",
                )
        return _SUCCESS


async def _read_body(request: Request, content_length: bytes | None, limit: int) -> bytes:
    """The request body, never holding more than ``limit`` bytes; ``RequestRejected(413)`` beyond."""
    check_content_length(content_length, limit)
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestRejected(400, "client disconnected before the body was complete")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestRejected(413, _too_large(limit))
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


class _PathRoute:
    """Every event on one (port, endpoint), by method."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.by_method: dict[str, _Endpoint] = {}

    @property
    def allow(self) -> str:
        return ", ".join(sorted(self.by_method))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app of this path (a plain ASGI app, so Starlette routes every method here)."""
        response = await self.respond(Request(scope, receive, send))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        scope = request.scope
        headers = collect_headers(scope["headers"])
        endpoint = self.by_method.get(scope["method"])
        try:
            if endpoint is None:
                self._authorize_any(headers.authorization)
                allow = self.allow
                raise RequestRejected(
                    405, f"method {scope['method']} is not allowed on {self.path}; allowed: {allow}",
                    {"Allow": allow},
                )
            endpoint.authorize(headers.authorization)
            return await endpoint.handle(request, headers)
        except RequestRejected as rejected:
            if endpoint is None and len(self.by_method) == 1:
                endpoint = next(iter(self.by_method.values()))
            if endpoint is not None:
                endpoint.counts.rejected[rejection_outcome(rejected.status)] += 1
            return rejected.response()

    def _authorize_any(self, authorization: bytes | None) -> None:
        """Before saying which methods exist: when every event here needs a token, one must match."""
        endpoints = list(self.by_method.values())
        if not all(e.has_auth for e in endpoints):
            return
        first_error: RequestRejected | None = None
        for endpoint in endpoints:
            try:
                endpoint.authorize(authorization)
                return
            except RequestRejected as exc:
                first_error = first_error or exc
        assert first_error is not None
        raise first_error


async def metrics_response(exporter: MetricsExporter | None, request: Request) -> Response:
    """The answer to ``GET /metrics`` on an HTTP source's port (webhook and s3 servers)."""
    if exporter is None:
        return Response(b"metrics are not set up yet", 503, headers={"Retry-After": "1"}, media_type=_TEXT)
    try:
        body, content_type = await exporter.render(request.headers.get("accept"))
    except Exception:
        logger.exception("rendering the metrics failed")
        return Response(b"rendering the metrics failed", 500, media_type=_TEXT)
    return Response(body, 200, media_type=content_type)


class _EventFastPath:
    """The ASGI app a webhook port serves: event endpoints are answered directly, everything else
    (``/health``, ``/metrics``, unknown paths) goes through the FastAPI app.

    The event endpoints are the hot path (thousands of requests a second): they skip FastAPI's
    middleware stack, which they do not use. An unexpected error there is logged and answered
    ``500``, as FastAPI's ``ServerErrorMiddleware`` would.
    """

    def __init__(self, routes: dict[str, _PathRoute], app: FastAPI) -> None:
        self.routes = routes
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await route(scope, receive, tracking_send)
        except Exception:
            logger.exception("webhook %s %s: unexpected error", scope.get("method"), scope["path"])
            if not started:
                await Response(b"Internal Server Error", 500, media_type=_TEXT)(scope, receive, send)


# --------------------------------------------------------------------------- one server per port


class WebhookServer(Source):
    """The HTTP server of one port and every webhook event on it."""

    def __init__(
        self,
        port: int,
        events: Sequence[WebhookEvent],
        publisher: Publisher,
        secrets: SecretStore | None,
        *,
        host: str = DEFAULT_HOST,
        graceful_timeout: float | None = 30.0,
    ) -> None:
        if not events:
            raise ValueError("a webhook server needs at least one event")
        self.events = list(events)
        self.publisher = publisher
        self.secrets = secrets
        self.requested_port = port
        self.host = host
        self.metrics: MetricsExporter | None = None
        self._routes: dict[str, _PathRoute] = {}
        for event in self.events:
            route = self._routes.setdefault(event.spec.endpoint, _PathRoute(event.spec.endpoint))
            if event.spec.method in route.by_method:
                other = route.by_method[event.spec.method].event
                raise ConfigError(
                    [f"webhook events {other.label} and {event.label} both use {event.spec.method} "
                     f"{event.spec.endpoint} on port {port}; give one of them another endpoint or port"]
                )
            if event.spec.auth_secret is not None and secrets is None:
                raise ConfigError(
                    [f"webhook {event.label}: authSecret is set but no secrets directory is configured"]
                )
            route.by_method[event.spec.method] = _Endpoint(event, publisher, secrets)
        self._tls = self._tls_selectors()
        tls_files = None
        if self._tls is not None and secrets is not None:
            tls_files = (secrets.path_for(self._tls[0]), secrets.path_for(self._tls[1]))
        self.app = self._build_app()
        self._server = HttpServer(
            _EventFastPath(self._routes, self.app),
            host=host,
            port=port,
            name=self.name,
            ssl_certfile=tls_files[0] if tls_files else None,
            ssl_keyfile=tls_files[1] if tls_files else None,
            graceful_timeout=graceful_timeout,
        )

    @property
    def name(self) -> str:
        return f"webhook :{self.requested_port}"

    @property
    def port(self) -> int:
        """The bound port once started (the requested one unless that was 0)."""
        return self._server.port

    @property
    def accepting(self) -> bool:
        """New connections are accepted (False from the moment ``stop`` closed the listener)."""
        return self._server.accepting

    def _tls_selectors(self) -> tuple[SecretKeySelector, SecretKeySelector] | None:
        pairs = {(e.spec.server_cert_secret, e.spec.server_key_secret) for e in self.events}
        if len(pairs) > 1:
            labels = ", ".join(e.label for e in self.events)
            raise ConfigError(
                [f"webhook events on port {self.requested_port} ({labels}) disagree on "
                 "serverCertSecret/serverKeySecret; one port has one TLS setting: give every event on "
                 "it the same pair, or none"]
            )
        cert, key = pairs.pop()
        if cert is None or key is None:
            return None
        if self.secrets is None:
            raise ConfigError([f"{self.name}: TLS secrets are set but no secrets directory is configured"])
        return cert, key

    def _build_app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
        app.add_route("/health", self._health, methods=None, include_in_schema=False)
        app.add_route("/metrics", self._metrics, methods=["GET"], include_in_schema=False)
        for path, route in self._routes.items():
            app.add_route(path, route, include_in_schema=False)  # type: ignore[arg-type]
        return app

    def expose_metrics(self, exporter: MetricsExporter) -> None:
        """Serve ``exporter`` on ``GET /metrics`` of this port (until then: ``503``)."""
        self.metrics = exporter

    def event_counts(self) -> list[ReceivedCounts]:
        return [endpoint.counts for route in self._routes.values() for endpoint in route.by_method.values()]

    async def _metrics(self, request: Request) -> Response:
        return await metrics_response(self.metrics, request)

    async def _health(self, request: Request) -> Response:
        if isinstance(self.publisher, HealthReporter):
            try:
                healthy = await self.publisher.healthy()
            except Exception:
                logger.exception("%s: the bus health check failed", self.name)
                healthy = False
            if not healthy:
                return Response(b"event bus unavailable", 503, headers={"Retry-After": "1"}, media_type=_TEXT)
        return _HEALTHY

    def _check_secrets(self) -> None:
        """Reads every authSecret once and checks the TLS files, so that start() reports what is missing."""
        if self._tls is not None and self.secrets is not None:
            for tls_selector in self._tls:
                path = self.secrets.path_for(tls_selector)
                if not path.is_file():
                    raise SecretNotFound(path, tls_selector)
        for event in self.events:
            auth = event.spec.auth_secret
            if auth is None or self.secrets is None:
                continue
            if self.secrets.lookup(auth) is None:
                logger.warning(
                    "webhook %s: optional authSecret %s/%s is missing; requests are answered "
                    "500 until it exists", event.label, auth.name, auth.key,
                )

    async def start(self) -> None:
        self._check_secrets()
        await self._server.start()
        for event in self.events:
            logger.info(
                "webhook %s: %s %s on port %d%s", event.label, event.spec.method, event.spec.endpoint,
                self.port, " (bearer token required)" if event.spec.auth_secret else "",
            )

    async def stop(self) -> None:
        await self._server.stop()


def webhook_events(event_sources: Iterable[EventSource]) -> list[WebhookEvent]:
    """Every ``spec.webhook`` event of ``event_sources``, in manifest order."""
    return [
        WebhookEvent(es.metadata.name, name, spec)
        for es in event_sources
        for name, spec in es.spec.webhook.items()
    ]


def build_webhook_sources(
    event_sources: Sequence[EventSource],
    publisher: Publisher,
    secrets: SecretStore | None,
    *,
    host: str = DEFAULT_HOST,
    graceful_timeout: float | None = 30.0,
    **_options: Any,
) -> list[WebhookServer]:
    """One :class:`WebhookServer` per port used by the webhook events of ``event_sources``.

    Raises ``ConfigError`` when two events claim the same port, endpoint and method, or events on
    one port disagree on TLS.
    """
    by_port: dict[int, list[WebhookEvent]] = {}
    for event in webhook_events(event_sources):
        by_port.setdefault(int(event.spec.port), []).append(event)
    return [
        WebhookServer(port, events, publisher, secrets, host=host, graceful_timeout=graceful_timeout)
        for port, events in by_port.items()
    ]

