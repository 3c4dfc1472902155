"""pydantic v2 models of Argo Events ``EventSource`` and ``Sensor`` manifests.

Field names are Argo's (camelCase in YAML, snake_case in Python). Defaults are Argo's. Fields that
Argo has but triggergate does not implement yet are accepted by name and rejected with a message
that says what is supported, so that a manifest never silently changes meaning.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

API_VERSION = "argoproj.io/v1alpha1"

# Every EventSource type Argo Events knows (spec keys), and the ones triggergate implements.
ARGO_SOURCE_TYPES = (
    "amqp",
    "azureEventsHub",
    "azureQueueStorage",
    "azureServiceBus",
    "bitbucket",
    "bitbucketserver",
    "calendar",
    "emitter",
    "file",
    "generic",
    "gerrit",
    "github",
    "gitlab",
    "hdfs",
    "kafka",
    "minio",
    "mns",
    "mqtt",
    "nats",
    "nsq",
    "pubSub",
    "pulsar",
    "redis",
    "redisStream",
    "resource",
    "sftp",
    "slack",
    "sns",
    "sqs",
    "storageGrid",
    "stripe",
    "webhook",
)
SUPPORTED_SOURCE_TYPES = ("amqp", "kafka", "s3", "sqs", "webhook")
# Source types of triggergate's own (not in Argo Events), and every type a manifest may hold.
OWN_SOURCE_TYPES = ("s3",)
SOURCE_TYPES = (*ARGO_SOURCE_TYPES, *OWN_SOURCE_TYPES)

# Every trigger type Argo Events knows, and the ones triggergate implements.
ARGO_TRIGGER_TYPES = (
    "k8s",
    "argoWorkflow",
    "http",
    "awsLambda",
    "azureEventHubs",
    "azureServiceBus",
    "kafka",
    "pulsar",
    "nats",
    "slack",
    "openWhisk",
    "custom",
    "log",
    "email",
)
SUPPORTED_TRIGGER_TYPES = ("http", "log", "argoWorkflow", "k8s")
# Trigger type key (Argo's camelCase) -> field of ``TriggerTemplate``.
_TRIGGER_FIELDS = {"http": "http", "log": "log", "argoWorkflow": "argo_workflow", "k8s": "k8s"}


class ArgoModel(BaseModel):
    """Base for every spec model: Argo's camelCase names, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


def _not_implemented(kind: str, name: str, supported: tuple[str, ...]) -> str:
    return (
        f"{kind} type '{name}' is not implemented by triggergate yet; "
        f"supported {kind} types: {', '.join(supported)}"
    )


# --------------------------------------------------------------------------- common


def _check_template(text: str) -> None:
    """A Go template must compile (syntax, known functions, argument counts) when a manifest loads."""
    from sensors.templates import TemplateError, compile_template

    try:
        compile_template(text)
    except TemplateError as exc:
        raise ValueError(str(exc)) from None


class ObjectMeta(BaseModel):
    """Kubernetes object metadata; fields other than these are kept but not used."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", value) or len(value) > 253:
            raise ValueError(
                "must be a lowercase RFC 1123 name: letters, digits, '-' and '.', "
                "starting and ending with a letter or digit"
            )
        return value


class SecretKeySelector(ArgoModel):
    """A reference to one key of a Kubernetes Secret: read from ``<secrets-dir>/<name>/<key>``."""

    name: str
    key: str
    optional: bool | None = None

    @field_validator("name", "key")
    @classmethod
    def _safe_path_part(cls, value: str) -> str:
        if not value or "/" in value or value in (".", ".."):
            raise ValueError("must be a non-empty name without '/'")
        return value


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(value: str | int | float) -> float:
    """Seconds from a Go duration string (``1s``, ``1m30s``, ``500ms``) or an integer of nanoseconds."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a string such as '1s' or an integer of nanoseconds")
    if isinstance(value, int | float):
        return float(value) / 1e9
    text = value.strip()
    if text in ("0", ""):
        return 0.0
    if re.fullmatch(r"\d+", text):
        return int(text) / 1e9
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {value!r}: use a Go duration such as '1s', '500ms' or '1m30s'")
    return total


class Backoff(ArgoModel):
    """Argo's ``Backoff``: ``steps`` is the total number of attempts."""

    duration: str | int | None = None
    factor: float | None = None
    jitter: float | None = None
    steps: int | None = None

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_go_duration(value)
        return value

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("steps must be >= 0 (it is the total number of attempts; 0 means 5)")
        return value

    def attempts(self) -> int:
        return 5 if not self.steps else self.steps

    def first_delay(self) -> float:
        return 1.0 if self.duration is None else parse_go_duration(self.duration)


# --------------------------------------------------------------------------- EventSource


class EventSourceFilter(ArgoModel):
    expression: str


class WebhookContext(ArgoModel):
    """Argo's ``WebhookContext``: one HTTP endpoint of a webhook-style source."""

    endpoint: str
    method: str = "POST"
    port: str
    url: str | None = None
    server_cert_secret: SecretKeySelector | None = None
    server_key_secret: SecretKeySelector | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    auth_secret: SecretKeySelector | None = None
    max_payload_size: int = 1048576

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> str:
        text = str(value)
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ValueError("port must be a number between 1 and 65535 (a string, as in Argo)")
        return text

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("endpoint must start with '/' (for example '/example')")
        if value in ("/health", "/metrics"):
            what = "the health check" if value == "/health" else "the Prometheus metrics"
            raise ValueError(f"'{value}' is reserved for {what} on every webhook port; use another endpoint")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        upper = value.upper()
        if upper not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise ValueError("method must be one of GET, POST, PUT, PATCH, DELETE")
        return upper

    @field_validator("max_payload_size")
    @classmethod
    def _max_payload(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("maxPayloadSize must be a positive number of bytes")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> WebhookContext:
        if (self.server_cert_secret is None) != (self.server_key_secret is None):
            raise ValueError("serverCertSecret and serverKeySecret must be set together")
        return self


class WebhookEventSource(WebhookContext):
    """One entry under ``spec.webhook``."""

    filter: EventSourceFilter | None = None

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: EventSourceFilter | None) -> EventSourceFilter | None:
        if value is not None:
            raise ValueError(
                "EventSource-level filter expressions are not implemented yet; "
                "filter in the Sensor dependency instead (filters.data)"
            )
        return value


def _reject_filter(value: EventSourceFilter | None) -> EventSourceFilter | None:
    if value is not None:
        raise ValueError(
            "EventSource-level filter expressions are not implemented yet; "
            "filter in the Sensor dependency instead (filters.data)"
        )
    return value


def _check_yaml_mapping(value: str, field: str, example: str) -> str:
    """``value`` must be empty or a YAML mapping (Argo parses these strings at run time)."""
    import yaml

    if not value.strip():
        return value
    try:
        doc = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ValueError(f"{field} must be a YAML mapping (for example {example!r}): {exc}") from None
    if doc is not None and not isinstance(doc, dict):
        raise ValueError(
            f"{field} must be a YAML mapping (for example {example!r}), got {type(doc).__name__}"
        )
    return value


class TLSConfig(ArgoModel):
    """Argo's ``TLSConfig`` of a client: CA and client certificate from secrets."""

    ca_cert_secret: SecretKeySelector | None = None
    client_cert_secret: SecretKeySelector | None = None
    client_key_secret: SecretKeySelector | None = None
    insecure_skip_verify: bool = False
    enabled: bool = False

    @model_validator(mode="after")
    def _argo_rules(self) -> TLSConfig:
        if self.insecure_skip_verify:
            return self
        cert, key = self.client_cert_secret is not None, self.client_key_secret is not None
        if self.ca_cert_secret is None and not cert and not key and not self.enabled:
            raise ValueError(
                "invalid tls config: set caCertSecret, or clientCertSecret and clientKeySecret, or both "
                "(or enabled: true to use TLS with the system CAs, or insecureSkipVerify: true)"
            )
        if cert != key:
            raise ValueError("invalid tls config: clientCertSecret and clientKeySecret must be set together")
        return self


KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SASLConfig(ArgoModel):
    """Argo's ``SASLConfig``: ``mechanism`` (default ``PLAIN``) with user and password secrets."""

    mechanism: str = "PLAIN"
    user_secret: SecretKeySelector | None = None
    password_secret: SecretKeySelector | None = None

    @field_validator("mechanism")
    @classmethod
    def _mechanism(cls, value: str) -> str:
        mechanism = value or "PLAIN"
        if mechanism in ("OAUTHBEARER", "GSSAPI"):
            raise ValueError(
                f"SASL mechanism {mechanism} is not supported by triggergate; "
                f"supported: {', '.join(KAFKA_SASL_MECHANISMS)}"
            )
        if mechanism not in KAFKA_SASL_MECHANISMS:
            raise ValueError(
                f"invalid SASL mechanism {value!r}; allowed: {', '.join(KAFKA_SASL_MECHANISMS)} "
                "(Argo also knows OAUTHBEARER and GSSAPI, which triggergate does not support)"
            )
        return mechanism

    @model_validator(mode="after")
    def _credentials(self) -> SASLConfig:
        if self.user_secret is None or self.password_secret is None:
            raise ValueError("invalid sasl config: both userSecret and passwordSecret must be set")
        return self


class KafkaConsumerGroup(ArgoModel):
    """Argo's ``KafkaConsumerGroup``: consumer-group mode, offsets committed after the bus has the events."""

    group_name: str
    oldest: bool = False
    rebalance_strategy: str = "range"

    @field_validator("group_name")
    @classmethod
    def _group_name(cls, value: str) -> str:
        if not value:
            raise ValueError("groupName must not be empty")
        return value


class KafkaEventSource(ArgoModel):
    """One entry under ``spec.kafka`` (Argo's ``KafkaEventSource``).

    ``partition`` is required unless ``consumerGroup`` is set. ``config`` is Argo's YAML of
    ``sarama.Config`` overrides; the keys triggergate maps onto its client are listed in
    ``docs/sources/kafka.md``. ``schemaRegistry`` and ``awsMskIamAuth`` are not supported.
    """

    url: str
    topic: str
    partition: str | None = None
    connection_backoff: Backoff | None = None
    tls: TLSConfig | None = None
    json_body: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)
    consumer_group: KafkaConsumerGroup | None = None
    limit_events_per_second: int = 0
    version: str = ""
    sasl: SASLConfig | None = None
    filter: EventSourceFilter | None = None
    config: str = ""
    schema_registry: Any = None
    aws_msk_iam_auth: Any = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        brokers = [part.strip() for part in value.split(",")]
        if not value.strip() or not all(brokers):
            raise ValueError("url must list the brokers as host:port, comma-separated (e.g. 'kafka:9092')")
        return value

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not value:
            raise ValueError("topic must be specified")
        return value

    @field_validator("partition", mode="before")
    @classmethod
    def _partition(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        text = str(value)
        if not text.isdigit():
            raise ValueError(f"partition must be a partition number such as \"0\", got {value!r}")
        return text

    @field_validator("limit_events_per_second")
    @classmethod
    def _limit(cls, value: int) -> int:
        if value < 0:
            raise ValueError("limitEventsPerSecond must be >= 0 (0 means no limit)")
        return value

    @field_validator("config")
    @classmethod
    def _config(cls, value: str) -> str:
        return _check_yaml_mapping(value, "config", "consumer: {fetch: {min: 1}}")

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: EventSourceFilter | None) -> EventSourceFilter | None:
        return _reject_filter(value)

    @field_validator("schema_registry")
    @classmethod
    def _schema_registry(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError(
                "schemaRegistry (Avro decoding) is not supported by triggergate; "
                "produce JSON values and set jsonBody: true"
            )
        return value

    @field_validator("aws_msk_iam_auth")
    @classmethod
    def _msk_iam(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError(
                "awsMskIamAuth is not supported by triggergate; use sasl (PLAIN or SCRAM-SHA-512) with tls"
            )
        return value

    @model_validator(mode="after")
    def _mode(self) -> KafkaEventSource:
        if self.partition is None and self.consumer_group is None:
            raise ValueError(
                "consumerGroup or partition must be specified (consumerGroup is the mode that loses "
                "nothing across restarts)"
            )
        return self


class AMQPExchangeDeclareConfig(ArgoModel):
    durable: bool = False
    auto_delete: bool = False
    internal: bool = False
    no_wait: bool = False


class AMQPQueueDeclareConfig(ArgoModel):
    """``name`` empty: the queue gets a generated name. ``arguments`` is a YAML mapping (x-arguments)."""

    name: str = ""
    durable: bool = False
    auto_delete: bool = False
    exclusive: bool = False
    no_wait: bool = False
    arguments: str = ""

    @field_validator("arguments")
    @classmethod
    def _arguments(cls, value: str) -> str:
        return _check_yaml_mapping(value, "arguments", "x-queue-type: quorum")


class AMQPQueueBindConfig(ArgoModel):
    no_wait: bool = False


class AMQPConsumeConfig(ArgoModel):
    consumer_tag: str = ""
    auto_ack: bool = False
    exclusive: bool = False
    no_local: bool = False
    no_wait: bool = False


class AMQPEventSource(ArgoModel):
    """One entry under ``spec.amqp`` (Argo's ``AMQPEventSource``), with Argo's defaults.

    As in Argo, a section that is left out gets Argo's defaults (``exchangeDeclare.durable``,
    ``queueDeclare.exclusive`` and ``consume.autoAck`` true), while a section that is written
    starts from false for every flag it does not set.
    """

    url: str = ""
    url_secret: SecretKeySelector | None = None
    exchange_name: str
    exchange_type: str
    routing_key: str
    connection_backoff: Backoff | None = None
    json_body: bool = False
    tls: TLSConfig | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    exchange_declare: AMQPExchangeDeclareConfig = Field(
        default_factory=lambda: AMQPExchangeDeclareConfig(durable=True)
    )
    queue_declare: AMQPQueueDeclareConfig = Field(
        default_factory=lambda: AMQPQueueDeclareConfig(exclusive=True)
    )
    queue_bind: AMQPQueueBindConfig = Field(default_factory=AMQPQueueBindConfig)
    consume: AMQPConsumeConfig = Field(default_factory=lambda: AMQPConsumeConfig(auto_ack=True))
    auth: BasicAuth | None = None
    filter: EventSourceFilter | None = None

    @field_validator("exchange_type")
    @classmethod
    def _exchange_type(cls, value: str) -> str:
        if not value:
            raise ValueError("exchangeType must be specified: fanout, direct, topic or headers")
        return value

    @field_validator("routing_key")
    @classmethod
    def _routing_key(cls, value: str) -> str:
        if not value:
            raise ValueError("routingKey must be specified (the binding key of the queue)")
        return value

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: EventSourceFilter | None) -> EventSourceFilter | None:
        return _reject_filter(value)

    @model_validator(mode="after")
    def _url_or_secret(self) -> AMQPEventSource:
        if not self.url and self.url_secret is None:
            raise ValueError("either url or urlSecret must be specified (e.g. url: amqp://user:pass@host:5672/)")
        if self.url and self.url_secret is not None:
            raise ValueError("only one of url or urlSecret can be specified")
        if self.auth is not None and (self.auth.username is None or self.auth.password is None):
            raise ValueError("auth needs both username and password secrets")
        return self


# --------------------------------------------------------------------------- EventSource: s3 and sqs


def _non_empty(value: str, field: str, example: str) -> str:
    if not value.strip():
        raise ValueError(f"{field} must not be empty (for example {example!r})")
    return value


def _duration_field(value: str, field: str) -> str:
    if parse_go_duration(value) <= 0:
        raise ValueError(f"{field} must be a positive Go duration such as '30s', '5m' or '1h'")
    return value


class S3QueueSpec(ArgoModel):
    """``spec.s3.<event>.sqs``: the SQS queue that S3 (directly or through SNS) sends notifications to.

    ``queue`` is a queue URL or a queue name (resolved with ``GetQueueUrl``, in ``queueAccountId``'s
    account when set). Credentials: ``accessKey``/``secretKey`` (+ ``sessionToken``) secrets, or
    boto3's environment chain when they are left out.
    """

    queue: str
    region: str | None = None
    endpoint: str | None = None
    queue_account_id: str | None = None
    wait_time_seconds: int = 20
    visibility_timeout: int | None = None
    access_key: SecretKeySelector | None = None
    secret_key: SecretKeySelector | None = None
    session_token: SecretKeySelector | None = None

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str) -> str:
        return _non_empty(value, "queue", "uploads or https://sqs.eu-west-1.amazonaws.com/123456789012/uploads")

    @field_validator("wait_time_seconds")
    @classmethod
    def _wait(cls, value: int) -> int:
        if not 0 <= value <= 20:
            raise ValueError("waitTimeSeconds must be between 0 and 20 (SQS long polling waits at most 20 s)")
        return value

    @field_validator("visibility_timeout")
    @classmethod
    def _visibility(cls, value: int | None) -> int | None:
        if value is not None and not 0 < value <= 43200:
            raise ValueError("visibilityTimeout must be between 1 and 43200 seconds (12 hours)")
        return value

    @model_validator(mode="after")
    def _key_pair(self) -> S3QueueSpec:
        _check_key_pair(self.access_key, self.secret_key, self.session_token)
        return self


def _check_key_pair(
    access_key: SecretKeySelector | None,
    secret_key: SecretKeySelector | None,
    token: SecretKeySelector | None,
) -> None:
    if (access_key is None) != (secret_key is None):
        raise ValueError(
            "accessKey and secretKey must be set together (or both left out to use the environment)"
        )
    if token is not None and access_key is None:
        raise ValueError("sessionToken needs accessKey and secretKey")


class S3ReconcileSpec(ArgoModel):
    """``spec.s3.<event>.reconcile``: list the bucket every ``interval`` and announce objects that no
    notification announced.

    Objects younger than ``minAge`` are left for the next pass (their notification may be on its
    way); objects older than ``maxAge`` are never announced (keep it within the bus's dedup window,
    24 h by default, so that a restart does not announce them again). ``bucket`` and ``prefix``
    default to the entry's filters.
    """

    interval: str = "5m"
    bucket: str | None = None
    prefix: str | None = None
    endpoint: str | None = None
    region: str | None = None
    access_key: SecretKeySelector | None = None
    secret_key: SecretKeySelector | None = None
    session_token: SecretKeySelector | None = None
    min_age: str = "1m"
    max_age: str = "24h"

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        return _duration_field(value, "interval")

    @field_validator("max_age")
    @classmethod
    def _max_age(cls, value: str) -> str:
        return _duration_field(value, "maxAge")

    @field_validator("min_age")
    @classmethod
    def _min_age(cls, value: str) -> str:
        parse_go_duration(value)
        return value

    @model_validator(mode="after")
    def _ages(self) -> S3ReconcileSpec:
        _check_key_pair(self.access_key, self.secret_key, self.session_token)
        if parse_go_duration(self.min_age) >= parse_go_duration(self.max_age):
            raise ValueError("minAge must be shorter than maxAge")
        return self


class SNSConfirmSpec(ArgoModel):
    """``spec.s3.<event>.sns``: how an SNS ``SubscriptionConfirmation`` (pushed to the webhook or
    found in the queue) is answered.

    With ``confirm`` (the default) the gateway GETs the message's ``SubscribeURL`` when its host is
    an AWS SNS endpoint (``sns.<region>.amazonaws.com[.cn]`` over https) or is listed in
    ``allowedHosts`` (``host`` or ``host:port``, for SNS-compatible services).
    """

    confirm: bool = True
    allowed_hosts: list[str] = Field(default_factory=list)


class S3EventSource(ArgoModel):
    """One entry under ``spec.s3`` (triggergate's own type; see ``docs/sources/s3.md``).

    Notifications arrive pushed to ``webhook`` (MinIO webhook target, SNS HTTP(S) subscription,
    MNS HTTP push, EventBridge API destination), pulled from ``sqs``, or both; ``reconcile``
    lists the bucket to find objects whose notification was lost. ``bucket``, ``prefix``,
    ``suffix`` and ``events`` (``ObjectCreated:*``, with or without ``s3:``) filter the records.
    """

    webhook: WebhookContext | None = None
    sqs: S3QueueSpec | None = None
    reconcile: S3ReconcileSpec | None = None
    sns: SNSConfirmSpec | None = None
    bucket: str | None = None
    prefix: str = ""
    suffix: str = ""
    events: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        from sensors.notifications import NotificationError, event_pattern

        for pattern in value:
            try:
                event_pattern(pattern)
            except NotificationError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _shape(self) -> S3EventSource:
        if self.webhook is None and self.sqs is None and self.reconcile is None:
            raise ValueError(
                "an s3 event needs at least one of webhook (pushed notifications), sqs (a queue to "
                "poll) or reconcile (list the bucket)"
            )
        if self.webhook is not None and self.webhook.metadata:
            raise ValueError(
                "set metadata on the s3 event itself (spec.s3.<event>.metadata), not under webhook"
            )
        if self.sns is not None and self.webhook is None and self.sqs is None:
            raise ValueError(
                "sns answers SNS subscription confirmations that reach the webhook or the queue; "
                "it needs webhook or sqs"
            )
        if self.reconcile is not None:
            if not (self.reconcile.bucket or self.bucket):
                raise ValueError("reconcile needs a bucket to list: set reconcile.bucket or bucket")
            if self.reconcile.bucket and self.bucket and self.reconcile.bucket != self.bucket:
                raise ValueError(
                    f"reconcile.bucket {self.reconcile.bucket!r} differs from the bucket filter "
                    f"{self.bucket!r}, so nothing it finds would pass; leave reconcile.bucket out"
                )
            from sensors.notifications import ObjectFilter

            created = ("ObjectCreated:Put", "ObjectCreated:CompleteMultipartUpload")
            flt = ObjectFilter.build(events=self.events)
            if not any(flt.matches_event(name) for name in created):
                raise ValueError(
                    "reconcile announces created objects (ObjectCreated:Put / "
                    "ObjectCreated:CompleteMultipartUpload), which the events filter excludes; "
                    "add 'ObjectCreated:*' to events or remove reconcile"
                )
        return self


class SQSEventSource(ArgoModel):
    """One entry under ``spec.sqs`` (Argo's ``SQSEventSource``; see ``docs/sources/sqs.md``).

    ``queue`` is the queue name (resolved with ``GetQueueUrl``), as in Argo; ``waitTimeSeconds`` 0
    means 3 s, as in Argo. ``roleARN`` is not supported (assume the role outside the gateway).
    """

    region: str
    queue: str
    access_key: SecretKeySelector | None = None
    secret_key: SecretKeySelector | None = None
    session_token: SecretKeySelector | None = None
    wait_time_seconds: int = 0
    json_body: bool = False
    role_arn: str | None = Field(default=None, alias="roleARN")
    queue_account_id: str | None = None
    endpoint: str | None = None
    dlq: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)
    filter: EventSourceFilter | None = None
    skip_polling_when_event_bus_full: bool = False

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return _non_empty(value, "region", "us-east-1")

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str) -> str:
        return _non_empty(value, "queue", "my-queue")

    @field_validator("wait_time_seconds", mode="before")
    @classmethod
    def _wait(cls, value: Any) -> Any:
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or int(text) > 20:
            raise ValueError(
                "waitTimeSeconds must be a number of seconds between 0 and 20 (0 means 3, as in Argo)"
            )
        return int(text)

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str | None) -> str | None:
        if value:
            raise ValueError(
                "roleARN is not supported: assume the role outside triggergate (for example IRSA, or "
                "AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE in the environment) and leave roleARN empty"
            )
        return value

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: EventSourceFilter | None) -> EventSourceFilter | None:
        return _reject_filter(value)

    @model_validator(mode="after")
    def _key_pair(self) -> SQSEventSource:
        _check_key_pair(self.access_key, self.secret_key, self.session_token)
        return self


MINIO_NOT_SUPPORTED = (
    "source type 'minio' is not supported: it needs MinIO's ListenBucketNotification streaming API, "
    "which loses events while disconnected; use type 's3' with MinIO's webhook target instead "
    "(mc admin config set ALIAS notify_webhook:ID endpoint=http://GATEWAY:PORT/PATH auth_token=TOKEN; "
    "mc event add ALIAS/BUCKET arn:minio:sqs::ID:webhook --event put), see docs/sources/s3.md"
)


class EventSourceSpec(ArgoModel):
    event_bus_name: str = "default"
    template: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    replicas: int | None = None
    replica: int | None = None
    webhook: dict[str, WebhookEventSource] = Field(default_factory=dict)
    amqp: dict[str, AMQPEventSource] = Field(default_factory=dict)
    kafka: dict[str, KafkaEventSource] = Field(default_factory=dict)
    s3: dict[str, S3EventSource] = Field(default_factory=dict)
    sqs: dict[str, SQSEventSource] = Field(default_factory=dict)

    # Argo source types that are not implemented yet: named so that the error says so.
    azure_events_hub: Any = None
    azure_queue_storage: Any = None
    azure_service_bus: Any = None
    bitbucket: Any = None
    bitbucketserver: Any = None
    calendar: Any = None
    emitter: Any = None
    file: Any = None
    generic: Any = None
    gerrit: Any = None
    github: Any = None
    gitlab: Any = None
    hdfs: Any = None
    minio: Any = None
    mns: Any = None
    mqtt: Any = None
    nats: Any = None
    nsq: Any = None
    pub_sub: Any = None
    pulsar: Any = None
    redis: Any = None
    redis_stream: Any = None
    resource: Any = None
    sftp: Any = None
    slack: Any = None
    sns: Any = None
    storage_grid: Any = None
    stripe: Any = None

    @field_validator(
        "azure_events_hub",
        "azure_queue_storage",
        "azure_service_bus",
        "bitbucket",
        "bitbucketserver",
        "calendar",
        "emitter",
        "file",
        "generic",
        "gerrit",
        "github",
        "gitlab",
        "hdfs",
        "mns",
        "mqtt",
        "nats",
        "nsq",
        "pub_sub",
        "pulsar",
        "redis",
        "redis_stream",
        "resource",
        "sftp",
        "slack",
        "sns",
        "storage_grid",
        "stripe",
    )
    @classmethod
    def _unsupported(cls, value: Any, info: Any) -> Any:
        if value is not None:
            raise ValueError(_not_implemented("source", to_camel(info.field_name), SUPPORTED_SOURCE_TYPES))
        return value

    @field_validator("minio")
    @classmethod
    def _minio(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError(MINIO_NOT_SUPPORTED)
        return value

    @model_validator(mode="after")
    def _some_event(self) -> EventSourceSpec:
        if not self.event_names():
            raise ValueError(
                "an EventSource needs at least one event; supported source types: "
                + ", ".join(SUPPORTED_SOURCE_TYPES)
            )
        return self

    def event_names(self) -> list[str]:
        return [*self.webhook, *self.amqp, *self.kafka, *self.s3, *self.sqs]


class EventSource(ArgoModel):
    api_version: Literal["argoproj.io/v1alpha1"]
    kind: Literal["EventSource"]
    metadata: ObjectMeta
    spec: EventSourceSpec
    status: dict[str, Any] | None = None


# --------------------------------------------------------------------------- Sensor: dependencies

DataFilterType = Literal["string", "number", "bool"]
Comparator = Literal[">=", ">", "=", "!=", "<", "<=", ""]


class DataFilter(ArgoModel):
    path: str
    type: DataFilterType
    value: list[str]
    comparator: Comparator = ""
    template: str | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _values_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                ("true" if v else "false")
                if isinstance(v, bool)
                else str(v)
                if isinstance(v, int | float)
                else v
                for v in value
            ]
        return value

    @field_validator("value")
    @classmethod
    def _some_value(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a data filter needs at least one value")
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value:
            _check_template(value)
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value:
            raise ValueError("path must not be empty")
        return value


class ContextFilter(ArgoModel):
    id: str | None = None
    source: str | None = None
    specversion: str | None = None
    type: str | None = None
    datacontenttype: str | None = None
    subject: str | None = None
    time: str | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ContextFilter:
        if not any((self.source, self.type, self.subject, self.datacontenttype)):
            raise ValueError("a context filter needs at least one of type, subject, source, datacontenttype")
        return self


_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d):([0-5]\d)")


class TimeFilter(ArgoModel):
    start: str
    stop: str
    timezone: str | None = None

    @field_validator("start", "stop")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.fullmatch(value):
            raise ValueError("must be a time of day as HH:MM:SS, for example 09:30:00")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> TimeFilter:
        if self.start == self.stop:
            raise ValueError("start and stop of a time filter must differ")
        return self


class ExprField(ArgoModel):
    name: str
    path: str


class ExprFilter(ArgoModel):
    expr: str
    fields: list[ExprField] = Field(default_factory=list)


class EventDependencyFilter(ArgoModel):
    time: TimeFilter | None = None
    context: ContextFilter | None = None
    data: list[DataFilter] = Field(default_factory=list)
    exprs: list[ExprFilter] = Field(default_factory=list)
    data_logical_operator: Literal["and", "or", ""] = ""
    expr_logical_operator: Literal["and", "or", ""] = ""
    script: str | None = None

    @field_validator("exprs")
    @classmethod
    def _exprs(cls, value: list[ExprFilter]) -> list[ExprFilter]:
        """Each expression must parse (govaluate syntax, see :mod:`sensors.expr`)."""
        from sensors.expr import ExprError, parse  # sensors.expr does not import this module at load

        for index, item in enumerate(value):
            try:
                parse(item.expr)
            except ExprError as exc:
                raise ValueError(f"exprs[{index}].expr: {exc}") from None
        return value

    @field_validator("script")
    @classmethod
    def _script(cls, value: str | None) -> str | None:
        if value:
            from sensors.lua import LuaError, LuaScript

            try:
                LuaScript(value, field="filters.script")
            except LuaError as exc:
                raise ValueError(str(exc)) from None
        return value


class EventDependencyTransformer(ArgoModel):
    jq: str | None = None
    script: str | None = None

    @model_validator(mode="after")
    def _compiles(self) -> EventDependencyTransformer:
        from sensors.transform import TransformError, compile_transform

        if not (self.jq or self.script):
            raise ValueError("a transform needs 'jq' or 'script'")
        try:
            compile_transform(self.jq, self.script)
        except TransformError as exc:
            raise ValueError(str(exc)) from None
        return self


class EventDependency(ArgoModel):
    name: str
    event_source_name: str
    event_name: str
    filters: EventDependencyFilter | None = None
    filters_logical_operator: Literal["and", "or", ""] = ""
    transform: EventDependencyTransformer | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_\-]*", value):
            raise ValueError(
                "a dependency name may hold letters, digits, '_' and '-' and must not start with '-'"
            )
        return value


# --------------------------------------------------------------------------- Sensor: triggers


class TriggerParameterSource(ArgoModel):
    dependency_name: str
    context_key: str | None = None
    context_template: str | None = None
    data_key: str | None = None
    data_template: str | None = None
    value: str | None = None
    use_raw_data: bool = False

    @field_validator("context_template", "data_template")
    @classmethod
    def _templates(cls, value: str | None) -> str | None:
        if value:
            _check_template(value)
        return value

    @field_validator("value", mode="before")
    @classmethod
    def _value_str(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return value


class TriggerParameter(ArgoModel):
    src: TriggerParameterSource
    dest: str = ""
    operation: Literal["overwrite", "append", "prepend", ""] = ""


class StatusPolicy(ArgoModel):
    allow: list[int]


class K8sResourcePolicy(ArgoModel):
    labels: dict[str, str] = Field(default_factory=dict)
    backoff: Backoff | None = None
    error_on_backoff_timeout: bool = False


class TriggerPolicy(ArgoModel):
    k8s: K8sResourcePolicy | None = None
    status: StatusPolicy | None = None


class RateLimit(ArgoModel):
    unit: Literal["Second", "Minute", "Hour"] = "Second"
    requests_per_unit: int = 0


class BasicAuth(ArgoModel):
    username: SecretKeySelector | None = None
    password: SecretKeySelector | None = None


class SecretOrConfigMapRef(ArgoModel):
    secret_key_ref: SecretKeySelector | None = None
    config_map_key_ref: dict[str, Any] | None = None

    @field_validator("config_map_key_ref")
    @classmethod
    def _cm(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            raise ValueError("configMapKeyRef is not supported outside Kubernetes; use secretKeyRef")
        return value


class SecureHeader(ArgoModel):
    name: str
    value_from: SecretOrConfigMapRef


class HTTPTrigger(ArgoModel):
    url: str
    payload: list[TriggerParameter] = Field(default_factory=list)
    tls: dict[str, Any] | None = None
    method: str = "POST"
    parameters: list[TriggerParameter] = Field(default_factory=list)
    timeout: int = 60
    basic_auth: BasicAuth | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    secure_headers: list[SecureHeader] = Field(default_factory=list)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        upper = (value or "POST").upper()
        if upper not in ("GET", "DELETE", "PATCH", "POST", "PUT"):
            raise ValueError("method must be one of GET, DELETE, PATCH, POST, PUT")
        return upper

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("timeout is in seconds and must be positive")
        return value

    @field_validator("tls")
    @classmethod
    def _tls(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            raise ValueError("client TLS settings for the http trigger are not implemented yet")
        return value


class LogTrigger(ArgoModel):
    interval_seconds: int = 0


class ConfigMapKeySelector(ArgoModel):
    """One key of a ConfigMap (read through the Kubernetes API, in the sensor's namespace unless
    ``namespace`` is given, as older Argo versions allowed)."""

    name: str
    key: str
    optional: bool | None = None
    namespace: str | None = None


class FileArtifact(ArgoModel):
    path: str


class URLArtifact(ArgoModel):
    path: str
    verify_cert: bool = False


class S3Bucket(ArgoModel):
    name: str
    key: str | None = None


class S3Artifact(ArgoModel):
    """Argo's ``S3Artifact``: the object ``bucket.key`` (or the older top-level ``key``) in the
    bucket ``bucket.name``."""

    bucket: S3Bucket
    key: str | None = None
    endpoint: str | None = None
    region: str | None = None
    insecure: bool = False
    access_key: SecretKeySelector | None = None
    secret_key: SecretKeySelector | None = None
    events: list[str] = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    ca_certificate: SecretKeySelector | None = None

    @property
    def object_key(self) -> str:
        key = self.bucket.key or self.key
        assert key is not None  # checked by the validator
        return key

    @model_validator(mode="after")
    def _has_key(self) -> S3Artifact:
        if not (self.bucket.key or self.key):
            raise ValueError("an s3 source needs the object key: set bucket.key")
        return self


class ArtifactLocation(ArgoModel):
    """Where a trigger's Kubernetes object comes from: exactly one of the fields."""

    resource: dict[str, Any] | None = None
    inline: str | None = None
    file: FileArtifact | None = None
    url: URLArtifact | None = None
    configmap: ConfigMapKeySelector | None = None
    s3: S3Artifact | None = None
    git: Any = None

    @field_validator("git")
    @classmethod
    def _git(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError(
                "a git source is not supported by triggergate; use resource, inline, file, url, "
                "configmap or s3"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ArtifactLocation:
        kinds = [k for k in ("resource", "inline", "file", "url", "configmap", "s3") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError(
                "a source needs exactly one of resource, inline, file, url, configmap, s3"
                + (f"; found {', '.join(kinds)}" if kinds else "")
            )
        return self

    @property
    def kind(self) -> str:
        for kind in ("resource", "inline", "file", "url", "configmap", "s3"):
            if getattr(self, kind):
                return kind
        raise AssertionError("validated source without a location")


ArgoWorkflowOperation = Literal[
    "submit", "submit-from", "resubmit", "retry", "resume", "suspend", "terminate", "stop"
]


class ArgoWorkflowTrigger(ArgoModel):
    """Argo's ``ArgoWorkflowTrigger``, carried out through the Kubernetes API (there is no argo CLI)."""

    source: ArtifactLocation
    operation: ArgoWorkflowOperation = "submit"
    parameters: list[TriggerParameter] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)

    @field_validator("operation", mode="before")
    @classmethod
    def _default_operation(cls, value: Any) -> Any:
        return "submit" if value in ("", None) else value

    @field_validator("args")
    @classmethod
    def _args(cls, value: list[str]) -> list[str]:
        if value:
            raise ValueError(
                "args are extra argo CLI arguments, and triggergate does not run the argo CLI; "
                "remove 'args' and set Workflow fields in the source or with parameters "
                "(e.g. dest: spec.arguments.parameters.0.value)"
            )
        return value


K8sOperation = Literal["create", "update", "patch", "delete"]
PATCH_STRATEGIES = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


class StandardK8STrigger(ArgoModel):
    """Argo's ``StandardK8STrigger``: create, update, patch or delete any Kubernetes object."""

    source: ArtifactLocation
    operation: K8sOperation = "create"
    parameters: list[TriggerParameter] = Field(default_factory=list)
    patch_strategy: str = "application/merge-patch+json"
    live_object: bool = False

    @field_validator("operation", mode="before")
    @classmethod
    def _default_operation(cls, value: Any) -> Any:
        return "create" if value in ("", None) else value

    @field_validator("patch_strategy", mode="before")
    @classmethod
    def _patch_strategy(cls, value: Any) -> Any:
        if value in ("", None):
            return "application/merge-patch+json"
        if value not in PATCH_STRATEGIES:
            raise ValueError(f"patchStrategy must be one of {', '.join(PATCH_STRATEGIES)}")
        return value


class ConditionsResetByTime(ArgoModel):
    cron: str
    timezone: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> ConditionsResetByTime:
        from sensors.schedule import CronSchedule

        CronSchedule.parse(self.cron, self.timezone)
        return self


class ConditionsResetCriteria(ArgoModel):
    by_time: ConditionsResetByTime | None = None


class CorrelationKey(ArgoModel):
    """triggergate extension: how one dependency's correlation key is built from its (transformed) event.

    ``path`` (a gjson path of the event data) with ``regex`` (named groups are fields), ``parse`` (a
    named key parser of :mod:`sensors.keyparse`: ``illumina``, ``ont``, ``mgi``) or alone (the value
    at the path is the key, field ``value``); then ``field`` picks a field as the key, or ``key`` (a
    Go template over the fields) builds it. Or ``template``: a Go template over ``.Input`` (the event
    data) whose output is the key. See ``docs/correlation.md``.
    """

    path: str | None = None
    regex: str | None = None
    parse: str | None = None
    field: str | None = None
    key: str | None = None
    template: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> CorrelationKey:
        if self.template is not None:
            extra = [n for n in ("path", "regex", "parse", "field", "key") if getattr(self, n) is not None]
            if extra:
                raise ValueError(
                    f"'template' builds the key by itself from .Input; remove {', '.join(extra)} "
                    "(or drop 'template' and use 'path' with 'regex' or 'parse')"
                )
            _check_template(self.template)
            return self
        if self.path is None:
            raise ValueError(
                "a correlation key needs 'path' (with 'regex' or 'parse', or alone: the value at the path "
                "is the key) or 'template' (a Go template over .Input)"
            )
        if self.regex is not None and self.parse is not None:
            raise ValueError("use either 'regex' or 'parse' to read fields from the path, not both")
        if self.field is not None and self.key is not None:
            raise ValueError(
                "use either 'field' (one field is the key) or 'key' (a template over the fields)"
            )
        if self.regex is not None:
            from sensors.goregex import go_regex

            try:
                groups = go_regex(self.regex).groupindex
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} is not a valid regular expression: {exc}") from None
            if not groups:
                raise ValueError(
                    f"regex {self.regex!r} has no named group; name the part that makes the key, "
                    "e.g. '(?P<sample>[^/]+)_S[0-9]+_'"
                )
        if self.parse is not None:
            from sensors.keyparse import PARSERS

            if self.parse not in PARSERS:
                raise ValueError(
                    f"unknown key parser {self.parse!r}; known parsers: {', '.join(sorted(PARSERS))}"
                )
        if self.key is not None:
            _check_template(self.key)
        return self


class Correlation(ArgoModel):
    """triggergate extension on a trigger template: evaluate ``conditions`` per key (see
    ``docs/correlation.md``). ``window`` (a Go duration) bounds how long a partial set waits, measured
    on event time from its first event; ``onExpire`` is an optional trigger fired with an expired
    partial set."""

    window: str
    key: str | None = None
    dependencies: dict[str, CorrelationKey]
    on_expire: Trigger | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if parse_go_duration(value) <= 0:
            raise ValueError(f"window {value!r} must be a positive Go duration such as '30m' or '6h'")
        return value

    @field_validator("dependencies")
    @classmethod
    def _dependencies(cls, value: dict[str, CorrelationKey]) -> dict[str, CorrelationKey]:
        if not value:
            raise ValueError("name how each dependency of the trigger's conditions gets its key")
        return value

    @field_validator("on_expire")
    @classmethod
    def _on_expire(cls, value: Trigger | None) -> Trigger | None:
        if value is None:
            return value
        template = value.template
        if template.correlation is not None:
            raise ValueError("onExpire cannot have a correlation of its own")
        if template.conditions.strip() or template.conditions_reset:
            raise ValueError(
                "onExpire fires when a partial set expires: it has no conditions or conditionsReset "
                "of its own"
            )
        return value

    @model_validator(mode="after")
    def _compiles(self) -> Correlation:
        from sensors.correlation import CorrelationError, check_correlation

        try:
            check_correlation(self)
        except CorrelationError as exc:
            raise ValueError(str(exc)) from None
        return self


class FanOutS3(ArgoModel):
    """triggergate extension: how a ``fanOut`` reaches the bucket (default: the connection of the
    ``s3`` EventSource entry the marker dependency names)."""

    endpoint: str | None = None
    region: str | None = None
    access_key: SecretKeySelector | None = None
    secret_key: SecretKeySelector | None = None
    session_token: SecretKeySelector | None = None

    @model_validator(mode="after")
    def _key_pair(self) -> FanOutS3:
        _check_key_pair(self.access_key, self.secret_key, self.session_token)
        return self


FanOutSource = Literal["listing", "manifest", "sampleSheet"]
# Per key parser: (groupBy, reads, skip) when the manifest leaves them out, and the reads it can name.
FANOUT_DEFAULTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "illumina": ("sample", ("R1", "R2"), ("Undetermined",)),
    "ont": ("barcode", (), ("unclassified",)),
    "mgi": ("barcode", ("R1", "R2"), ("undecoded",)),
}
FANOUT_READS: dict[str, tuple[str, ...]] = {
    "illumina": ("R1", "R2", "R3", "R4", "I1", "I2", "I3", "I4"),
    "ont": (),
    "mgi": ("R1", "R2"),
}
FANOUT_MANIFESTS: dict[str, str] = {"manifest": "Reports/fastq_list.csv", "sampleSheet": "SampleSheet.csv"}


class FanOut(ArgoModel):
    """triggergate extension on a trigger template: when a run's completion marker fires the
    trigger, resolve the run folder into per-sample items and fire the trigger once per complete
    item (see ``docs/correlation.md``, "Completion markers and fan-out").

    ``parser`` is a key parser of :mod:`sensors.keyparse`; ``groupBy`` (one of its fields), ``reads``
    and ``skip`` default per parser (:data:`FANOUT_DEFAULTS`). ``source`` says how the run's samples
    are found: ``listing`` (the objects under the run folder), ``manifest`` (bcl-convert's
    ``Reports/fastq_list.csv``) or ``sampleSheet`` (``SampleSheet.csv``). Parameters see an item as
    the event of dependency ``as``.
    """

    dependency: str | None = None
    parser: str
    source: FanOutSource = "listing"
    manifest_path: str | None = None
    group_by: str | None = None
    reads: list[str] | None = None
    skip: list[str] | None = None
    as_: str = Field(default="sample", alias="as")
    s3: FanOutS3 | None = None
    on_incomplete: Trigger | None = None

    @field_validator("parser")
    @classmethod
    def _parser(cls, value: str) -> str:
        from sensors.keyparse import PARSERS

        if value not in PARSERS:
            raise ValueError(f"unknown key parser {value!r}; known parsers: {', '.join(sorted(PARSERS))}")
        return value

    @field_validator("as_")
    @classmethod
    def _as(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_\-]*", value):
            raise ValueError(
                f"as {value!r} must be a name as a dependency's: letters, digits, '_' and '-', "
                "not starting with '-'"
            )
        return value

    @field_validator("manifest_path")
    @classmethod
    def _manifest_path(cls, value: str | None) -> str | None:
        if value is not None:
            parts = value.split("/")
            if not value or value.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise ValueError(
                    f"manifestPath {value!r} must be a path relative to the run folder, such as "
                    "'Reports/fastq_list.csv' (no leading '/', no empty, '.' or '..' parts)"
                )
        return value

    @field_validator("on_incomplete")
    @classmethod
    def _on_incomplete(cls, value: Trigger | None) -> Trigger | None:
        if value is None:
            return value
        template = value.template
        if template.correlation is not None or template.fan_out is not None:
            raise ValueError("onIncomplete cannot have a correlation or fanOut of its own")
        if template.conditions.strip() or template.conditions_reset:
            raise ValueError(
                "onIncomplete fires once per incomplete item of a run: it has no conditions or "
                "conditionsReset of its own"
            )
        return value

    @model_validator(mode="after")
    def _fields(self) -> FanOut:
        from sensors.keyparse import PARSERS

        fields = PARSERS[self.parser].fields
        if self.group_by is not None and self.group_by not in fields:
            raise ValueError(
                f"groupBy {self.group_by!r} is not a field of the {self.parser} parser; "
                f"its fields: {', '.join(sorted(fields))}"
            )
        allowed = FANOUT_READS[self.parser]
        for read in self.reads or ():
            if read not in allowed:
                raise ValueError(
                    f"reads: {read!r} is not a read the {self.parser} parser gives; "
                    + (
                        f"allowed: {', '.join(allowed)}"
                        if allowed
                        else "its files are single reads: leave reads out (or [])"
                    )
                )
        if self.reads is not None and len(set(self.reads)) != len(self.reads):
            raise ValueError(f"reads {self.reads} names a read twice")
        if self.source != "listing" and (self.parser != "illumina" or self.group_field != "sample"):
            raise ValueError(
                f"source {self.source!r} reads an Illumina {FANOUT_MANIFESTS[self.source]}, which names "
                "samples: it needs parser: illumina and groupBy: sample (or use source: listing)"
            )
        if self.manifest_path is not None and self.source == "listing":
            raise ValueError("manifestPath is only used with source: manifest or sampleSheet")
        return self

    @property
    def group_field(self) -> str:
        return self.group_by or FANOUT_DEFAULTS[self.parser][0]

    @property
    def read_names(self) -> tuple[str, ...]:
        return FANOUT_DEFAULTS[self.parser][1] if self.reads is None else tuple(self.reads)

    @property
    def skipped(self) -> frozenset[str]:
        return frozenset(FANOUT_DEFAULTS[self.parser][2] if self.skip is None else self.skip)

    @property
    def manifest(self) -> str | None:
        """The manifest or sample sheet to read, relative to the run folder (None for a listing)."""
        if self.source == "listing":
            return None
        return self.manifest_path or FANOUT_MANIFESTS[self.source]


class TriggerTemplate(ArgoModel):
    name: str
    conditions: str = ""
    conditions_reset: list[ConditionsResetCriteria] = Field(default_factory=list)
    http: HTTPTrigger | None = None
    log: LogTrigger | None = None
    k8s: StandardK8STrigger | None = None
    argo_workflow: ArgoWorkflowTrigger | None = None
    correlation: Correlation | None = None  # triggergate extension
    fan_out: FanOut | None = None  # triggergate extension

    aws_lambda: Any = None
    azure_event_hubs: Any = None
    azure_service_bus: Any = None
    kafka: Any = None
    pulsar: Any = None
    nats: Any = None
    slack: Any = None
    open_whisk: Any = None
    custom: Any = None
    email: Any = None

    @field_validator(
        "aws_lambda",
        "azure_event_hubs",
        "azure_service_bus",
        "kafka",
        "pulsar",
        "nats",
        "slack",
        "open_whisk",
        "custom",
        "email",
    )
    @classmethod
    def _unsupported(cls, value: Any, info: Any) -> Any:
        if value is not None:
            raise ValueError(_not_implemented("trigger", to_camel(info.field_name), SUPPORTED_TRIGGER_TYPES))
        return value

    @model_validator(mode="after")
    def _one_type(self) -> TriggerTemplate:
        kinds = [k for k in SUPPORTED_TRIGGER_TYPES if getattr(self, _TRIGGER_FIELDS[k]) is not None]
        if not kinds:
            raise ValueError(
                "a trigger template needs a trigger type; supported trigger types: "
                + ", ".join(SUPPORTED_TRIGGER_TYPES)
            )
        if len(kinds) > 1:
            raise ValueError(f"a trigger template must have exactly one trigger type, found {kinds}")
        return self

    @model_validator(mode="after")
    def _correlation_alone(self) -> TriggerTemplate:
        if self.correlation is not None and self.conditions_reset:
            raise ValueError(
                "a trigger with 'correlation' cannot have 'conditionsReset': partial sets end with "
                "correlation.window instead"
            )
        if self.fan_out is not None and self.correlation is not None:
            raise ValueError(
                "a trigger cannot have both 'fanOut' and 'correlation': a fan-out's items are keyed by "
                "run folder and sample, not by the correlation key, so an expired or re-opened set "
                "could not be told from a re-delivered marker; fire the fan-out on the marker alone "
                "(the marker names its run) and correlate in another trigger"
            )
        if self.fan_out is not None and self.conditions_reset:
            raise ValueError(
                "a trigger with 'fanOut' cannot have 'conditionsReset': it fires on one marker event"
            )
        return self

    @property
    def kind(self) -> str:
        for kind in SUPPORTED_TRIGGER_TYPES:
            if getattr(self, _TRIGGER_FIELDS[kind]) is not None:
                return kind
        raise AssertionError("validated trigger template without a type")


class Trigger(ArgoModel):
    template: TriggerTemplate
    parameters: list[TriggerParameter] = Field(default_factory=list)
    policy: TriggerPolicy | None = None
    retry_strategy: Backoff | None = None
    rate_limit: RateLimit | None = None
    at_least_once: bool = False
    dlq_trigger: Trigger | None = None

    @field_validator("dlq_trigger")
    @classmethod
    def _dlq(cls, value: Trigger | None) -> Trigger | None:
        if value is not None and value.dlq_trigger is not None:
            raise ValueError("a dlqTrigger cannot have a dlqTrigger of its own (it is not recursive)")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: RateLimit | None) -> RateLimit | None:
        if value is not None and value.requests_per_unit < 0:
            raise ValueError("requestsPerUnit must not be negative")
        return value

    @property
    def name(self) -> str:
        return self.template.name


class SensorSpec(ArgoModel):
    dependencies: list[EventDependency]
    triggers: list[Trigger]
    template: dict[str, Any] | None = None
    event_bus_name: str = "default"
    replicas: int | None = None
    revision_history_limit: int | None = None
    logging_fields: dict[str, str] = Field(default_factory=dict)
    error_on_failed_round: bool | None = None

    @field_validator("dependencies")
    @classmethod
    def _deps(cls, value: list[EventDependency]) -> list[EventDependency]:
        if not value:
            raise ValueError("a sensor needs at least one dependency")
        seen: set[str] = set()
        for dep in value:
            if dep.name in seen:
                raise ValueError(f"dependency name '{dep.name}' is used twice; names must be unique")
            seen.add(dep.name)
        return value

    @field_validator("triggers")
    @classmethod
    def _triggers(cls, value: list[Trigger]) -> list[Trigger]:
        if not value:
            raise ValueError("a sensor needs at least one trigger")
        seen: set[str] = set()
        for trig in value:
            if trig.name in seen:
                raise ValueError(f"trigger name '{trig.name}' is used twice; names must be unique")
            seen.add(trig.name)
        return value

    @model_validator(mode="after")
    def _correlations(self) -> SensorSpec:
        from sensors.correlation import sensor_correlation_problems
        from sensors.fanout import sensor_fanout_problems

        problems = sensor_correlation_problems(self) + sensor_fanout_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Sensor(ArgoModel):
    api_version: Literal["argoproj.io/v1alpha1"]
    kind: Literal["Sensor"]
    metadata: ObjectMeta
    spec: SensorSpec
    status: dict[str, Any] | None = None


Trigger.model_rebuild()
Correlation.model_rebuild()
FanOut.model_rebuild()
TriggerTemplate.model_rebuild()


# --------------------------------------------------------------------------- EventBus

EVENT_BUS_UNSUPPORTED = (
    "is not supported by triggergate; use 'kafka' (several gateway processes share the work) or no "
    "EventBus at all (the embedded bus, one process)"
)


def _kafka_name(value: str, what: str) -> str:
    if not re.fullmatch(r"[a-zA-Z0-9._-]{1,249}", value):
        raise ValueError(f"{what} must be 1-249 characters of letters, digits, '.', '_' and '-'")
    return value


class EventBusConsumerGroup(ArgoModel):
    """Argo's ``EventBus.spec.kafka.consumerGroup``. ``groupName`` prefixes triggergate's consumer
    groups (one per sensor); ``startOldest`` is accepted and has no effect: a group always starts
    at the oldest unacknowledged event, so nothing is skipped; ``rebalanceStrategy`` is accepted and
    ignored (the Kafka client's default assignor is used)."""

    group_name: str | None = None
    rebalance_strategy: Literal["range", "roundrobin", "sticky"] | None = None
    start_oldest: bool = False

    @field_validator("group_name")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return value if value is None else _kafka_name(value, "groupName")


class KafkaBus(ArgoModel):
    """Argo's ``EventBus.spec.kafka``: ``url`` (brokers, ``host:port`` separated by commas),
    ``topic`` (default ``<namespace>-<eventbus name>``), ``consumerGroup``, ``tls`` (the system CAs
    or ``caCertSecret``; no client certificate) and ``sasl`` (PLAIN or SCRAM). ``version`` and
    ``partitioner`` are accepted and ignored (the client negotiates the protocol version; events
    are partitioned by correlation key or sensor, see docs/deploy.md)."""

    url: str
    topic: str | None = None
    version: str | None = None
    partitioner: str | None = None
    consumer_group: EventBusConsumerGroup | None = None
    tls: TLSConfig | None = None
    sasl: SASLConfig | None = None

    @field_validator("url")
    @classmethod
    def _brokers(cls, value: str) -> str:
        brokers = [broker.strip() for broker in value.split(",")]
        if not value.strip() or not all(re.fullmatch(r"[^\s:/?#@]+:\d{1,5}", b) for b in brokers):
            raise ValueError(
                "url must list the Kafka brokers as host:port separated by commas, "
                "e.g. 'kafka-0.kafka:9092,kafka-1.kafka:9092'"
            )
        return ",".join(brokers)

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        return value if value is None else _kafka_name(value, "topic")

    @field_validator("tls")
    @classmethod
    def _tls(cls, value: TLSConfig | None) -> TLSConfig | None:
        if value is None:
            return value
        if value.client_cert_secret or value.client_key_secret or value.insecure_skip_verify:
            raise ValueError(
                "the Kafka bus supports TLS with the system CAs (enabled: true) or a caCertSecret; "
                "clientCertSecret, clientKeySecret and insecureSkipVerify are not supported"
            )
        return value


class EventBusSpec(ArgoModel):
    kafka: KafkaBus | None = None
    nats: Any = None
    jetstream: Any = None
    jetstream_exotic: Any = None

    @field_validator("nats", "jetstream", "jetstream_exotic")
    @classmethod
    def _unsupported(cls, value: Any, info: Any) -> Any:
        if value is not None:
            raise ValueError(f"an EventBus of type '{to_camel(info.field_name)}' {EVENT_BUS_UNSUPPORTED}")
        return value

    @model_validator(mode="after")
    def _kafka(self) -> EventBusSpec:
        if self.kafka is None:
            raise ValueError(
                f"an EventBus needs 'kafka' (url, topic, consumerGroup); any other type "
                f"{EVENT_BUS_UNSUPPORTED}"
            )
        return self


class EventBus(ArgoModel):
    """Argo's ``EventBus`` manifest; triggergate reads its ``kafka`` section to select the bus."""

    api_version: Literal["argoproj.io/v1alpha1"]
    kind: Literal["EventBus"]
    metadata: ObjectMeta
    spec: EventBusSpec
    status: dict[str, Any] | None = None
