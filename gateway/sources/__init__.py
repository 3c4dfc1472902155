"""Event sources: one module per kind, registered below in one line each.

A builder takes every EventSource manifest, the publisher (the bus) and the secret store, and
returns the :class:`~gateway.sources.base.Source` objects that serve the events of its kind (the
webhook builder returns one HTTP server per port, shared by every EventSource on that port).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.errors import ConfigError
from gateway.secrets import SecretStore
from gateway.sources.amqp import build_amqp_sources
from gateway.sources.base import Publisher, Source
from gateway.sources.kafka import build_kafka_sources
from gateway.sources.s3 import build_s3_sources
from gateway.sources.sqs import build_sqs_sources
from gateway.sources.webhook import build_webhook_sources
from sensors.spec import SOURCE_TYPES, EventSource, EventSourceSpec

SourceBuilder = Callable[..., Sequence[Source]]

# Spec key (``pubSub``, ``s3``) -> field of ``EventSourceSpec`` (``pub_sub``, ``s3``).
_SPEC_FIELDS = {info.alias or name: name for name, info in EventSourceSpec.model_fields.items()}

SOURCE_KINDS: dict[str, SourceBuilder] = {
    "amqp": build_amqp_sources,
    "kafka": build_kafka_sources,
    "s3": build_s3_sources,
    "sqs": build_sqs_sources,
    "webhook": build_webhook_sources,
}


def source_builder(kind: str) -> SourceBuilder:
    """The builder of ``kind`` (an EventSource spec key such as ``webhook``)."""
    try:
        return SOURCE_KINDS[kind]
    except KeyError:
        raise ConfigError(
            [f"event source kind {kind!r} is not implemented; known kinds: {', '.join(sorted(SOURCE_KINDS))}"]
        ) from None


def kinds_used(event_source: EventSource) -> list[str]:
    """The source kinds (spec keys, Argo spelling, and ``s3``) that ``event_source`` has events for."""
    return [kind for kind in SOURCE_TYPES if getattr(event_source.spec, _SPEC_FIELDS.get(kind, kind), None)]


def build_sources(
    event_sources: Sequence[EventSource],
    publisher: Publisher,
    secrets: SecretStore | None,
    **options: Any,
) -> list[Source]:
    """Every source needed by ``event_sources``, kind by kind.

    ``options`` (``host``, ``graceful_timeout``, ``dead_letters``: where sources keep upstream
    messages they cannot use) are passed to every builder; a builder ignores what it does not use.
    """
    kinds: list[str] = []
    for event_source in event_sources:
        for kind in kinds_used(event_source):
            if kind not in kinds:
                kinds.append(kind)
    sources: list[Source] = []
    for kind in kinds:
        sources.extend(source_builder(kind)(event_sources, publisher, secrets, **options))
    return sources
