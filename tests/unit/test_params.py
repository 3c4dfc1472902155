"""Argo Events trigger parameters: Argo's vectors (params_test.go), the documented tutorials and the
resolution rules of docs/parameterization (default values, absent dependencies, raw data)."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from sensors.event import Event
from sensors.params import (
    ParameterError,
    ResolvedValue,
    apply_parameters,
    construct_payload,
    event_json,
    resolve_value,
)
from sensors.spec import TriggerParameter, TriggerParameterSource

T0 = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)

DATA: dict[str, Any] = {
    "name": {"first": "fake", "last": "user"},
    "reviews": 8,
    "rating": 4.5,
    "whole": 2.0,
    "isActive": True,
    "isVerified": False,
    "countries": ["ca", "us", "mx"],
    "nothing": None,
    "age": 100,
}


def make_event(data: Any = DATA, **context: Any) -> Event:
    fields: dict[str, Any] = {
        "id": "1",
        "source": "webhook-gateway",
        "subject": "example-1",
        "type": "webhook",
        "time": T0,
    }
    fields.update(context)
    return Event(data=data, **fields)


EVENTS: dict[str, Event] = {"fake-dependency": make_event()}


def src(**fields: Any) -> TriggerParameterSource:
    return TriggerParameterSource.model_validate({"dependencyName": "fake-dependency", **fields})


def param(dest: str, operation: str = "", **source: Any) -> TriggerParameter:
    return TriggerParameter.model_validate(
        {"src": {"dependencyName": "fake-dependency", **source}, "dest": dest, "operation": operation}
    )


# --------------------------------------------------------------------------- resolve_value


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # Argo TestResolveParamValue
        ({"dataKey": "name.first"}, ResolvedValue("fake", True)),
        ({"contextKey": "subject"}, ResolvedValue("example-1", True)),
        ({"value": "hello"}, ResolvedValue("hello", True)),
        ({"contextKey": "subject", "dataKey": "name.first"}, ResolvedValue("fake", True)),
        ({"dataKey": "name.first", "useRawData": True}, ResolvedValue("fake", True)),
        ({"dataKey": "name", "useRawData": True}, ResolvedValue('{"first":"fake","last":"user"}', False)),
        ({"dataKey": "countries", "useRawData": True}, ResolvedValue('["ca","us","mx"]', False)),
        # scalars as gjson prints them; only strings are strings
        ({"dataKey": "reviews"}, ResolvedValue("8", False)),
        ({"dataKey": "rating"}, ResolvedValue("4.5", False)),
        ({"dataKey": "whole"}, ResolvedValue("2", False)),
        ({"dataKey": "isActive"}, ResolvedValue("true", False)),
        ({"dataKey": "isVerified"}, ResolvedValue("false", False)),
        ({"dataKey": "nothing"}, ResolvedValue("null", False)),
        # gjson paths
        ({"dataKey": "countries.1"}, ResolvedValue("us", True)),
        ({"dataKey": "countries.#"}, ResolvedValue("3", False)),
        ({"dataKey": 'countries.#(%"*a")#'}, ResolvedValue('["ca"]', False)),
        ({"dataKey": "name.@keys"}, ResolvedValue('["first","last"]', False)),
        # missing key: the default value
        ({"dataKey": "name.middle", "value": "none"}, ResolvedValue("none", True)),
        ({"contextKey": "nope", "value": "none"}, ResolvedValue("none", True)),
        # context fields
        ({"contextKey": "id"}, ResolvedValue("1", True)),
        ({"contextKey": "source"}, ResolvedValue("webhook-gateway", True)),
        ({"contextKey": "type"}, ResolvedValue("webhook", True)),
        ({"contextKey": "specversion"}, ResolvedValue("1.0", True)),
        ({"contextKey": "datacontenttype"}, ResolvedValue("application/json", True)),
        ({"contextKey": "time"}, ResolvedValue("2026-01-15T12:00:00Z", True)),
        # an empty default is a default
        ({"dataKey": "name.middle", "value": ""}, ResolvedValue("", True)),
    ],
)
def test_resolve_value(source: dict[str, Any], expected: ResolvedValue) -> None:
    assert resolve_value(src(**source), EVENTS) == expected


def test_whole_event_when_no_key_and_no_value() -> None:
    resolved = resolve_value(src(), EVENTS)
    assert resolved is not None and resolved.is_string
    doc = orjson.loads(resolved.text)
    assert list(doc) == ["context", "data"]
    assert doc["context"] == EVENTS["fake-dependency"].context()
    assert list(doc["context"]) == [
        "id",
        "source",
        "specversion",
        "type",
        "datacontenttype",
        "subject",
        "time",
    ]
    assert orjson.loads(base64.b64decode(doc["data"])) == DATA
    assert resolved.text == event_json(EVENTS["fake-dependency"])


def test_whole_event_without_data() -> None:
    doc = orjson.loads(event_json(make_event(data=None)))
    assert doc["data"] is None


def test_whole_event_data_is_the_base64_of_the_json_bytes() -> None:
    event = make_event(data={"message": "ok"})
    assert orjson.loads(event_json(event))["data"] == base64.b64encode(b'{"message":"ok"}').decode()


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ({"dataKey": "name.middle"}, "the key 'name.middle' does not exist in the event data"),
        ({"contextKey": "nope"}, "the key 'nope' does not exist in the event context"),
    ],
)
def test_missing_key_without_default_is_an_error(source: dict[str, Any], where: str) -> None:
    with pytest.raises(ParameterError, match="unable to resolve 'fake-dependency' parameter value") as info:
        resolve_value(src(**source), EVENTS)
    assert where in str(info.value)


def test_data_key_on_an_event_without_data() -> None:
    events = {"fake-dependency": make_event(data=None)}
    assert resolve_value(src(dataKey="a", value="d"), events) == ResolvedValue("d")
    with pytest.raises(ParameterError):
        resolve_value(src(dataKey="a"), events)


def test_absent_dependency_skips_or_uses_the_default() -> None:
    # the other branch of `a || b` fired: the parameter is skipped, without error
    assert resolve_value(src(dataKey="name.first"), {}) is None
    assert resolve_value(src(), {}) is None
    assert resolve_value(src(dataKey="name.first", value="fallback"), {}) == ResolvedValue("fallback")
    other = {"other-dependency": make_event()}
    assert resolve_value(src(contextKey="subject"), other) is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"data_template": "{{ .Input.name.first | upper }}"}, "FAKE"),
        ({"data_template": "{{ .Input.name.missing }}", "data_key": "name.first"}, "fake"),  # <no value>: key
        ({"data_template": "{{ index .Input.countries 9 }}", "value": "dflt"}, "dflt"),  # error: value
        ({"context_template": "{{ .Input.subject }}-{{ .Input.type }}"}, None),
    ],
)
def test_templates_render_with_fallbacks(fields: dict[str, Any], expected: str | None) -> None:
    source = _source_with_template(**fields)
    resolved = resolve_value(source, EVENTS)
    assert resolved is not None
    if expected is None:
        event = EVENTS["fake-dependency"]
        assert resolved.text == f"{event.subject}-{event.type}"
    else:
        assert resolved.text == expected


def _source_with_template(**fields: Any) -> TriggerParameterSource:
    doc: dict[str, Any] = {
        "dependency_name": "fake-dependency",
        "context_key": None,
        "context_template": None,
        "data_key": None,
        "data_template": None,
        "value": None,
        "use_raw_data": False,
    }
    doc.update(fields)
    return TriggerParameterSource.model_construct(**doc)


def test_template_slot_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slot's contract for the template engine to come: a rendered template wins; a template
    that fails (None) falls back to the key, then to the default value (Argo's order)."""
    seen: list[Any] = []

    def render(template: str, document: Any) -> str | None:
        seen.append(document)
        return None if template == "fails" else template.upper()

    monkeypatch.setattr("sensors.params._render_template", render)
    ok = _source_with_template(data_template="t", data_key="name.first")
    assert resolve_value(ok, EVENTS) == ResolvedValue("T")
    assert seen == [DATA]
    falls_back = _source_with_template(data_template="fails", data_key="name.first")
    assert resolve_value(falls_back, EVENTS) == ResolvedValue("fake")
    to_value = _source_with_template(context_template="fails", value="v")
    assert resolve_value(to_value, EVENTS) == ResolvedValue("v")
    assert seen[-1] == EVENTS["fake-dependency"].context()
    with pytest.raises(ParameterError, match="unable to resolve"):
        resolve_value(_source_with_template(data_template="fails"), EVENTS)


def test_webhook_get_query_arrays() -> None:
    # A GET webhook puts the query in `body` with array values: ?aaa=b%20b&ccc=d%20d
    event = make_event(
        data={"header": {"Accept": ["*/*"]}, "body": {"aaa": ["b b"], "ccc": ["d d"]}, "metadata": {}}
    )
    events = {"fake-dependency": event}
    assert resolve_value(src(dataKey="body.aaa.0"), events) == ResolvedValue("b b")
    assert resolve_value(src(dataKey="body.aaa"), events) == ResolvedValue('["b b"]', False)
    assert resolve_value(src(dataKey="header.Accept.0"), events) == ResolvedValue("*/*")


def test_json_value() -> None:
    assert ResolvedValue("5", False).json_value(use_raw_data=True) == 5
    assert ResolvedValue("5", False).json_value(use_raw_data=False) == "5"
    assert ResolvedValue("5", True).json_value(use_raw_data=True) == "5"
    assert ResolvedValue('{"a":[1]}', False).json_value(use_raw_data=True) == {"a": [1]}
    assert ResolvedValue("null", False).json_value(use_raw_data=True) is None
    assert ResolvedValue("+Inf", False).json_value(use_raw_data=True) == "+Inf"


# --------------------------------------------------------------------------- apply_parameters

APPLY_EVENTS = {
    "fake-dependency": make_event(
        data={"name": {"first": "fake", "last": "user"}, "age": 100, "countries": ["ca", "us", "mx"]}
    )
}


@pytest.mark.parametrize(
    ("doc", "parameters", "expected"),
    [
        # Argo TestApplyParams
        ({"name": "faker"}, [param("name", dataKey="name.first")], {"name": "fake"}),
        ({"name": "faker"}, [param("name", "prepend", dataKey="name.first")], {"name": "fakefaker"}),
        ({"name": "faker"}, [param("name", "append", dataKey="name.first")], {"name": "fakerfake"}),
        ({"name": "faker"}, [param("name", "overwrite", dataKey="name.first")], {"name": "fake"}),
        (
            {"name": "faker"},
            [param("name", "overwrite", dataKey="name")],
            {"name": '{"first":"fake","last":"user"}'},
        ),
        (
            {"name": "faker"},
            [param("name", "overwrite", dataKey="name", useRawData=True)],
            {"name": {"first": "fake", "last": "user"}},
        ),
        (
            {"age": "this-gets-over-written", "ageWithYears": "Years: "},
            [
                param("age", "overwrite", dataKey="age", useRawData=True),
                param("ageWithYears", "append", dataKey="age", useRawData=True),
                param("countries", "append", dataKey="countries", useRawData=True),
            ],
            {"age": 100, "ageWithYears": "Years: 100", "countries": ["ca", "us", "mx"]},
        ),
        # numbers and lists without useRawData are strings
        ({}, [param("age", dataKey="age")], {"age": "100"}),
        ({}, [param("c", dataKey="countries")], {"c": '["ca","us","mx"]'}),
        # Argo TestApplyResourceParameters
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fake", "namespace": "f"}},
            [param("metadata.name", dataKey="name.first")],
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fake", "namespace": "f"}},
        ),
        # append/prepend to a missing dest writes the value as it is
        ({}, [param("a.b", "append", dataKey="name.first")], {"a": {"b": "fake"}}),
        ({}, [param("a", "prepend", dataKey="age", useRawData=True)], {"a": 100}),
        # append to a non-string current value joins its gjson text
        ({"n": 5}, [param("n", "append", value="x")], {"n": "5x"}),
        ({"o": {"k": 1}}, [param("o", "prepend", value="x")], {"o": 'x{"k":1}'}),
        ({"z": None}, [param("z", "append", value="x")], {"z": "x"}),
        # the default value of an absent key
        ({}, [param("a", dataKey="missing", value="dflt")], {"a": "dflt"}),
        # array destinations, sjson style
        (
            {"args": [{"name": "a", "value": "1"}]},
            [param("args.1.value", dataKey="name.last")],
            {"args": [{"name": "a", "value": "1"}, {"value": "user"}]},
        ),
        ({"args": ["x"]}, [param("args.-1", dataKey="name.last")], {"args": ["x", "user"]}),
        (
            {"labels": {}},
            [param("labels.app\\.kubernetes\\.io/name", dataKey="name.first")],
            {"labels": {"app.kubernetes.io/name": "fake"}},
        ),
        # parameters apply in order, each on the result of the previous
        ({"v": "m"}, [param("v", "append", value="1"), param("v", "prepend", value="0")], {"v": "0m1"}),
    ],
)
def test_apply_parameters(doc: Any, parameters: list[TriggerParameter], expected: Any) -> None:
    before = copy.deepcopy(doc)
    assert apply_parameters(doc, parameters, APPLY_EVENTS) == expected
    assert doc == before


def test_tutorial_prepend_and_workflow_argument() -> None:
    # docs tutorial 02-parameterization: the event's message is prepended to the default value
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "webhook-"},
        "spec": {"arguments": {"parameters": [{"name": "message", "value": "hello world"}]}},
    }
    events = {"test-dep": make_event(data={"header": {}, "body": {"message": "hey!!", "name": "foobar"}})}
    parameters = [
        TriggerParameter.model_validate(
            {
                "src": {"dependencyName": "test-dep", "dataKey": "body.message"},
                "dest": "spec.arguments.parameters.0.value",
                "operation": "prepend",
            }
        ),
        TriggerParameter.model_validate(
            {
                "src": {"dependencyName": "test-dep", "dataKey": "body.name"},
                "dest": "metadata.generateName",
                "operation": "append",
            }
        ),
    ]
    result = apply_parameters(workflow, parameters, events)
    assert result["spec"]["arguments"]["parameters"][0] == {"name": "message", "value": "hey!!hello world"}
    assert result["metadata"]["generateName"] == "webhook-foobar"


def test_trigger_level_parameters_change_the_http_url() -> None:
    template = {"name": "t", "http": {"url": "http://127.0.0.1/old", "method": "POST"}}
    events = {"dep": make_event(data={"body": {"callback": "http://127.0.0.1/new"}})}
    parameter = TriggerParameter.model_validate(
        {"src": {"dependencyName": "dep", "dataKey": "body.callback"}, "dest": "http.url"}
    )
    assert apply_parameters(template, [parameter], events)["http"]["url"] == "http://127.0.0.1/new"


def test_absent_dependency_leaves_the_document_unchanged() -> None:
    doc = {"a": "keep"}
    assert apply_parameters(doc, [param("a", dataKey="name.first")], {}) == {"a": "keep"}
    assert apply_parameters(doc, [param("a", dataKey="name.first", value="v")], {}) == {"a": "v"}


def test_result_shares_nothing_with_the_input() -> None:
    doc: dict[str, Any] = {"keep": {"deep": [1]}, "a": "x"}
    result = apply_parameters(doc, [param("a", value="y")], APPLY_EVENTS)
    result["keep"]["deep"].append(2)
    assert doc == {"keep": {"deep": [1]}, "a": "x"}
    assert apply_parameters(doc, [], APPLY_EVENTS) is not doc


def test_apply_parameters_errors() -> None:
    with pytest.raises(ParameterError, match="empty 'dest'"):
        apply_parameters({}, [param("", value="x")], APPLY_EVENTS)
    with pytest.raises(ParameterError, match=r"cannot write parameter dest 'items\.x'"):
        apply_parameters({"items": []}, [param("items.x", value="v")], APPLY_EVENTS)
    with pytest.raises(ParameterError, match="unable to resolve"):
        apply_parameters({}, [param("a", dataKey="missing")], APPLY_EVENTS)
    fields: dict[str, Any] = {"src": src(value="x"), "dest": "a", "operation": "merge"}
    odd = TriggerParameter.model_construct(**fields)
    with pytest.raises(ParameterError, match="unsupported trigger parameter operation 'merge'"):
        apply_parameters({}, [odd], APPLY_EVENTS)


# --------------------------------------------------------------------------- construct_payload

PAYLOAD_EVENTS = {
    "fake-dependency": make_event(data={"firstName": "fake"}),
    "another-fake-dependency": make_event(data={"lastName": "foo"}, id="2"),
    "use-event-data-type": make_event(
        data={"age": 100, "isActive": False, "countries": ["ca", "us", "mx"]}, id="3"
    ),
}


def payload_param(dependency: str, dest: str, **source: Any) -> TriggerParameter:
    return TriggerParameter.model_validate({"src": {"dependencyName": dependency, **source}, "dest": dest})


def test_argo_construct_payload() -> None:
    parameters = [
        payload_param("fake-dependency", "firstName", dataKey="firstName", value="faker"),
        payload_param("another-fake-dependency", "lastName", dataKey="lastName", value="bar"),
        payload_param("use-event-data-type", "age", dataKey="age", useRawData=True),
        payload_param("use-event-data-type", "isActive", dataKey="isActive", useRawData=True),
        payload_param("use-event-data-type", "typelessAge", dataKey="age"),
        payload_param("use-event-data-type", "typelessIsActive", dataKey="isActive"),
    ]
    body = orjson.loads(construct_payload(parameters, PAYLOAD_EVENTS))
    assert body == {
        "firstName": "fake",
        "lastName": "foo",
        "age": 100,
        "isActive": False,
        "typelessAge": "100",
        "typelessIsActive": "false",
    }
    unknown = [
        payload_param("fake-dependency", "firstName", dataKey="unknown", value="faker"),
        payload_param("another-fake-dependency", "lastName", dataKey="unknown", value="bar"),
    ]
    body = orjson.loads(construct_payload(unknown, PAYLOAD_EVENTS))
    assert body == {"firstName": "faker", "lastName": "bar"}


def test_payload_body_from_the_event_body() -> None:
    events = {"dep": make_event(data={"header": {}, "body": {"name": "x", "n": [1, 2]}})}
    parameters = [
        payload_param("dep", "body.name", dataKey="body.name"),
        payload_param("dep", "count", dataKey="body.n.#", useRawData=True),
    ]
    assert orjson.loads(construct_payload(parameters, events)) == {"body": {"name": "x"}, "count": 2}


@pytest.mark.parametrize(
    ("source", "body"),
    [
        ({"dataKey": "body", "useRawData": True}, b'{"name":"x","n":[1,2]}'),
        ({"dataKey": "body"}, b'{"name":"x","n":[1,2]}'),  # the text as it is, raw data or not
        ({"dataKey": "body.name"}, b"x"),  # a string is the plain text body
        ({"value": "plain"}, b"plain"),
    ],
)
def test_payload_with_empty_dest_is_the_whole_body(source: dict[str, Any], body: bytes) -> None:
    events = {"dep": make_event(data={"header": {}, "body": {"name": "x", "n": [1, 2]}})}
    parameters = [
        payload_param("dep", "before", value="ignored"),
        payload_param("dep", "", **source),
        payload_param("dep", "after", value="never"),
    ]
    assert construct_payload(parameters, events) == body


def test_payload_skips_absent_dependencies() -> None:
    events = {"dep": make_event(data={"a": 1})}
    parameters = [
        payload_param("absent", "", dataKey="a"),  # skipped: no whole-body value
        payload_param("absent", "x", dataKey="a"),  # skipped (Argo dereferences nil here and crashes)
        payload_param("dep", "a", dataKey="a", useRawData=True),
    ]
    assert orjson.loads(construct_payload(parameters, events)) == {"a": 1}
    assert construct_payload(parameters[:2], events) == b""
    assert construct_payload([], events) == b""


def test_payload_starts_from_the_empty_document() -> None:
    # sjson on an empty document: a first component of digits makes an array
    events = {"dep": make_event(data={"a": 1})}
    assert construct_payload([payload_param("dep", "0", value="x")], events) == b'["x"]'
    assert construct_payload([payload_param("dep", "a.b", value="x")], events) == b'{"a":{"b":"x"}}'


def test_payload_ignores_the_operation_as_argo_does() -> None:
    events = {"dep": make_event(data={"a": 1})}
    parameters = [
        payload_param("dep", "v", value="first"),
        TriggerParameter.model_validate(
            {"src": {"dependencyName": "dep", "value": "second"}, "dest": "v", "operation": "append"}
        ),
    ]
    assert orjson.loads(construct_payload(parameters, events)) == {"v": "second"}


def test_payload_errors() -> None:
    events = {"dep": make_event(data={"a": 1})}
    with pytest.raises(ParameterError, match="unable to resolve 'dep'"):
        construct_payload([payload_param("dep", "x", dataKey="missing")], events)
    with pytest.raises(ParameterError, match=r"cannot write parameter dest 'a\.x'"):
        construct_payload(
            [payload_param("dep", "a.0", value="v"), payload_param("dep", "a.x", value="w")], events
        )
