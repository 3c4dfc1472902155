"""The pure parts of the webhook source: payload shape, headers, bodies, auth, CloudEvents parsing."""

from __future__ import annotations

import re

import pytest

from gateway.secrets import SecretValue
from gateway.sources import cloudevents
from gateway.sources.cloudevents import CloudEventError
from gateway.sources.webhook import (
    MASKED_AUTHORIZATION,
    RequestRejected,
    canonical_header_name,
    check_bearer,
    check_content_length,
    collect_headers,
    parse_body,
    parse_json_body,
    query_to_arrays,
    webhook_payload,
)
from sensors.event import deterministic_event_id

# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("content-type", "Content-Type"),
        ("x-foo-bar", "X-Foo-Bar"),
        ("X-FOO-BAR", "X-Foo-Bar"),
        ("user-agent", "User-Agent"),
        ("ce-specversion", "Ce-Specversion"),
        ("x-github-event", "X-Github-Event"),
        ("etag", "Etag"),
        ("x_under_score", "X_under_score"),
        ("x--double", "X--Double"),
        ("1st-header", "1st-Header"),
        ("bad header", "bad header"),  # not an HTTP token: unchanged, as Go does
        ("", ""),
    ],
)
def test_canonical_header_name_is_gos(raw: str, canonical: str) -> None:
    assert canonical_header_name(raw) == canonical


def test_collect_headers_builds_arrays_in_order_and_drops_host_and_transfer_encoding() -> None:
    collected = collect_headers(
        [
            (b"host", b"example.com"),
            (b"x-tag", b"one"),
            (b"content-type", b"application/json; charset=utf-8"),
            (b"x-tag", b"two"),
            (b"transfer-encoding", b"chunked"),
            (b"content-length", b"12"),
        ]
    )
    assert collected.header == {
        "X-Tag": ["one", "two"],
        "Content-Type": ["application/json; charset=utf-8"],
        "Content-Length": ["12"],
    }
    assert collected.content_type == "application/json; charset=utf-8"
    assert collected.content_length == b"12"
    assert collected.authorization is None
    assert collected.cloudevent is False
    assert collected.trace is None


def test_authorization_is_masked_in_the_header_map_and_kept_raw_for_the_check() -> None:
    collected = collect_headers([(b"authorization", b"Bearer s3cr3t"), (b"authorization", b"Basic eA==")])
    assert collected.header == {"Authorization": [MASKED_AUTHORIZATION]}
    assert collected.authorization == b"Bearer s3cr3t"
    assert "s3cr3t" not in repr(collected.header)


def test_empty_authorization_stays_empty_as_in_argo() -> None:
    assert collect_headers([(b"authorization", b"")]).header == {"Authorization": [""]}


def test_collect_headers_notes_cloudevent_and_trace_headers() -> None:
    collected = collect_headers(
        [(b"ce-specversion", b"1.0"), (b"traceparent", b"00-abc-def-01"), (b"tracestate", b"k=v")]
    )
    assert collected.cloudevent is True
    assert collected.trace == {"traceparent": "00-abc-def-01", "tracestate": "k=v"}
    assert collected.header["Ce-Specversion"] == ["1.0"]
    assert collected.header["Traceparent"] == ["00-abc-def-01"]


def test_header_values_are_utf8_with_replacement() -> None:
    collected = collect_headers([(b"x-name", "Zoë".encode()), (b"x-bad", b"\xff")])
    assert collected.header == {"X-Name": ["Zoë"], "X-Bad": ["\ufffd"]}


# --------------------------------------------------------------------------- query, form, JSON


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {}),
        (b"", {}),
        ("x=1&x=2", {"x": ["1", "2"]}),
        ("aaa=b%20b&ccc=d%20d", {"aaa": ["b b"], "ccc": ["d d"]}),  # Argo's own test case
        ("a=b+c", {"a": ["b c"]}),
        ("flag&empty=", {"flag": [""], "empty": [""]}),
        (b"name=Zo%C3%AB", {"name": ["Zoë"]}),
    ],
)
def test_query_to_arrays_matches_go_url_values(query: str | bytes, expected: dict[str, list[str]]) -> None:
    assert query_to_arrays(query) == expected


def test_form_body_becomes_arrays_whatever_the_charset_parameter() -> None:
    assert parse_body("application/x-www-form-urlencoded", b"a=1&a=2&b=x") == {"a": ["1", "2"], "b": ["x"]}
    assert parse_body("Application/X-WWW-Form-Urlencoded; charset=utf-8", b"a=1") == {"a": ["1"]}
    assert parse_body("application/x-www-form-urlencoded", b"") == {}


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain", "application/vnd.x+json"])
def test_any_other_body_must_be_json(content_type: str | None) -> None:
    assert parse_body(content_type, b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert parse_body(content_type, b"[1]") == [1]
    assert parse_body(content_type, b'"just a string"') == "just a string"


@pytest.mark.parametrize("raw", [b"", b"  \n"])
def test_empty_body_is_rejected_with_400(raw: bytes) -> None:
    with pytest.raises(RequestRejected) as info:
        parse_json_body(raw)
    assert info.value.status == 400
    assert "empty" in info.value.reason


@pytest.mark.parametrize("raw", [b"{bad", b"not json", b"{\"a\": 1}}", b"NaN"])
def test_invalid_json_is_rejected_with_the_parse_error(raw: bytes) -> None:
    with pytest.raises(RequestRejected) as info:
        parse_body("application/json", raw)
    assert info.value.status == 400
    assert info.value.reason.startswith("request body is not valid JSON: ")
    assert "char" in info.value.reason  # orjson says where


def test_content_length_over_the_limit_is_413_and_at_the_limit_passes() -> None:
    check_content_length(None, 10)
    check_content_length(b"10", 10)
    with pytest.raises(RequestRejected) as info:
        check_content_length(b"11", 10)
    assert info.value.status == 413
    assert "10 bytes" in info.value.reason
    assert "maxPayloadSize" in info.value.reason


# --------------------------------------------------------------------------- payload and auth


def test_payload_has_argos_shape_and_omits_empty_metadata() -> None:
    header = {"Content-Type": ["application/json"]}
    assert webhook_payload(header, {"a": 1}, {}) == {"header": header, "body": {"a": 1}}
    metadata = {"team": "genomics"}
    payload = webhook_payload(header, {"a": 1}, metadata)
    assert payload == {"header": header, "body": {"a": 1}, "metadata": {"team": "genomics"}}
    assert payload["metadata"] is not metadata


def test_bearer_check_follows_argo_messages() -> None:
    secret = SecretValue("s3cr3t")
    check_bearer(b"Bearer s3cr3t", secret)
    for header in (None, b"", b"bearer s3cr3t", b"Basic czNjcjN0", b"Bearers3cr3t"):
        with pytest.raises(RequestRejected) as info:
            check_bearer(header, secret)
        assert (info.value.status, info.value.reason) == (401, "Invalid Authorization Header")
        assert info.value.headers == {"WWW-Authenticate": "Bearer"}
    for header in (b"Bearer wrong", b"Bearer ", b"Bearer s3cr3t ", b"Bearer  s3cr3t"):
        with pytest.raises(RequestRejected) as info:
            check_bearer(header, secret)
        assert (info.value.status, info.value.reason) == (401, "Invalid Auth token")


def test_rejection_response_is_plain_text_with_headers() -> None:
    response = RequestRejected(405, "nope", {"Allow": "POST"}).response()
    assert response.status_code == 405
    assert response.body == b"nope"
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"].startswith("text/plain")


# --------------------------------------------------------------------------- CloudEvents


def _ce(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "specversion": "1.0",
        "id": "A234-1234-1234",
        "source": "/mycontext",
        "type": "com.example.someevent",
        "datacontenttype": "application/json",
        "data": {"sample": "S1"},
    }
    doc.update(overrides)
    return doc


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, ""),
        ("", ""),
        ("application/cloudevents+json; charset=UTF-8", cloudevents.STRUCTURED_MEDIA_TYPE),
        (" Application/CloudEvents-Batch+JSON ", cloudevents.BATCH_MEDIA_TYPE),
    ],
)
def test_media_type(content_type: str | None, expected: str) -> None:
    assert cloudevents.media_type(content_type) == expected


def test_structured_event_keeps_the_whole_object_as_body() -> None:
    doc = _ce(subject="s", time="2024-01-01T00:00:00Z", traceparent="00-x-y-01", sampled=True, count=3,
              BadName="x", nested={"a": 1})
    incoming = cloudevents.parse_structured(doc)
    assert (incoming.id, incoming.source, incoming.type, incoming.specversion) == (
        "A234-1234-1234", "/mycontext", "com.example.someevent", "1.0",
    )
    assert incoming.body is doc
    # only valid extension names with scalar values; context attributes never
    assert incoming.upstream_extensions == {"traceparent": "00-x-y-01", "sampled": "true", "count": "3"}
    assert incoming.extensions() == {
        "traceparent": "00-x-y-01", "sampled": "true", "count": "3",
        "ceid": "A234-1234-1234", "cesource": "/mycontext", "cetype": "com.example.someevent",
    }


def test_our_upstream_attributes_win_over_upstream_extensions_of_the_same_name() -> None:
    incoming = cloudevents.parse_structured(_ce(cetype="spoofed", ceid="spoofed"))
    assert incoming.extensions()["cetype"] == "com.example.someevent"
    assert incoming.extensions()["ceid"] == "A234-1234-1234"


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type"])
def test_structured_event_missing_a_required_attribute_names_it(attribute: str) -> None:
    doc = _ce()
    del doc[attribute]
    with pytest.raises(CloudEventError, match=f"missing the required attribute '{attribute}'"):
        cloudevents.parse_structured(doc)


@pytest.mark.parametrize(("attribute", "value"), [("id", ""), ("id", 7), ("source", None), ("type", ["x"])])
def test_structured_event_attributes_must_be_non_empty_strings(attribute: str, value: object) -> None:
    with pytest.raises(CloudEventError, match=f"'{attribute}'"):
        cloudevents.parse_structured(_ce(**{attribute: value}))


def test_structured_event_rejects_unknown_specversion_and_non_objects() -> None:
    expected = re.escape("specversion '2.0' is not supported; use one of 1.0, 0.3")
    with pytest.raises(CloudEventError, match=expected):
        cloudevents.parse_structured(_ce(specversion="2.0"))
    assert cloudevents.parse_structured(_ce(specversion="0.3")).specversion == "0.3"
    with pytest.raises(CloudEventError, match="must be a JSON object, not list"):
        cloudevents.parse_structured([_ce()])


def test_batch_is_one_event_per_item_and_names_the_bad_item() -> None:
    first, second = _ce(id="1"), _ce(id="2")
    parsed = cloudevents.parse_batch([first, second])
    assert [p.id for p in parsed] == ["1", "2"]
    assert parsed[1].body is second
    assert cloudevents.parse_batch([]) == []
    bad = _ce(id="3")
    del bad["source"]
    expected = "CloudEvent 1 of the batch is missing the required attribute 'source'"
    with pytest.raises(CloudEventError, match=expected):
        cloudevents.parse_batch([first, bad])
    with pytest.raises(CloudEventError, match="must be a JSON array, not dict"):
        cloudevents.parse_batch(first)


def test_binary_attributes_need_ce_specversion_and_are_percent_decoded() -> None:
    assert cloudevents.binary_attributes([(b"ce-id", b"1"), (b"content-type", b"application/json")]) is None
    attributes = cloudevents.binary_attributes(
        [
            (b"ce-specversion", b"1.0"),
            (b"ce-id", b"1"),
            (b"ce-id", b"ignored-second-value"),
            (b"ce-source", b"/my%20source"),
            (b"ce-type", b"t"),
            (b"ce-myext", b"caf%C3%A9"),
            (b"content-type", b"application/json"),
        ]
    )
    assert attributes == {
        "specversion": "1.0", "id": "1", "source": "/my source", "type": "t", "myext": "café",
    }


def test_binary_event_body_is_the_request_body() -> None:
    attributes = {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "subject": "x", "myext": "v"}
    incoming = cloudevents.parse_binary(attributes, {"a": 1})
    assert incoming.body == {"a": 1}
    assert incoming.upstream_extensions == {"myext": "v"}
    assert incoming.extensions() == {"myext": "v", "ceid": "1", "cesource": "s", "cetype": "t"}


def test_binary_event_missing_headers_are_named() -> None:
    with pytest.raises(CloudEventError, match="missing the header ce-id, ce-type"):
        cloudevents.parse_binary({"specversion": "1.0", "source": "s"}, {})
    with pytest.raises(CloudEventError, match="specversion '9' is not supported"):
        cloudevents.parse_binary({"specversion": "9", "id": "1", "source": "s", "type": "t"}, {})


def test_event_id_is_deterministic_per_event_and_upstream_identity() -> None:
    incoming = cloudevents.parse_structured(_ce())
    first = incoming.event_id("es", "hook")
    assert first == cloudevents.parse_structured(_ce(data={"other": "data"})).event_id("es", "hook")
    assert first == deterministic_event_id("webhook", "es", "hook", "/mycontext", "A234-1234-1234")
    assert len(first) == 32
    assert first != incoming.event_id("es", "other-hook")
    assert first != incoming.event_id("other-es", "hook")
    assert first != cloudevents.parse_structured(_ce(source="/elsewhere")).event_id("es", "hook")
    assert first != cloudevents.parse_structured(_ce(id="other")).event_id("es", "hook")
