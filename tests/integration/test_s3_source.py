"""The s3 and sqs sources against a real moto server, through a real ``triggergate run`` process.

S3 -> SQS -> s3 source; S3 -> SNS -> HTTP subscription -> s3 webhook (plus MinIO and MNS bodies
and SNS subscription confirmation on the same webhook); the reconciliation poll finding an
object whose notification was lost, without doubling the others, before and after a restart;
Argo's sqs source with its payload shape and dead letters.
"""

# ruff: noqa: F811  (pytest fixtures imported from moto_support are redefined as arguments)
from __future__ import annotations

import base64
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.gatewayproc import GatewayProcess, free_port
from tests.integration.moto_support import (  # noqa: F401 - fixtures
    MotoServer,
    bucket_to_queue,
    moto,
    moto_server,
    queue_counts,
    write_keys,
)
from tests.integration.receiver import Received, Receiver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

KEYS_SECRETS = """
        accessKey: {name: aws, key: access}
        secretKey: {name: aws, key: secret}"""


def trigger(name: str, dependency: str, receiver: Receiver, *, conditions: str | None = None) -> str:
    extra = f"\n        conditions: {conditions}" if conditions else ""
    fields = ("key", "bucket", "etag", "eventName", "provider", "size", "versionId")
    payload = "".join(
        f"\n              - {{src: {{dependencyName: {dependency}, dataKey: {f}, useRawData: true}}, "
        f"dest: {f}}}"
        for f in fields
    )
    return f"""
    - template:
        name: {name}{extra}
        http:
          url: {receiver.url}/{name}
          payload:
              - {{src: {{dependencyName: {dependency}, contextKey: id}}, dest: id}}{payload}
      retryStrategy: {{steps: 5, duration: 50ms}}"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def wait_until(check: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def settle(receiver: Receiver, expected: int, quiet: float = 1.5) -> list[Received]:
    """Wait for ``expected`` requests, then a quiet period in which nothing more may arrive."""
    receiver.wait_for(expected)
    time.sleep(quiet)
    got = receiver.snapshot()
    assert len(got) == expected, [r.json() for r in got]
    return got


def dead_letters(state: Path) -> list[tuple[str, str, bytes]]:
    with sqlite3.connect(state / "state.db") as conn:
        rows = conn.execute(
            "SELECT source, reason, raw FROM source_dead_letters ORDER BY created_at"
        ).fetchall()
    return [(str(a), str(b), bytes(c)) for a, b, c in rows]


# --------------------------------------------------------------------------- S3 -> SQS


def test_s3_notifications_through_sqs_fire_once_each_and_the_queue_is_drained(
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    url = bucket_to_queue(moto, "landing", "uploads", prefix="runs/")
    secrets = tmp_path / "secrets"
    write_keys(secrets)
    receiver = Receiver().start()
    port = free_port()
    path = write(
        tmp_path,
        "s3.yaml",
        f"""
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: lab}}
spec:
  s3:
    fastq:
      webhook: {{port: "{port}", endpoint: /s3}}
      sqs:
        queue: uploads
        endpoint: {moto.url}
        waitTimeSeconds: 1
        visibilityTimeout: 5{KEYS_SECRETS}
      bucket: landing
      suffix: .fq
      events: ["s3:ObjectCreated:*"]
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: fastq}}
spec:
  dependencies:
    - {{name: fq, eventSourceName: lab, eventName: fastq}}
  triggers:{trigger("fired", "fq", receiver)}
""",
    )
    state = tmp_path / "state"
    gw = GatewayProcess([path], state, port, secrets_dir=secrets).start()
    s3 = moto.client("s3")
    sqs = moto.client("sqs")
    try:
        keys = ["runs/Project Alpha/a+b ü%2F.fq", "runs/RUN1/S1_R1_001.fq"]
        etags = {}
        for key in keys:
            etags[key] = s3.put_object(Bucket="landing", Key=key, Body=key.encode())["ETag"].strip('"')
        s3.put_object(Bucket="landing", Key="runs/notes.txt", Body=b"no: suffix filter")
        s3.put_object(Bucket="landing", Key="elsewhere/x.fq", Body=b"no: the bucket's notification prefix")
        sqs.send_message(QueueUrl=url, MessageBody='{"hello": "not a notification"}')
        got = settle(receiver, len(keys))
        wait_until(lambda: queue_counts(sqs, url) == (0, 0), what="the queue to be drained")
    finally:
        assert gw.terminate() == 0, gw.logs()
        receiver.stop()
    bodies = {r.json()["key"]: r.json() for r in got}
    assert sorted(bodies) == sorted(keys)
    for key in keys:
        body = bodies[key]
        assert (body["bucket"], body["etag"], body["eventName"], body["provider"]) == (
            "landing",
            etags[key],
            "ObjectCreated:Put",
            "aws",
        )
        assert body["size"] == len(key.encode())
    assert len({r.json()["id"] for r in got}) == len(keys)
    letters = dead_letters(state)
    assert len(letters) == 1
    source, reason, raw = letters[0]
    assert source == "s3 lab/fastq"
    assert "is not an object-store notification" in reason and "top-level keys: hello" in reason
    assert raw == b'{"hello": "not a notification"}'


# --------------------------------------------------------------------------- S3 -> SNS -> webhook


def test_s3_via_sns_http_subscription_minio_and_mns_on_the_webhook(
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    secrets = tmp_path / "secrets"
    (secrets / "minio").mkdir(parents=True)
    (secrets / "minio" / "token").write_text("s3cr3t")
    receiver = Receiver().start()
    port = free_port()
    receiver_host = receiver.url.removeprefix("http://")
    aws_trigger = trigger("aws", "aws", receiver, conditions="aws")
    minio_trigger = trigger("minio", "minio", receiver, conditions="minio")
    path = write(
        tmp_path,
        "s3.yaml",
        f"""
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: stores}}
spec:
  s3:
    aws:
      webhook: {{port: "{port}", endpoint: /sns}}
      sns: {{allowedHosts: ["{receiver_host}"]}}
    minio:
      webhook: {{port: "{port}", endpoint: /minio, authSecret: {{name: minio, key: token}}}}
      metadata: {{store: minio}}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: stores}}
spec:
  dependencies:
    - {{name: aws, eventSourceName: stores, eventName: aws}}
    - {{name: minio, eventSourceName: stores, eventName: minio}}
  triggers:{aws_trigger}{minio_trigger}
""",
    )
    gw = GatewayProcess([path], tmp_path / "state", port, secrets_dir=secrets).start()
    base = f"http://127.0.0.1:{port}"
    try:
        sns = moto.client("sns")
        s3 = moto.client("s3")
        topic = sns.create_topic(Name="landing-events")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"{base}/sns")
        s3.create_bucket(Bucket="landing")
        s3.put_bucket_notification_configuration(
            Bucket="landing",
            NotificationConfiguration={
                "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        etag = s3.put_object(Bucket="landing", Key="runs/a b.fq", Body=b"reads")["ETag"].strip('"')
        got = receiver.wait_for(1)
        first = got[0].json()
        assert (got[0].path, first["key"], first["etag"], first["provider"]) == (
            "/aws",
            "runs/a b.fq",
            etag,
            "aws",
        )

        with httpx.Client(timeout=10) as client:
            # SNS subscription confirmation: confirmed by GET-ing an allowed SubscribeURL ...
            confirm = {
                "Type": "SubscriptionConfirmation",
                "MessageId": "m-1",
                "Token": "t0k",
                "TopicArn": topic,
                "Message": "You have chosen to subscribe",
                "SubscribeURL": f"{receiver.url}/confirm?Token=t0k",
            }
            r = client.post(
                f"{base}/sns", content=orjson.dumps(confirm), headers={"content-type": "text/plain"}
            )
            assert (r.status_code, r.text) == (200, "subscription confirmed")
            assert any(x.method == "GET" and x.path == "/confirm?Token=t0k" for x in receiver.snapshot())
            # ... and refused for any other host
            forged = dict(confirm, SubscribeURL="http://169.254.169.254/latest/meta-data/")
            assert client.post(f"{base}/sns", content=orjson.dumps(forged)).status_code == 403

            # MinIO webhook target: bearer token as MinIO sends it
            minio = minio_body("landing", "runs%2FRUN42%2FProject+Alpha%2Fx.fq")
            assert client.post(f"{base}/minio", json=minio).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert client.post(f"{base}/minio", json=minio, headers=wrong).status_code == 401
            auth = {"Authorization": "Bearer s3cr3t"}
            assert client.post(f"{base}/minio", json=minio, headers=auth).status_code == 200
            # the same notification again (MinIO's queue_dir replays after an outage): no new firing
            assert client.post(f"{base}/minio", json=minio, headers=auth).status_code == 200
            # OSS through MNS HTTP push (XML, base64 message): answered 204 as MNS wants
            r = client.post(f"{base}/sns", content=mns_xml("oss-bucket", "runs/样本 1.fq"))
            assert r.status_code == 204
            # not a notification: 400 saying what was expected; wrong method: 405
            r = client.post(f"{base}/sns", json={"hello": 1})
            assert r.status_code == 400 and "SNS envelope" in r.text
            assert client.get(f"{base}/sns").status_code == 405
            assert client.get(f"{base}/health").status_code == 200
        fired = [r for r in receiver.wait_for(4) if r.method == "POST"]
        time.sleep(1.0)
        fired = [r for r in receiver.snapshot() if r.method == "POST"]
    finally:
        assert gw.terminate() == 0, gw.logs()
        receiver.stop()
    by_path: dict[str, list[dict[str, Any]]] = {}
    for r in fired:
        by_path.setdefault(r.path, []).append(r.json())
    assert [b["key"] for b in by_path["/minio"]] == ["runs/RUN42/Project Alpha/x.fq"]
    assert by_path["/minio"][0]["provider"] == "minio"
    assert sorted(b["key"] for b in by_path["/aws"]) == ["runs/a b.fq", "runs/样本 1.fq"]
    oss = next(b for b in by_path["/aws"] if b["provider"] == "oss")
    assert (oss["bucket"], oss["eventName"], oss["etag"]) == ("oss-bucket", "ObjectCreated:Put", "5C1F0E2D")


def minio_body(bucket: str, encoded_key: str) -> dict[str, Any]:
    from urllib.parse import unquote_plus

    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/{unquote_plus(encoded_key)}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "eventTime": "2025-03-04T10:15:30.456Z",
                "eventName": "s3:ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {
                        "key": encoded_key,
                        "size": 5,
                        "eTag": "0f9e8d7c",
                        "sequencer": "1829A7F3C2D4E5F6",
                    },
                },
            }
        ],
    }


def mns_xml(bucket: str, key: str) -> bytes:
    events = {
        "events": [
            {
                "eventName": "ObjectCreated:PutObject",
                "eventSource": "acs:oss",
                "eventTime": "2025-03-04T10:16:02.000Z",
                "oss": {"bucket": {"name": bucket}, "object": {"key": key, "size": 3, "eTag": "5C1F0E2D"}},
            }
        ]
    }
    message = base64.b64encode(orjson.dumps(events)).decode()
    return (
        '<?xml version="1.0" encoding="utf-8"?><Notification xmlns="http://mns.aliyuncs.com/doc/v1/">'
        "<TopicOwner>1</TopicOwner><TopicName>oss</TopicName><MessageId>m</MessageId>"
        f"<Message>{message}</Message><PublishTime>1449556920000</PublishTime></Notification>"
    ).encode()


# --------------------------------------------------------------------------- reconciliation


def test_reconcile_finds_the_object_whose_notification_was_lost_and_doubles_nothing(
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    # The bucket notifies only runs/: an object under lost/ never gets a notification.
    bucket_to_queue(moto, "landing", "uploads", prefix="runs/")
    secrets = tmp_path / "secrets"
    write_keys(secrets)
    receiver = Receiver().start()
    port = free_port()
    path = write(
        tmp_path,
        "s3.yaml",
        f"""
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: lab}}
spec:
  s3:
    objects:
      webhook: {{port: "{port}", endpoint: /s3}}
      sqs:
        queue: uploads
        endpoint: {moto.url}
        waitTimeSeconds: 1{KEYS_SECRETS}
      reconcile:
        interval: 500ms
        minAge: 0s
        endpoint: {moto.url}{KEYS_SECRETS}
      bucket: landing
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: objects}}
spec:
  dependencies:
    - {{name: obj, eventSourceName: lab, eventName: objects}}
  triggers:{trigger("fired", "obj", receiver)}
""",
    )
    state = tmp_path / "state"
    s3 = moto.client("s3")
    gw = GatewayProcess([path], state, port, secrets_dir=secrets).start()
    try:
        for key in ("runs/a.fq", "runs/b.fq", "lost/c.fq"):
            s3.put_object(Bucket="landing", Key=key, Body=key.encode())
        got = settle(receiver, 3, quiet=2.0)
    finally:
        assert gw.terminate() == 0, gw.logs()
    bodies = {r.json()["key"]: r.json() for r in got}
    assert sorted(bodies) == ["lost/c.fq", "runs/a.fq", "runs/b.fq"]
    assert bodies["lost/c.fq"]["provider"] == "reconcile"
    assert bodies["lost/c.fq"]["eventName"] == "ObjectCreated:Put"

    # After a restart the seen-set is empty and every object is listed again: the listing gives
    # the ids the notifications gave, so the bus drops them all and nothing fires again.
    gw = GatewayProcess([path], state, port, secrets_dir=secrets).start()
    try:
        time.sleep(2.5)
        s3.put_object(Bucket="landing", Key="lost/d.fq", Body=b"d")
        receiver.wait_for(4)
        time.sleep(1.0)
        after = receiver.snapshot()
    finally:
        assert gw.terminate() == 0, gw.logs()
        receiver.stop()
    assert [r.json()["key"] for r in after[3:]] == ["lost/d.fq"]
    assert "announced" in gw.logs()


# --------------------------------------------------------------------------- Argo's sqs source


def test_argo_sqs_source_payload_and_dead_letters(
    moto: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Credentials from the environment (the gateway process inherits it), as Argo allows.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sqs = moto.client("sqs")
    url = sqs.create_queue(QueueName="argo-jobs")["QueueUrl"]
    receiver = Receiver().start()
    port = free_port()
    path = write(
        tmp_path,
        "sqs.yaml",
        f"""
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: aws-sqs}}
spec:
  webhook:
    health: {{port: "{port}", endpoint: /health-only}}
  sqs:
    jobs:
      region: us-east-1
      queue: argo-jobs
      endpoint: {moto.url}
      waitTimeSeconds: 1
      jsonBody: true
      metadata: {{team: genomics}}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: jobs}}
spec:
  dependencies:
    - {{name: job, eventSourceName: aws-sqs, eventName: jobs}}
  triggers:
    - template:
        name: fired
        http:
          url: {receiver.url}/fired
          payload:
            - {{src: {{dependencyName: job, contextKey: id}}, dest: id}}
            - {{src: {{dependencyName: job, contextKey: type}}, dest: type}}
            - {{src: {{dependencyName: job, dataKey: messageId}}, dest: messageId}}
            - {{src: {{dependencyName: job, dataKey: body, useRawData: true}}, dest: body}}
            - {{src: {{dependencyName: job, dataKey: messageAttributes, useRawData: true}}, dest: attributes}}
            - {{src: {{dependencyName: job, dataKey: metadata, useRawData: true}}, dest: metadata}}
      retryStrategy: {{steps: 5, duration: 50ms}}
""",
    )
    state = tmp_path / "state"
    gw = GatewayProcess([path], state, port).start()
    try:
        sent = sqs.send_message(
            QueueUrl=url,
            MessageBody='{"sample": "NA12878", "lanes": [1, 2]}',
            MessageAttributes={
                "lab": {"DataType": "String", "StringValue": "lims"},
                "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
            },
        )
        plain = sqs.send_message(QueueUrl=url, MessageBody='{"sample": "NA12891"}')
        sqs.send_message(QueueUrl=url, MessageBody="not json")
        got = settle(receiver, 2)
        wait_until(lambda: queue_counts(sqs, url) == (0, 0), what="the queue to be drained")
    finally:
        assert gw.terminate() == 0, gw.logs()
        receiver.stop()
    bodies = {r.json()["messageId"]: r.json() for r in got}
    first = bodies[sent["MessageId"]]
    assert first["type"] == "sqs"
    assert first["body"] == {"sample": "NA12878", "lanes": [1, 2]}
    assert first["metadata"] == {"team": "genomics"}
    assert first["attributes"]["lab"] == {
        "BinaryListValues": None,
        "BinaryValue": None,
        "DataType": "String",
        "StringListValues": None,
        "StringValue": "lims",
    }
    assert first["attributes"]["blob"]["BinaryValue"] == base64.b64encode(b"\x00\x01").decode()
    assert bodies[plain["MessageId"]]["attributes"] is None
    letters = dead_letters(state)
    assert [(s, "jsonBody is true but the body is not JSON" in r, raw) for s, r, raw in letters] == [
        ("sqs aws-sqs/jobs", True, b"not json")
    ]
