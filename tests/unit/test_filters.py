"""Argo Events dependency filters: Argo's own test vectors (filter_data_test.go, filter_time_test.go,
filter_ctx_test.go), the documented AND/OR rules and the error texts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sensors.event import Event
from sensors.filters import (
    CompiledFilter,
    FilterCompileError,
    FilterResult,
    compile_filters,
    evaluate,
    go_regex,
)
from sensors.spec import DataFilter, EventDependency, EventDependencyFilter, TimeFilter

T0 = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)


def dependency(filters: dict[str, Any] | None = None, operator: str = "") -> EventDependency:
    doc: dict[str, Any] = {"name": "d", "eventSourceName": "webhook", "eventName": "example"}
    if filters is not None:
        doc["filters"] = filters
    if operator:
        doc["filtersLogicalOperator"] = operator
    return EventDependency.model_validate(doc)


def event(data: Any = None, time: datetime = T0, **context: str) -> Event:
    fields: dict[str, Any] = {"id": "e1", "source": "webhook", "subject": "example", "type": "webhook"}
    fields.update(context)
    return Event(time=time, data=data, **fields)


def data_filters(*filters: dict[str, Any], operator: str = "") -> dict[str, Any]:
    doc: dict[str, Any] = {"data": list(filters)}
    if operator:
        doc["dataLogicalOperator"] = operator
    return doc


def judge(filters: dict[str, Any] | None, data: Any, operator: str = "", **context: Any) -> FilterResult:
    return compile_filters(dependency(filters, operator)).evaluate(event(data, **context))


# --------------------------------------------------------------------------- no filters


def test_no_filters_pass_everything() -> None:
    assert judge(None, {"k": "v"}) == FilterResult(True)
    assert evaluate(dependency(), event({"x": 1})) == FilterResult(True, ())


def test_empty_filters_pass_with_and_and_fail_with_or() -> None:
    # Argo: with 'or' only configured kinds can contribute true; `filters: {}` configures none
    assert judge({}, {"k": "v"}) == FilterResult(True)
    assert judge({}, {"k": "v"}, operator="or") == FilterResult(False)


def test_event_without_data_passes_data_filters() -> None:
    only = data_filters({"path": "k", "type": "string", "value": ["v"]})
    assert judge(only, None) == FilterResult(True)


# --------------------------------------------------------------------------- data: Argo's vectors

NESTED = {"k": True, "k1": {"k": 3.14, "k2": "hello, world"}}


@pytest.mark.parametrize(
    ("filters", "data", "passed"),
    [
        # string
        ([{"path": "k", "type": "string", "value": ["v"]}], {"k": "v"}, True),
        ([{"path": "k", "type": "string", "value": ["v"], "comparator": "="}], {"k": "v"}, True),
        ([{"path": "k", "type": "string", "value": ["b"], "comparator": "!="}], {"k": "v"}, True),
        ([{"path": "k", "type": "string", "value": ["v"], "comparator": "!="}], {"k": "v"}, False),
        # number, from strings and from numbers
        ([{"path": "k", "type": "number", "value": ["1.0"]}], {"k": "1.0"}, True),
        ([{"path": "k", "type": "number", "value": ["1.0"], "comparator": ">"}], {"k": "2.0"}, True),
        ([{"path": "k", "type": "number", "value": ["1.0"], "comparator": "<="}], {"k": "2.0"}, False),
        ([{"path": "k", "type": "number", "value": ["1.0"], "comparator": "!="}], {"k": "1.0"}, False),
        ([{"path": "k", "type": "number", "value": ["5.0"], "comparator": "="}], {"k": "5.0"}, True),
        ([{"path": "k", "type": "number", "value": ["10.0"]}], {"k": "10.0"}, True),
        ([{"path": "k", "type": "number", "value": ["1.0"]}], {"k": 1.0}, True),
        ([{"path": "k", "type": "number", "value": ["1.0"], "comparator": ">"}], {"k": 2.0}, True),
        ([{"path": "k", "type": "number", "value": ["1.0"], "comparator": "<="}], {"k": 2.0}, False),
        ([{"path": "k", "type": "number", "value": ["1.0"], "comparator": "!="}], {"k": 1.0}, False),
        ([{"path": "k", "type": "number", "value": ["5.0"], "comparator": "="}], {"k": 5.0}, True),
        ([{"path": "k", "type": "number", "value": ["10.0"]}], {"k": 10}, True),
        # multiple filters, default (and)
        (
            [
                {"path": "k", "type": "string", "value": ["v"]},
                {"path": "k1.k", "type": "number", "value": ["2.14"]},
                {"path": "k1.k2", "type": "string", "value": ["hello,world", "hello there"]},
            ],
            NESTED,
            False,
        ),
        # multipath paths with regular expressions
        (
            [
                {
                    "path": '[k,k1.a.#(k2=="v2").k2]',
                    "type": "string",
                    "value": ["\\bv\\b.*\\bv2\\b"],
                    "comparator": "=",
                }
            ],
            {"k": "v", "k1": {"a": [{"k2": "v2"}]}},
            True,
        ),
        (
            [
                {
                    "path": '[k,k1.a.#(k2=="v2").k2,,k1.a.#(k2=="v3").k2]',
                    "type": "string",
                    "value": ["(\\bz\\b.*\\bv2\\b)|(\\bv\\b.*(\\bv2\\b.*\\bv3\\b))"],
                }
            ],
            {"k": "v", "k1": {"a": [{"k2": "v2"}, {"k2": "v3"}]}},
            True,
        ),
    ],
)
def test_argo_data_vectors(filters: list[dict[str, Any]], data: Any, passed: bool) -> None:
    assert judge(data_filters(*filters), data) == FilterResult(passed)


def test_argo_multiple_filters_with_and_and_or() -> None:
    all_pass = [
        {"path": "k", "type": "bool", "value": ["true"]},
        {"path": "k1.k", "type": "number", "value": ["3.14"]},
        {"path": "k1.k2", "type": "string", "value": ["hello,world", "hello, world", "hello there"]},
    ]
    assert judge(data_filters(*all_pass, operator="and"), NESTED) == FilterResult(True)
    one_passes = [
        {"path": "k", "type": "bool", "value": ["false"]},
        {"path": "k1.k", "type": "number", "value": ["3.14"]},
        {"path": "k1.k2", "type": "string", "value": ["hello,world", "hello there"]},
    ]
    assert judge(data_filters(*one_passes, operator="or"), NESTED) == FilterResult(True)
    assert judge(data_filters(*one_passes, operator="and"), NESTED) == FilterResult(False)


# --------------------------------------------------------------------------- data: each type


@pytest.mark.parametrize(
    ("value", "comparator", "field", "passed"),
    [
        ("fastq", "", "s1_R1.fastq.gz", True),  # unanchored
        ("\\.fastq\\.gz$", "", "s1_R1.fastq.gz", True),
        ("^s2_", "", "s1_R1.fastq.gz", False),
        ("(?i)FASTQ", "=", "s1_R1.fastq.gz", True),
        ("fastq", "!=", "s1_R1.fastq.gz", False),
        ("bam", "!=", "s1_R1.fastq.gz", True),
        ("fastq", ">", "s1_R1.fastq.gz", False),  # other comparators never pass, without error
        ("fastq", "<=", "s1_R1.fastq.gz", False),
        ("^42$", "", 42, True),  # the field as gjson .String()
        ("^1$", "", 1.0, True),
        ("^true$", "", True, True),
        ("^$", "", None, True),
        ('"a":1', "", {"a": 1}, True),
        ("\\d+", "", "٣", False),  # ASCII classes, as in Go
    ],
)
def test_string_filter(value: str, comparator: str, field: Any, passed: bool) -> None:
    spec = {"path": "f", "type": "string", "value": [value], "comparator": comparator}
    assert judge(data_filters(spec), {"f": field}) == FilterResult(passed)


@pytest.mark.parametrize(
    ("values", "comparator", "field", "passed"),
    [
        (["10"], ">=", 10, True),
        (["10"], ">", 10, False),
        (["10"], "<", 9.5, True),
        (["10"], "<=", 10, True),
        (["10"], "=", "10.0", True),
        (["10"], "", "1e1", True),
        (["0"], "=", "abc", True),  # a string that is no number is 0, as gjson .Float()
        (["0"], "=", None, True),
        (["1"], "=", True, True),
        (["1"], "=", {"a": 1}, False),
        (["1", "2", "3"], "=", 2, True),  # any value
        (["1", "2"], "=", 5, False),
        (["-Inf"], ">", -1e308, True),
        (["0x10p0"], "=", 16, True),  # Go accepts hex floats
    ],
)
def test_number_filter(values: list[str], comparator: str, field: Any, passed: bool) -> None:
    spec = {"path": "f", "type": "number", "value": values, "comparator": comparator}
    assert judge(data_filters(spec), {"f": field}) == FilterResult(passed)


@pytest.mark.parametrize(
    ("values", "field", "passed"),
    [
        (["true"], True, True),
        (["true"], False, False),
        (["false"], False, True),
        (["T"], "True", True),  # gjson .Bool() of a string: 1/t/true in any case
        (["1"], "tRuE", True),
        (["true"], "yes", False),
        (["false"], "yes", True),
        (["true"], 2, True),
        (["false"], 0, True),
        (["false"], None, True),
        (["true", "false"], {"a": 1}, True),
    ],
)
def test_bool_filter(values: list[str], field: Any, passed: bool) -> None:
    spec = {"path": "f", "type": "bool", "value": values, "comparator": ">"}  # comparator ignored
    assert judge(data_filters(spec), {"f": field}) == FilterResult(passed)


# --------------------------------------------------------------------------- data: errors


def test_missing_path_is_an_error() -> None:
    spec = {"path": "body.x", "type": "string", "value": ["v"]}
    assert judge(data_filters(spec), {"body": {}}) == FilterResult(
        False, ("data filter error (path 'body.x' does not exist)",)
    )


def test_and_stops_at_the_first_failing_filter() -> None:
    failing = {"path": "k", "type": "string", "value": ["nope"]}
    missing = {"path": "missing", "type": "string", "value": ["v"]}
    assert judge(data_filters(failing, missing), {"k": "v"}) == FilterResult(False)
    assert judge(data_filters(missing, failing), {"k": "v"}) == FilterResult(
        False, ("data filter error (path 'missing' does not exist)",)
    )


def test_or_passes_on_the_first_passing_filter_and_drops_errors() -> None:
    missing = {"path": "missing", "type": "string", "value": ["v"]}
    passing = {"path": "k", "type": "string", "value": ["v"]}
    assert judge(data_filters(missing, passing, operator="or"), {"k": "v"}) == FilterResult(True)


def test_or_collects_errors_when_nothing_passes() -> None:
    result = judge(
        data_filters(
            {"path": "a", "type": "string", "value": ["v"]},
            {"path": "k", "type": "string", "value": ["nope"]},
            {"path": "b", "type": "number", "value": ["1"]},
            operator="or",
        ),
        {"k": "v"},
    )
    assert result == FilterResult(
        False, ("data filter errors [path 'a' does not exist / path 'b' does not exist]",)
    )


def test_or_without_errors_and_without_pass() -> None:
    spec = {"path": "k", "type": "string", "value": ["nope"]}
    assert judge(data_filters(spec, operator="or"), {"k": "v"}) == FilterResult(False)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"path": "k", "type": "string", "value": ["("]},
            "value '(' of the string filter on path 'k' is not a valid regular expression",
        ),
        (
            {"path": "k", "type": "number", "value": ["ten"]},
            "value 'ten' of the number filter on path 'k' is not a number",
        ),
        ({"path": "k", "type": "number", "value": ["1e400"]}, "value '1e400' of the number filter"),
        (
            {"path": "k", "type": "bool", "value": ["yes"]},
            "value 'yes' of the bool filter on path 'k' is not a boolean",
        ),
    ],
)
def test_bad_filter_values_are_errors(spec: dict[str, Any], message: str) -> None:
    result = judge(data_filters(spec), {"k": "v"})
    assert result.passed is False
    assert len(result.errors) == 1
    assert result.errors[0].startswith("data filter error (" + message)


def test_bad_values_in_or_mode_are_collected() -> None:
    result = judge(
        data_filters(
            {"path": "k", "type": "string", "value": ["["]},
            {"path": "k", "type": "bool", "value": ["maybe"]},
            operator="or",
        ),
        {"k": "v"},
    )
    assert result.passed is False
    assert result.errors[0].startswith("data filter errors [value '[' of the string filter")
    assert "value 'maybe' of the bool filter" in result.errors[0]


@pytest.mark.parametrize(
    ("values", "field", "result"),
    [
        # Argo walks the values in order: a matching value before a bad one passes
        (["5", "x"], 5, FilterResult(True)),
        (
            ["x", "5"],
            5,
            FilterResult(
                False, ("data filter error (value 'x' of the number filter on path 'k' is not a number)",)
            ),
        ),
    ],
)
def test_values_are_judged_in_order(values: list[str], field: Any, result: FilterResult) -> None:
    assert judge(data_filters({"path": "k", "type": "number", "value": values}), {"k": field}) == result


def test_bool_values_in_order() -> None:
    ok = data_filters({"path": "k", "type": "bool", "value": ["true", "bad"]})
    assert judge(ok, {"k": True}) == FilterResult(True)
    assert judge(ok, {"k": False}).passed is False


def test_string_values_in_order() -> None:
    ok = data_filters({"path": "k", "type": "string", "value": ["v", "("]})
    assert judge(ok, {"k": "v"}) == FilterResult(True)
    assert judge(ok, {"k": "w"}).errors[0].startswith("data filter error (value '(' ")


def _raw_dependency(data: list[DataFilter]) -> EventDependency:
    """A dependency built without validation, as an older manifest or a bypassed check could give."""
    filters = EventDependencyFilter.model_construct(
        data=data,
        exprs=[],
        data_logical_operator="",
        expr_logical_operator="",
        time=None,
        context=None,
        script=None,
    )
    return EventDependency.model_construct(
        name="d",
        event_source_name="webhook",
        event_name="example",
        filters=filters,
        filters_logical_operator="",
        transform=None,
    )


def _raw_data_filter(**fields: Any) -> DataFilter:
    """A data filter built without validation (values the manifest checks would refuse)."""
    defaults: dict[str, Any] = {
        "path": "k",
        "type": "string",
        "value": ["v"],
        "comparator": "",
        "template": None,
    }
    return DataFilter.model_construct(**{**defaults, **fields})


def test_unsupported_type_and_empty_values_are_errors() -> None:
    unsupported = _raw_data_filter(type="object")
    empty = _raw_data_filter(value=[])
    assert evaluate(_raw_dependency([unsupported]), event({"k": "v"})) == FilterResult(
        False, ("data filter error (unsupported JSON type 'object' on path 'k'; use string, number or bool)",)
    )
    assert evaluate(_raw_dependency([empty]), event({"k": "v"})) == FilterResult(
        False, ("data filter error (no values specified for the filter on path 'k')",)
    )


def test_unknown_number_comparator_never_passes() -> None:
    odd = _raw_data_filter(type="number", value=["1"], comparator="~")
    assert evaluate(_raw_dependency([odd]), event({"k": 1})) == FilterResult(False)


@pytest.mark.parametrize(
    ("template", "value", "data", "expected"),
    [
        # the template sees the value as a string (.Input) and its output is compared
        ("{{ .Input | upper }}", ["^FASTQ$"], {"k": "fastq"}, FilterResult(True)),
        ('{{ .Input | trimSuffix ".gz" }}', [r"\.fastq$"], {"k": "a.fastq.gz"}, FilterResult(True)),
        ("{{ len .Input }}", ["^3$"], {"k": "abc"}, FilterResult(True)),
        ("{{ .Input | lower }}", ["^fastq$"], {"k": "BAM"}, FilterResult(False)),
    ],
)
def test_data_filter_template(template: str, value: list[str], data: Any, expected: FilterResult) -> None:
    templated = _raw_data_filter(template=template, value=value)
    assert evaluate(_raw_dependency([templated]), event(data)) == expected


def test_data_filter_template_number_and_errors() -> None:
    number = _raw_data_filter(
        template='{{ .Input | trimPrefix "n=" }}', type="number", comparator=">", value=["10"]
    )
    assert evaluate(_raw_dependency([number]), event({"k": "n=42"})) == FilterResult(True)
    empty = _raw_data_filter(template="{{ if false }}x{{ end }}")
    result = evaluate(_raw_dependency([empty]), event({"k": "v"}))
    assert not result.passed and "template evaluated to empty string or no value" in result.errors[0]
    failing = _raw_data_filter(template="{{ index .Input 5 }}")
    result = evaluate(_raw_dependency([failing]), event({"k": "v"}))
    assert not result.passed and "template error on path 'k'" in result.errors[0]
    with pytest.raises(FilterCompileError, match="data filter template on path 'k'"):
        compile_filters(_raw_dependency([_raw_data_filter(template="{{ nosuchfunction .Input }}")]))


def test_script_filter() -> None:
    base = _raw_dependency([])
    assert base.filters is not None
    passing = CompiledFilter(base.filters.model_copy(update={"script": "return event.k == 'v'"}))
    assert passing.evaluate(event({"k": "v"})) == FilterResult(True)
    assert passing.evaluate(event({"k": "w"})) == FilterResult(False)
    broken = CompiledFilter(base.filters.model_copy(update={"script": "return event.k.x.y"}))
    result = broken.evaluate(event({"k": "v"}))
    assert not result.passed and "script filter error" in result.errors[0]
    with pytest.raises(FilterCompileError):
        CompiledFilter(base.filters.model_copy(update={"script": "return ("}))


# --------------------------------------------------------------------------- context


@pytest.mark.parametrize(
    ("context_filter", "passed"),
    [
        ({"type": "webhook"}, True),
        ({"type": "kafka"}, False),
        ({"source": "webhook", "subject": "example"}, True),
        ({"source": "webhook", "subject": "other"}, False),
        ({"datacontenttype": "application/json"}, True),
        ({"datacontenttype": "text/plain"}, False),
        ({"type": "webhook", "id": "ignored", "time": "ignored", "specversion": "9"}, True),
        ({"type": "", "subject": "example"}, True),  # empty fields are not compared
    ],
)
def test_context_filter(context_filter: dict[str, str], passed: bool) -> None:
    assert judge({"context": context_filter}, {"k": 1}) == FilterResult(passed)


# --------------------------------------------------------------------------- time


def _day(hour: int, minute: int, second: int, day: int = 15) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


ARGO_TIMES = [
    _day(0, 0, 0),
    _day(4, 5, 6),
    _day(8, 9, 10),
    _day(12, 13, 14),
    _day(16, 17, 18),
    _day(20, 21, 22),
]


@pytest.mark.parametrize(
    ("start", "stop", "results"),
    [
        ("08:09:10", "16:17:18", [False, False, True, True, False, False]),
        ("16:17:18", "08:09:10", [True, True, False, False, True, True]),  # crosses midnight
    ],
)
def test_argo_time_vectors(start: str, stop: str, results: list[bool]) -> None:
    compiled = compile_filters(dependency({"time": {"start": start, "stop": stop}}))
    assert [compiled.evaluate(event({}, time=t)).passed for t in ARGO_TIMES] == results


def test_time_window_bounds() -> None:
    compiled = compile_filters(dependency({"time": {"start": "09:00:00", "stop": "17:00:00"}}))
    assert compiled.evaluate(event({}, time=_day(9, 0, 0))) == FilterResult(True)  # start inclusive
    assert compiled.evaluate(event({}, time=_day(17, 0, 0))) == FilterResult(False)  # stop exclusive
    assert compiled.evaluate(event({}, time=_day(16, 59, 59) + timedelta(microseconds=999999))).passed


@pytest.mark.parametrize(
    ("when", "passed"),
    [
        (datetime(2026, 1, 15, 16, 30, tzinfo=UTC), False),  # 08:30 PST
        (datetime(2026, 1, 15, 17, 30, tzinfo=UTC), True),  # 09:30 PST
        (datetime(2026, 1, 16, 0, 59, tzinfo=UTC), True),  # 16:59 PST
        (datetime(2026, 1, 16, 1, 0, tzinfo=UTC), False),  # 17:00 PST
        (datetime(2026, 7, 15, 16, 30, tzinfo=UTC), True),  # 09:30 PDT
        (datetime(2026, 7, 16, 0, 30, tzinfo=UTC), False),  # 17:30 PDT
    ],
)
def test_time_filter_in_a_timezone(when: datetime, passed: bool) -> None:
    filters = {"time": {"start": "09:00:00", "stop": "17:00:00", "timezone": "America/Los_Angeles"}}
    assert judge(filters, {}, time=when) == FilterResult(passed)


@pytest.mark.parametrize(
    ("when", "passed"),
    [
        (datetime(2026, 1, 15, 7, 30, tzinfo=UTC), True),  # 23:30 PST on the 14th
        (datetime(2026, 1, 15, 8, 30, tzinfo=UTC), True),  # 00:30 PST on the 15th
        (datetime(2026, 1, 15, 9, 30, tzinfo=UTC), False),  # 01:30 PST
        (datetime(2026, 1, 15, 6, 30, tzinfo=UTC), False),  # 22:30 PST
    ],
)
def test_time_window_across_midnight_in_a_timezone(when: datetime, passed: bool) -> None:
    filters = {"time": {"start": "23:00:00", "stop": "01:00:00", "timezone": "America/Los_Angeles"}}
    assert judge(filters, {}, time=when) == FilterResult(passed)


def test_time_of_an_event_in_another_offset_and_without_zone() -> None:
    filters = {"time": {"start": "09:00:00", "stop": "10:00:00"}}  # UTC
    berlin = datetime(2026, 1, 15, 10, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # 09:30 UTC
    assert judge(filters, {}, time=berlin) == FilterResult(True)
    assert judge(filters, {}, time=datetime(2026, 1, 15, 9, 30)) == FilterResult(True)  # naive: UTC
    assert judge(filters, {}, time=datetime(2026, 1, 15, 10, 30)) == FilterResult(False)


def test_unknown_timezone_is_an_error() -> None:
    filters = {"time": {"start": "09:00:00", "stop": "17:00:00", "timezone": "Mars/Olympus_Mons"}}
    result = judge(filters, {})
    assert result.passed is False
    assert result.errors[0].startswith("time filter error (invalid timezone 'Mars/Olympus_Mons'")
    assert judge({**filters, "time": {**filters["time"], "timezone": "../etc"}}, {}).passed is False


def test_bad_clock_values_are_errors() -> None:
    for start in ("9am", "25:00:00"):
        spec = TimeFilter.model_construct(start=start, stop="10:00:00", timezone=None)
        filters = EventDependencyFilter.model_construct(
            time=spec,
            context=None,
            data=[],
            exprs=[],
            data_logical_operator="",
            expr_logical_operator="",
            script=None,
        )
        result = CompiledFilter(filters).evaluate(event({}))
        message = f"time filter error ('{start}' is not a time of day as HH:MM:SS)"
        assert result == FilterResult(False, (message,))


# --------------------------------------------------------------------------- across kinds


PASSING_DATA = {"path": "k", "type": "string", "value": ["v"]}
FAILING_DATA = {"path": "k", "type": "string", "value": ["nope"]}
MISSING_DATA = {"path": "missing", "type": "string", "value": ["v"]}
OPEN_TIME = {"start": "00:00:00", "stop": "23:59:59"}
CLOSED_TIME = {"start": "01:00:00", "stop": "02:00:00"}
BAD_TIME = {"start": "01:00:00", "stop": "02:00:00", "timezone": "No/Where"}
MISSING_ERROR = "data filter error (path 'missing' does not exist)"


@pytest.mark.parametrize(
    ("filters", "operator", "passed", "errors"),
    [
        ({"data": [PASSING_DATA], "context": {"type": "webhook"}, "time": OPEN_TIME}, "", True, ()),
        ({"data": [PASSING_DATA], "context": {"type": "kafka"}}, "and", False, ()),
        ({"data": [FAILING_DATA], "context": {"type": "webhook"}}, "", False, ()),
        ({"data": [MISSING_DATA], "context": {"type": "webhook"}}, "", False, (MISSING_ERROR,)),
        # and: evaluation goes on after a plain false, so a later error is reported
        ({"data": [FAILING_DATA], "time": BAD_TIME}, "", False, ("time filter error",)),
        # and: the first error ends it
        ({"data": [MISSING_DATA], "time": BAD_TIME}, "", False, (MISSING_ERROR,)),
        # or: any configured kind passing passes, errors are still reported
        ({"data": [MISSING_DATA], "context": {"type": "webhook"}}, "or", True, (MISSING_ERROR,)),
        ({"data": [FAILING_DATA], "context": {"type": "webhook"}}, "or", True, ()),
        ({"data": [PASSING_DATA], "context": {"type": "kafka"}}, "or", True, ()),
        ({"data": [FAILING_DATA], "context": {"type": "kafka"}, "time": CLOSED_TIME}, "or", False, ()),
        ({"data": [MISSING_DATA], "time": BAD_TIME}, "or", False, (MISSING_ERROR, "time filter error")),
        ({"time": OPEN_TIME}, "or", True, ()),
        ({"time": BAD_TIME, "context": {"source": "webhook"}}, "or", True, ("time filter error",)),
    ],
)
def test_filters_logical_operator(
    filters: dict[str, Any], operator: str, passed: bool, errors: tuple[str, ...]
) -> None:
    result = judge(filters, {"k": "v"}, operator=operator, time=_day(12, 0, 0))
    assert result.passed is passed
    assert len(result.errors) == len(errors)
    for got, want in zip(result.errors, errors, strict=True):
        assert got.startswith(want)


def test_compiled_filter_is_reusable_and_evaluate_compiles_each_time() -> None:
    dep = dependency(data_filters({"path": "n", "type": "number", "value": ["10"], "comparator": ">"}))
    compiled = compile_filters(dep)
    results = [compiled.evaluate(event({"n": n})).passed for n in (5, 15, 10, 11)]
    assert results == [False, True, False, True]
    assert evaluate(dep, event({"n": 11})) == FilterResult(True)


# --------------------------------------------------------------------------- Go regular expressions


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("abc\\z", "abc", True),
        ("abc\\z", "abc\n", False),
        ("abc$", "abc", True),
        ("abc$", "abc\n", False),  # Go's '$' is the end of the text
        ("(?m)^b$", "a\nb\nc", True),  # multi-line keeps '$' per line
        ("\\\\z", "x\\z", True),  # an escaped backslash then a plain 'z'
        ("\\Qa.b*\\E+", "a.b*b*", True),
        ("^\\Qa.b\\E$", "axb", False),
        ("\\Qa.b", "a.b", True),  # \Q to the end
        ("^[[:alpha:]]+$", "Sample", True),
        ("^[[:alpha:]]+$", "Sample1", False),
        ("^[^[:digit:]]+$", "abc", True),
        ("^[[:alnum:]_.-]+$", "s1_R1.fastq-gz", True),
        ("[[:punct:]]", "a-b", True),
        ("[[:space:]]", "a b", True),
        ("^[[:xdigit:]]+$", "deadBEEF", True),
        ("^[[:upper:][:lower:]]+$", "AbC", True),
        ("[[a]", "[", True),  # a literal '[' in a class
        ("^[a&&b]$", "&", True),  # no set operations
        ("^[~|]$", "|", True),
        ("^[]a]+$", "]a", True),  # ']' first is literal
        ("^[\\d_]+$", "1_2", True),  # escapes inside a class
        ("^[\\]x]+$", "]x", True),
        ("^[^]a]$", "b", True),
        ("(?<name>x)y", "xy", True),
        ("(?P<name>x)y", "xy", True),
        ("(?<=a)b", "ab", True),  # Python accepts look-behind; Go would not
        ("\\d", "٣", False),
        ("\\w+", "é", False),
    ],
)
def test_go_regex(pattern: str, text: str, matches: bool) -> None:
    assert (go_regex(pattern).search(text) is not None) is matches


@pytest.mark.parametrize("pattern", ["[[:^alpha:]]", "[[:word", "[[:bogus:]]", "[abc", "abc\\", "(x"])
def test_go_regex_errors(pattern: str) -> None:
    with pytest.raises(re.error):
        go_regex(pattern)
