"""The Kafka source's pure parts: ids, payloads, Go time strings, sarama config, commit bookkeeping,
client options. No broker: the integration tests (tests/integration/test_kafka_source.py) use one."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

from gateway.errors import ConfigError
from gateway.secrets import SecretStore
from gateway.sources import build_sources
from gateway.sources.body import InvalidBody, encode_body
from gateway.sources.gotime import GO_ZERO_TIME, from_unix_millis, go_time_string
from gateway.sources.kafka import KafkaEvent, KafkaSource, kafka_event_id, kafka_payload
from gateway.sources.kafka_config import client_options
from gateway.sources.kafka_offsets import OffsetTracker
from gateway.sources.reconnect import ReconnectDelays
from sensors.event import deterministic_event_id
from sensors.spec import Backoff, EventSource, KafkaEventSource


class _Recorder:
    async def publish(self, events: Any) -> list[bool]:
        return [True for _ in events]


def _payload(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "topic": "uploads",
        "partition": 2,
        "key": b"sample-1",
        "value": b'{"seq": 7}',
        "timestamp_ms": 1767323045123,
        "headers": [("trace", b"abc")],
        "json_body": True,
        "metadata": {},
    }
    args.update(overrides)
    return kafka_payload(**args)


# --------------------------------------------------------------------------- ids


def test_event_id_is_derived_from_topic_partition_and_offset() -> None:
    first = kafka_event_id("es", "ev", "uploads", 2, 41)
    assert first == kafka_event_id("es", "ev", "uploads", 2, 41)
    assert first == deterministic_event_id("kafka", "es", "ev", "uploads", "2", "41")
    assert len(first) == 32 and int(first, 16) >= 0
    others = {
        kafka_event_id("es", "ev", "uploads", 2, 42),
        kafka_event_id("es", "ev", "uploads", 3, 41),
        kafka_event_id("es", "ev", "other", 2, 41),
        kafka_event_id("es", "other", "uploads", 2, 41),
        kafka_event_id("other", "ev", "uploads", 2, 41),
    }
    assert first not in others and len(others) == 5


# --------------------------------------------------------------------------- payload


def test_payload_has_argos_fields_in_argos_order() -> None:
    payload = _payload()
    assert list(payload) == ["topic", "key", "partition", "body", "timestamp", "headers"]
    assert payload == {
        "topic": "uploads",
        "key": "sample-1",
        "partition": 2,
        "body": {"seq": 7},
        "timestamp": "2026-01-02 03:04:05.123 +0000 UTC",
        "headers": {"trace": "abc"},
    }


def test_metadata_is_added_only_when_set() -> None:
    assert _payload(metadata={"team": "seq"})["metadata"] == {"team": "seq"}
    assert "metadata" not in _payload(metadata={})


def test_body_is_base64_without_json_body_and_null_for_a_tombstone() -> None:
    raw = b"\x00\xffnot json"
    assert _payload(value=raw, json_body=False)["body"] == base64.b64encode(raw).decode()
    assert _payload(value=b"", json_body=False)["body"] == ""
    assert _payload(value=None, json_body=False)["body"] is None
    assert _payload(value=None, json_body=True)["body"] is None


def test_json_body_that_is_not_json_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidBody, match="jsonBody is true but the body is not JSON"):
        _payload(value=b"{oops")
    with pytest.raises(InvalidBody):
        encode_body(b"", True)
    assert encode_body(b"[1, 2.5, null]", True) == [1, 2.5, None]


def test_key_and_headers_are_text_and_a_repeated_header_keeps_its_last_value() -> None:
    payload = _payload(
        key=None, headers=[("h", b"one"), ("h", b"two"), ("bin", b"\xff"), ("empty", None)]
    )
    assert payload["key"] == ""
    assert payload["headers"] == {"h": "two", "bin": "\ufffd", "empty": ""}


def test_a_record_without_timestamp_gets_gos_zero_time() -> None:
    assert _payload(timestamp_ms=-1)["timestamp"] == GO_ZERO_TIME
    assert _payload(timestamp_ms=None)["timestamp"] == GO_ZERO_TIME


# --------------------------------------------------------------------------- Go time strings


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02 03:04:05 +0000 UTC"),
        (datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), "2026-01-02 03:04:05.12 +0000 UTC"),
        (datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC), "2026-01-02 03:04:05.000001 +0000 UTC"),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02 03:04:05 +0000 UTC"),  # naive: UTC
        (
            datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02 03:04:05 +0000 UTC",
        ),
        (datetime(1, 1, 1, tzinfo=UTC), GO_ZERO_TIME),
        (None, GO_ZERO_TIME),
    ],
)
def test_go_time_string(value: datetime | None, text: str) -> None:
    assert go_time_string(value) == text


def test_unix_millis() -> None:
    assert from_unix_millis(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert from_unix_millis(1500) == datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)
    assert from_unix_millis(-1) is None


# --------------------------------------------------------------------------- sarama config


def test_sarama_config_keys_map_onto_client_options_case_insensitively() -> None:
    options, ignored = client_options(
        """
Consumer:
  Group:
    Session: {Timeout: 1s}
    Heartbeat: {interval: 200ms}
  fetch: {min: 10, default: 1048576}
  MaxWaitTime: 250000000
  IsolationLevel: 1
  Offsets: {Initial: -2, AutoCommit: {Enable: true}}
ClientID: lims
Net: {MaxOpenRequests: 5}
""",
        "kafka es/ev",
    )
    assert options == {
        "session_timeout_ms": 1000,
        "heartbeat_interval_ms": 200,
        "fetch_min_bytes": 10,
        "max_partition_fetch_bytes": 1048576,
        "fetch_max_wait_ms": 250,
        "isolation_level": "read_committed",
        "auto_offset_reset": "earliest",
        "client_id": "lims",
    }
    assert ignored == ["consumer.offsets.autocommit.enable", "net.maxopenrequests"]
    assert client_options("", "x") == ({}, [])


def test_a_sarama_value_that_cannot_be_converted_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        client_options("consumer: {group: {session: {timeout: soon}}, isolationLevel: 7}", "kafka es/ev")
    problems = info.value.problems
    assert any("'consumer.group.session.timeout'" in p and "'soon'" in p for p in problems)
    assert any("'consumer.isolationlevel'" in p and "use 0 (ReadUncommitted) or 1" in p for p in problems)
    assert all(p.startswith("kafka es/ev: config key") for p in problems)


# --------------------------------------------------------------------------- commit bookkeeping


TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


def test_an_offset_is_committable_only_when_everything_before_it_is_durable() -> None:
    tracker = OffsetTracker()
    first = tracker.add(TP0, 0, 9)
    second = tracker.add(TP0, 10, 19)
    third = tracker.add(TP0, 20, 29)
    tracker.done([second, third])  # later batches finish first
    assert tracker.committable() == {}
    assert tracker.restart_points() == {TP0: 0}
    tracker.done([first])
    assert tracker.committable() == {TP0: 30}
    assert tracker.committable() == {}  # only what moved
    assert tracker.restart_points() == {}


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    a = tracker.add(TP0, 5, 5)
    b = tracker.add(TP1, 100, 149)
    c = tracker.add(TP1, 150, 151)
    tracker.done([b])
    assert tracker.committable() == {TP1: 150}
    assert tracker.restart_points() == {TP0: 5, TP1: 150}
    tracker.done([a, c])
    assert tracker.committable() == {TP0: 6, TP1: 152}


def test_dropping_a_partition_forgets_it_and_stale_batches_change_nothing() -> None:
    tracker = OffsetTracker()
    stale = tracker.add(TP0, 0, 9)
    tracker.drop([TP0])
    assert tracker.partitions() == []
    fresh = tracker.add(TP0, 0, 4)  # re-assigned, read again from the committed offset
    tracker.done([stale])
    assert tracker.committable() == {}
    tracker.done([fresh])
    assert tracker.committable() == {TP0: 5}


# --------------------------------------------------------------------------- reconnect delays


def test_reconnect_delays_follow_connection_backoff_and_never_give_up() -> None:
    default = ReconnectDelays(None, rand=lambda: 0.5)
    assert [default.next() for _ in range(3)] == [1.5, 1.5, 1.5]  # Argo: 1s, factor 1, jitter 1
    growing = ReconnectDelays(Backoff(duration="100ms", factor=2.0, jitter=0.0, steps=2), cap=0.5)
    assert [growing.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    growing.reset()
    assert growing.next() == 0.1


# --------------------------------------------------------------------------- client options


def _source(spec: dict[str, Any], secrets: SecretStore | None = None, **kwargs: Any) -> KafkaSource:
    model = KafkaEventSource.model_validate({"url": "k1:9092, k2:9092", "topic": "uploads", **spec})
    return KafkaSource(KafkaEvent("es", "ev", model), _Recorder(), secrets, **kwargs)


def test_consumer_group_mode_options() -> None:
    kwargs = _source({"consumerGroup": {"groupName": "g", "oldest": True}}).consumer_kwargs()
    assert kwargs["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert kwargs["group_id"] == "g"
    assert kwargs["enable_auto_commit"] is False
    assert kwargs["auto_offset_reset"] == "earliest"
    assert kwargs["partition_assignment_strategy"] == (RangePartitionAssignor,)
    assert "security_protocol" not in kwargs


@pytest.mark.parametrize(
    ("strategy", "assignor"),
    [
        ("range", RangePartitionAssignor),
        ("roundrobin", RoundRobinPartitionAssignor),
        ("sticky", StickyPartitionAssignor),
        ("", RangePartitionAssignor),
        ("cooperative", RangePartitionAssignor),  # Argo: an invalid strategy means range
    ],
)
def test_rebalance_strategy_maps_to_an_assignor(strategy: str, assignor: type) -> None:
    group = {"groupName": "g", "rebalanceStrategy": strategy}
    kwargs = _source({"consumerGroup": group}).consumer_kwargs()
    assert kwargs["partition_assignment_strategy"] == (assignor,)
    assert kwargs["auto_offset_reset"] == "latest"


def test_partition_mode_has_no_group() -> None:
    kwargs = _source({"partition": "3"}).consumer_kwargs()
    assert kwargs["group_id"] is None
    assert kwargs["enable_auto_commit"] is False


def test_config_and_test_options_reach_the_client_and_oldest_wins_over_config() -> None:
    source = _source(
        {
            "consumerGroup": {"groupName": "g", "oldest": True},
            "config": "consumer: {offsets: {initial: -1}, group: {session: {timeout: 30s}}}",
        },
        consumer_options={"session_timeout_ms": 1000},
    )
    kwargs = source.consumer_kwargs()
    assert kwargs["auto_offset_reset"] == "earliest"
    assert kwargs["session_timeout_ms"] == 1000


def _secret(root: Path, name: str, key: str, value: str) -> dict[str, str]:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / key).write_text(value + "\n")
    return {"name": name, "key": key}


def test_sasl_reads_its_secrets_and_tls_upgrades_the_protocol(tmp_path: Path) -> None:
    sasl = {
        "mechanism": "SCRAM-SHA-512",
        "userSecret": _secret(tmp_path, "kafka", "user", "alice"),
        "passwordSecret": _secret(tmp_path, "kafka", "password", "s3cret"),
    }
    group = {"groupName": "g"}
    plain = _source({"consumerGroup": group, "sasl": sasl}, SecretStore(tmp_path)).consumer_kwargs()
    assert plain["security_protocol"] == "SASL_PLAINTEXT"
    assert plain["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (plain["sasl_plain_username"], plain["sasl_plain_password"]) == ("alice", "s3cret")
    tls = {"insecureSkipVerify": True}
    store = SecretStore(tmp_path)
    both = _source({"consumerGroup": group, "sasl": sasl, "tls": tls}, store).consumer_kwargs()
    assert both["security_protocol"] == "SASL_SSL"
    assert both["ssl_context"] is not None
    only_tls = _source({"consumerGroup": group, "tls": {"enabled": True}}).consumer_kwargs()
    assert only_tls["security_protocol"] == "SSL"


def test_secrets_that_cannot_be_read_fail_with_what_to_do(tmp_path: Path) -> None:
    sasl = {"userSecret": {"name": "kafka", "key": "user"}, "passwordSecret": {"name": "kafka", "key": "pw"}}
    with pytest.raises(ConfigError, match="sasl is set but no secrets directory is configured"):
        _source({"consumerGroup": {"groupName": "g"}, "sasl": sasl}).consumer_kwargs()
    with pytest.raises(ConfigError, match="secret 'kafka' key 'user' not found"):
        _source({"consumerGroup": {"groupName": "g"}, "sasl": sasl}, SecretStore(tmp_path)).consumer_kwargs()
    tls = {"caCertSecret": {"name": "tls", "key": "ca.crt"}}
    with pytest.raises(ConfigError, match=r"secret 'tls' key 'ca\.crt' not found"):
        _source({"consumerGroup": {"groupName": "g"}, "tls": tls}, SecretStore(tmp_path)).consumer_kwargs()
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "ca.crt").write_text("not a certificate")
    with pytest.raises(ConfigError, match="the TLS certificates cannot be loaded"):
        _source({"consumerGroup": {"groupName": "g"}, "tls": tls}, SecretStore(tmp_path)).consumer_kwargs()


def test_a_bad_config_value_fails_when_the_sources_are_built() -> None:
    es = EventSource.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": "es"},
            "spec": {
                "kafka": {
                    "ev": {
                        "url": "k:9092",
                        "topic": "t",
                        "partition": "0",
                        "config": "consumer: {fetch: {min: lots}}",
                    }
                }
            },
        }
    )
    with pytest.raises(ConfigError, match=r"kafka es/ev: config key 'consumer\.fetch\.min' has an invalid"):
        build_sources([es], _Recorder(), None)
