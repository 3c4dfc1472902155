"""Expression filters in dependencies (filters.exprs): Argo's vectors (filter_expr_test.go,
filter_test.go), its examples (filter-with-expressions.yaml), the AND/OR rules and load-time checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pydantic
import pytest
import yaml

from sensors.event import Event
from sensors.filters import FilterCompileError, FilterResult, compile_filters
from sensors.spec import EventDependency, EventDependencyFilter, ExprField, ExprFilter

T0 = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)


def dependency(filters: dict[str, Any], operator: str = "") -> EventDependency:
    doc: dict[str, Any] = {
        "name": "d",
        "eventSourceName": "webhook",
        "eventName": "example",
        "filters": filters,
    }
    if operator:
        doc["filtersLogicalOperator"] = operator
    return EventDependency.model_validate(doc)


def event(data: Any, **context: str) -> Event:
    fields: dict[str, Any] = {"id": "e1", "source": "webhook", "subject": "example", "type": "webhook"}
    fields.update(context)
    return Event(time=T0, data=data, **fields)


def expr(text: str, **fields: str) -> dict[str, Any]:
    """An exprs item; ``fields`` maps parameter names to paths."""
    return {"expr": text, "fields": [{"name": name, "path": path} for name, path in fields.items()]}


def exprs(*items: dict[str, Any], operator: str = "") -> dict[str, Any]:
    doc: dict[str, Any] = {"exprs": list(items)}
    if operator:
        doc["exprLogicalOperator"] = operator
    return doc


def judge(filters: dict[str, Any], data: Any, operator: str = "", **context: str) -> FilterResult:
    return compile_filters(dependency(filters, operator)).evaluate(event(data, **context))


# --------------------------------------------------------------------------- Argo's filter_expr_test.go

AB = {"a": {"b": "x", "d": "y"}}


@pytest.mark.parametrize(
    ("items", "operator", "data", "result"),
    [
        ([expr('a == "b"', a="a")], "", None, FilterResult(True)),  # empty data
        ([expr('a == "b"', a="a")], "", {"a": "b"}, FilterResult(True)),
        ([expr('a != "b"', a="a")], "", {"a": "c"}, FilterResult(True)),
        ([expr('b == "b"', b="a.b")], "", {"a": {"b": "c"}}, FilterResult(False)),
        ([expr("b == 2", b="a.b")], "", {"a": {"b": 2}}, FilterResult(True)),
        ([expr("b < 1", b="a.b")], "", {"a": {"b": 2}}, FilterResult(False)),
        ([expr('b =~ "start"', b="a.b")], "", {"a": {"b": "start long string"}}, FilterResult(True)),
        ([expr('b !~ "start"', b="a.b")], "", {"a": {"b": "long string"}}, FilterResult(True)),
        ([expr('b == "x"', b="a.b"), expr('d == "y"', d="a.d")], "", AB, FilterResult(True)),
        ([expr('b == "x"', b="a.b"), expr('d == "d"', d="a.d")], "and", AB, FilterResult(False)),
        ([expr('b == "x"', b="a.b"), expr('d == "d"', d="a.d")], "or", AB, FilterResult(True)),
        (
            [expr('b == "b"', b="a.b"), expr('c == "c"', c="a.c")],
            "or",
            AB,
            FilterResult(False, ("expr filter errors [path 'a.c' does not exist]",)),
        ),
        (
            [expr('b == "x"', b="a.b"), expr('c == "c"', c="a.c"), expr("e == true", e="a.d.e")],
            "or",
            {"a": {"b": "x", "d": {"e": True}}},
            FilterResult(True),
        ),
        ([expr('b == "b"', b="a.b"), expr('c == "c"', c="a.c")], "", AB, FilterResult(False)),
        (
            [expr('b == "x"', b="a.b"), expr('c == "c"', c="a.c")],
            "",
            AB,
            FilterResult(False, ("expr filter error (path 'a.c' does not exist)",)),
        ),
        (
            [expr('b == "x"', b="a.b"), expr('c == "c"', c="a.c"), expr("e == true", e="a.d.e")],
            "and",
            {"a": {"b": "x", "d": {"e": True}}},
            FilterResult(False, ("expr filter error (path 'a.c' does not exist)",)),
        ),
        (
            [expr('b != "b" && d == true', b="a.b", d="a.d")],
            "",
            {"a": {"b": "x", "c": {"d": True}}},
            FilterResult(False, ("expr filter error (path 'a.d' does not exist)",)),
        ),
        (
            [expr('b != "b" && d == true', b="a.b", d="a.c.d")],
            "or",
            {"a": {"b": "x", "c": {"d": True}}},
            FilterResult(True),
        ),
        (
            [expr('b == "b" || d == true', b="a.b", d="a.c.d")],
            "",
            {"a": {"b": "b", "c": {"d": False}}},
            FilterResult(True),
        ),
        (
            [expr('b == "b" || (d == true && e == 2)', b="a.b", d="a.c.d")],
            "",
            {"a": {"b": "b", "c": {"d": False}, "e": 2}},
            FilterResult(True),
        ),
    ],
)
def test_argo_expr_vectors(
    items: list[dict[str, Any]], operator: str, data: Any, result: FilterResult
) -> None:
    assert judge(exprs(*items, operator=operator), data) == result


def test_no_exprs_pass() -> None:
    assert judge({"exprs": []}, {"a": 1}) == FilterResult(True)


# ------------------------------------------------------------------- Argo's filter_test.go (mixed kinds)

MIXED_DATA = {"a": "x", "b": 10, "c": {"d": "hello world", "e": False}}


def mixed(data_operator: str, expr_operator: str, b_value: str, e_expected: str) -> dict[str, Any]:
    return {
        "dataLogicalOperator": data_operator,
        "data": [
            {"path": "a", "type": "string", "value": ["x"]},
            {"path": "b", "type": "number", "value": [b_value]},
        ],
        "exprLogicalOperator": expr_operator,
        "exprs": [expr('d == "hello world"', d="c.d"), expr(f"e == {e_expected}", e="c.e")],
    }


def test_argo_advanced_logic() -> None:
    # (A && B) && (C && D)
    assert judge(mixed("", "", "10", "false"), MIXED_DATA) == FilterResult(True)
    # (A && B) || (C && D) with D false
    assert judge(mixed("and", "and", "10", "true"), MIXED_DATA, operator="or") == FilterResult(True)
    # (A || B) && (C || D) with B and D false
    assert judge(mixed("or", "or", "11", "true"), MIXED_DATA, operator="and") == FilterResult(True)
    # (A && B) && (C && D) with D false
    assert judge(mixed("", "", "10", "true"), MIXED_DATA) == FilterResult(False)


def test_argo_or_with_only_a_subset_of_kinds() -> None:
    filters = {
        "exprs": [expr('A == "not-valid"', A="a.b")],
        "data": [
            {"path": "a.d.e.f", "type": "string", "value": ["not-valid"]},
            {"path": "a.h.i", "type": "string", "value": ["not-valid", "not-valid-2"]},
        ],
    }
    data = {"a": {"b": "c", "d": {"e": {"f": "g"}}, "h": {"i": "j"}}}
    assert judge(filters, data, operator="or") == FilterResult(False)
    filters["exprs"] = [expr('A == "c"', A="a.b")]
    assert judge(filters, data, operator="or") == FilterResult(True)


def test_exprs_run_before_data_and_an_and_error_stops_there() -> None:
    filters = {
        "exprs": [expr("x > 1", x="missing")],
        "data": [{"path": "also-missing", "type": "string", "value": ["v"]}],
    }
    assert judge(filters, {"k": 1}) == FilterResult(
        False, ("expr filter error (path 'missing' does not exist)",)
    )


def test_or_across_kinds_passes_with_the_expr_error() -> None:
    filters = {"exprs": [expr("x > 1", x="x")], "context": {"type": "webhook"}}
    result = judge(filters, {"x": "text"}, operator="or")
    assert result.passed is True
    assert result.errors == (
        "expr filter error ('x > 1': '>' compares two numbers or two strings, not \"text\" (a string) and "
        "1 (a number))",
    )
    assert judge(filters, {"x": "text"}, operator="") == FilterResult(False, result.errors)
    assert judge(filters, {"x": 2}, operator="or") == FilterResult(True)


def test_or_across_kinds_fails_with_errors_when_nothing_passes() -> None:
    filters = {"exprs": [expr("x > 1", x="nope")], "context": {"type": "other"}}
    assert judge(filters, {"x": 2}, operator="or") == FilterResult(
        False, ("expr filter error (path 'nope' does not exist)",)
    )


# --------------------------------------------------------------------------- items, fields and results


def test_an_item_without_fields_is_skipped() -> None:
    assert judge(exprs(expr("false")), {"a": 1}) == FilterResult(True)
    assert judge(exprs(expr("missing > 1")), {"a": 1}) == FilterResult(True)
    # with or, a skipped item never passes: nothing passed, nothing failed
    assert judge(exprs(expr("true"), operator="or"), {"a": 1}) == FilterResult(False)
    assert judge(exprs(expr("true"), expr("a == 1", a="a"), operator="or"), {"a": 1}) == FilterResult(True)


def test_a_result_that_is_not_a_boolean_is_an_error() -> None:
    assert judge(exprs(expr("a + 1", a="a")), {"a": 1}) == FilterResult(
        False, ("expr filter error ('a + 1' gave 2 (a number); a filter expression must give true or false)",)
    )
    assert judge(exprs(expr("a ? 1", a="a"), expr("a", a="a"), operator="or"), {"a": False}) == FilterResult(
        False,
        ("expr filter errors ['a ? 1' gave null; a filter expression must give true or false]",),
    )


def test_a_name_without_a_field_is_an_error() -> None:
    assert judge(exprs(expr("a == 1 && b == 2", a="a")), {"a": 1, "b": 2}) == FilterResult(
        False, ("expr filter error ('a == 1 && b == 2': No parameter 'b' found. (bound: a))",)
    )
    # short-circuited: the unbound name is never read
    assert judge(exprs(expr("a == 2 && b == 2", a="a")), {"a": 1}) == FilterResult(False)


def test_field_values_are_gjson_values() -> None:
    data = {
        "n": 3,
        "f": 2.5,
        "s": "3",
        "t": True,
        "z": None,
        "arr": [1, "two", None],
        "obj": {"k": [1, 2]},
        "items": [{"kind": "fastq", "size": 10}, {"kind": "bam", "size": 20}],
    }
    cases = [
        ("n == 3 && n + f == 5.5", {"n": "n", "f": "f"}),
        ("s == '3' && s != 3", {"s": "s"}),
        ("t && z == v ?? true", {"t": "t", "z": "z", "v": "z"}),
        ("z ?? true", {"z": "z"}),
        ("1 in arr && 'two' in arr && arr == (1, 'two', z)", {"arr": "arr", "z": "z"}),
        ("obj == o", {"obj": "obj", "o": "obj"}),
        ("count == 2", {"count": "items.#"}),
        ("kinds == ('fastq', 'bam')", {"kinds": "items.#.kind"}),
        ("big == 20", {"big": "items.#(size>10).size"}),
        ("[a-b] == 'x'", {"a-b": "k\\.dotted"}),
    ]
    data["k.dotted"] = "x"
    for text, fields in cases:
        assert judge(exprs(expr(text, **fields)), data) == FilterResult(True), text


def test_webhook_bodies_and_headers() -> None:
    data: dict[str, Any] = {"header": {"X-Event": ["push"]}, "body": {"ref": "refs/heads/main", "size": 1024}}
    item = expr(
        "event == 'push' && ref =~ '^refs/heads/(main|release-.*)$' && size < 2048",
        event="header.X-Event.0",
        ref="body.ref",
        size="body.size",
    )
    assert judge(exprs(item), data) == FilterResult(True)
    data["body"]["ref"] = "refs/heads/feature"
    assert judge(exprs(item), data) == FilterResult(False)


# --------------------------------------------------------------------------- Argo's example manifests

EXAMPLE_PAYLOAD = {"a": "b", "a-longer-name": 10, "nested": {"path": {"can-get": {"longer": False}}}}
EXAMPLE = """
name: test-dep
eventSourceName: webhook
eventName: example
filters:
  exprLogicalOperator: {operator}
  exprs:
    - expr: a == "b" || c != 10
      fields:
        - name: a
          path: a
        - name: c
          path: a-longer-name
    - expr: e == false
      fields:
        - name: e
          path: nested.path.can-get.longer
"""


@pytest.mark.parametrize("operator", ['""', "and", "or"])
def test_argo_example_sensors(operator: str) -> None:
    dep = EventDependency.model_validate(yaml.safe_load(EXAMPLE.format(operator=operator)))
    compiled = compile_filters(dep)
    assert compiled.evaluate(event(EXAMPLE_PAYLOAD)) == FilterResult(True)
    # docs/sensors/filters/expr.md: the event is invalid while d.e is true
    nope = {**EXAMPLE_PAYLOAD, "nested": {"path": {"can-get": {"longer": True}}}}
    assert compiled.evaluate(event(nope)).passed is (operator == "or")


# --------------------------------------------------------------------------- load-time checks


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            'e == false"',
            "exprs[1].expr: cannot parse expression 'e == false\"': the string that starts here is "
            "not closed at position 11; expected a closing quote",
        ),
        (
            "a ==",
            "exprs[1].expr: cannot parse expression 'a ==': the expression stops after operator '==' at "
            "the end; expected a value, a name or '('",
        ),
        ("a==-1", "unknown operator '==-' at position 2"),
        (
            "body.size > 1",
            "'body.size' reads the unexported field 'size' of parameter 'body' at position 1; "
            "expected a parameter name: write [body.size]",
        ),
        ("size(x)", "'size(' calls a function, and Argo Events defines none at position 5"),
        ("x =~ '['", "the regular expression '[' does not compile"),
        ("", "the expression is empty"),
    ],
)
def test_a_bad_expression_is_refused_when_the_manifest_loads(text: str, fragment: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        dependency(exprs(expr("a == 1", a="a"), expr(text, x="x")))
    assert fragment in str(caught.value)
    assert caught.value.errors()[0]["loc"] == ("filters", "exprs")


def test_every_valid_expression_loads() -> None:
    dep = dependency(exprs(expr("a == 1", a="a"), expr("(b, 2) == (1, 2) ? true : false", b="b")))
    assert dep.filters is not None
    assert [item.expr for item in dep.filters.exprs] == ["a == 1", "(b, 2) == (1, 2) ? true : false"]


def test_an_unvalidated_bad_expression_is_refused_at_compile_time() -> None:
    filters = EventDependencyFilter.model_construct(
        exprs=[ExprFilter.model_construct(expr="a ==", fields=[ExprField(name="a", path="a")])],
        data=[],
        data_logical_operator="",
        expr_logical_operator="",
        time=None,
        context=None,
        script=None,
    )
    dep = EventDependency.model_construct(
        name="d",
        event_source_name="webhook",
        event_name="example",
        filters=filters,
        filters_logical_operator="",
        transform=None,
    )
    with pytest.raises(FilterCompileError, match="exprs\\[0\\]: cannot parse expression 'a =='"):
        compile_filters(dep)
