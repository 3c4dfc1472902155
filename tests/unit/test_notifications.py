"""Every notification format the s3 source accepts, from raw bytes to normalised records."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest

from sensors.notifications import (
    NotificationError,
    ObjectFilter,
    ObjectRecord,
    event_id,
    event_pattern,
    listed_object_record,
    normalize_event_name,
    parse_document,
    parse_notification,
)


def aws_record(key: str, *, name: str = "ObjectCreated:Put", **obj: Any) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventTime": "2025-03-04T10:15:30.123Z",
        "eventName": name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "fastq-arrivals",
            "bucket": {"name": "seq-landing", "arn": "arn:aws:s3:::seq-landing"},
            "object": {"key": key, **obj},
        },
    }


MULTIPART = aws_record(
    "runs/250304_A01234_0042_BHXXYYDSXC/Project+Alpha/NA12878_S1_L001_R1_001.fastq.gz",
    name="ObjectCreated:CompleteMultipartUpload",
    size=5368709120,
    eTag="9b2cf535f27731c974343645a3985328-640",
    versionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    sequencer="0065E5F1A2B3C4D5E6",
)

MINIO = {
    "EventName": "s3:ObjectCreated:CompleteMultipartUpload",
    "Key": "seq-landing/runs/RUN42/Project Alpha/NA12878_S1_L002_R1_001.fastq.gz",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2025-03-04T10:15:30.456Z",
            "eventName": "s3:ObjectCreated:CompleteMultipartUpload",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {"name": "seq-landing", "arn": "arn:aws:s3:::seq-landing"},
                "object": {
                    "key": "runs%2FRUN42%2FProject+Alpha%2FNA12878_S1_L002_R1_001.fastq.gz",
                    "size": 4987654321,
                    "eTag": "0f9e8d7c6b5a49382716051423324151-75",
                    "contentType": "application/gzip",
                    "sequencer": "1829A7F3C2D4E5F6",
                },
            },
        }
    ],
}

EVENTBRIDGE = {
    "version": "0",
    "id": "0c9d7a42-5f3e-4d2b-8a61-7e0f2b9c1d34",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "111122223333",
    "time": "2025-03-04T10:15:30Z",
    "region": "eu-west-1",
    "resources": ["arn:aws:s3:::seq-landing"],
    "detail": {
        "version": "0",
        "bucket": {"name": "seq-landing"},
        "object": {
            "key": "runs/RUN42/Project+Alpha/NA12878_S1_L001_R2_001.fastq.gz",
            "size": 5401231872,
            "etag": "e1f0c3a77d9b4c2b8f7e6d5c4b3a2918-644",
            "version-id": "kQ1m2n3o4p5q6r7s8t9u0v.EXAMPLE",
            "sequencer": "0065E5F1A2B3C4D5F8",
        },
        "request-id": "N4N7EXAMPLE",
        "requester": "111122223333",
        "reason": "CompleteMultipartUpload",
    },
}


def oss_event(name: str, key: str, **obj: Any) -> dict[str, Any]:
    return {
        "eventName": name,
        "eventSource": "acs:oss",
        "eventTime": "2025-03-04T10:15:30.000Z",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {
                "arn": "acs:oss:cn-hangzhou:1234567890123456:seq-landing",
                "name": "seq-landing",
                "ownerIdentity": "1234567890123456",
            },
            "object": {"key": key, **obj},
            "ossSchemaVersion": "1.0",
            "ruleId": "fastq-arrivals",
        },
        "region": "cn-hangzhou",
    }


OSS_CLOUDEVENT = {
    "specversion": "1.0",
    "id": "67C6A1B2C3D4E5F60718293B",
    "source": "acs.oss",
    "type": "oss:ObjectCreated:PutObject",
    "subject": "acs:oss:cn-hangzhou:1234567890123456:seq-landing/runs/RUN42/SampleSheet.csv",
    "time": "2025-03-04T10:16:02.000Z",
    "aliyunaccountid": "1234567890123456",
    "data": {
        "eventVersion": "1.0",
        "eventSource": "acs:oss",
        "eventName": "ObjectCreated:PutObject",
        "eventTime": "2025-03-04T10:16:02.000Z",
        "region": "cn-hangzhou",
        "oss": {
            "bucket": {"name": "seq-landing"},
            "object": {
                "key": "runs/RUN42/SampleSheet.csv",
                "size": 3712,
                "eTag": "1B2C3D4E5F60718293A4B5C6D7E8F901",
            },
            "ossSchemaVersion": "1.0",
        },
    },
}


def sns(message: Any, kind: str = "Notification", **extra: Any) -> dict[str, Any]:
    return {
        "Type": kind,
        "MessageId": "2f7c1c9e-4b7e-5d8a-9c1e-0a1b2c3d4e5f",
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:seq-landing-events",
        "Subject": "Amazon S3 Notification",
        "Message": message if isinstance(message, str) else orjson.dumps(message).decode(),
        "Timestamp": "2025-03-04T10:15:31.002Z",
        "SignatureVersion": "1",
        "Signature": "c2lnbmF0dXJl",
        **extra,
    }


def b64(doc: Any) -> str:
    return base64.b64encode(orjson.dumps(doc)).decode()


def only(body: Any) -> ObjectRecord:
    raw = body if isinstance(body, bytes | str) else orjson.dumps(body)
    notification = parse_notification(raw)
    assert notification.kind == "records"
    assert len(notification.records) == 1, notification
    return notification.records[0]


# --------------------------------------------------------------------------- AWS


def test_aws_direct_record_is_normalised() -> None:
    record = only({"Records": [MULTIPART]})
    assert record.data() == {
        "bucket": "seq-landing",
        "key": "runs/250304_A01234_0042_BHXXYYDSXC/Project Alpha/NA12878_S1_L001_R1_001.fastq.gz",
        "size": 5368709120,
        "etag": "9b2cf535f27731c974343645a3985328-640",
        "versionId": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "sequencer": "0065E5F1A2B3C4D5E6",
        "eventName": "ObjectCreated:CompleteMultipartUpload",
        "eventTime": "2025-03-04T10:15:30.123Z",
        "provider": "aws",
        "record": MULTIPART,
    }


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("red+flower.jpg", "red flower.jpg"),  # AWS form-encodes a space as '+'
        ("a%2Bb.txt", "a+b.txt"),  # and a literal '+' as %2B
        ("incoming%2Fevt-1.json", "incoming/evt-1.json"),  # moto (and some AWS paths) encode '/'
        ("dir%2Fwith+space%2Bplus.txt", "dir/with space+plus.txt"),
        ("runs/%C3%BCber/na%C3%AFve+%E6%A0%B7%E6%9C%AC.fq", "runs/über/naïve 样本.fq"),
        ("plain/key.txt", "plain/key.txt"),
        ("100%25done.txt", "100%done.txt"),
    ],
)
def test_aws_keys_are_form_decoded(encoded: str, decoded: str) -> None:
    assert only({"Records": [aws_record(encoded)]}).key == decoded


def test_several_records_are_several_records() -> None:
    notification = parse_document(
        {"Records": [aws_record("a"), aws_record("b", name="ObjectRemoved:Delete")]}
    )
    assert [(r.key, r.event_name) for r in notification.records] == [
        ("a", "ObjectCreated:Put"),
        ("b", "ObjectRemoved:Delete"),
    ]
    assert notification.formats == ("aws",)


def test_moto_style_record_without_optional_fields() -> None:
    body = (
        '{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", '
        '"eventTime": "2026-11-22T00:08:56.064Z", "eventName": "ObjectCreated:Put", '
        '"s3": {"s3SchemaVersion": "1.0", "configurationId": "to-sqs", '
        '"bucket": {"name": "trigger-bucket", "arn": "arn:aws:s3:::trigger-bucket"}, '
        '"object": {"key": "incoming%2Fevt-1.json", "size": 17, '
        '"eTag": "fbc24bcc7a1794758fc1327fcfebdaf6"}}}]}'
    )
    record = only(body)
    assert (record.bucket, record.key, record.size, record.etag) == (
        "trigger-bucket",
        "incoming/evt-1.json",
        17,
        "fbc24bcc7a1794758fc1327fcfebdaf6",
    )
    assert record.version_id is None and record.sequencer is None


def test_quoted_etag_loses_its_quotes() -> None:
    assert only({"Records": [aws_record("k", eTag='"abc"')]}).etag == "abc"


def test_aws_test_event_is_recognised_and_has_no_records() -> None:
    body = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2025-03-04T10:00:00.000Z",
        "Bucket": "seq-landing",
        "RequestId": "5582EXAMPLE",
        "HostId": "aG9zdA==",
    }
    notification = parse_document(body)
    assert notification.kind == "test"
    assert notification.records == ()
    assert parse_document(sns(body)).kind == "test"


# --------------------------------------------------------------------------- SNS


def test_sns_notification_is_unwrapped() -> None:
    notification = parse_document(sns({"Records": [MULTIPART]}))
    assert notification.kind == "records"
    assert notification.formats == ("sns", "aws")
    assert notification.topic_arn == "arn:aws:sns:eu-west-1:111122223333:seq-landing-events"
    assert notification.records[0].key.endswith("Project Alpha/NA12878_S1_L001_R1_001.fastq.gz")


def test_sns_subscription_and_unsubscribe_confirmations_are_their_own_kinds() -> None:
    url = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn&Token=t0k"
    sub = parse_document(
        sns("You have chosen to subscribe", "SubscriptionConfirmation", SubscribeURL=url, Token="t0k")
    )
    assert (sub.kind, sub.subscribe_url, sub.token) == ("subscription", url, "t0k")
    unsub = parse_document(sns("unsubscribed", "UnsubscribeConfirmation", SubscribeURL=url, Token="t0k"))
    assert unsub.kind == "unsubscribe"


def test_sns_errors_say_what_is_wrong() -> None:
    with pytest.raises(NotificationError, match="SNS message Type 'Surprise' is not known"):
        parse_document(sns("x", "Surprise"))
    with pytest.raises(NotificationError, match="without a SubscribeURL"):
        parse_document(sns("x", "SubscriptionConfirmation"))
    with pytest.raises(NotificationError, match="neither JSON"):
        parse_document(sns("plain text that is no notification"))


def test_sns_raw_delivery_is_the_bare_s3_document() -> None:
    assert only({"Records": [MULTIPART]}).provider == "aws"


# --------------------------------------------------------------------------- EventBridge


def test_eventbridge_object_created() -> None:
    notification = parse_document(EVENTBRIDGE)
    assert notification.formats == ("eventbridge",)
    record = notification.records[0]
    assert record.data() == {
        "bucket": "seq-landing",
        "key": "runs/RUN42/Project Alpha/NA12878_S1_L001_R2_001.fastq.gz",
        "size": 5401231872,
        "etag": "e1f0c3a77d9b4c2b8f7e6d5c4b3a2918-644",
        "versionId": "kQ1m2n3o4p5q6r7s8t9u0v.EXAMPLE",
        "sequencer": "0065E5F1A2B3C4D5F8",
        "eventName": "ObjectCreated:CompleteMultipartUpload",
        "eventTime": "2025-03-04T10:15:30Z",
        "provider": "aws",
        "record": EVENTBRIDGE,
    }


@pytest.mark.parametrize(
    ("detail_type", "detail", "expected"),
    [
        ("Object Created", {"reason": "PutObject"}, "ObjectCreated:Put"),
        ("Object Created", {"reason": "POST Object"}, "ObjectCreated:Post"),
        ("Object Created", {"reason": "CopyObject"}, "ObjectCreated:Copy"),
        ("Object Created", {}, "ObjectCreated"),
        (
            "Object Deleted",
            {"reason": "DeleteObject", "deletion-type": "Permanently Deleted"},
            "ObjectRemoved:Delete",
        ),
        (
            "Object Deleted",
            {"reason": "DeleteObject", "deletion-type": "Delete Marker Created"},
            "ObjectRemoved:DeleteMarkerCreated",
        ),
        (
            "Object Deleted",
            {"reason": "Lifecycle Expiration", "deletion-type": "Permanently Deleted"},
            "LifecycleExpiration:Delete",
        ),
        ("Object Restore Completed", {}, "ObjectRestore:Completed"),
        ("Object Tags Added", {}, "ObjectTagging:Put"),
        ("Object Something New", {}, "ObjectSomethingNew"),
    ],
)
def test_eventbridge_names(detail_type: str, detail: dict[str, str], expected: str) -> None:
    doc = copy.deepcopy(EVENTBRIDGE)
    doc["detail-type"] = detail_type
    doc["detail"].pop("reason")
    doc["detail"].update(detail)
    assert only(doc).event_name == expected


def test_eventbridge_created_matches_the_object_created_wildcard_even_without_a_reason() -> None:
    flt = ObjectFilter.build(events=["ObjectCreated:*"])
    assert flt.matches_event("ObjectCreated")


# --------------------------------------------------------------------------- MinIO


def test_minio_webhook_body() -> None:
    notification = parse_document(MINIO)
    assert notification.formats == ("minio",)
    record = notification.records[0]
    # The record key is Go's QueryEscape ('/' -> %2F, ' ' -> '+'); the envelope's Key is decoded.
    assert record.key == "runs/RUN42/Project Alpha/NA12878_S1_L002_R1_001.fastq.gz"
    assert f"{record.bucket}/{record.key}" == MINIO["Key"]
    assert record.event_name == "ObjectCreated:CompleteMultipartUpload"  # no s3: prefix
    assert (record.provider, record.size, record.sequencer) == ("minio", 4987654321, "1829A7F3C2D4E5F6")


def test_minio_unicode_and_plus_keys() -> None:
    doc = copy.deepcopy(MINIO)
    doc["Records"][0]["s3"]["object"]["key"] = "dir%2Fa%2Bb+c%2F%E6%A0%B7.txt"
    assert only(doc).key == "dir/a+b c/样.txt"


# --------------------------------------------------------------------------- Alibaba OSS


def test_oss_mns_queue_message_base64_json() -> None:
    events = {"events": [oss_event("ObjectCreated:PutObject", "runs/RUN42/a b+c.fq", size=10, eTag="5C1F")]}
    mns = {"MessageId": "m1", "MessageBody": b64(events), "MessageBodyMD5": "x"}
    notification = parse_document(mns)
    assert notification.formats == ("mns", "base64", "oss")
    record = notification.records[0]
    # OSS keys are delivered as they are: nothing is URL-decoded.
    assert (record.key, record.event_name, record.provider, record.etag) == (
        "runs/RUN42/a b+c.fq",
        "ObjectCreated:Put",
        "oss",
        "5C1F",
    )
    assert record.record["eventName"] == "ObjectCreated:PutObject"  # the original is kept


def test_oss_mns_http_push_xml() -> None:
    events = {"events": [oss_event("ObjectCreated:CompleteMultipartUpload", "runs/样本.fq", eTag="AB-3")]}
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Notification xmlns="http://mns.aliyuncs.com/doc/v1/">'
        "<TopicOwner>1234567890123456</TopicOwner><TopicName>oss-events</TopicName>"
        "<Subscriber>1234567890123456</Subscriber><SubscriptionName>gw</SubscriptionName>"
        "<MessageId>C39FB8C345BBFBA8-1-1687F6FAADD-200000015</MessageId>"
        f"<Message>{b64(events)}</Message>"
        "<MessageMD5>CAA1E9F5E9F854ACD8297B100BF8CCF9</MessageMD5>"
        "<PublishTime>1449556920000</PublishTime></Notification>"
    )
    notification = parse_notification(xml.encode())
    assert notification.outer_format == "mns"
    assert [(r.key, r.event_name) for r in notification.records] == [
        ("runs/样本.fq", "ObjectCreated:CompleteMultipartUpload")
    ]


def test_mns_json_push_and_simplified_base64_body() -> None:
    events = {"events": [oss_event("ObjectRemoved:DeleteObject", "x/y.txt")]}
    pushed = {"TopicOwner": "1", "TopicName": "t", "MessageId": "m", "Message": b64(events)}
    assert only(pushed).event_name == "ObjectRemoved:Delete"
    # SIMPLIFIED format: the body is the base64 text itself
    assert only(b64(events).encode()).key == "x/y.txt"
    # an MNS queue without base64 encoding: plain JSON text inside
    assert only({"MessageId": "m", "MessageBody": orjson.dumps(events).decode()}).key == "x/y.txt"


def test_oss_multipart_parts_are_dropped() -> None:
    events = {
        "events": [
            oss_event("ObjectCreated:InitiateMultipartUpload", "big.fq"),
            oss_event("ObjectCreated:UploadPart", "big.fq"),
            oss_event("ObjectCreated:UploadPartCopy", "big.fq"),
            oss_event("ObjectCreated:CompleteMultipartUpload", "big.fq", eTag="E-3"),
        ]
    }
    notification = parse_document(events)
    assert [r.event_name for r in notification.records] == ["ObjectCreated:CompleteMultipartUpload"]
    assert [d.event_name for d in notification.dropped] == [
        "ObjectCreated:InitiateMultipartUpload",
        "ObjectCreated:UploadPart",
        "ObjectCreated:UploadPartCopy",
    ]
    assert all("multipart" in d.reason for d in notification.dropped)


def test_oss_eventbridge_cloudevent() -> None:
    notification = parse_document(OSS_CLOUDEVENT)
    assert notification.formats == ("eventbridge", "oss")
    record = notification.records[0]
    assert (record.bucket, record.key, record.event_name, record.size) == (
        "seq-landing",
        "runs/RUN42/SampleSheet.csv",
        "ObjectCreated:Put",
        3712,
    )
    assert record.record == OSS_CLOUDEVENT


def test_oss_eventbridge_part_and_bucket_events_are_dropped() -> None:
    part = copy.deepcopy(OSS_CLOUDEVENT)
    part["type"] = "oss:ObjectCreated:UploadPart"
    assert parse_document(part).records == ()
    bucket = {
        "specversion": "1.0",
        "id": "1",
        "source": "acs.oss",
        "type": "oss:BucketCreated:PutBucket",
        "data": {"oss": {"bucket": {"name": "new-bucket"}}},
    }
    notification = parse_document(bucket)
    assert notification.records == ()
    assert notification.dropped[0].reason.startswith("not an object event")


# --------------------------------------------------------------------------- names, filters, ids


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("s3:ObjectCreated:Put", "ObjectCreated:Put"),
        ("ObjectCreated:Put", "ObjectCreated:Put"),
        ("oss:ObjectCreated:PutObject", "ObjectCreated:Put"),
        ("ObjectCreated:PostObject", "ObjectCreated:Post"),
        ("ObjectCreated:CopyObject", "ObjectCreated:Copy"),
        ("ObjectCreated:AppendObject", "ObjectCreated:Append"),
        ("ObjectRemoved:DeleteObjects", "ObjectRemoved:Delete"),
        ("ObjectRestore:FinishRestore", "ObjectRestore:Completed"),
        ("ObjectCreated:PutSymlink", "ObjectCreated:PutSymlink"),
        ("s3:ObjectAccessed:Get", "ObjectAccessed:Get"),
    ],
)
def test_event_names_are_normalised(name: str, expected: str) -> None:
    assert normalize_event_name(name) == expected


def test_filters() -> None:
    record = only({"Records": [aws_record("runs/RUN1/S1_R1_001.fastq.gz", eTag="e")]})
    assert ObjectFilter.build().matches(record)
    assert ObjectFilter.build(bucket="seq-landing", prefix="runs/", suffix=".fastq.gz").matches(record)
    assert not ObjectFilter.build(bucket="other").matches(record)
    assert not ObjectFilter.build(prefix="incoming/").matches(record)
    assert not ObjectFilter.build(suffix=".bam").matches(record)
    for pattern in (
        "ObjectCreated:*",
        "s3:ObjectCreated:*",
        "ObjectCreated:Put",
        "s3:ObjectCreated:Put",
        "*",
        "oss:ObjectCreated:PutObject",
    ):
        assert ObjectFilter.build(events=[pattern]).matches(record), pattern
    for pattern in ("ObjectRemoved:*", "ObjectCreated:Copy", "s3:ObjectCreated:CompleteMultipartUpload"):
        assert not ObjectFilter.build(events=[pattern]).matches(record), pattern
    assert ObjectFilter.build(events=["ObjectRemoved:*", "ObjectCreated:Put"]).matches(record)


def test_prefix_filter_applies_to_the_decoded_key() -> None:
    record = only({"Records": [aws_record("Project+Alpha%2Fa.fq")]})
    assert ObjectFilter.build(prefix="Project Alpha/").matches(record)


@pytest.mark.parametrize("pattern", ["", "Object*Created", "ObjectCreated:P?t", "[ab]"])
def test_bad_event_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(NotificationError):
        event_pattern(pattern)


def test_ids_are_stable_across_redelivery_and_envelopes() -> None:
    direct = only({"Records": [MULTIPART]})
    via_sns = parse_document(sns({"Records": [copy.deepcopy(MULTIPART)]})).records[0]
    again = only(orjson.dumps({"Records": [MULTIPART]}))
    first = event_id("uploads", "fastq", direct)
    assert first == event_id("uploads", "fastq", via_sns) == event_id("uploads", "fastq", again)
    assert len(first) == 32
    # another entry, another object version, another sequencer or another event: another id
    assert event_id("uploads", "other", direct) != first
    for change in ({"versionId": "v2"}, {"sequencer": "0065E5F1A2B3C4D5E7"}):
        changed = copy.deepcopy(MULTIPART)
        changed["s3"]["object"].update(change)
        assert event_id("uploads", "fastq", only({"Records": [changed]})) != first
    removed = copy.deepcopy(MULTIPART)
    removed["eventName"] = "ObjectRemoved:Delete"
    assert event_id("uploads", "fastq", only({"Records": [removed]})) != first


def test_id_uses_the_etag_when_there_is_no_version() -> None:
    a = only({"Records": [aws_record("k", eTag="aaa")]})
    b = only({"Records": [aws_record("k", eTag="bbb")]})
    assert event_id("s", "e", a) != event_id("s", "e", b)


def test_listed_object_has_the_id_of_a_notification_without_sequencer() -> None:
    notified = only({"Records": [aws_record("incoming%2Fa.json", eTag="fbc24bcc", size=17)]})
    listed = listed_object_record(
        "seq-landing",
        "incoming/a.json",
        etag='"fbc24bcc"',
        size=17,
        version_id=None,
        last_modified="2026-11-22T00:08:56Z",
        listing={"key": "incoming/a.json"},
    )
    assert listed.provider == "reconcile"
    assert event_id("s", "e", listed) == event_id("s", "e", notified)
    multipart = listed_object_record(
        "b", "k", etag="abc-12", size=1, version_id="v1", last_modified=None, listing={}
    )
    assert multipart.event_name == "ObjectCreated:CompleteMultipartUpload"
    assert multipart.version_id == "v1"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the message is empty"),
        (b"   ", "the message is empty"),
        (b"not json at all!", "neither JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'{"hello": "world"}', "unrecognised notification \\(top-level keys: hello\\)"),
        (b'{"Records": {}}', "'Records' must be a list"),
        (b'{"Records": [{"eventName": "ObjectCreated:Put"}]}', "Records\\[0\\]: 's3' is missing"),
        (
            b'{"Records": [{"eventName": "x", "s3": {"bucket": {"name": "b"}, "object": {}}}]}',
            "'object.key' is missing",
        ),
        (b'{"events": [{"eventName": "ObjectCreated:PutObject"}]}', "'oss' is missing"),
        (b"<Notification><TopicName>t</TopicName></Notification>", "without a <Message>"),
        (b"<Notification><Message>", "not well-formed XML"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Notification/>', "DOCTYPE or ENTITY"),
    ],
)
def test_unparseable_messages_say_what_was_expected(body: bytes, message: str) -> None:
    with pytest.raises(NotificationError, match=message):
        parse_notification(body)


def test_every_error_names_the_expected_formats() -> None:
    with pytest.raises(NotificationError) as info:
        parse_notification(b'{"hello": "world"}')
    text = str(info.value)
    for hint in ("S3 event notification", "SNS envelope", "EventBridge", "MinIO", "OSS", "MNS"):
        assert hint in text


def test_envelopes_nested_too_deep_are_refused() -> None:
    doc: Any = {"Records": []}
    for _ in range(6):
        doc = {"MessageId": "m", "MessageBody": orjson.dumps(doc).decode()}
    with pytest.raises(NotificationError, match="nested more than"):
        parse_document(doc)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"Type": "Notification", "TopicArn": "t", "Message": 5}, "without a Message string"),
        ({"Records": ["x"]}, "Records\\[0\\] must be an object"),
        ({"Records": [{"eventName": "", "s3": {}}]}, "'eventName' must be a non-empty string"),
        ({"Records": [{"eventName": "x", "s3": []}]}, "'s3' must be an object"),
        ({"source": "aws.s3", "detail-type": "Object Created", "detail": "x"}, "without a 'detail' object"),
        ({"events": {}}, "'events' must be a list"),
        ({"events": [1]}, "events\\[0\\] must be an object"),
    ],
)
def test_malformed_documents(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(NotificationError, match=message):
        parse_document(doc)


def test_eventbridge_event_without_an_object_is_dropped() -> None:
    doc = copy.deepcopy(EVENTBRIDGE)
    del doc["detail"]["object"]
    notification = parse_document(doc)
    assert notification.records == () and "not an object event" in notification.dropped[0].reason


def test_oss_cloudevent_without_data_is_dropped() -> None:
    doc = {
        "specversion": "1.0",
        "id": "1",
        "source": "acs.oss",
        "type": "oss:ActionTrail:ApiCall",
        "data": {},
    }
    notification = parse_document(doc)
    assert notification.records == () and notification.dropped[0].event_name == "ActionTrail:ApiCall"


def test_urlsafe_base64_mns_body_and_odd_sizes() -> None:
    events = {"events": [oss_event("ObjectCreated:PutObject", "k?>>", size="12")]}
    text = base64.urlsafe_b64encode(orjson.dumps(events)).rstrip(b"=")
    record = only(text)
    assert (record.key, record.size) == ("k?>>", 12)
    for size, expected in ((12.0, 12), (True, None), ("x", None), (None, None)):
        assert only({"Records": [aws_record("k", size=size)]}).size == expected


def test_depth_limit_also_counts_base64_layers() -> None:
    doc: Any = {"MessageBody": b64({"Records": []})}
    for _ in range(3):
        doc = {"MessageBody": orjson.dumps(doc).decode()}
    with pytest.raises(NotificationError, match="nested more than"):
        parse_document(doc)
    shallower = {"MessageBody": orjson.dumps({"MessageBody": b64({"Records": []})}).decode()}
    assert parse_document(shallower).formats == ("mns", "mns", "base64", "aws")
