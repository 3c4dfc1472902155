"""The AMQP source's pure parts: ids, payloads (from real aio-pika deliveries), URLs, queue warnings.
No broker: the integration tests (tests/integration/test_amqp_source.py) use RabbitMQ."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiormq.abc
import pytest
from aio_pika.message import IncomingMessage
from pamqp import commands
from pamqp.header import ContentHeader

from gateway.errors import ConfigError
from gateway.secrets import SecretStore
from gateway.sources.amqp import (
    AMQPEvent,
    AMQPSource,
    amqp_event_id,
    amqp_payload,
    loss_warnings,
    queue_arguments,
    redact,
    with_credentials,
)
from gateway.sources.body import InvalidBody
from gateway.sources.gotime import GO_ZERO_TIME
from sensors.event import deterministic_event_id
from sensors.spec import AMQPEventSource


def delivery(body: bytes, **properties: Any) -> IncomingMessage:
    """A delivery as aio-pika hands it to a consumer, decoded from pamqp frames."""
    deliver = commands.Basic.Deliver(
        consumer_tag="ctag", delivery_tag=7, redelivered=False, exchange="uploads", routing_key="run.42"
    )
    header = ContentHeader(0, len(body), commands.Basic.Properties(**properties))
    delivered = aiormq.abc.DeliveredMessage(delivery=deliver, header=header, body=body, channel=None)
    return IncomingMessage(delivered)


def _spec(**fields: Any) -> AMQPEventSource:
    base = {"url": "amqp://guest:guest@127.0.0.1:5672/", "exchangeName": "ex", "exchangeType": "topic",
            "routingKey": "run.*"}
    return AMQPEventSource.model_validate({**base, **fields})


def test_event_id_comes_from_the_message_id_when_the_producer_sets_one() -> None:
    first = amqp_event_id("es", "ev", "upload-1")
    assert first == amqp_event_id("es", "ev", "upload-1")
    assert first == deterministic_event_id("amqp", "es", "ev", "upload-1")
    assert first != amqp_event_id("es", "ev", "upload-2") != amqp_event_id("es", "other", "upload-1")
    randoms = {amqp_event_id("es", "ev", message_id) for message_id in (None, "", None)}
    assert len(randoms) == 3 and all(len(i) == 32 for i in randoms)


def test_payload_has_argos_fields_in_argos_order() -> None:
    message = delivery(
        b'{"sample": "s1"}',
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,
        priority=5,
        correlation_id="corr",
        reply_to="replies",
        expiration="60000",
        message_id="m-1",
        timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        message_type="upload",
        app_id="lims",
    )
    payload = amqp_payload(message, json_body=True, metadata={"team": "seq"})
    assert payload == {
        "contentType": "application/json",
        "contentEncoding": "utf-8",
        "deliveryMode": 2,
        "priority": 5,
        "correlationId": "corr",
        "replyTo": "replies",
        "expiration": "60000",
        "messageId": "m-1",
        "timestamp": "2026-01-02 03:04:05 +0000 UTC",
        "type": "upload",
        "appId": "lims",
        "exchange": "uploads",
        "routingKey": "run.42",
        "body": {"sample": "s1"},
        "metadata": {"team": "seq"},
    }
    assert list(payload) == list(payload.keys())  # insertion order is the JSON order
    assert list(payload)[:3] == ["contentType", "contentEncoding", "deliveryMode"]


def test_absent_properties_are_gos_zero_values() -> None:
    payload = amqp_payload(delivery(b"\x00\x01"), json_body=False, metadata={})
    assert payload["body"] == base64.b64encode(b"\x00\x01").decode()
    assert payload["timestamp"] == GO_ZERO_TIME
    assert payload["expiration"] == payload["messageId"] == payload["contentType"] == ""
    assert payload["priority"] == 0
    assert payload["deliveryMode"] == 1  # aio-pika's default when the producer set none (Argo: 0)
    assert "metadata" not in payload


def test_a_body_that_is_not_json_under_json_body_is_refused() -> None:
    with pytest.raises(InvalidBody):
        amqp_payload(delivery(b"plain text"), json_body=True, metadata={})


def test_queue_arguments_are_a_yaml_table() -> None:
    assert queue_arguments("") is None
    assert queue_arguments("x-queue-type: quorum\nx-max-length: 1000") == {
        "x-queue-type": "quorum",
        "x-max-length": 1000,
    }


def test_auth_replaces_the_urls_credentials_and_logs_never_show_the_password() -> None:
    url = with_credentials("amqp://old:pw@rabbit:5672/vhost", "bob", "p@ss/word")
    assert url == "amqp://bob:p%40ss%2Fword@rabbit:5672/vhost"
    assert with_credentials("amqp://rabbit/", "u", "p") == "amqp://u:p@rabbit/"
    assert redact(url) == "amqp://bob:***@rabbit:5672/vhost"
    assert redact("amqp://rabbit/") == "amqp://rabbit/"


def test_argos_default_queue_is_reported_as_losing_messages() -> None:
    reasons = loss_warnings(_spec())
    assert any("no name" in r for r in reasons)
    assert any("exclusive" in r for r in reasons)
    assert any("not durable" in r for r in reasons)
    durable = _spec(queueDeclare={"name": "uploads", "durable": True})
    assert loss_warnings(durable) == []
    assert loss_warnings(_spec(queueDeclare={"name": "q", "durable": True, "autoDelete": True})) == [
        "it is autoDelete (deleted when its last consumer leaves)"
    ]


class _Recorder:
    async def publish(self, events: Any) -> list[bool]:
        return [True for _ in events]


def _source(spec: AMQPEventSource, secrets: SecretStore | None = None) -> AMQPSource:
    return AMQPSource(AMQPEvent("es", "ev", spec), _Recorder(), secrets)


def test_url_from_secret_and_auth_from_secrets(tmp_path: Path) -> None:
    (tmp_path / "rmq").mkdir()
    (tmp_path / "rmq" / "url").write_text("amqp://rabbit:5672/\n")
    (tmp_path / "rmq" / "user").write_text("svc")
    (tmp_path / "rmq" / "password").write_text("pw")
    base = {"exchangeName": "ex", "exchangeType": "fanout", "routingKey": "k"}
    spec = AMQPEventSource.model_validate(
        {
            **base,
            "urlSecret": {"name": "rmq", "key": "url"},
            "auth": {
                "username": {"name": "rmq", "key": "user"},
                "password": {"name": "rmq", "key": "password"},
            },
        }
    )
    assert _source(spec, SecretStore(tmp_path)).connection_url() == "amqp://svc:pw@rabbit:5672/"
    with pytest.raises(ConfigError, match="urlSecret/auth is set but no secrets directory"):
        _source(spec).connection_url()
    bad = AMQPEventSource.model_validate({**base, "url": "http://rabbit/"})
    with pytest.raises(ConfigError, match="must start with amqp:// or amqps://"):
        _source(bad).connection_url()
