"""The source registry and how webhook events are grouped into servers (no sockets opened)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.secrets import SecretStore
from gateway.sources import SOURCE_KINDS, build_sources, kinds_used, source_builder
from gateway.sources.amqp import build_amqp_sources
from gateway.sources.kafka import build_kafka_sources
from gateway.sources.webhook import WebhookServer, build_webhook_sources
from sensors.event import Event
from sensors.spec import EventSource


class _Recorder:
    async def publish(self, events: Sequence[Event]) -> list[bool]:
        return [True for _ in events]


def _event_source(name: str, webhook: dict[str, dict[str, Any]]) -> EventSource:
    return EventSource.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": name},
            "spec": {"webhook": webhook},
        }
    )


def test_registry_has_one_line_per_kind_and_a_miss_names_the_known_kinds() -> None:
    assert SOURCE_KINDS["webhook"] is build_webhook_sources
    assert source_builder("webhook") is build_webhook_sources
    assert SOURCE_KINDS["kafka"] is build_kafka_sources
    assert SOURCE_KINDS["amqp"] is build_amqp_sources
    expected = f"event source kind 'mqtt' is not implemented; known kinds: {', '.join(sorted(SOURCE_KINDS))}"
    with pytest.raises(ConfigError, match=expected):
        source_builder("mqtt")


def test_kinds_used_reads_the_spec_keys() -> None:
    es = _event_source("es", {"a": {"endpoint": "/a", "port": "12000"}})
    assert kinds_used(es) == ["webhook"]


def test_one_server_per_port_across_event_sources() -> None:
    first = _event_source(
        "first",
        {"a": {"endpoint": "/a", "port": "12000"}, "b": {"endpoint": "/b", "port": "12001"}},
    )
    second = _event_source("second", {"c": {"endpoint": "/c", "port": "12000", "method": "GET"}})
    sources = build_sources([first, second], _Recorder(), None, host="127.0.0.1")
    assert all(isinstance(s, WebhookServer) for s in sources)
    by_name = {s.name: s for s in sources}
    assert sorted(by_name) == ["webhook :12000", "webhook :12001"]
    on_12000 = by_name["webhook :12000"]
    assert isinstance(on_12000, WebhookServer)
    assert [e.label for e in on_12000.events] == ["first/a", "second/c"]
    assert on_12000.host == "127.0.0.1"


def test_same_endpoint_with_two_methods_is_allowed_but_not_the_same_method_twice() -> None:
    ok = _event_source(
        "es",
        {
            "post": {"endpoint": "/x", "port": "12000"},
            "get": {"endpoint": "/x", "port": "12000", "method": "GET"},
        },
    )
    assert len(build_webhook_sources([ok], _Recorder(), None)) == 1
    clash = _event_source("other", {"again": {"endpoint": "/x", "port": "12000", "method": "post"}})
    with pytest.raises(ConfigError, match=r"es/post and other/again both use POST /x on port 12000"):
        build_webhook_sources([ok, clash], _Recorder(), None)


def test_events_on_one_port_must_agree_on_tls(tmp_path: Path) -> None:
    tls = {
        "serverCertSecret": {"name": "tls", "key": "crt"},
        "serverKeySecret": {"name": "tls", "key": "key"},
    }
    es = _event_source(
        "es",
        {"a": {"endpoint": "/a", "port": "12000", **tls}, "b": {"endpoint": "/b", "port": "12000"}},
    )
    with pytest.raises(ConfigError, match="disagree on serverCertSecret/serverKeySecret"):
        build_webhook_sources([es], _Recorder(), SecretStore(tmp_path))
    tls_only = _event_source("es", {"a": {"endpoint": "/a", "port": "12000", **tls}})
    with pytest.raises(ConfigError, match="no secrets directory"):
        build_webhook_sources([tls_only], _Recorder(), None)


def test_auth_secret_needs_a_secret_store() -> None:
    es = _event_source(
        "es", {"a": {"endpoint": "/a", "port": "12000", "authSecret": {"name": "auth", "key": "token"}}}
    )
    with pytest.raises(ConfigError, match="webhook es/a: authSecret is set but no secrets directory"):
        build_webhook_sources([es], _Recorder(), None)
