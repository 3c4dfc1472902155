"""The ``sqs`` event source: Argo Events' AWS SQS source, without its message loss.

Each entry under ``spec.sqs`` long-polls one queue (``queue`` is the queue name, resolved with
``GetQueueUrl`` in ``queueAccountId``'s account when set; ``endpoint`` is the SQS service
endpoint) with :class:`~gateway.sources.sqs_poller.SqsPoller`. Each message becomes one event:

* payload as Argo's ``SQSEventData``: ``{"messageId", "messageAttributes", "body", "metadata"}``;
  ``body`` is the message body as base64 text (Go's encoding of ``[]byte``), or the parsed JSON
  with ``jsonBody: true``; ``messageAttributes`` as the Go SDK marshals them (``DataType``,
  ``StringValue``, ``BinaryValue`` base64, ``StringListValues``, ``BinaryListValues``; ``null``
  when there are none); ``metadata`` only when set.
* id: ``deterministic_event_id("sqs", eventsource, event, messageId)``: a message received again
  (after a crash, or a delete that failed) is the same event and the bus drops the copy.
* envelope: ``type`` ``sqs``, ``source`` the EventSource, ``subject`` the entry name.

The message is deleted only after its event is durable (Argo deletes after its own publish too).
With ``jsonBody: true`` a body that is not JSON cannot become an event: it is recorded as a source
dead letter with the reason and deleted (Argo logs it and deletes it); with ``dlq: true`` it is
left in the queue instead, so that the queue's redrive policy moves it to its dead-letter queue
(as Argo does). ``waitTimeSeconds`` 0 means 3 s and the visibility timeout is 120 s, as Argo.
``skipPollingWhenEventBusFull`` is accepted and has no effect: the embedded bus has no capacity
limit, and polling pauses anyway while the bus fails to store events.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.aws import AwsClient, SqsMessage
from gateway.errors import BusError, GatewayError
from gateway.secrets import SecretStore
from gateway.sources.base import Publisher, ReceivedCounts, Source
from gateway.sources.body import InvalidBody, encode_body
from gateway.sources.sqs_poller import DeadLetters, Outcome, SqsPoller, aws_connection
from sensors.event import Event, deterministic_event_id
from sensors.spec import EventSource, SQSEventSource

logger = logging.getLogger("triggergate.sqs")

SOURCE_TYPE = "sqs"
ARGO_DEFAULT_WAIT_SECONDS = 3
ARGO_VISIBILITY_TIMEOUT = 120


def argo_message_attributes(attributes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
    """SQS message attributes as aws-sdk-go v1 marshals ``map[string]*MessageAttributeValue``."""
    if not attributes:
        return None
    out: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        binary = value.get("BinaryValue")
        binary_list = value.get("BinaryListValues")
        out[name] = {
            "BinaryListValues": [_b64(v) for v in binary_list] if binary_list else None,
            "BinaryValue": _b64(binary) if binary is not None else None,
            "DataType": value.get("DataType"),
            "StringListValues": list(value["StringListValues"]) if value.get("StringListValues") else None,
            "StringValue": value.get("StringValue"),
        }
    return out


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes | bytearray) else str(value).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def sqs_payload(message: SqsMessage, *, json_body: bool, metadata: dict[str, str]) -> dict[str, Any]:
    """Argo's ``SQSEventData`` of ``message``; raises ``InvalidBody`` (jsonBody and not JSON)."""
    data: dict[str, Any] = {
        "messageId": message.message_id,
        "messageAttributes": argo_message_attributes(message.message_attributes),
        "body": encode_body(message.body.encode("utf-8"), json_body),
    }
    if metadata:
        data["metadata"] = dict(metadata)
    return data


class SqsHandler:
    """One message -> one event, published; settles the message as the module doc says."""

    def __init__(
        self,
        event_source: str,
        event_name: str,
        spec: SQSEventSource,
        publisher: Publisher,
        dead_letters: DeadLetters | None,
    ) -> None:
        self.event_source = event_source
        self.event_name = event_name
        self.spec = spec
        self.publisher = publisher
        self.dead_letters = dead_letters
        self.label = f"sqs {event_source}/{event_name}"
        self.counts = ReceivedCounts(event_source, event_name)

    def event_counts(self) -> list[ReceivedCounts]:
        return [self.counts]

    async def __call__(self, message: SqsMessage) -> Outcome:
        try:
            data = sqs_payload(message, json_body=self.spec.json_body, metadata=self.spec.metadata)
        except InvalidBody as exc:
            return await self._unusable(message, f"SQS message {message.message_id}: {exc}")
        event = Event(
            id=deterministic_event_id(SOURCE_TYPE, self.event_source, self.event_name, message.message_id),
            source=self.event_source,
            subject=self.event_name,
            type=SOURCE_TYPE,
            time=datetime.now(UTC),
            data=data,
        )
        try:
            results = await self.publisher.publish([event])
        except BusError as exc:
            self.counts.publish_failed(1)
            logger.warning(
                "%s: could not record message %s: %s; it will be received again",
                self.label,
                message.message_id,
                exc,
            )
            return Outcome.RETRY
        self.counts.published(results)
        return Outcome.DELETE

    async def _unusable(self, message: SqsMessage, reason: str) -> Outcome:
        self.counts.rejected["rejected-invalid"] += 1
        if self.spec.dlq:
            logger.warning("%s: %s; left in the queue for its redrive policy (dlq: true)", self.label, reason)
            return Outcome.KEEP
        if self.dead_letters is None:
            logger.error(
                "%s: %s; dropped (no state store to keep it in): %.500s", self.label, reason, message.body
            )
            return Outcome.DELETE
        letter_id = deterministic_event_id("sqs-dead-letter", self.label, message.message_id)
        try:
            await self.dead_letters.source_dead_letter(self.label, reason, message.body, letter_id=letter_id)
        except GatewayError as exc:
            logger.warning(
                "%s: could not record a dead letter (%s); the message stays in the queue", self.label, exc
            )
            return Outcome.RETRY
        logger.warning("%s: %s; kept as source dead letter %s and deleted", self.label, reason, letter_id)
        return Outcome.DELETE


def build_sqs_sources(
    event_sources: Sequence[EventSource],
    publisher: Publisher,
    secrets: SecretStore | None,
    *,
    dead_letters: DeadLetters | None = None,
    **_options: Any,
) -> list[Source]:
    """One :class:`SqsPoller` per ``spec.sqs`` entry."""
    sources: list[Source] = []
    for es in event_sources:
        for name, spec in es.spec.sqs.items():
            where = f"EventSource {es.metadata.name} spec.sqs.{name}"
            connection = aws_connection(
                secrets,
                where,
                region=spec.region,
                endpoint=spec.endpoint,
                access_key=spec.access_key,
                secret_key=spec.secret_key,
                session_token=spec.session_token,
            )
            handler = SqsHandler(es.metadata.name, name, spec, publisher, dead_letters)
            sources.append(
                SqsPoller(
                    handler.label,
                    AwsClient(connection, workers=3, name=f"sqs-{name}"),
                    spec.queue,
                    handler,
                    account_id=spec.queue_account_id,
                    wait_seconds=spec.wait_time_seconds or ARGO_DEFAULT_WAIT_SECONDS,
                    visibility_timeout=ARGO_VISIBILITY_TIMEOUT,
                )
            )
    return sources
