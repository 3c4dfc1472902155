"""The s3 and sqs sources without a network: specs, config checks, the webhook app over ASGI,
the SQS message handlers, the store's source dead letters and the AWS edge's pure helpers."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import orjson
import pytest
from pydantic import ValidationError

from gateway.aws import SqsMessage, _translate, region_from_queue_url, subscribe_url_allowed
from gateway.config import ManifestError, load_manifests
from gateway.errors import BusError, StoreError
from gateway.secrets import SecretStore
from gateway.sources import build_sources, kinds_used
from gateway.sources.s3 import (
    Reconciler,
    S3Entry,
    S3QueueHandler,
    S3WebhookServer,
    SeenObjects,
    build_s3_sources,
)
from gateway.sources.sqs import SqsHandler, argo_message_attributes, build_sqs_sources, sqs_payload
from gateway.sources.sqs_poller import Outcome, SqsPoller
from gateway.store import SqliteStore
from sensors.event import Event
from sensors.spec import EventSource

pytestmark = pytest.mark.timeout(30)


def event_source(spec: dict[str, Any], name: str = "lab") -> EventSource:
    return EventSource.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def error_of(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        event_source(spec)
    return "\n".join(e["msg"] for e in info.value.errors())


class Recorder:
    """A publisher that stores events (dedup by id, like the bus) or fails when told to."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.batches: list[int] = []
        self.calls = 0
        self.fail = False

    async def publish(self, events: Sequence[Event]) -> list[bool]:
        self.calls += 1
        if self.fail:
            raise BusError("disk full")
        self.batches.append(len(events))
        known = {e.id for e in self.events}
        out = []
        for event in events:
            out.append(event.id not in known)
            if event.id not in known:
                self.events.append(event)
                known.add(event.id)
        return out


class Letters:
    def __init__(self, fail: bool = False) -> None:
        self.letters: list[tuple[str, str, bytes | str, str | None]] = []
        self.fail = fail

    async def source_dead_letter(
        self, source: str, reason: str, raw: bytes | str, *, letter_id: str | None = None
    ) -> str:
        if self.fail:
            raise StoreError("database is locked")
        self.letters.append((source, reason, raw, letter_id))
        return letter_id or "x"


def record(key: str, name: str = "ObjectCreated:Put", etag: str = "abc") -> dict[str, Any]:
    return {
        "eventSource": "aws:s3",
        "eventName": name,
        "eventTime": "2025-03-04T10:15:30.123Z",
        "s3": {"bucket": {"name": "landing"}, "object": {"key": key, "size": 3, "eTag": etag}},
    }


def message(body: Any, message_id: str = "m-1", **attributes: Any) -> SqsMessage:
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    return SqsMessage(message_id, f"rh-{message_id}", text, {}, dict(attributes))


# --------------------------------------------------------------------------- specs


def test_s3_spec_defaults_and_registry() -> None:
    es = event_source(
        {"s3": {"up": {"sqs": {"queue": "uploads"}}}, "sqs": {"q": {"region": "r", "queue": "q"}}}
    )
    up = es.spec.s3["up"]
    assert up.sqs is not None and up.sqs.wait_time_seconds == 20 and up.sqs.visibility_timeout is None
    assert es.spec.event_names() == ["up", "q"]
    assert kinds_used(es) == ["sqs", "s3"]
    assert es.spec.sqs["q"].wait_time_seconds == 0 and es.spec.sqs["q"].json_body is False


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"s3": {"up": {}}}, "needs at least one of webhook"),
        ({"s3": {"up": {"sqs": {"queue": ""}}}}, "queue must not be empty"),
        ({"s3": {"up": {"sqs": {"queue": "q", "waitTimeSeconds": 21}}}}, "between 0 and 20"),
        ({"s3": {"up": {"sqs": {"queue": "q", "visibilityTimeout": 0}}}}, "between 1 and 43200"),
        ({"s3": {"up": {"sqs": {"queue": "q", "accessKey": {"name": "a", "key": "b"}}}}}, "set together"),
        ({"s3": {"up": {"reconcile": {}}}}, "reconcile needs a bucket"),
        ({"s3": {"up": {"reconcile": {"bucket": "a"}, "bucket": "b"}}}, "differs from the bucket filter"),
        ({"s3": {"up": {"reconcile": {"interval": "0s"}, "bucket": "b"}}}, "positive Go duration"),
        (
            {"s3": {"up": {"reconcile": {"minAge": "2h", "maxAge": "1h"}, "bucket": "b"}}},
            "shorter than maxAge",
        ),
        (
            {"s3": {"up": {"reconcile": {}, "bucket": "b", "events": ["ObjectRemoved:*"]}}},
            "add 'ObjectCreated:*'",
        ),
        ({"s3": {"up": {"sqs": {"queue": "q"}, "events": ["Object*Created"]}}}, "only a trailing '*'"),
        ({"s3": {"up": {"reconcile": {}, "bucket": "b", "sns": {}}}}, "it needs webhook or sqs"),
        (
            {"s3": {"up": {"webhook": {"port": "1", "endpoint": "/x", "metadata": {"a": "b"}}}}},
            "set metadata on the s3 event itself",
        ),
        (
            {"sqs": {"q": {"region": "r", "queue": "q", "roleARN": "arn:aws:iam::1:role/x"}}},
            "roleARN is not supported",
        ),
        ({"sqs": {"q": {"region": "", "queue": "q"}}}, "region must not be empty"),
        ({"sqs": {"q": {"region": "r", "queue": "q", "waitTimeSeconds": 30}}}, "between 0 and 20"),
        (
            {"sqs": {"q": {"region": "r", "queue": "q", "filter": {"expression": "true"}}}},
            "filter in the Sensor",
        ),
        ({"minio": {"m": {"bucket": {"name": "b"}}}}, "use type 's3' with MinIO's webhook target"),
    ],
)
def test_spec_errors_say_what_to_do(spec: dict[str, Any], message: str) -> None:
    assert message in error_of(spec)


def test_unsupported_types_list_s3_and_sqs_among_the_supported() -> None:
    assert "supported source types: amqp, kafka, s3, sqs, webhook" in error_of({"mqtt": {"m": {}}})


def write(tmp: Path, text: str) -> Path:
    path = tmp / "es.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_config_rejects_an_s3_webhook_on_a_webhook_endpoint_and_a_shared_port(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        apiVersion: argoproj.io/v1alpha1
        kind: EventSource
        metadata: {name: hooks}
        spec:
          webhook:
            plain: {port: "12000", endpoint: /x}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: EventSource
        metadata: {name: stores}
        spec:
          s3:
            same-endpoint: {webhook: {port: "12000", endpoint: /x}}
            same-port: {webhook: {port: "12000", endpoint: /y}}
            own-port: {webhook: {port: "12001", endpoint: /x}}
            again: {webhook: {port: "12001", endpoint: /x}}
        """,
    )
    with pytest.raises(ManifestError) as info:
        load_manifests([path], secrets_dir=None)
    text = "\n".join(info.value.problems)
    assert (
        "spec.s3.same-endpoint.webhook.endpoint: port 12000 endpoint '/x' is already served by "
        "EventSource 'hooks' event 'plain'" in text
    )
    assert (
        "spec.s3.same-port.webhook.port: port 12000 is also used by EventSource 'hooks' event 'plain'" in text
    )
    assert "separate HTTP servers" in text
    assert (
        "spec.s3.again.webhook.endpoint: port 12001 endpoint '/x' is already served by "
        "EventSource 'stores' s3 event 'own-port'" in text
    )


# --------------------------------------------------------------------------- the webhook app


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Recorder]]:
    (tmp_path / "minio").mkdir()
    (tmp_path / "minio" / "token").write_text("s3cr3t\n")
    es = event_source(
        {
            "s3": {
                "open": {
                    "webhook": {"port": "12000", "endpoint": "/open", "maxPayloadSize": 4096},
                    "prefix": "runs/",
                    "events": ["ObjectCreated:*"],
                    "metadata": {"lab": "seq"},
                    "sns": {"allowedHosts": []},
                },
                "minio": {
                    "webhook": {
                        "port": "12000",
                        "endpoint": "/minio",
                        "authSecret": {"name": "minio", "key": "token"},
                    }
                },
                "refuse": {"webhook": {"port": "12000", "endpoint": "/refuse"}, "sns": {"confirm": False}},
            }
        }
    )
    recorder = Recorder()
    [server] = build_s3_sources([es], recorder, SecretStore(tmp_path))
    assert isinstance(server, S3WebhookServer)
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client, recorder


async def test_webhook_publishes_filtered_records_once_and_answers_after(hooks: Any) -> None:
    client, recorder = hooks
    body = {
        "Records": [record("runs/a+b.fq"), record("other/c.fq"), record("runs/d.fq", "ObjectRemoved:Delete")]
    }
    r = await client.post("/open", content=orjson.dumps(body))
    assert (r.status_code, r.text) == (200, "success")
    assert [e.data["key"] for e in recorder.events] == ["runs/a b.fq"]
    event = recorder.events[0]
    assert (event.type, event.source, event.subject) == ("s3", "lab", "open")
    assert event.data["metadata"] == {"lab": "seq"}
    assert recorder.calls == 1
    # a redelivery is the same event
    assert (await client.post("/open", content=orjson.dumps(body))).status_code == 200
    assert len(recorder.events) == 1


async def test_webhook_rejections(hooks: Any) -> None:
    client, recorder = hooks
    r = await client.post("/open", content=b"<Notification></Notification>")
    assert r.status_code == 400 and "without a <Message>" in r.text
    assert (await client.get("/open")).status_code == 405
    assert (await client.post("/open", content=b"x" * 5000)).status_code == 413
    assert (await client.post("/nowhere", content=b"{}")).status_code == 404
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "landing"}
    assert (await client.post("/open", content=orjson.dumps(test_event))).status_code == 200
    recorder.fail = True
    r = await client.post("/open", content=orjson.dumps({"Records": [record("runs/x.fq")]}))
    assert (r.status_code, r.headers["retry-after"]) == (503, "1")
    assert recorder.events == []
    assert (await client.get("/health")).status_code == 200


async def test_webhook_bearer_token_as_minio_sends_it(hooks: Any) -> None:
    client, recorder = hooks
    body = orjson.dumps({"EventName": "s3:ObjectCreated:Put", "Key": "landing/k", "Records": [record("k")]})
    assert (await client.post("/minio", content=body)).status_code == 401
    assert (
        await client.post("/minio", content=body, headers={"Authorization": "Bearer wrong"})
    ).status_code == 401
    assert (
        await client.post("/minio", content=body, headers={"Authorization": "Bearer s3cr3t"})
    ).status_code == 200
    assert [e.subject for e in recorder.events] == ["minio"]


async def test_webhook_answers_mns_with_204(hooks: Any) -> None:
    client, recorder = hooks
    events = {
        "events": [
            {
                "eventName": "ObjectCreated:PutObject",
                "oss": {"bucket": {"name": "b"}, "object": {"key": "runs/o.fq"}},
            }
        ]
    }
    xml = f"<Notification><Message>{base64.b64encode(orjson.dumps(events)).decode()}</Message></Notification>"
    r = await client.post("/open", content=xml.encode())
    assert r.status_code == 204
    assert recorder.events[0].data["provider"] == "oss"


async def test_webhook_refuses_to_confirm_a_foreign_subscribe_url(hooks: Any) -> None:
    client, _ = hooks
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "m",
        "TopicArn": "arn:aws:sns:eu-west-1:1:t",
        "Token": "t",
        "SubscribeURL": "http://169.254.169.254/latest/meta-data/",
    }
    r = await client.post("/open", content=orjson.dumps(confirmation))
    assert r.status_code == 403 and "not allowed" in r.text
    r = await client.post("/refuse", content=orjson.dumps(confirmation))
    assert (r.status_code, r.text) == (200, "subscription not confirmed (sns.confirm is false)")


# --------------------------------------------------------------------------- SQS handlers


def s3_entry(**spec: Any) -> S3Entry:
    es = event_source({"s3": {"up": {"sqs": {"queue": "q"}, **spec}}})
    return S3Entry("lab", "up", es.spec.s3["up"])


async def test_s3_queue_handler_outcomes() -> None:
    recorder, letters = Recorder(), Letters()
    handle = S3QueueHandler(s3_entry(), recorder, letters)
    assert await handle(message({"Records": [record("a"), record("b"), record("a")]})) is Outcome.DELETE
    assert [e.data["key"] for e in recorder.events] == ["a", "b"] and recorder.batches == [2]
    assert await handle(message({"Service": "Amazon S3", "Event": "s3:TestEvent"})) is Outcome.DELETE
    assert await handle(message("garbage!", "m-2")) is Outcome.DELETE
    [(source, reason, raw, letter_id)] = letters.letters
    assert (source, raw) == ("s3 lab/up", "garbage!") and "m-2" in reason and letter_id
    recorder.fail = True
    assert await handle(message({"Records": [record("c")]})) is Outcome.RETRY
    failing = S3QueueHandler(s3_entry(), Recorder(), Letters(fail=True))
    assert await failing(message("garbage!")) is Outcome.RETRY  # not deleted before it is kept


async def test_sqs_handler_argo_payload_and_outcomes() -> None:
    es = event_source({"sqs": {"q": {"region": "r", "queue": "q", "jsonBody": True, "metadata": {"a": "b"}}}})
    recorder, letters = Recorder(), Letters()
    handle = SqsHandler("lab", "q", es.spec.sqs["q"], recorder, letters)
    assert await handle(message({"x": 1}, "id-1")) is Outcome.DELETE
    assert await handle(message({"x": 1}, "id-1")) is Outcome.DELETE  # received again: same event
    [event] = recorder.events
    assert event.data == {
        "messageId": "id-1",
        "messageAttributes": None,
        "body": {"x": 1},
        "metadata": {"a": "b"},
    }
    assert event.type == "sqs"
    assert await handle(message("{not json", "id-2")) is Outcome.DELETE
    assert "jsonBody is true but the body is not JSON" in letters.letters[0][1]
    dlq = event_source({"sqs": {"q": {"region": "r", "queue": "q", "jsonBody": True, "dlq": True}}})
    keep = SqsHandler("lab", "q", dlq.spec.sqs["q"], Recorder(), Letters())
    assert await keep(message("{not json")) is Outcome.KEEP
    recorder.fail = True
    assert await handle(message({"x": 2}, "id-3")) is Outcome.RETRY


def test_sqs_payload_is_argos_shape() -> None:
    msg = message(
        "hello",
        lab={"DataType": "String", "StringValue": "lims"},
        blob={"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    )
    data = sqs_payload(msg, json_body=False, metadata={})
    assert data["body"] == base64.b64encode(b"hello").decode()  # Go's []byte -> base64
    assert "metadata" not in data
    assert data["messageAttributes"]["blob"]["BinaryValue"] == "AP8="
    assert argo_message_attributes({}) is None


def test_builders_make_one_poller_per_queue_and_a_reconciler(tmp_path: Path) -> None:
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / "k").write_text("AKIA")
    (tmp_path / "aws" / "s").write_text("secret")
    keys = {"accessKey": {"name": "aws", "key": "k"}, "secretKey": {"name": "aws", "key": "s"}}
    es = event_source(
        {
            "s3": {
                "up": {
                    "sqs": {"queue": "https://sqs.eu-west-2.amazonaws.com/123456789012/uploads", **keys},
                    "reconcile": {"interval": "1m", "endpoint": "http://minio:9000"},
                    "bucket": "landing",
                }
            },
            "sqs": {"q": {"region": "us-east-1", "queue": "jobs"}},
        }
    )
    sources = build_sources([es], Recorder(), SecretStore(tmp_path), dead_letters=Letters())
    names = sorted(s.name for s in sources)
    assert names == ["s3 reconcile lab/up", "s3 sqs lab/up", "sqs lab/q"]
    poller = next(s for s in sources if s.name == "s3 sqs lab/up")
    assert isinstance(poller, SqsPoller)
    assert poller.client.connection.region == "eu-west-2"  # from the queue URL
    assert poller.client.connection.access_key == "AKIA"
    assert "AKIA" not in repr(poller.client.connection)
    reconciler = next(s for s in sources if isinstance(s, Reconciler))
    assert (reconciler.bucket, reconciler.client.connection.region) == ("landing", "us-east-1")
    [argo] = build_sqs_sources([es], Recorder(), None)
    assert isinstance(argo, SqsPoller) and argo.wait_seconds == 3  # Argo: 0 means 3 s


def test_seen_objects_is_bounded() -> None:
    seen = SeenObjects(capacity=3)
    for i in range(5):
        seen.add(SeenObjects.key("b", f"k{i}", "ETAG"))
    assert len(seen) == 3
    assert ("b", "k4", "etag") in seen and ("b", "k0", "etag") not in seen
    seen.add(SeenObjects.key("b", "k", None))  # no ETag (a delete): nothing to remember
    assert len(seen) == 3


# --------------------------------------------------------------------------- store and AWS edge


async def test_source_dead_letters_are_kept_once_per_id(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    try:
        first = await store.source_dead_letter("s3 lab/up", "not JSON", b"\xffraw", letter_id="L1", now=10.0)
        again = await store.source_dead_letter("s3 lab/up", "not JSON", b"\xffraw", letter_id="L1", now=11.0)
        other = await store.source_dead_letter("sqs lab/q", "bad", "text", now=12.0)
        assert first == again == "L1" and other != "L1"
        letters = await store.list_source_dead_letters()
        assert [(x.id, x.source, x.raw, x.created_at) for x in letters] == [
            (other, "sqs lab/q", b"text", 12.0),
            ("L1", "s3 lab/up", b"\xffraw", 10.0),
        ]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "allowed", "ok"),
    [
        ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x", (), True),
        ("https://sns.cn-north-1.amazonaws.com.cn/?Action=ConfirmSubscription", (), True),
        ("http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription", (), False),  # not https
        ("https://sns.eu-west-1.amazonaws.com.evil.example/", (), False),
        ("https://evil.example/sns.eu-west-1.amazonaws.com", (), False),
        ("http://127.0.0.1:4566/?Action=ConfirmSubscription", ("127.0.0.1:4566",), True),
        ("http://127.0.0.1:4567/", ("127.0.0.1:4566",), False),
        ("http://localstack/x", ("localstack",), True),
        ("file:///etc/passwd", ("",), False),
    ],
)
def test_subscribe_url_allowed(url: str, allowed: tuple[str, ...], ok: bool) -> None:
    assert subscribe_url_allowed(url, allowed) is ok


def test_region_from_queue_url() -> None:
    assert region_from_queue_url("https://sqs.eu-west-1.amazonaws.com/123456789012/q") == "eu-west-1"
    assert region_from_queue_url("https://sqs.us-gov-west-1.amazonaws.com/1/q") == "us-gov-west-1"
    assert region_from_queue_url("http://127.0.0.1:5000/123456789012/q") is None


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    ("exc", "retriable", "code"),
    [
        (client_error("AccessDenied", 403), False, "AccessDenied"),
        (
            client_error("AWS.SimpleQueueService.NonExistentQueue", 400),
            False,
            "AWS.SimpleQueueService.NonExistentQueue",
        ),
        (client_error("SlowDown", 503), True, "SlowDown"),
        (client_error("ThrottlingException", 400), True, "ThrottlingException"),
        (client_error("InternalError", 500), True, "InternalError"),
        (botocore.exceptions.NoCredentialsError(), False, "NoCredentials"),
        (botocore.exceptions.NoRegionError(), False, "NoRegion"),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), True, None),
    ],
)
def test_aws_errors_are_translated_with_retriable(exc: Exception, retriable: bool, code: str | None) -> None:
    translated = _translate(exc, "SQS ReceiveMessage q")
    assert (translated.retriable, translated.code) == (retriable, code)
    assert str(translated).startswith("SQS ReceiveMessage q: ")


async def test_poller_handles_fifo_batches_in_order_and_holds_back_after_a_retry() -> None:
    from gateway.aws import AwsClient, AwsConnection

    seen: list[str] = []

    async def handler(msg: SqsMessage) -> Outcome:
        seen.append(msg.message_id)
        return Outcome.RETRY if msg.message_id == "2" else Outcome.DELETE

    poller = SqsPoller("p", AwsClient(AwsConnection(region="us-east-1")), "q", handler)
    try:
        batch = [message({}, str(i)) for i in range(1, 5)]
        fifo = await poller._outcomes("https://sqs.us-east-1.amazonaws.com/1/q.fifo", batch)
        assert fifo == [Outcome.DELETE, Outcome.RETRY, Outcome.RETRY, Outcome.RETRY]
        assert seen == ["1", "2"]  # 3 and 4 must not overtake 2
        seen.clear()
        standard = await poller._outcomes("https://sqs.us-east-1.amazonaws.com/1/q", batch)
        assert standard == [Outcome.DELETE, Outcome.RETRY, Outcome.DELETE, Outcome.DELETE]
        assert sorted(seen) == ["1", "2", "3", "4"]
    finally:
        await poller.client.close()
