"""Argo's ``kafka`` and ``amqp`` EventSource specs: defaults, validation, and what is not supported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config import load_manifests
from gateway.errors import ConfigError
from sensors.spec import SUPPORTED_SOURCE_TYPES, AMQPEventSource, EventSource, KafkaEventSource

KAFKA = {"url": "kafka:9092", "topic": "uploads", "consumerGroup": {"groupName": "triggergate"}}
AMQP = {
    "url": "amqp://rabbit:5672/",
    "exchangeName": "uploads",
    "exchangeType": "topic",
    "routingKey": "run.#",
}


def kafka(**fields: Any) -> KafkaEventSource:
    return KafkaEventSource.model_validate({**KAFKA, **fields})


def amqp(**fields: Any) -> AMQPEventSource:
    return AMQPEventSource.model_validate({**AMQP, **fields})


def error_of(model: type, doc: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(doc)
    return str(info.value)


def test_kafka_and_amqp_are_supported_source_types() -> None:
    assert {"kafka", "amqp"} <= set(SUPPORTED_SOURCE_TYPES)
    es = EventSource.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": "brokers"},
            "spec": {"kafka": {"k": KAFKA}, "amqp": {"a": AMQP}},
        }
    )
    assert es.spec.event_names() == ["a", "k"]


# --------------------------------------------------------------------------- kafka


def test_kafka_defaults_are_argos() -> None:
    spec = kafka()
    assert spec.partition is None
    assert spec.json_body is False
    assert spec.limit_events_per_second == 0
    assert spec.consumer_group is not None
    assert (spec.consumer_group.oldest, spec.consumer_group.rebalance_strategy) == (False, "range")
    assert spec.metadata == {} and spec.config == "" and spec.sasl is None and spec.tls is None


def test_partition_is_required_unless_a_consumer_group_is_set() -> None:
    doc = {"url": "kafka:9092", "topic": "t"}
    assert "consumerGroup or partition must be specified" in error_of(KafkaEventSource, doc)
    assert KafkaEventSource.model_validate({**doc, "partition": 0}).partition == "0"
    assert KafkaEventSource.model_validate({**doc, "partition": "3"}).partition == "3"
    assert "partition must be a partition number" in error_of(KafkaEventSource, {**doc, "partition": "first"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": ""}, "url must list the brokers"),
        ({"url": "a:1,,b:2"}, "url must list the brokers"),
        ({"topic": ""}, "topic must be specified"),
        ({"consumerGroup": {"groupName": ""}}, "groupName must not be empty"),
        ({"limitEventsPerSecond": -1}, "limitEventsPerSecond must be >= 0"),
        ({"config": "- a list"}, "config must be a YAML mapping"),
        ({"config": "a: [unclosed"}, "config must be a YAML mapping"),
        ({"filter": {"expression": "body.a == 1"}}, "filter expressions are not implemented"),
        ({"schemaRegistry": {"url": "http://sr"}}, "schemaRegistry (Avro decoding) is not supported"),
        ({"awsMskIamAuth": {"region": "eu-west-1"}}, "awsMskIamAuth is not supported"),
        ({"sasl": {"mechanism": "OAUTHBEARER"}}, "SASL mechanism OAUTHBEARER is not supported"),
        ({"sasl": {"mechanism": "MD5"}}, "invalid SASL mechanism 'MD5'"),
        ({"sasl": {"userSecret": {"name": "s", "key": "u"}}}, "both userSecret and passwordSecret"),
        ({"tls": {}}, "invalid tls config: set caCertSecret"),
        ({"tls": {"clientCertSecret": {"name": "t", "key": "crt"}}}, "must be set together"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_kafka_rejects(fields: dict[str, Any], message: str) -> None:
    assert message in error_of(KafkaEventSource, {**KAFKA, **fields})


def test_kafka_sasl_and_tls_accept_argos_forms() -> None:
    secret = {"name": "kafka", "key": "user"}
    spec = kafka(
        sasl={"mechanism": "", "userSecret": secret, "passwordSecret": secret}, tls={"enabled": True}
    )
    assert spec.sasl is not None and spec.sasl.mechanism == "PLAIN"
    assert kafka(tls={"insecureSkipVerify": True}).tls is not None
    assert kafka(tls={"caCertSecret": {"name": "t", "key": "ca"}}).tls is not None


# --------------------------------------------------------------------------- amqp


def test_amqp_sections_left_out_get_argos_defaults() -> None:
    spec = amqp()
    assert spec.exchange_declare.durable is True
    queue = spec.queue_declare
    assert (queue.name, queue.exclusive, queue.durable) == ("", True, False)
    assert spec.consume.auto_ack is True
    assert spec.queue_bind.no_wait is False


def test_amqp_sections_written_start_from_false_as_in_go() -> None:
    spec = amqp(queueDeclare={"name": "uploads", "durable": True}, exchangeDeclare={}, consume={})
    assert spec.queue_declare.exclusive is False
    assert spec.exchange_declare.durable is False
    assert spec.consume.auto_ack is False


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": ""}, "either url or urlSecret must be specified"),
        ({"urlSecret": {"name": "r", "key": "url"}}, "only one of url or urlSecret"),
        ({"exchangeType": ""}, "exchangeType must be specified"),
        ({"routingKey": ""}, "routingKey must be specified"),
        ({"queueDeclare": {"arguments": "[1, 2]"}}, "arguments must be a YAML mapping"),
        ({"auth": {"username": {"name": "r", "key": "u"}}}, "auth needs both username and password"),
        ({"filter": {"expression": "true"}}, "filter expressions are not implemented"),
        ({"consume": {"autoAck": "sometimes"}}, "consume.autoAck"),
    ],
)
def test_amqp_rejects(fields: dict[str, Any], message: str) -> None:
    assert message in error_of(AMQPEventSource, {**AMQP, **fields})


def test_amqp_required_fields() -> None:
    text = error_of(AMQPEventSource, {"url": "amqp://rabbit/"})
    for name in ("exchangeName", "exchangeType", "routingKey"):
        assert name in text


# --------------------------------------------------------------------------- manifests


def test_a_manifest_with_broker_sources_loads_and_its_secrets_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "es.yaml"
    path.write_text(
        """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: brokers}
spec:
  kafka:
    uploads:
      url: kafka:9092
      topic: uploads
      jsonBody: true
      consumerGroup: {groupName: triggergate, oldest: true}
      sasl:
        mechanism: SCRAM-SHA-512
        userSecret: {name: kafka, key: user}
        passwordSecret: {name: kafka, key: password}
  amqp:
    runs:
      url: amqp://rabbit:5672/
      exchangeName: runs
      exchangeType: fanout
      routingKey: runs
      queueDeclare: {name: triggergate-runs, durable: true, arguments: "x-queue-type: quorum"}
"""
    )
    manifests = load_manifests([path], secrets_dir=None)
    spec = manifests.event_sources[0].model.spec
    assert list(spec.kafka) == ["uploads"] and list(spec.amqp) == ["runs"]
    with pytest.raises(ConfigError) as info:
        load_manifests([path], secrets_dir=tmp_path / "secrets")
    assert "spec.kafka.uploads.sasl.userSecret" in str(info.value)
