"""The ``s3`` event source: object-store notifications from AWS S3, MinIO and Alibaba OSS.

Each entry under ``spec.s3`` has up to three inputs, all producing the same events:

**webhook** (pushed notifications). One HTTP server per port serves every s3 entry on it (and
``GET /health`` and ``GET /metrics``, as the webhook source does). A request is handled in this
order: unknown path -> ``404``; ``authSecret`` set and no or a wrong ``Authorization: Bearer
<token>`` (as MinIO's webhook target sends it) -> ``401``;
another method -> ``405``; body over ``maxPayloadSize`` -> ``413``; not a notification ->
``400`` naming what was expected. An SNS ``SubscriptionConfirmation`` is confirmed by GET-ing its
``SubscribeURL`` (only AWS SNS hosts or ``sns.allowedHosts``; ``403`` otherwise) -> ``200``; test
events and ``UnsubscribeConfirmation`` -> ``200`` without events. Otherwise the records that pass
the filters are published in one call and the answer is ``200`` (``204`` to MNS, which wants it)
only once they are durable; a bus failure -> ``503`` with ``Retry-After`` so that the sender
retries.

**sqs** (a queue S3 or SNS delivers to): long-polled (:mod:`gateway.sources.sqs_poller`); a
message is deleted only after its events are durable. A message that is not a notification is
recorded as a source dead letter with the reason (``triggergate``'s state store), then deleted.

**reconcile**: every ``interval`` the bucket is listed under the prefix; objects between
``minAge`` and ``maxAge`` old that no notification announced (an in-memory, bounded set of seen
``(bucket, key, ETag)``) are announced as ``ObjectCreated:Put`` (or
``ObjectCreated:CompleteMultipartUpload`` for a multipart ETag), with the version id from
``HeadObject``: the id a notification without a sequencer would get, and the bus drops an event
it has seen. One publish per listed page.

Events: ``type`` ``s3``, ``source`` the EventSource, ``subject`` the entry; ``data`` is the
normalised record (:meth:`sensors.notifications.ObjectRecord.data`) plus ``metadata`` when the
entry has some; the id is :func:`sensors.notifications.event_id`. ``time`` is when the gateway
received it (as Argo), the store's own time is ``data.eventTime``.

Counts (``/metrics``): one :class:`~gateway.sources.base.ReceivedCounts` per entry, shared by its
three inputs: events accepted / duplicate / failed, webhook requests and SQS messages rejected.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.aws import (
    AwsClient,
    AwsConnection,
    AwsError,
    ListedObject,
    SqsMessage,
    confirm_subscription,
    region_from_queue_url,
    subscribe_url_allowed,
)
from gateway.errors import BusError, ConfigError, GatewayError
from gateway.httpserver import HttpServer
from gateway.secrets import SecretStore
from gateway.sources.base import (
    HealthReporter,
    MetricsExporter,
    Publisher,
    ReceivedCounts,
    Source,
    rejection_outcome,
)
from gateway.sources.sqs_poller import DeadLetters, Outcome, SqsPoller, aws_connection
from gateway.sources.webhook import (
    RequestRejected,
    _read_body,
    check_bearer,
    collect_headers,
    metrics_response,
)
from sensors.event import Event, deterministic_event_id
from sensors.notifications import (
    Notification,
    NotificationError,
    ObjectFilter,
    ObjectRecord,
    event_id,
    listed_object_record,
    parse_notification,
)
from sensors.spec import EventSource, S3EventSource, SecretKeySelector, WebhookContext, parse_go_duration

logger = logging.getLogger("triggergate.s3")

SOURCE_TYPE = "s3"
DEFAULT_HOST = "0.0.0.0"
SEEN_CAPACITY = 100_000
_TEXT = "text/plain; charset=utf-8"


# --------------------------------------------------------------------------- one entry


class SeenObjects:
    """A bounded set of object versions already announced (least recently added dropped first)."""

    def __init__(self, capacity: int = SEEN_CAPACITY) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    @staticmethod
    def key(bucket: str, key: str, etag: str | None) -> tuple[str, str, str] | None:
        return (bucket, key, etag.lower()) if etag else None

    def add(self, item: tuple[str, str, str] | None) -> None:
        if item is None:
            return
        self._items[item] = None
        self._items.move_to_end(item)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class S3Entry:
    """One ``spec.s3`` entry: its filter, the events it makes, what it has announced."""

    event_source: str
    event_name: str
    spec: S3EventSource
    filter: ObjectFilter = field(init=False)
    seen: SeenObjects = field(default_factory=SeenObjects)
    counts: ReceivedCounts = field(init=False)

    def __post_init__(self) -> None:
        self.counts = ReceivedCounts(self.event_source, self.event_name)
        spec = self.spec
        self.filter = ObjectFilter.build(
            bucket=spec.bucket, prefix=spec.prefix, suffix=spec.suffix, events=spec.events
        )

    @property
    def label(self) -> str:
        return f"{self.event_source}/{self.event_name}"

    def events(
        self, records: Iterable[ObjectRecord], now: datetime
    ) -> tuple[list[Event], list[ObjectRecord]]:
        """The events of the records that pass the filters (and those records); a record repeated
        in the same message is one event."""
        events: list[Event] = []
        kept: list[ObjectRecord] = []
        ids: set[str] = set()
        metadata = self.spec.metadata
        for record in records:
            if not self.filter.matches(record):
                continue
            ident = event_id(self.event_source, self.event_name, record)
            if ident in ids:
                continue
            ids.add(ident)
            data = record.data()
            if metadata:
                data["metadata"] = dict(metadata)
            events.append(
                Event(
                    id=ident,
                    source=self.event_source,
                    subject=self.event_name,
                    type=SOURCE_TYPE,
                    time=now,
                    data=data,
                )
            )
            kept.append(record)
        return events, kept

    async def publish(self, publisher: Publisher, records: Iterable[ObjectRecord]) -> int:
        """Publish the records that pass the filters in one call; returns how many were new.

        Raises ``BusError`` when the bus cannot make them durable.
        """
        events, kept = self.events(records, datetime.now(UTC))
        if not events:
            return 0
        try:
            stored = await publisher.publish(events)
        except Exception:
            self.counts.publish_failed(len(events))
            raise
        self.counts.published(stored)
        for record in kept:
            if record.event_name.startswith("ObjectCreated"):
                self.seen.add(SeenObjects.key(record.bucket, record.key, record.etag))
        if logger.isEnabledFor(logging.DEBUG):
            for event, new in zip(events, stored, strict=False):
                logger.debug(
                    "s3 %s: %s s3://%s/%s %s",
                    self.label,
                    event.data["eventName"],
                    event.data["bucket"],
                    event.data["key"],
                    "recorded" if new else "was a duplicate",
                )
        return sum(1 for new in stored if new)

    def log_dropped(self, notification: Notification) -> None:
        for dropped in notification.dropped:
            logger.debug(
                "s3 %s: dropped %s %s/%s: %s",
                self.label,
                dropped.event_name,
                dropped.bucket,
                dropped.key,
                dropped.reason,
            )


async def answer_subscription(entry: S3Entry, notification: Notification) -> tuple[int, str]:
    """Confirm (or refuse to confirm) an SNS subscription; returns the HTTP status and text."""
    url = notification.subscribe_url or ""
    sns = entry.spec.sns
    if sns is not None and not sns.confirm:
        logger.warning(
            "s3 %s: SNS subscription to %s not confirmed (sns.confirm is false); confirm it by hand: %s",
            entry.label,
            notification.topic_arn,
            url,
        )
        return 200, "subscription not confirmed (sns.confirm is false)"
    allowed = sns.allowed_hosts if sns is not None else []
    if not subscribe_url_allowed(url, allowed):
        logger.warning(
            "s3 %s: refused to confirm an SNS subscription: SubscribeURL %s is not an AWS SNS endpoint; "
            "add its host to sns.allowedHosts if it is trusted",
            entry.label,
            url,
        )
        return 403, "SubscribeURL host is not allowed (not an AWS SNS endpoint, not in sns.allowedHosts)"
    try:
        await confirm_subscription(url)
    except AwsError as exc:
        logger.warning("s3 %s: confirming the SNS subscription failed: %s", entry.label, exc)
        return (503 if exc.retriable else 502), "subscription confirmation failed"
    logger.info("s3 %s: confirmed the SNS subscription to %s", entry.label, notification.topic_arn)
    return 200, "subscription confirmed"


# --------------------------------------------------------------------------- webhook


class _S3Route:
    """The ASGI app of one (port, endpoint): one s3 entry."""

    def __init__(
        self, entry: S3Entry, webhook: WebhookContext, publisher: Publisher, secrets: SecretStore | None
    ) -> None:
        self.entry = entry
        self.webhook = webhook
        self.publisher = publisher
        self.secrets = secrets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.respond(Request(scope, receive, send))
        except RequestRejected as rejected:
            self.entry.counts.rejected[rejection_outcome(rejected.status)] += 1
            response = rejected.response()
        await response(scope, receive, send)

    def _authorize(self, authorization: bytes | None) -> None:
        selector = self.webhook.auth_secret
        if selector is None:
            return
        assert self.secrets is not None  # the server refuses authSecret without a store
        try:
            secret = self.secrets.get(selector)
        except ConfigError as exc:
            logger.error("s3 %s: cannot load authSecret: %s", self.entry.label, exc)
            raise RequestRejected(500, "Error loading auth token") from None
        check_bearer(authorization, secret)

    async def respond(self, request: Request) -> Response:
        headers = collect_headers(request.scope["headers"])
        self._authorize(headers.authorization)
        method = request.scope["method"]
        if method != self.webhook.method:
            raise RequestRejected(
                405,
                f"method {method} is not allowed on {self.webhook.endpoint}; allowed: {self.webhook.method}",
                {"Allow": self.webhook.method},
            )
        raw = await _read_body(request, headers.content_length, self.webhook.max_payload_size)
        try:
            notification = parse_notification(raw)
        except NotificationError as exc:
            logger.warning("s3 %s: rejected a request (400): %s", self.entry.label, exc)
            raise RequestRejected(400, f"not an object-store notification: {exc}") from None
        if notification.kind == "subscription":
            status, text = await answer_subscription(self.entry, notification)
            return Response(text, status, media_type=_TEXT)
        if notification.kind != "records":
            logger.info("s3 %s: acknowledged a %s message", self.entry.label, notification.kind)
            return Response(b"success", 200, media_type=_TEXT)
        self.entry.log_dropped(notification)
        try:
            await self.entry.publish(self.publisher, notification.records)
        except BusError as exc:
            logger.warning("s3 %s: could not record the events, answered 503: %s", self.entry.label, exc)
            return Response(b"failed to record event", 503, headers={"Retry-After": "1"}, media_type=_TEXT)
        if notification.outer_format == "mns":
            return Response(status_code=204)
        return Response(b"success", 200, media_type=_TEXT)


class S3WebhookServer(Source):
    """The HTTP server of one port and every s3 webhook entry on it."""

    def __init__(
        self,
        port: int,
        routes: Sequence[tuple[S3Entry, WebhookContext]],
        publisher: Publisher,
        secrets: SecretStore | None,
        *,
        host: str = DEFAULT_HOST,
        graceful_timeout: float | None = 30.0,
    ) -> None:
        self.requested_port = port
        self.publisher = publisher
        self.metrics: MetricsExporter | None = None
        self.routes: dict[str, _S3Route] = {}
        tls: set[tuple[SecretKeySelector | None, SecretKeySelector | None]] = set()
        for entry, webhook in routes:
            if webhook.endpoint in self.routes:
                other = self.routes[webhook.endpoint].entry
                raise ConfigError(
                    [
                        f"s3 events {other.label} and {entry.label} both use endpoint {webhook.endpoint} on "
                        f"port {port}; give one of them another endpoint or port"
                    ]
                )
            if webhook.auth_secret is not None and secrets is None:
                raise ConfigError(
                    [f"s3 {entry.label}: authSecret is set but no secrets directory is configured"]
                )
            self.routes[webhook.endpoint] = _S3Route(entry, webhook, publisher, secrets)
            tls.add((webhook.server_cert_secret, webhook.server_key_secret))
        if len(tls) > 1:
            raise ConfigError(
                [
                    f"s3 webhooks on port {port} disagree on serverCertSecret/serverKeySecret; give every "
                    "event on the port the same pair, or none"
                ]
            )
        cert, key = tls.pop()
        files: tuple[Path, Path] | None = None
        if cert is not None and key is not None:
            if secrets is None:
                raise ConfigError(
                    [f"s3 webhook :{port}: TLS secrets are set but no secrets directory is configured"]
                )
            files = (secrets.path_for(cert), secrets.path_for(key))
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
        app.add_route("/health", self._health, methods=None, include_in_schema=False)
        app.add_route("/metrics", self._metrics, methods=["GET"], include_in_schema=False)
        for path, route in self.routes.items():
            app.add_route(path, route, include_in_schema=False)  # type: ignore[arg-type]
        self.app = app
        self._server = HttpServer(
            app,
            host=host,
            port=port,
            name=self.name,
            ssl_certfile=files[0] if files else None,
            ssl_keyfile=files[1] if files else None,
            graceful_timeout=graceful_timeout,
        )

    @property
    def name(self) -> str:
        return f"s3 webhook :{self.requested_port}"

    @property
    def port(self) -> int:
        return self._server.port

    def expose_metrics(self, exporter: MetricsExporter) -> None:
        """Serve ``exporter`` on ``GET /metrics`` of this port (until then: ``503``)."""
        self.metrics = exporter

    def event_counts(self) -> list[ReceivedCounts]:
        return [route.entry.counts for route in self.routes.values()]

    async def _metrics(self, request: Request) -> Response:
        return await metrics_response(self.metrics, request)

    async def _health(self, request: Request) -> Response:
        if isinstance(self.publisher, HealthReporter) and not await self.publisher.healthy():
            return Response(b"event bus unavailable", 503, headers={"Retry-After": "1"}, media_type=_TEXT)
        return Response(b"OK", 200, media_type=_TEXT)

    async def start(self) -> None:
        await self._server.start()
        for path, route in self.routes.items():
            logger.info(
                "s3 %s: notifications on %s %s port %d%s",
                route.entry.label,
                route.webhook.method,
                path,
                self.port,
                " (bearer token required)" if route.webhook.auth_secret else "",
            )

    async def stop(self) -> None:
        await self._server.stop()


# --------------------------------------------------------------------------- SQS


class S3QueueHandler:
    """Turns one SQS message into the entry's events (see the module doc)."""

    def __init__(self, entry: S3Entry, publisher: Publisher, dead_letters: DeadLetters | None) -> None:
        self.entry = entry
        self.publisher = publisher
        self.dead_letters = dead_letters

    def event_counts(self) -> list[ReceivedCounts]:
        return [self.entry.counts]

    async def __call__(self, message: SqsMessage) -> Outcome:
        entry = self.entry
        try:
            notification = parse_notification(message.body)
        except NotificationError as exc:
            reason = f"SQS message {message.message_id} is not an object-store notification: {exc}"
            return await self._dead_letter(message, reason)
        if notification.kind == "subscription":
            status, _ = await answer_subscription(entry, notification)
            if status >= 500:
                return Outcome.RETRY
            return Outcome.DELETE
        if notification.kind != "records":
            logger.info("s3 %s: deleted a %s message from the queue", entry.label, notification.kind)
            return Outcome.DELETE
        entry.log_dropped(notification)
        try:
            await entry.publish(self.publisher, notification.records)
        except BusError as exc:
            logger.warning(
                "s3 %s: could not record the events of SQS message %s: %s; it will be received again",
                entry.label,
                message.message_id,
                exc,
            )
            return Outcome.RETRY
        return Outcome.DELETE

    async def _dead_letter(self, message: SqsMessage, reason: str) -> Outcome:
        self.entry.counts.rejected["rejected-invalid"] += 1
        source = f"s3 {self.entry.label}"
        if self.dead_letters is None:
            logger.error(
                "%s: %s; dropped (no state store to keep it in): %.500s", source, reason, message.body
            )
            return Outcome.DELETE
        letter_id = deterministic_event_id("sqs-dead-letter", source, message.message_id)
        try:
            await self.dead_letters.source_dead_letter(source, reason, message.body, letter_id=letter_id)
        except GatewayError as exc:
            logger.warning(
                "%s: could not record a dead letter (%s); the message stays in the queue", source, exc
            )
            return Outcome.RETRY
        logger.warning(
            "%s: %s; kept as source dead letter %s and deleted from the queue", source, reason, letter_id
        )
        return Outcome.DELETE


# --------------------------------------------------------------------------- reconcile


class Reconciler(Source):
    """Lists the bucket every ``interval`` and announces objects no notification announced."""

    def __init__(self, entry: S3Entry, client: AwsClient, publisher: Publisher) -> None:
        spec = entry.spec.reconcile
        assert spec is not None
        self.entry = entry
        self.client = client
        self.publisher = publisher
        self.bucket = spec.bucket or entry.spec.bucket or ""
        self.prefix = spec.prefix if spec.prefix is not None else entry.spec.prefix
        self.interval = parse_go_duration(spec.interval)
        self.min_age = timedelta(seconds=parse_go_duration(spec.min_age))
        self.max_age = timedelta(seconds=parse_go_duration(spec.max_age))
        self.passes = 0
        self.announced = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"s3 reconcile {self.entry.label}"

    def event_counts(self) -> list[ReceivedCounts]:
        return [self.entry.counts]

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)
            logger.info(
                "s3 %s: listing s3://%s/%s every %gs (%s)",
                self.entry.label,
                self.bucket,
                self.prefix,
                self.interval,
                self.client.connection.describe(),
            )

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await task
            except Exception:
                logger.exception("%s: the reconcile loop failed", self.name)
        await self.client.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.reconcile_once()
            except (AwsError, BusError) as exc:
                logger.warning("%s: pass failed: %s; trying again in %gs", self.name, exc, self.interval)
            try:
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            except TimeoutError:
                pass

    async def reconcile_once(self, now: datetime | None = None) -> int:
        """One pass over the listing; returns how many new events were recorded."""
        entry = self.entry
        recorded = 0
        async for page in self.client.list_objects(self.bucket, self.prefix):
            if self._stopping.is_set():
                break
            records = []
            for listed in page:
                record = await self._candidate(listed, now or datetime.now(UTC))
                if record is not None:
                    records.append(record)
            if records:
                new = await entry.publish(self.publisher, records)
                recorded += new
                if new:
                    logger.info("%s: announced %d object(s) no notification announced", self.name, new)
        self.passes += 1
        self.announced += recorded
        return recorded

    async def _candidate(self, listed: ListedObject, now: datetime) -> ObjectRecord | None:
        age = now - listed.last_modified
        if age < self.min_age or age > self.max_age:
            return None
        if not listed.key.endswith(self.entry.filter.suffix) or not listed.key.startswith(
            self.entry.filter.prefix
        ):
            return None
        if SeenObjects.key(self.bucket, listed.key, listed.etag) in self.entry.seen:
            return None
        head = await self.client.head_object(self.bucket, listed.key)
        if head is None or (head.etag and listed.etag and head.etag.lower() != listed.etag.lower()):
            return None  # deleted or overwritten since the listing: its own notification or the next pass
        last_modified = listed.last_modified.isoformat().replace("+00:00", "Z")
        listing = {
            "key": listed.key,
            "size": listed.size,
            "etag": listed.etag,
            "lastModified": last_modified,
            "storageClass": listed.storage_class,
            "versionId": head.version_id,
        }
        record = listed_object_record(
            self.bucket,
            listed.key,
            etag=listed.etag,
            size=listed.size,
            version_id=head.version_id,
            last_modified=last_modified,
            listing=listing,
        )
        return record if self.entry.filter.matches(record) else None


# --------------------------------------------------------------------------- building


def s3_entries(event_sources: Iterable[EventSource]) -> list[S3Entry]:
    """Every ``spec.s3`` entry of ``event_sources``, in manifest order."""
    return [
        S3Entry(es.metadata.name, name, spec) for es in event_sources for name, spec in es.spec.s3.items()
    ]


def queue_connection(entry: S3Entry, secrets: SecretStore | None) -> AwsConnection:
    """The AWS connection of an entry's ``sqs`` block (region from the block, the queue URL, or
    ``us-east-1`` for a custom endpoint)."""
    queue = entry.spec.sqs
    assert queue is not None
    return aws_connection(
        secrets,
        f"EventSource {entry.event_source} spec.s3.{entry.event_name}.sqs",
        region=queue.region
        or region_from_queue_url(queue.queue)
        or ("us-east-1" if queue.endpoint else None),
        endpoint=queue.endpoint,
        access_key=queue.access_key,
        secret_key=queue.secret_key,
        session_token=queue.session_token,
    )


def reconcile_connection(entry: S3Entry, secrets: SecretStore | None) -> AwsConnection:
    """The AWS connection of an entry's ``reconcile`` block (the one that lists the bucket).

    Its region: the block's, else (on AWS, no ``endpoint``) the ``sqs`` block's region (from the
    block or the queue URL: the bucket notifies a queue of its own region), else ``us-east-1`` for
    a custom endpoint, else the environment's."""
    reconcile = entry.spec.reconcile
    assert reconcile is not None
    queue = entry.spec.sqs
    queue_region = None
    if queue is not None and not reconcile.endpoint and not queue.endpoint:
        queue_region = queue.region or region_from_queue_url(queue.queue)
    return aws_connection(
        secrets,
        f"EventSource {entry.event_source} spec.s3.{entry.event_name}.reconcile",
        region=reconcile.region or queue_region or ("us-east-1" if reconcile.endpoint else None),
        endpoint=reconcile.endpoint,
        access_key=reconcile.access_key,
        secret_key=reconcile.secret_key,
        session_token=reconcile.session_token,
    )


def build_s3_sources(
    event_sources: Sequence[EventSource],
    publisher: Publisher,
    secrets: SecretStore | None,
    *,
    host: str = DEFAULT_HOST,
    graceful_timeout: float | None = 30.0,
    dead_letters: DeadLetters | None = None,
    **_options: Any,
) -> list[Source]:
    """One HTTP server per port of the s3 webhooks, one poller per ``sqs``, one reconciler per
    ``reconcile``. ``dead_letters`` keeps SQS messages that are no notification."""
    entries = s3_entries(event_sources)
    sources: list[Source] = []
    by_port: dict[int, list[tuple[S3Entry, WebhookContext]]] = {}
    for entry in entries:
        if entry.spec.webhook is not None:
            by_port.setdefault(int(entry.spec.webhook.port), []).append((entry, entry.spec.webhook))
    for port, routes in by_port.items():
        sources.append(
            S3WebhookServer(port, routes, publisher, secrets, host=host, graceful_timeout=graceful_timeout)
        )
    for entry in entries:
        queue = entry.spec.sqs
        if queue is not None:
            connection = queue_connection(entry, secrets)
            sources.append(
                SqsPoller(
                    f"s3 sqs {entry.label}",
                    AwsClient(connection, workers=3, name=f"s3-sqs-{entry.event_name}"),
                    queue.queue,
                    S3QueueHandler(entry, publisher, dead_letters),
                    account_id=queue.queue_account_id,
                    wait_seconds=queue.wait_time_seconds,
                    visibility_timeout=queue.visibility_timeout,
                )
            )
        if entry.spec.reconcile is not None:
            connection = reconcile_connection(entry, secrets)
            client = AwsClient(connection, workers=2, name=f"s3-list-{entry.event_name}")
            sources.append(Reconciler(entry, client, publisher))
    return sources
