"""Bus backends. Each backend is one module, registered here in one line.

``parse_bus_url`` turns the ``--bus`` value (``sqlite``, ``memory`` or a ``kafka://`` URL) into the
arguments of ``create_bus``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gateway.bus.base import Bus
from sensors.spec import parse_go_duration

BACKENDS: dict[str, Callable[..., Bus]] = {}


def _sqlite(state_dir: Path, **options: object) -> Bus:
    from gateway.bus.sqlite import SqliteBus

    return SqliteBus(state_dir / "bus.db", **options)  # type: ignore[arg-type]


def _memory(state_dir: Path, **options: object) -> Bus:
    from gateway.bus.memory import MemoryBus

    return MemoryBus(**options)  # type: ignore[arg-type]


def _kafka(state_dir: Path, **options: object) -> Bus:
    from gateway.bus.kafka import KafkaBus

    return KafkaBus(state_dir=state_dir, **options)  # type: ignore[arg-type]


BACKENDS["sqlite"] = _sqlite
BACKENDS["memory"] = _memory
BACKENDS["kafka"] = _kafka


def create_bus(kind: str, state_dir: Path, **options: object) -> Bus:
    try:
        factory = BACKENDS[kind]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown bus backend {kind!r}; known backends: {known}") from None
    return factory(state_dir, **options)


# -- the --bus value -----------------------------------------------------------------------------

_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_BROKER = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^\s:/\[\],]+):([0-9]{1,5})$")
_BUS_FORMS = "sqlite, memory or kafka://host:port[,host:port...]/<topic>?consumerGroup=<group>[&...]"


def _duration(value: str) -> float:
    text = value.strip()
    if text.isdigit() and text != "0":
        raise ValueError(f"{value!r} has no unit: write e.g. 10s, 500ms or 24h")
    seconds = parse_go_duration(text)
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds


def _count(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a whole number") from None
        if number < minimum:
            raise ValueError(f"{value!r} is below the minimum of {minimum}")
        return number

    return parse


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} must be 1-249 characters of [a-zA-Z0-9._-]")
    return value


def _secret_ref(value: str) -> str:
    name, _, key = value.partition("/")
    if not name or not key or "/" in key:
        raise ValueError(f"{value!r} must be <secret name>/<key>, read from <secrets-dir>/<name>/<key>")
    return value


def _mechanism(value: str) -> str:
    mechanisms = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    if value.upper() not in mechanisms:
        raise ValueError(f"{value!r} is not one of {', '.join(mechanisms)}")
    return value.upper()


def _text(value: str) -> str:
    if not value:
        raise ValueError("it must not be empty")
    return value


#: The query parameters of a ``kafka://`` bus URL: name -> (KafkaBus keyword, parser, meaning).
KAFKA_URL_PARAMETERS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "consumerGroup": ("consumer_group", _name, "prefix of the Kafka consumer groups (default triggergate)"),
    "partitions": ("partitions", _count(1), "partitions of the topics the bus creates (default 12)"),
    "replicationFactor": (
        "replication_factor",
        _count(1),
        "replication of the topics it creates (default 1)",
    ),
    "sessionTimeout": ("session_timeout", _duration, "consumer group session timeout (default 10s)"),
    "heartbeatInterval": ("heartbeat_interval", _duration, "consumer heartbeat interval (default 3s)"),
    "dedupWindow": (
        "dedup_window",
        _duration,
        "a repeated event id within this time is dropped (default 24h)",
    ),
    "dedupLookback": (
        "dedup_lookback",
        _count(0),
        "records per partition read back for dedup (default 10000)",
    ),
    "dedupMaxIds": ("dedup_max_ids", _count(1), "published ids remembered per process (default 200000)"),
    "linger": ("linger", _duration, "producer linger (default 2ms)"),
    "fetchMaxWait": ("fetch_max_wait", _duration, "consumer fetch wait (default 100ms)"),
    "ackFlushInterval": ("ack_flush_interval", _duration, "how often acks are committed (default 150ms)"),
    "requestTimeout": ("request_timeout", _duration, "Kafka request timeout (default 30s)"),
    "clientId": ("client_id", _text, "Kafka client id (default triggergate)"),
    "tls": ("tls", _flag, "TLS with the system CAs (default false)"),
    "tlsCaSecret": ("tls_ca_secret", _secret_ref, "CA bundle (PEM) as <secret name>/<key>; implies tls"),
    "saslMechanism": ("sasl_mechanism", _mechanism, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    "saslUserSecret": ("sasl_user_secret", _secret_ref, "SASL user as <secret name>/<key>"),
    "saslPasswordSecret": ("sasl_password_secret", _secret_ref, "SASL password as <secret name>/<key>"),
}


def parse_bus_url(url: str) -> tuple[str, dict[str, Any]]:
    """``(kind, options)`` for ``create_bus`` from a ``--bus`` value.

    ``sqlite`` and ``memory`` take no options. A Kafka bus is
    ``kafka://host1:9092,host2:9092/<topic>?consumerGroup=<prefix>&partitions=12&...`` (the
    parameters are :data:`KAFKA_URL_PARAMETERS`; durations are Go durations such as ``10s``,
    ``500ms`` or ``24h``). Raises ``ValueError`` naming the bad part or query parameter.
    """
    text = url.strip()
    if text in ("sqlite", "memory"):
        return text, {}
    if not text.startswith("kafka://"):
        raise ValueError(f"--bus {url!r} is not a bus; use {_BUS_FORMS}")
    parts = urlsplit(text)
    if parts.fragment:
        raise ValueError(f"--bus {url!r}: a Kafka bus URL has no #fragment")
    brokers = [b for b in parts.netloc.split(",")]
    if not parts.netloc or any(
        not _BROKER.match(b) or not 0 < int(b.rsplit(":", 1)[1]) < 65536 for b in brokers
    ):
        raise ValueError(
            f"--bus {url!r}: the brokers {parts.netloc!r} must be host:port separated by commas, "
            "e.g. kafka://kafka-0.kafka:9092,kafka-1.kafka:9092/triggergate-events"
        )
    topic = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not topic:
        raise ValueError(
            f"--bus {url!r}: the topic is missing; put it after the brokers, e.g. kafka://{parts.netloc}/triggergate-events"
        )
    if not _NAME.match(topic):
        raise ValueError(f"--bus {url!r}: the topic {topic!r} must be 1-249 characters of [a-zA-Z0-9._-]")
    options: dict[str, Any] = {"bootstrap": ",".join(brokers), "topic": topic}
    seen: set[str] = set()
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name in seen:
            raise ValueError(f"--bus {url!r}: the query parameter {name!r} is given twice")
        seen.add(name)
        spec = KAFKA_URL_PARAMETERS.get(name)
        if spec is None:
            known = ", ".join(KAFKA_URL_PARAMETERS)
            raise ValueError(f"--bus {url!r}: unknown query parameter {name!r}; known parameters: {known}")
        keyword, parse, meaning = spec
        try:
            options[keyword] = parse(value)
        except ValueError as exc:
            raise ValueError(f"--bus {url!r}: query parameter {name}={value!r}: {exc} ({meaning})") from None
    if parts.query and not seen:
        raise ValueError(f"--bus {url!r}: the query {parts.query!r} holds no name=value parameter")
    return "kafka", options
