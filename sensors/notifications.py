"""Object-store notifications: detect the format from the message, unwrap it, normalise its records.

:func:`parse_notification` takes one message body (bytes or text, as it came off HTTP or a queue)
and returns a :class:`Notification`. The format is read from the message itself:

================================  ==============================================================
message                           recognised by
================================  ==============================================================
AWS S3 notification               ``Records`` (``eventSource: aws:s3``); keys form-encoded
AWS S3 test event                 ``Event: s3:TestEvent`` (no ``Records``) -> kind ``test``
SNS envelope                      ``Type`` + ``TopicArn``; ``Notification`` unwraps ``Message``;
                                  ``SubscriptionConfirmation`` / ``UnsubscribeConfirmation`` ->
                                  kinds ``subscription`` / ``unsubscribe``
AWS EventBridge event             ``source: aws.s3`` + ``detail-type`` (``Object Created``, ...)
MinIO notification                ``EventName`` + ``Key`` + ``Records`` (``eventSource:
                                  minio:s3``); record keys ``QueryEscape``-d (``/`` -> ``%2F``)
Alibaba OSS notification          ``events`` with ``oss.bucket.name`` / ``oss.object.key``
Alibaba MNS push / queue message  XML ``<Notification>`` or JSON with ``Message`` /
                                  ``MessageBody``: base64 (or plain) text of one of the above;
                                  a bare base64 body (MNS ``SIMPLIFIED`` format) likewise
OSS via EventBridge (CloudEvent)  ``specversion`` + ``type: oss:<Group>:<Operation>`` + ``data``
================================  ==============================================================

Each object event becomes one :class:`ObjectRecord` with the same fields whatever the provider:
``bucket``, ``key`` (decoded), ``size``, ``etag`` (without quotes), ``versionId``, ``sequencer``,
``eventName`` (S3's form without the ``s3:`` prefix: ``ObjectCreated:Put``; OSS names are mapped to
it, ``ObjectCreated:PutObject`` -> ``ObjectCreated:Put``), ``eventTime``, ``provider`` (``aws``,
``minio``, ``oss``, or the prefix of another store's ``eventSource`` such as ``ceph``) and ``record``
(the original record, untouched, so nothing is lost).

Key decoding: AWS (direct, SNS, SQS, EventBridge) and MinIO keys are form-encoded, decoded with
``unquote_plus`` (``+`` -> space, ``%2B`` -> ``+``, ``%2F`` -> ``/``, UTF-8 escapes); OSS keys are
delivered as they are (Alibaba's own examples pass them straight to ``GetObject``) and are not
decoded, so a ``+`` or ``%`` in an OSS key stays what it is.

Dropped, not errors: test events (kind ``test``), and the multipart bookkeeping events that OSS
sends before an object exists (``InitiateMultipartUpload``, ``UploadPart``, ``UploadPartCopy``,
``AbortMultipartUpload``) and events without an object (``oss:BucketCreated:PutBucket``), which are
listed in :attr:`Notification.dropped` with the reason.

A message that is none of these raises :class:`NotificationError` saying what was expected.
Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal
from urllib.parse import unquote_plus

import orjson

from sensors.event import deterministic_event_id

NotificationKind = Literal["records", "test", "subscription", "unsubscribe"]

EXPECTED_FORMATS = (
    'an S3 event notification ({"Records": [...]}), an S3 test event, an SNS envelope (Type, '
    "TopicArn, Message), an S3 EventBridge event (source aws.s3, detail-type), a MinIO notification "
    '(EventName, Key, Records), an Alibaba OSS notification ({"events": [...]}), an MNS message '
    "(XML <Notification> or JSON with a base64 Message/MessageBody) or an OSS EventBridge CloudEvent "
    "(type oss:...)"
)

#: Operations that are steps of a multipart upload, not an object: acknowledged and dropped.
MULTIPART_STEPS = frozenset(
    {"InitiateMultipartUpload", "UploadPart", "UploadPartCopy", "AbortMultipartUpload"}
)

# OSS operation names -> S3's names (group, operation). Names not listed are kept as they are.
_OSS_NAMES = {
    ("ObjectCreated", "PutObject"): "ObjectCreated:Put",
    ("ObjectCreated", "PostObject"): "ObjectCreated:Post",
    ("ObjectCreated", "CopyObject"): "ObjectCreated:Copy",
    ("ObjectCreated", "AppendObject"): "ObjectCreated:Append",
    ("ObjectRemoved", "DeleteObject"): "ObjectRemoved:Delete",
    ("ObjectRemoved", "DeleteObjects"): "ObjectRemoved:Delete",
    ("ObjectDownloaded", "GetObject"): "ObjectAccessed:Get",
    ("ObjectRestore", "FinishRestore"): "ObjectRestore:Completed",
}

# EventBridge detail-type (+ reason / deletion-type) -> S3 notification event name.
_EVENTBRIDGE_CREATED = {
    "PutObject": "ObjectCreated:Put",
    "POST Object": "ObjectCreated:Post",
    "PostObject": "ObjectCreated:Post",
    "CopyObject": "ObjectCreated:Copy",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}
_EVENTBRIDGE_TYPES = {
    "Object Restore Initiated": "ObjectRestore:Post",
    "Object Restore Completed": "ObjectRestore:Completed",
    "Object Restore Expired": "ObjectRestore:Delete",
    "Object Storage Class Changed": "LifecycleTransition",
    "Object Access Tier Changed": "IntelligentTiering",
    "Object ACL Updated": "ObjectAcl:Put",
    "Object Tags Added": "ObjectTagging:Put",
    "Object Tags Deleted": "ObjectTagging:Delete",
}

_MAX_DEPTH = 4
_MULTIPART_ETAG = re.compile(r"-\d+$")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=\s_-]+")


class NotificationError(ValueError):
    """The message is not an object-store notification this module knows; the text says why."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """One object event, normalised. :meth:`data` is the event payload sensors see."""

    bucket: str
    key: str
    event_name: str
    provider: str
    record: Mapping[str, Any]
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_time: str | None = None

    def data(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "etag": self.etag,
            "versionId": self.version_id,
            "sequencer": self.sequencer,
            "eventName": self.event_name,
            "eventTime": self.event_time,
            "provider": self.provider,
            "record": self.record,
        }


@dataclass(frozen=True, slots=True)
class Dropped:
    """An event that was recognised and deliberately not turned into a record."""

    event_name: str
    reason: str
    bucket: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """What one message held.

    ``kind`` is ``records`` (zero or more :attr:`records`), ``test`` (an S3 test event),
    ``subscription`` (an SNS ``SubscriptionConfirmation``: confirm by GET-ing
    :attr:`subscribe_url`) or ``unsubscribe`` (an SNS ``UnsubscribeConfirmation``).
    ``formats`` is the chain of formats from the outside in, e.g. ``("sns", "aws")``.
    """

    kind: NotificationKind
    formats: tuple[str, ...]
    records: tuple[ObjectRecord, ...] = ()
    dropped: tuple[Dropped, ...] = ()
    subscribe_url: str | None = None
    topic_arn: str | None = None
    token: str | None = None
    message_id: str | None = None

    @property
    def outer_format(self) -> str:
        return self.formats[0] if self.formats else ""


# --------------------------------------------------------------------------- names and ids


def normalize_event_name(name: str) -> str:
    """S3's event-name form: no ``s3:``/``oss:`` prefix, OSS operations mapped to S3's names.

    ``s3:ObjectCreated:Put`` -> ``ObjectCreated:Put``; ``oss:ObjectCreated:PutObject`` and
    ``ObjectCreated:PutObject`` -> ``ObjectCreated:Put``; unknown names are kept.
    """
    text = name.strip()
    for prefix in ("s3:", "oss:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    group, _, operation = text.partition(":")
    return _OSS_NAMES.get((group, operation), text)


def event_id(event_source: str, event_name: str, record: ObjectRecord) -> str:
    """The bus id of ``record`` published as ``event_source``/``event_name``.

    Built from the object's identity (bucket, key, version id or ETag, sequencer, event name),
    so a redelivered notification is the same event and the bus drops the copy.
    """
    return deterministic_event_id(
        "s3",
        event_source,
        event_name,
        record.bucket,
        record.key,
        record.version_id or record.etag or "",
        record.sequencer or "",
        record.event_name,
    )


def listed_object_record(
    bucket: str,
    key: str,
    *,
    etag: str | None,
    size: int | None,
    version_id: str | None,
    last_modified: str | None,
    listing: Mapping[str, Any],
) -> ObjectRecord:
    """The record of an object found by listing a bucket (the reconciliation poll).

    It has what a notification without a sequencer would have: ``ObjectCreated:Put``, or
    ``ObjectCreated:CompleteMultipartUpload`` when the ETag is a multipart one (``<hash>-<parts>``),
    provider ``reconcile`` and ``record`` = ``listing``.
    """
    clean = _etag(etag)
    multipart = clean is not None and _MULTIPART_ETAG.search(clean) is not None
    return ObjectRecord(
        bucket=bucket,
        key=key,
        event_name="ObjectCreated:CompleteMultipartUpload" if multipart else "ObjectCreated:Put",
        provider="reconcile",
        record=dict(listing),
        size=size,
        etag=clean,
        version_id=version_id or None,
        event_time=last_modified,
    )


# --------------------------------------------------------------------------- filters


def event_pattern(pattern: str) -> str:
    """A filter pattern in the normalised form (``s3:ObjectCreated:*`` -> ``ObjectCreated:*``)."""
    text = pattern.strip()
    if not text:
        raise NotificationError("an event pattern must not be empty; use e.g. 'ObjectCreated:*'")
    if text == "*":
        return text
    normalized = normalize_event_name(text)
    if "*" in normalized[:-1] or "?" in normalized or "[" in normalized:
        raise NotificationError(
            f"event pattern {pattern!r}: only a trailing '*' is allowed, as in 'ObjectCreated:*'"
        )
    return normalized


@dataclass(frozen=True, slots=True)
class ObjectFilter:
    """``bucket`` (exact), ``prefix`` / ``suffix`` (of the decoded key) and ``events`` (patterns)."""

    bucket: str | None = None
    prefix: str = ""
    suffix: str = ""
    events: tuple[str, ...] = field(default=())

    @classmethod
    def build(
        cls, *, bucket: str | None = None, prefix: str = "", suffix: str = "", events: Iterable[str] = ()
    ) -> ObjectFilter:
        """Validates and normalises the event patterns (``NotificationError`` on a bad one)."""
        return cls(bucket or None, prefix or "", suffix or "", tuple(event_pattern(p) for p in events))

    def matches_event(self, event_name: str) -> bool:
        if not self.events:
            return True
        return any(_pattern_matches(p, event_name) for p in self.events)

    def matches(self, record: ObjectRecord) -> bool:
        if self.bucket is not None and record.bucket != self.bucket:
            return False
        if not record.key.startswith(self.prefix) or not record.key.endswith(self.suffix):
            return False
        return self.matches_event(record.event_name)


def _pattern_matches(pattern: str, event_name: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(":*") and event_name == pattern[:-2]:
        return True
    return fnmatchcase(event_name, pattern)


# --------------------------------------------------------------------------- parsing


def parse_notification(body: bytes | str) -> Notification:
    """Detect the format of one message body and return what it holds (see the module doc).

    Raises :class:`NotificationError` when the body is not a notification of a known format.
    """
    return _parse_text(body, (), 0)


def parse_document(document: Any) -> Notification:
    """Like :func:`parse_notification` for a body that is already parsed JSON."""
    return _parse_json(document, (), 0)


def _parse_text(body: bytes | str, formats: tuple[str, ...], depth: int) -> Notification:
    if depth > _MAX_DEPTH:
        raise NotificationError(f"message nested more than {_MAX_DEPTH} envelopes deep")
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    text = raw.strip()
    if not text:
        raise NotificationError(f"the message is empty; expected {EXPECTED_FORMATS}")
    if text.startswith(b"<"):
        return _parse_mns_xml(text, formats, depth)
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        decoded = _base64_json(text)
        if decoded is None:
            raise NotificationError(
                f"the message is neither JSON ({exc}), XML nor base64-encoded JSON; "
                f"expected {EXPECTED_FORMATS}"
            ) from None
        return _parse_json(decoded, (*formats, "base64"), depth + 1)
    return _parse_json(document, formats, depth)


def _base64_json(text: bytes) -> Any:
    """The JSON document inside base64 ``text``, or None when it is not that."""
    if not _BASE64_TEXT.fullmatch(text.decode("ascii", "replace")):
        return None
    compact = re.sub(rb"\s+", b"", text)
    try:
        if b"-" in compact or b"_" in compact:
            raw = base64.urlsafe_b64decode(compact + b"=" * (-len(compact) % 4))
        else:
            raw = base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
        return orjson.loads(raw)
    except (binascii.Error, ValueError):
        return None


def _parse_json(doc: Any, formats: tuple[str, ...], depth: int) -> Notification:
    if depth > _MAX_DEPTH:
        raise NotificationError(f"message nested more than {_MAX_DEPTH} envelopes deep")
    if not isinstance(doc, dict):
        raise NotificationError(
            f"the message is a JSON {type(doc).__name__}, not an object; expected {EXPECTED_FORMATS}"
        )
    if (
        isinstance(doc.get("Type"), str)
        and ("TopicArn" in doc or "MessageId" in doc)
        and "Records" not in doc
    ):
        return _parse_sns(doc, formats, depth)
    if doc.get("Event") == "s3:TestEvent" or (doc.get("Service") == "Amazon S3" and "Records" not in doc):
        return Notification(kind="test", formats=(*formats, "aws"))
    if "Records" in doc:
        return _parse_records(doc, formats)
    if doc.get("source") == "aws.s3" and "detail-type" in doc:
        return _parse_eventbridge(doc, formats)
    if "specversion" in doc and str(doc.get("type", "")).startswith("oss:"):
        return _parse_oss_cloudevent(doc, formats)
    if "events" in doc:
        return _parse_oss_events(doc, formats)
    for name in ("Message", "MessageBody"):
        inner = doc.get(name)
        if isinstance(inner, str):
            return _parse_text(inner, (*formats, "mns"), depth + 1)
    keys = ", ".join(sorted(str(k) for k in doc)[:12]) or "none"
    raise NotificationError(
        f"unrecognised notification (top-level keys: {keys}); expected {EXPECTED_FORMATS}"
    )


def _parse_sns(doc: dict[str, Any], formats: tuple[str, ...], depth: int) -> Notification:
    kind = doc["Type"]
    here = (*formats, "sns")
    topic = _opt_str(doc.get("TopicArn"))
    message_id = _opt_str(doc.get("MessageId"))
    if kind == "Notification":
        message = doc.get("Message")
        if not isinstance(message, str):
            raise NotificationError(
                "SNS Notification without a Message string; expected the S3 event as JSON text"
            )
        inner = _parse_text(message, here, depth + 1)
        return Notification(
            kind=inner.kind,
            formats=inner.formats,
            records=inner.records,
            dropped=inner.dropped,
            topic_arn=topic,
            message_id=message_id,
        )
    if kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        url = doc.get("SubscribeURL")
        if not isinstance(url, str) or not url:
            raise NotificationError(f"SNS {kind} without a SubscribeURL")
        return Notification(
            kind="subscription" if kind == "SubscriptionConfirmation" else "unsubscribe",
            formats=here,
            subscribe_url=url,
            topic_arn=topic,
            token=_opt_str(doc.get("Token")),
            message_id=message_id,
        )
    raise NotificationError(
        f"SNS message Type {kind!r} is not known; expected Notification, SubscriptionConfirmation or "
        "UnsubscribeConfirmation"
    )


def _parse_records(doc: dict[str, Any], formats: tuple[str, ...]) -> Notification:
    records = doc["Records"]
    if not isinstance(records, list):
        raise NotificationError("'Records' must be a list of S3 event records")
    minio_envelope = "EventName" in doc and "Key" in doc
    found: list[ObjectRecord] = []
    dropped: list[Dropped] = []
    providers: list[str] = []
    for index, record in enumerate(records):
        where = f"Records[{index}]"
        if not isinstance(record, dict):
            raise NotificationError(f"{where} must be an object (an S3 event record)")
        provider = _provider(record.get("eventSource"), minio_envelope)
        providers.append(provider)
        name = normalize_event_name(_require_str(record, ("eventName",), where))
        s3 = _require_dict(record, ("s3",), where)
        bucket = _require_str(s3, ("bucket", "name"), f"{where}.s3")
        key = unquote_plus(_require_str(s3, ("object", "key"), f"{where}.s3"))
        obj = s3.get("object") or {}
        item = ObjectRecord(
            bucket=bucket,
            key=key,
            event_name=name,
            provider=provider,
            record=record,
            size=_opt_int(obj.get("size")),
            etag=_etag(obj.get("eTag", obj.get("etag"))),
            version_id=_opt_str(obj.get("versionId")),
            sequencer=_opt_str(obj.get("sequencer")),
            event_time=_opt_str(record.get("eventTime")),
        )
        _keep_or_drop(item, found, dropped)
    outer = providers[0] if providers else ("minio" if minio_envelope else "aws")
    return Notification(
        kind="records", formats=(*formats, outer), records=tuple(found), dropped=tuple(dropped)
    )


def _provider(event_source: Any, minio_envelope: bool) -> str:
    if isinstance(event_source, str) and event_source:
        head = event_source.split(":", 1)[0]
        return head or "s3"
    return "minio" if minio_envelope else "aws"


def _parse_eventbridge(doc: dict[str, Any], formats: tuple[str, ...]) -> Notification:
    detail = doc.get("detail")
    if not isinstance(detail, dict):
        raise NotificationError("S3 EventBridge event without a 'detail' object")
    detail_type = str(doc["detail-type"])
    name = _eventbridge_name(detail_type, detail)
    obj = detail.get("object")
    bucket = (
        _opt_str((detail.get("bucket") or {}).get("name")) if isinstance(detail.get("bucket"), dict) else None
    )
    here = (*formats, "eventbridge")
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str) or bucket is None:
        drop = Dropped(
            event_name=name, reason="not an object event (no detail.bucket.name/detail.object.key)"
        )
        return Notification(kind="records", formats=here, dropped=(drop,))
    item = ObjectRecord(
        bucket=bucket,
        key=unquote_plus(obj["key"]),
        event_name=name,
        provider="aws",
        record=doc,
        size=_opt_int(obj.get("size")),
        etag=_etag(obj.get("etag")),
        version_id=_opt_str(obj.get("version-id")),
        sequencer=_opt_str(obj.get("sequencer")),
        event_time=_opt_str(doc.get("time")),
    )
    found: list[ObjectRecord] = []
    dropped: list[Dropped] = []
    _keep_or_drop(item, found, dropped)
    return Notification(kind="records", formats=here, records=tuple(found), dropped=tuple(dropped))


def _eventbridge_name(detail_type: str, detail: dict[str, Any]) -> str:
    reason = _opt_str(detail.get("reason"))
    if detail_type == "Object Created":
        if reason is None:
            return "ObjectCreated"
        return _EVENTBRIDGE_CREATED.get(reason, "ObjectCreated:" + reason.replace(" ", ""))
    if detail_type == "Object Deleted":
        marker = _opt_str(detail.get("deletion-type")) == "Delete Marker Created"
        group = "LifecycleExpiration" if reason == "Lifecycle Expiration" else "ObjectRemoved"
        return f"{group}:{'DeleteMarkerCreated' if marker else 'Delete'}"
    return _EVENTBRIDGE_TYPES.get(detail_type, detail_type.replace(" ", ""))


def _parse_oss_events(doc: dict[str, Any], formats: tuple[str, ...]) -> Notification:
    events = doc["events"]
    if not isinstance(events, list):
        raise NotificationError("'events' must be a list of OSS event records")
    found: list[ObjectRecord] = []
    dropped: list[Dropped] = []
    for index, record in enumerate(events):
        where = f"events[{index}]"
        if not isinstance(record, dict):
            raise NotificationError(f"{where} must be an object (an OSS event record)")
        _oss_record(record, record, where, _require_str(record, ("eventName",), where), found, dropped)
    return Notification(
        kind="records", formats=(*formats, "oss"), records=tuple(found), dropped=tuple(dropped)
    )


def _parse_oss_cloudevent(doc: dict[str, Any], formats: tuple[str, ...]) -> Notification:
    data = doc.get("data")
    here = (*formats, "eventbridge", "oss")
    name = str(doc["type"])
    if not isinstance(data, dict) or not isinstance(data.get("oss"), dict):
        drop = Dropped(event_name=normalize_event_name(name), reason="not an object event (no data.oss)")
        return Notification(kind="records", formats=here, dropped=(drop,))
    found: list[ObjectRecord] = []
    dropped: list[Dropped] = []
    _oss_record(data, doc, "data", name, found, dropped, event_time=_opt_str(doc.get("time")))
    return Notification(kind="records", formats=here, records=tuple(found), dropped=tuple(dropped))


def _oss_record(
    record: dict[str, Any],
    original: dict[str, Any],
    where: str,
    raw_name: str,
    found: list[ObjectRecord],
    dropped: list[Dropped],
    *,
    event_time: str | None = None,
) -> None:
    name = normalize_event_name(raw_name)
    oss = record.get("oss")
    if not isinstance(oss, dict):
        raise NotificationError(f"{where}: 'oss' is missing; expected oss.bucket.name and oss.object.key")
    bucket = oss.get("bucket")
    obj = oss.get("object")
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
        bucket_name = _opt_str(bucket.get("name")) if isinstance(bucket, dict) else None
        dropped.append(
            Dropped(event_name=name, reason="not an object event (no oss.object.key)", bucket=bucket_name)
        )
        return
    item = ObjectRecord(
        bucket=_require_str(oss, ("bucket", "name"), f"{where}.oss"),
        key=obj["key"],
        event_name=name,
        provider="oss",
        record=original,
        size=_opt_int(obj.get("size")),
        etag=_etag(obj.get("eTag", obj.get("etag"))),
        version_id=_opt_str(obj.get("versionId")),
        sequencer=_opt_str(obj.get("sequencer")),
        event_time=_opt_str(record.get("eventTime")) or event_time,
    )
    _keep_or_drop(item, found, dropped)


def _parse_mns_xml(text: bytes, formats: tuple[str, ...], depth: int) -> Notification:
    if b"<!DOCTYPE" in text.upper() or b"<!ENTITY" in text.upper():
        raise NotificationError("XML with a DOCTYPE or ENTITY declaration is refused")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise NotificationError(f"the message is not well-formed XML: {exc}") from None
    message = None
    for element in root.iter():
        if _local(element.tag) in ("Message", "MessageBody"):
            message = element.text or ""
            break
    if message is None:
        raise NotificationError(
            f"XML <{_local(root.tag)}> without a <Message>: expected an MNS notification whose Message "
            "is the base64-encoded OSS event"
        )
    return _parse_text(message, (*formats, "mns"), depth + 1)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _keep_or_drop(item: ObjectRecord, found: list[ObjectRecord], dropped: list[Dropped]) -> None:
    operation = item.event_name.rpartition(":")[2]
    if operation in MULTIPART_STEPS:
        dropped.append(
            Dropped(
                event_name=item.event_name,
                reason="a step of a multipart upload, not a complete object",
                bucket=item.bucket,
                key=item.key,
            )
        )
    else:
        found.append(item)


# --------------------------------------------------------------------------- small readers


def _require(doc: Mapping[str, Any], path: Sequence[str], where: str) -> Any:
    current: Any = doc
    for i, part in enumerate(path):
        if not isinstance(current, dict) or part not in current:
            dotted = ".".join(path[: i + 1])
            raise NotificationError(f"{where}: '{dotted}' is missing")
        current = current[part]
    return current


def _require_str(doc: Mapping[str, Any], path: Sequence[str], where: str) -> str:
    value = _require(doc, path, where)
    if not isinstance(value, str) or not value:
        raise NotificationError(f"{where}: '{'.'.join(path)}' must be a non-empty string")
    return value


def _require_dict(doc: Mapping[str, Any], path: Sequence[str], where: str) -> dict[str, Any]:
    value = _require(doc, path, where)
    if not isinstance(value, dict):
        raise NotificationError(f"{where}: '{'.'.join(path)}' must be an object")
    return value


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _etag(value: Any) -> str | None:
    text = _opt_str(value)
    if text is None:
        return None
    return text.strip().strip('"') or None
