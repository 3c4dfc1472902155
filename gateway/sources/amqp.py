"""The ``amqp`` event source: Argo Events' RabbitMQ consumer, acknowledging only what the bus holds.

Every entry under ``spec.amqp`` declares its exchange, its queue and the binding between them as
the manifest says (Argo's defaults: a durable exchange; a server-named, exclusive queue), then
consumes the queue. Each message becomes one event (``type=amqp``) with Argo's payload::

    {"contentType", "contentEncoding", "deliveryMode", "priority", "correlationId", "replyTo",
     "expiration", "messageId", "timestamp", "type", "appId", "exchange", "routingKey", "body",
     "metadata"}

Absent properties are ``""`` or ``0`` (Go's zero values), ``timestamp`` is written as Go prints a
time (``2026-01-02 15:04:05 +0000 UTC``), ``metadata`` is left out when empty. ``body`` is the
message body embedded as JSON with ``jsonBody: true``, else the base64 text of its bytes.

**Acknowledgement.** A message is acknowledged (``basic.ack``, one message at a time) only once
its event is durable on the bus, also when ``consume.autoAck`` is true: Argo's ``autoAck: true``
(its default) lets the broker forget the message before it is published, so a crash loses it,
and Argo (up to v1.9) never acknowledges at all with ``autoAck: false`` (issue #4178). When the
bus cannot store the events they are rejected with ``requeue`` (``basic.nack``), so the broker
delivers them again, and the source pauses before the next batch. A body that is not JSON under
``jsonBody: true`` is rejected without requeue (dead-lettered when the queue has a dead-letter
exchange) and logged. Deliveries are read with a prefetch window (:data:`PREFETCH`), and events
are published to the bus in batches of whatever arrived meanwhile.

**Event id.** The producer's ``message-id`` when it sets one:
``deterministic_event_id("amqp", eventsource, event, message_id)``, so a redelivered message (after
a crash or a nack) is stored once. Without a message id the id is random, and a message redelivered
after a crash between "durable" and "acknowledged" becomes a second event: set message ids.

**Losing nothing across restarts** needs a queue that outlives the connection: a named,
``durable`` queue that is neither ``exclusive`` nor ``autoDelete`` (and persistent messages). With
Argo's default queue (server-named, exclusive) messages published while the gateway is down are
dropped by the broker; the source logs a warning at start when the queue is declared that way.

**Connection.** ``url`` or ``urlSecret``; ``auth`` replaces the URL's user and password; ``tls``
gives the client certificate and CA (use an ``amqps://`` URL). The connection is robust: when it
drops, the client reconnects (every ``connectionBackoff.duration``, default 1 s), declares the
exchange, queue and binding again and resumes consuming; messages that were not acknowledged
when it dropped are delivered again by the broker. If the first connection fails, the source
retries with ``connectionBackoff``'s delays, forever (Argo gives up after ``steps``).

Accepted but without effect: ``noWait`` flags (the client always waits for the broker's answer),
``consume.noLocal`` (RabbitMQ does not implement it). ``deliveryMode`` is ``1`` when the producer
set none (the client library's default; Argo reports ``0``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import yaml
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from gateway.errors import BusError, ConfigError
from gateway.secrets import SecretStore
from gateway.sources.base import Publisher, ReceivedCounts, Source
from gateway.sources.body import InvalidBody, encode_body
from gateway.sources.gotime import go_time_string
from gateway.sources.reconnect import ReconnectDelays
from gateway.sources.tls import client_ssl_context
from sensors.event import Event, deterministic_event_id, random_event_id
from sensors.spec import AMQPEventSource, EventSource

logger = logging.getLogger("triggergate.amqp")

SOURCE_TYPE = "amqp"
PREFETCH = 256  # unacknowledged deliveries the broker may send ahead
HEARTBEAT = 10  # seconds, as Argo's client


# --------------------------------------------------------------------------- pure helpers


def amqp_event_id(event_source: str, event_name: str, message_id: str | None) -> str:
    """From the producer's message id when set (stable across redeliveries), else random."""
    if message_id:
        return deterministic_event_id(SOURCE_TYPE, event_source, event_name, message_id)
    return random_event_id()


def _expiration(value: Any) -> str:
    """The ``expiration`` property as the producer wrote it (milliseconds, as text).

    The client library turns the property (milliseconds as text) into seconds; this turns it back.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    millis = float(value) * 1000
    return str(round(millis)) if abs(millis - round(millis)) < 1e-6 else str(millis)


def amqp_payload(
    message: AbstractIncomingMessage, *, json_body: bool, metadata: Mapping[str, str]
) -> dict[str, Any]:
    """Argo's ``AMQPEventData`` of one delivery; raises :class:`InvalidBody`."""
    payload: dict[str, Any] = {
        "contentType": message.content_type or "",
        "contentEncoding": message.content_encoding or "",
        "deliveryMode": int(message.delivery_mode or 0),
        "priority": int(message.priority or 0),
        "correlationId": message.correlation_id or "",
        "replyTo": message.reply_to or "",
        "expiration": _expiration(message.expiration),
        "messageId": message.message_id or "",
        "timestamp": go_time_string(message.timestamp),
        "type": message.type or "",
        "appId": message.app_id or "",
        "exchange": message.exchange or "",
        "routingKey": message.routing_key or "",
        "body": encode_body(message.body, json_body),
    }
    if metadata:
        payload["metadata"] = dict(metadata)
    return payload


def queue_arguments(arguments: str) -> dict[str, Any] | None:
    """``queueDeclare.arguments`` (a YAML mapping, as in Argo) as the x-arguments table."""
    if not arguments.strip():
        return None
    doc = yaml.safe_load(arguments)
    return dict(doc) if doc else None


def with_credentials(url: str, username: str, password: str) -> str:
    """``url`` with its user and password replaced (``auth`` wins over the URL, as in Argo)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def redact(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def loss_warnings(spec: AMQPEventSource) -> list[str]:
    """Why messages can be lost while the gateway is down, for the queue this spec declares."""
    queue = spec.queue_declare
    reasons = []
    if not queue.name:
        reasons.append("it has no name (a new queue is made at every start)")
    if queue.exclusive:
        reasons.append("it is exclusive (deleted when the connection closes)")
    if queue.auto_delete:
        reasons.append("it is autoDelete (deleted when its last consumer leaves)")
    if not queue.durable:
        reasons.append("it is not durable (gone when the broker restarts)")
    return reasons


# --------------------------------------------------------------------------- the source


@dataclass(frozen=True, slots=True)
class AMQPEvent:
    """One ``spec.amqp`` entry of one EventSource."""

    event_source: str
    event_name: str
    spec: AMQPEventSource

    @property
    def label(self) -> str:
        return f"{self.event_source}/{self.event_name}"


class AMQPSource(Source):
    """The consumer of one ``spec.amqp`` event (see the module doc for the guarantees)."""

    def __init__(
        self,
        event: AMQPEvent,
        publisher: Publisher,
        secrets: SecretStore | None,
        *,
        prefetch: int = PREFETCH,
        graceful_timeout: float | None = 30.0,
    ) -> None:
        self.event = event
        self.spec = event.spec
        self.publisher = publisher
        self.secrets = secrets
        self.prefetch = prefetch
        self.graceful_timeout = graceful_timeout
        self._pending: list[tuple[AbstractIncomingMessage, Event]] = []
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._started = asyncio.Event()
        self._consuming = False
        self._task: asyncio.Task[None] | None = None
        self.queue_name: str | None = None
        self.delivered = 0
        self.published = 0
        self.acked = 0
        self.requeued = 0
        self.counts = ReceivedCounts(event.event_source, event.event_name)

    @property
    def name(self) -> str:
        return f"amqp {self.event.label}"

    def event_counts(self) -> list[ReceivedCounts]:
        return [self.counts]

    # ------------------------------------------------------------------ configuration

    def connection_url(self) -> str:
        """The broker URL with ``auth`` applied; reads ``urlSecret`` and ``auth`` secrets."""
        spec = self.spec
        url = spec.url
        if spec.url_secret is not None or spec.auth is not None:
            if self.secrets is None:
                raise ConfigError(
                    [f"{self.name}: urlSecret/auth is set but no secrets directory is configured"]
                )
            if spec.url_secret is not None:
                url = self.secrets.get(spec.url_secret).reveal().strip()
            if spec.auth is not None:
                assert spec.auth.username is not None and spec.auth.password is not None
                url = with_credentials(
                    url,
                    self.secrets.get(spec.auth.username).reveal(),
                    self.secrets.get(spec.auth.password).reveal(),
                )
        if urlsplit(url).scheme not in ("amqp", "amqps"):
            raise ConfigError(
                [f"{self.name}: the URL must start with amqp:// or amqps://, got {redact(url)!r}"]
            )
        return url

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.spec.tls is None:
            return None
        return client_ssl_context(self.spec.tls, self.secrets, self.name)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, connect_timeout: float = 5.0) -> None:
        """Checks the configuration, then connects and consumes in the background.

        Returns once the source consumes, or after ``connect_timeout`` seconds while it keeps
        trying to connect.
        """
        url = self.connection_url()
        context = self.ssl_context()
        reasons = loss_warnings(self.spec)
        if reasons:
            logger.warning(
                "%s: messages published while triggergate is down can be lost because the queue %s; "
                "declare a named, durable, non-exclusive queue (queueDeclare) to lose none",
                self.name, "; ".join(reasons),
            )
        if self.spec.consume.auto_ack:
            logger.info(
                "%s: consume.autoAck is true; triggergate acknowledges each message once its event is "
                "durable instead (so a crash loses nothing)", self.name,
            )
        self._task = asyncio.create_task(self._run(url, context), name=self.name)
        try:
            await asyncio.wait_for(self._started.wait(), connect_timeout)
        except TimeoutError:
            logger.warning("%s: not consuming yet after %.0fs; still trying in the background",
                           self.name, connect_timeout)

    async def stop(self) -> None:
        """Stops consuming, records and acknowledges what was delivered, closes the connection.

        Deliveries whose events are not durable within ``graceful_timeout`` seconds stay
        unacknowledged: the broker delivers them again.
        """
        self._stopping.set()
        self._wakeup.set()
        if self._task is None:
            return
        task, self._task = self._task, None
        if self._consuming:
            await asyncio.wait({task}, timeout=self.graceful_timeout)
        if not task.done():
            if self._consuming:
                logger.warning("%s: stopped before the last deliveries were recorded; the broker "
                               "delivers them again", self.name)
            task.cancel()  # still connecting, or the bus did not answer in time
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("%s: the consumer failed while stopping", self.name)

    async def _run(self, url: str, context: ssl.SSLContext | None) -> None:
        delays = ReconnectDelays(self.spec.connection_backoff)
        while not self._stopping.is_set():
            connection: AbstractRobustConnection | None = None
            try:
                connection = await aio_pika.connect_robust(
                    url,
                    ssl_context=context,
                    heartbeat=HEARTBEAT,
                    reconnect_interval=delays.first,
                    client_properties={"connection_name": f"triggergate {self.event.label}"},
                )
                await self._consume(connection)
                return
            except Exception as exc:  # aiormq/pamqp errors, OSError, asyncio.TimeoutError
                logger.warning("%s: cannot consume from %s: %r", self.name, redact(url), exc)
            finally:
                if connection is not None:
                    await self._close(connection)
            if self._stopping.is_set():
                break
            delay = delays.next()
            logger.info("%s: connecting again in %.1fs", self.name, delay)
            await self._sleep(delay)

    async def _consume(self, connection: AbstractRobustConnection) -> None:
        spec = self.spec
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.declare_exchange(
            spec.exchange_name,
            spec.exchange_type,
            durable=spec.exchange_declare.durable,
            auto_delete=spec.exchange_declare.auto_delete,
            internal=spec.exchange_declare.internal,
        )
        queue = await channel.declare_queue(
            spec.queue_declare.name or None,
            durable=spec.queue_declare.durable,
            exclusive=spec.queue_declare.exclusive,
            auto_delete=spec.queue_declare.auto_delete,
            arguments=queue_arguments(spec.queue_declare.arguments),
        )
        await queue.bind(exchange, spec.routing_key)
        tag = await queue.consume(
            self._on_message,
            no_ack=False,
            exclusive=spec.consume.exclusive,
            consumer_tag=spec.consume.consumer_tag or None,
        )
        self.queue_name = queue.name
        self._consuming = True
        self._started.set()
        logger.info(
            "%s: consuming queue %s bound to %s exchange %r with key %r",
            self.name, queue.name, spec.exchange_type, spec.exchange_name, spec.routing_key,
        )
        try:
            await self._flush_until_stopped()
        finally:
            self._consuming = False
            try:
                await asyncio.wait_for(queue.cancel(tag), 5.0)
            except Exception as exc:
                logger.debug("%s: cancelling the consumer failed: %r", self.name, exc)
        if self._pending:  # delivered before the consumer was cancelled: record and acknowledge them
            await self._flush()

    async def _close(self, connection: AbstractRobustConnection) -> None:
        try:
            await connection.close()
        except Exception as exc:
            logger.debug("%s: closing the connection failed: %r", self.name, exc)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ deliveries

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        spec = self.spec
        self.delivered += 1
        try:
            data = amqp_payload(message, json_body=spec.json_body, metadata=spec.metadata)
        except InvalidBody as exc:
            self.counts.rejected["rejected-invalid"] += 1
            logger.error(
                "%s: rejecting message %s (not requeued): %s", self.name, message.message_id or "", exc
            )
            await self._settle(message.reject(requeue=False))
            return
        event = Event(
            id=amqp_event_id(self.event.event_source, self.event.event_name, message.message_id),
            source=self.event.event_source, subject=self.event.event_name, type=SOURCE_TYPE,
            time=datetime.now(UTC), data=data,
        )
        self._pending.append((message, event))
        self._wakeup.set()

    async def _flush_until_stopped(self) -> None:
        bus_delays = ReconnectDelays(None, cap=10.0)
        while not self._stopping.is_set():
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._pending:
                continue
            if await self._flush():
                bus_delays.reset()
            else:
                await self._sleep(bus_delays.next())

    async def _flush(self) -> bool:
        """Publishes everything pending, then acks it (or nacks it with requeue). True on success."""
        batch, self._pending = self._pending, []
        try:
            results = await self.publisher.publish([event for _, event in batch])
        except Exception as exc:
            self.counts.publish_failed(len(batch))
            if isinstance(exc, BusError):
                logger.warning("%s: could not record %d event(s); the broker delivers them again: %s",
                               self.name, len(batch), exc)
            else:
                logger.exception("%s: publishing failed unexpectedly; the messages are requeued", self.name)
            for message, _ in batch:
                await self._settle(message.nack(requeue=True))
            self.requeued += len(batch)
            return False
        self.published += len(batch)
        self.counts.published(results)
        for message, _ in batch:
            if await self._settle(message.ack()):
                self.acked += 1
        return True

    async def _settle(self, answer: Any) -> bool:
        """Awaits one ack/nack/reject; a closed channel means the broker delivers the message again."""
        try:
            await answer
        except Exception as exc:
            logger.info("%s: could not answer a delivery (%r); the broker delivers it again", self.name, exc)
            return False
        return True


# --------------------------------------------------------------------------- builder


def amqp_events(event_sources: Iterable[EventSource]) -> list[AMQPEvent]:
    """Every ``spec.amqp`` event of ``event_sources``, in manifest order."""
    return [
        AMQPEvent(es.metadata.name, name, spec)
        for es in event_sources
        for name, spec in es.spec.amqp.items()
    ]


def build_amqp_sources(
    event_sources: Sequence[EventSource],
    publisher: Publisher,
    secrets: SecretStore | None,
    *,
    graceful_timeout: float | None = 30.0,
    **_options: Any,
) -> list[AMQPSource]:
    """One :class:`AMQPSource` per ``spec.amqp`` event."""
    return [
        AMQPSource(event, publisher, secrets, graceful_timeout=graceful_timeout)
        for event in amqp_events(event_sources)
    ]
