"""Argo's Kafka ``config`` (YAML of Go's ``sarama.Config``) as aiokafka consumer options.

Argo decodes the YAML into ``sarama.Config`` with viper, so keys are case-insensitive paths of
sarama's struct fields and durations are Go durations (``10s``) or integers of nanoseconds.
:data:`SARAMA_OPTIONS` lists the keys that have an aiokafka equivalent; :func:`client_options`
returns the others so that the source can warn that they are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from gateway.errors import ConfigError
from sensors.spec import parse_go_duration


def _duration_ms(value: Any) -> int:
    return round(parse_go_duration(value) * 1000)


def _isolation(value: Any) -> str:
    levels = {0: "read_uncommitted", 1: "read_committed"}
    if value not in levels:
        raise ValueError("use 0 (ReadUncommitted) or 1 (ReadCommitted)")
    return levels[value]


def _initial_offset(value: Any) -> str:
    offsets = {-2: "earliest", -1: "latest"}
    if value not in offsets:
        raise ValueError("use -2 (oldest) or -1 (newest)")
    return offsets[value]


# sarama.Config key (lower case, dotted, as viper reads Argo's YAML) -> (aiokafka option, converter)
SARAMA_OPTIONS: dict[str, tuple[str, Any]] = {
    "clientid": ("client_id", str),
    "rackid": ("client_rack", str),
    "metadata.refreshfrequency": ("metadata_max_age_ms", _duration_ms),
    "net.readtimeout": ("request_timeout_ms", _duration_ms),
    "consumer.group.session.timeout": ("session_timeout_ms", _duration_ms),
    "consumer.group.heartbeat.interval": ("heartbeat_interval_ms", _duration_ms),
    "consumer.group.rebalance.timeout": ("rebalance_timeout_ms", _duration_ms),
    "consumer.maxwaittime": ("fetch_max_wait_ms", _duration_ms),
    "consumer.retry.backoff": ("retry_backoff_ms", _duration_ms),
    "consumer.fetch.min": ("fetch_min_bytes", int),
    "consumer.fetch.default": ("max_partition_fetch_bytes", int),
    "consumer.fetch.max": ("fetch_max_bytes", int),
    "consumer.isolationlevel": ("isolation_level", _isolation),
    "consumer.offsets.initial": ("auto_offset_reset", _initial_offset),
}


def _flatten(doc: Mapping[Any, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in doc.items():
        path = f"{prefix}{str(key).lower()}"
        if isinstance(value, Mapping):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def client_options(config: str, where: str) -> tuple[dict[str, Any], list[str]]:
    """The aiokafka options of Argo's ``config`` YAML, and the keys that have no equivalent.

    Raises ``ConfigError`` (naming ``where`` and the key) for a value that cannot be converted.
    """
    if not config.strip():
        return {}, []
    doc = yaml.safe_load(config) or {}
    if not isinstance(doc, Mapping):
        raise ConfigError([f"{where}: config must be a YAML mapping of sarama.Config fields"])
    options: dict[str, Any] = {}
    ignored: list[str] = []
    problems: list[str] = []
    for path, value in _flatten(doc):
        known = SARAMA_OPTIONS.get(path)
        if known is None:
            ignored.append(path)
            continue
        name, convert = known
        try:
            options[name] = convert(value)
        except (TypeError, ValueError) as exc:
            problems.append(f"{where}: config key {path!r} has an invalid value {value!r}: {exc}")
    if problems:
        raise ConfigError(problems)
    return options, ignored


