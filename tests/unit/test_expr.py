"""govaluate expressions (sensors/expr.py): govaluate's own test vectors (evaluation_test.go), its
manual (MANUAL.md), every operator and its type rules, precedence, parse errors and printing back."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sensors.expr import (
    Accessor,
    Binary,
    Boolean,
    ExprError,
    Expression,
    Number,
    String,
    Time,
    Unary,
    Variable,
    parse,
)


def value(text: str, **params: Any) -> Any:
    return parse(text).evaluate(params)


def error(text: str, **params: Any) -> str:
    with pytest.raises(ExprError) as caught:
        parse(text).evaluate(params)
    return str(caught.value)


def parse_error(text: str) -> ExprError:
    with pytest.raises(ExprError) as caught:
        parse(text)
    return caught.value


# --------------------------------------------------------------------------- govaluate's vectors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("51 + 49", 100.0),
        ("100 - 51", 49.0),
        ("100 & 50", 32.0),
        ("100 | 50", 118.0),
        ("100 ^ 50", 86.0),
        ("2 << 1", 4.0),
        ("2 >> 1", 1.0),
        ("~10", -11.0),
        ("5 * 20", 100.0),
        ("100 / 20", 5.0),
        ("100 % 2", 0.0),
        ("101 % 2", 1.0),
        ("10 ** 2", 100.0),
        ("20 + 30 + 50", 100.0),
        ("20 & 30 & 50", 16.0),
        ("20 * 5 - 49", 51.0),
        ("100 - (5 * 10)", 50.0),
        ("50 + (5 * (15 - 5))", 100.0),
        ("100 ^ (23 * (2 | 5))", 197.0),
        ("(1 == 1) || (true == true)", True),
        ("(1 == 1) && (true == true)", True),
        ("2 > 1", True),
        ("5 < 10 && 1 < 5", True),
        ("1 > 10 && 11 > 10", False),
        ("true == true && false == true", False),
        ("10 < 50 && (1 != 2 && 1 > 0)", True),
        ("'foo' == 'foo'", True),
        ("'foo' != 'bar'", True),
        ("'foobar' =~ 'oba'", True),
        ("'foo' !~ 'bar'", True),
        ("5 + 10 * 2", 25.0),
        ("10 * 10 * 10", 1000.0),
        ("10 * 10 * 10 + 1 * 10 * 10", 1100.0),
        ("1 + 101 % 2 * 5", 6.0),
        ("1 + 5 ** 3 % 2 * 5", 6.0),
        ("50 << 1 & 90", 64.0),
        ("90 & 50 << 1", 64.0),
        ("90 + 50 << 1 * 5", 4480.0),
        ("1 - 2 - 4 - 8", -13.0),
        ("1 * 4 / 2 * 8", 16.0),
        ("true ?? true ? 100 + 200 : 400", 300.0),
        ("'2014-01-02 14:12:22' == '2014-01-02 14:12:22'", True),
        ("'2014-01-02 14:12:22' > '2014-01-02 12:12:22'", True),
        ("'2014-01-02 14:12:22' > '2014-01-02 16:12:22'", False),
        ("'2014-01-02 14:12:22' >= '2014-01-02 12:12:22'", True),
        ("'2014-01-02 14:12:22' < '2014-01-02 16:12:22'", True),
        ("'2014-01-02 09:12:22' <= '2014-01-02 12:12:22'", True),
        ("'2014-01-02' > '2014-01-01 23:59:59'", True),  # the README's example
        ("-1 < 0", True),
        ("'ab' < 'abc'", True),
        ("'ab' <= 'abc'", True),
        ("'aba' > 'abc'", False),
        ("'aba' >= 'abc'", False),
        ("!true == false", True),
        ("!(10 < 0)", True),
        ("10 * -10", -100.0),
        ("true ? 10", 10.0),
        ("false ? 10", None),
        ("10 > 5 ? 35.50", 35.5),
        ("1 > 5 ? 35.50", None),
        ("(5 * (15 - 5)) > 5 ? 35.50", 35.5),
        ("true ? 35.50 > 10", True),
        ("false ? 35.50 : 50", 50.0),
        ("(false ? 5 : 35.50) > 10", True),
        ("(true ? 1 : 5) < 10", True),
        ("true ? 1 : 5 > 10", 1.0),
        ("(2 == 2) ? 1 : (true ? 2 : 3)", 1.0),
        ("false ? 1 : (true ? 2 : 3)", 2.0),
        ("true ? (false ? 1 : (false ? 2 : 3)) : (false ? 4 : 5)", 3.0),
        ("'foo' + 'bar' == 'foobar'", True),
        ("'foo' + 123 == 'foo123'", True),
        ("123 + 'bar' == '123bar'", True),
        ("'foo' + '02/05/1970' == 'foobar'", False),
        ("'foo' + true == 'footrue'", True),
        ("true + 'bar' == 'truebar'", True),
        ("1 ?? 2", 1.0),
        ("1 in (1, 2, 3)", True),
        ("!(1 in (1, 2, 3))", False),
        ("(true && true) || (true && false)", True),
        ("true && true || true && false", True),
        ("false || true && true || false", True),
        ("(10 * 10 * 10) > 10", True),
        ("false && true || true", True),
        ("true || false && true", True),
        ("true && true || false && false", True),
        ("(2 + 2) + 2 == 6", True),
        ("(2 + 2) >= 4", True),
        ("3 ** 4", 81.0),  # MANUAL.md
    ],
)
def test_govaluate_vectors_without_parameters(text: str, expected: Any) -> None:
    assert value(text) == expected


@pytest.mark.parametrize(
    ("text", "params", "expected"),
    [
        ("foo + 2", {"foo": 2.0}, 4.0),
        ("foo * bar", {"foo": 5.0, "bar": 2.0}, 10.0),
        ("foo * foo * foo", {"foo": 10.0}, 1000.0),
        ("foo + foo + foo", {"foo": 10.0}, 30.0),
        ("foo + FoO + FOO", {"foo": 8.0, "FoO": 4.0, "FOO": 2.0}, 14.0),
        ("-1 < -foo", {"foo": -8.0}, True),
        ("foo > 1", {"foo": 2}, True),
        ("(foo == true) || (bar == true)", {"foo": True, "bar": False}, True),
        ("foo > 10 && bar > 10", {"foo": 1, "bar": 11}, False),
        ("'foobar' =~ foo", {"foo": "obar"}, True),
        ("'foobar' !~ foo", {"foo": "baz"}, True),
        ("foo =~ bar", {"foo": "foobar", "bar": "oba"}, True),
        ("foo !~ bar", {"foo": "foobar", "bar": "baz"}, True),
        ("commission ? 10", {"commission": True}, 10.0),
        ("partner == 'amazon' ? 10", {"partner": "amazon"}, 10.0),
        ("partner == 'amazon' ? 10", {"partner": "ebay"}, None),
        ("theft && period == 24 ? 60", {"theft": True, "period": 24}, 60.0),
        ("theft && period == 24 ? 60", {"theft": False, "period": 24}, None),
        ("foo + 'bar'", {"foo": "baz"}, "bazbar"),
        ("foo + bar", {"foo": "baz", "bar": "quux"}, "bazquux"),
        ("foo + bar", {"foo": "baz", "bar": 123.0}, "baz123"),
        ("foo + 123 + 'bar' + true", {"foo": "baz"}, "baz123bartrue"),
        ("foo ?? 1.0", {"foo": None}, 1.0),
        (
            "(foo >= 2887057408 && foo <= 2887122943) || (foo >= 168100864 && foo <= 168118271)",
            {"foo": 2887057409},
            True,
        ),
        (
            "(foo >= 168100864 && foo <= 168118271) || (foo >= 2887057408 && foo <= 2887122943)",
            {"foo": 168100865},
            True,
        ),
        ("arr == arr", {"arr": [0, 0, 0]}, True),
        ("arr != arr", {"arr": [0, 0, 0]}, False),
        ("[response-time] < 100", {"response-time": 80}, True),  # README: escaped names
        ("response\\-time < 100", {"response-time": 180}, False),
        (
            "(requests_made * requests_succeeded / 100) >= 90",
            {"requests_made": 100, "requests_succeeded": 80},
            False,
        ),
        ("http_response_body == 'service is ok'", {"http_response_body": "service is ok"}, True),
        ("(mem_used / total_mem) * 100", {"mem_used": 512, "total_mem": 1024}, 50.0),
    ],
)
def test_govaluate_vectors_with_parameters(text: str, params: dict[str, Any], expected: Any) -> None:
    assert parse(text).evaluate(params) == expected


def test_numbers_are_floats_and_results_keep_their_type() -> None:
    result = value("a + 1", a=1)
    assert result == 2.0 and isinstance(result, float)
    assert value("x", x=[1, "a"]) == [1, "a"]
    assert value("x", x={"k": 1}) == {"k": 1}
    assert value("(1, 'a', true)") == [1.0, "a", True]
    assert value("1, 2, 3") == [1.0, 2.0, 3.0]
    assert value("((1, 2), 3)") == [1.0, 2.0, 3.0]  # an array on the left is extended, as in govaluate
    assert value("(1, (2, 3))") == [1.0, [2.0, 3.0]]
    assert value("(arr, 3)", arr=[1, 2]) == [1, 2, 3.0]


# --------------------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    ("text", "grouped"),
    [
        ("a || b && c", "a || (b && c)"),
        ("a && b || c && d", "(a && b) || (c && d)"),
        ("a == b && c != d", "(a == b) && (c != d)"),
        ("a - b - c", "(a - b) - c"),
        ("a - b + c", "(a - b) + c"),
        ("a / b * c", "(a / b) * c"),
        ("a ** b ** c", "(a ** b) ** c"),  # left-associative, as govaluate's planner makes it
        ("-a ** b", "(-a) ** b"),
        ("!a == b", "(!a) == b"),
        ("a + b * c", "a + (b * c)"),
        ("a * b ** c", "a * (b ** c)"),
        ("a + b << c", "(a + b) << c"),
        ("a << b & c", "(a << b) & c"),
        ("a & b | c ^ d", "((a & b) | c) ^ d"),
        ("a | b == c", "(a | b) == c"),
        ("a == b == c", "(a == b) == c"),
        ("a in b == c", "(a in b) == c"),
        ("a =~ b && c !~ d", "(a =~ b) && (c !~ d)"),
        ("c ? x : y", "(c ? x) : y"),
        ("a || b ? x : y", "((a || b) ? x) : y"),
        ("c ? x : d ? y : z", "(((c ? x) : d) ? y) : z"),
        ("a ?? b ?? c", "(a ?? b) ?? c"),
        ("a, b ? c : d", "a, ((b ? c) : d)"),
        ("a, b, c", "(a, b), c"),
    ],
)
def test_precedence_and_associativity(text: str, grouped: str) -> None:
    assert parse(text).root == parse(grouped).root


def test_prefix_binds_tighter_than_any_operator() -> None:
    assert value("-2 ** 2") == 4.0
    assert value("2 ** 3 ** 2") == 64.0
    assert value("-(2 ** 2)") == -4.0


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 / 0", math.inf),
        ("-1 / 0", -math.inf),
        ("1 / -0", -math.inf),
        ("7 % 3", 1.0),
        ("-7 % 3", -1.0),
        ("7 % -3", 1.0),
        ("2 ** -1", 0.5),
        ("0 ** -1", math.inf),
        ("10 ** 400", math.inf),
        ("-1 << 1", 18446744073709551614.0),  # uint64(-1) << 1
        ("1 << 64", 0.0),
        ("256 >> 4", 16.0),
        ("5.9 & 3", 1.0),  # int64(5.9) == 5
        ("-1 ^ 0", -1.0),
        ("~0", -1.0),
        ("~(-1)", 0.0),
        ("-0.5 + 1", 0.5),
        ("'a' < 'b'", True),
        ("'B' < 'a'", True),
        ("'é' > 'z'", True),
        ("1 == '1'", False),
        ("1 != '1'", True),
        ("true == 1", False),
        ("'true' == true", False),
        ("'' == false", False),
        ("(1, 2) == (1, 2)", True),
        ("(1, 2) == (2, 1)", False),
        ("'a' in ('b', 'a')", True),
        ("'c' in ('b', 'a')", False),
        ("1 in ('1', 2)", False),
        ("'x' + 1.5", "x1.5"),
        ("'x' + 1000000", "x1e+06"),
        ("'x' + 123456", "x123456"),
        ("'x' + 0.0001", "x0.0001"),
        ("'x' + 0.00001", "x1e-05"),
        ("'x' + 1234567.5", "x1.2345675e+06"),
        ("'x' + (1, 'a', true)", "x[1 a true]"),
        ("'x' + (1 / 0)", "x+Inf"),
        ("'x' + (0 / 0)", "xNaN"),
        ("'x' + -(0)", "x-0"),
        ("'x' + (false ? 1)", "x<nil>"),
        ("0x1F + 0", 31.0),
        ("0xff == 255", True),
        (".5 + 5.", 5.5),
        ("true ? 1 : 2", 1.0),
        ("false ? 1 : 2", 2.0),
        ("false ?? 2", False),
    ],
)
def test_operators(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_nan_results() -> None:
    for text in ("0 / 0", "1 % 0", "(1 / 0) % 2", "-8 ** 0.5"):
        assert math.isnan(value(text)), text


def test_concatenation_formats_like_go() -> None:
    assert value("'' + x", x={"b": [1, None], "a": "s"}) == "map[a:s b:[1 <nil>]]"
    assert value("'' + x", x=None) == "<nil>"
    assert value("'' + x", x=10**400) == "+Inf"
    assert value("'' + x", x=-(10**400)) == "-Inf"
    assert value("'' + x", x=("a", 1)) == "('a', 1)"  # not a JSON value: Python's text


def test_bitwise_operators_on_out_of_range_numbers() -> None:
    assert value("x & 1", x=1e30) == 0.0  # int64(1e30) is the minimum int64 on amd64
    assert value("x | 0", x=math.nan) == float(-(2**63))
    assert value("x >> 0", x=2.0**63) == 2.0**63
    assert value("x >> 0", x=2.0**64) == 0.0
    assert value("1 << x", x=math.nan) == 0.0


def test_deep_equality_of_json_values() -> None:
    assert value("a == b", a={"k": [1, {"x": None}]}, b={"k": [1.0, {"x": None}]})
    assert not value("a == b", a={"k": [1]}, b={"k": [1, 2]})
    assert not value("a == b", a={"k": 1}, b={"j": 1})
    assert not value("a == b", a={"k": 1}, b=[1])
    assert value("x in arr", x={"a": 1}, arr=[{"a": 1}])
    assert value("x in arr", x=None, arr=[1, None])
    assert not value("x == x", x=math.nan)
    assert value("x == x", x=[math.nan])  # Go's DeepEqual: the same slice is equal to itself
    assert value("x == y", x=2**53 + 1, y=float(2**53))  # both are float64 in Go
    assert not value("x == y", x=object(), y=object())


def test_short_circuits_skip_the_right_side() -> None:
    assert value("false && missing") is False
    assert value("true || missing") is True
    assert value("1 ?? missing") == 1.0
    assert value("1 : missing") == 1.0
    assert value("false ? missing") is None
    assert value("true ? 1 : missing") == 1.0
    assert "No parameter 'missing' found." in error("true && missing")
    assert "No parameter 'missing' found." in error("1 && missing")  # the right side is evaluated first


def test_ternary_else_and_coalescence_treat_only_null_as_missing() -> None:
    assert value("x : 2", x=None) == 2.0
    assert value("x ?? 2", x=False) is False
    assert value("true ? x : 2", x=None) == 2.0  # (true ? null) : 2, as in govaluate


@pytest.mark.parametrize(
    ("text", "params", "message"),
    [
        ("'a' - 1", {}, "'-' needs two numbers, but its left side is \"a\" (a string)"),
        ("1 * 'a'", {}, "'*' needs two numbers, but its right side is \"a\" (a string)"),
        ("true > 1", {}, "'>' compares two numbers or two strings, not true (a boolean) and 1 (a number)"),
        ("'a' <= 1", {}, "'<=' compares two numbers or two strings"),
        ("1 && true", {}, "'&&' needs two booleans, but its left side is 1 (a number)"),
        ("false || 'x'", {}, "'||' needs two booleans, but its right side is \"x\" (a string)"),
        ("false || x", {"x": None}, "its right side is null"),
        ("1 + true", {}, "'+' adds two numbers or joins strings, not 1 (a number) and true (a boolean)"),
        ("-x", {"x": "a"}, "prefix '-' needs a number, not \"a\" (a string)"),
        ("!x", {"x": 1}, "prefix '!' needs a boolean, not 1 (a number)"),
        ("~x", {"x": True}, "prefix '~' needs a number, not true (a boolean)"),
        ("1 =~ 'a'", {}, "'=~' needs a string on its left, not 1 (a number)"),
        ("'a' !~ x", {"x": 1}, "'!~' needs a regular expression (a string) on its right, not 1 (a number)"),
        ("'a' =~ x", {"x": "("}, "'=~' cannot compile the regular expression \"(\""),
        ("'a' =~ ('(')", {}, "cannot compile the regular expression"),  # not right after =~: at run time
        ("x =~ '2014-01-01'", {"x": "a"}, "on its right, not 1388534400 (a number)"),  # a date, not a pattern
        ("1 in 2", {}, "'in' needs an array on its right, such as (1, 2), not 2 (a number)"),
        ("1 in ('a')", {}, 'not "a" (a string)'),
        ("1 in x", {"x": {"a": 1}}, "not an object"),
        ("1 ? 2", {}, "'?' needs a boolean on its left, not 1 (a number)"),
        ("x", {}, "No parameter 'x' found. (bound: none)"),
        ("x", {"b": 1, "a": 2}, "No parameter 'x' found. (bound: a, b)"),
        ("a.B", {"a": {"B": 1}}, "Unable to access 'B', 'a' is not a struct"),
        ("a.B", {}, "No parameter 'a' found."),
        ("x - 1", {"x": [1, 2]}, "left side is an array of 2"),
        ("x - 1", {"x": "y" * 50}, '"' + "y" * 37 + '..." (a string)'),
        ("x - 1", {"x": object()}, "left side is object"),
        ("'a' - x", {"x": 1e300}, 'left side is "a"'),
        ("x - 'a'", {"x": 1e300}, 'right side is "a"'),
        ("x && true", {"x": 1e300}, "left side is 1e+300 (a number)"),
        ("x && true", {"x": 0.5}, "left side is 0.5 (a number)"),
        ("x && true", {"x": math.nan}, "left side is NaN (a number)"),
    ],
)
def test_type_errors_say_which_operator_and_value(text: str, params: dict[str, Any], message: str) -> None:
    text_error = error(text, **params)
    assert message in text_error
    assert text_error.startswith(repr(parse(text).text) + ": ")


def test_errors_inside_short_circuits_propagate() -> None:
    assert "No parameter 'y' found." in error("(1 - y) ?? 2")


def test_deeply_nested_values_are_an_error_not_a_crash() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    assert "nest too deeply" in error("x == y", x=deep, y=deep[0])


# --------------------------------------------------------------------------- regular expressions


def test_regular_expressions_are_go_syntax_and_unanchored() -> None:
    assert value("x =~ 'b.d'", x="abcde")
    assert value("x =~ '^[[:alpha:]]+$'", x="abc")
    assert not value("x =~ '^[[:alpha:]]+$'", x="abc\n")  # Go's $ is the end of the text
    assert value("x !~ '^a'", x="ba")
    assert value("x =~ '(?i)ab'", x="AB")


def test_a_literal_pattern_is_compiled_once_when_parsed() -> None:
    expression = parse("x =~ 'a+'")
    assert isinstance(expression.root, Binary)
    assert all(expression.evaluate({"x": text}) for text in ("a", "baa", "caaat"))
    assert parse_error("x =~ '('").position == 6


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("status", "status"),
        ("x_1", "x_1"),
        ("données", "données"),
        ("[response-time]", "response-time"),
        ("[with spaces and . dots]", "with spaces and . dots"),
        ("[true]", "true"),
        ("[]", ""),
        ("[a\\]b]", "a]b"),
        ("response\\-time", "response-time"),
        ("a\\ b", "a b"),
        ("IN\\x", "INx"),
    ],
)
def test_parameter_names(text: str, name: str) -> None:
    expression = parse(text)
    assert expression.root == Variable(name)
    assert expression.variables == {name}
    assert expression.evaluate({name: 7}) == 7.0


def test_keywords() -> None:
    assert parse("true").root == Boolean(True)
    assert parse("false").root == Boolean(False)
    assert value("1 IN (1, 2)") is True
    assert parse("True").root == Variable("True")


def test_variables_lists_every_name_once() -> None:
    assert parse("a + b * a > [c d] || x.Y").variables == {"a", "b", "c d", "x"}
    assert parse("1 + 2").variables == frozenset()


def test_accessors_parse_but_json_values_have_no_fields() -> None:
    assert parse("a.B").root == Accessor(("a", "B"))
    assert parse("a.B.C").variables == {"a"}
    assert value("false && a.B") is False


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("literal", "seconds"),
    [
        ("2014-01-02", 1388620800.0),
        ("2014-01-02 14:12", 1388671920.0),
        ("2014-01-02 14:12:22", 1388671942.0),
        ("2014-01-02   14:12:22.123", 1388671942.0),
        ("2014-01-02 14:12:22+01:00", 1388668342.0),
        ("2014-01-02T14:12:22Z", 1388671942.0),
        ("2014-01-02T14:12:22.5-02:30", 1388680942.0),
        ("2014-01-02T14Z", 1388671200.0),
        ("2014-01-02T14:12+0100", 1388668320.0),
        ("2014-01-02T14:12:22,25Z", 1388671942.0),
        ("2014-01-02T9:12:22Z", 1388653942.0),
        ("Thu Jan  2 14:12:22 2014", 1388671942.0),
        ("thu JAN 2 14:12:22 2014", 1388671942.0),
        ("Thu Jan 2 14:12:22 UTC 2014", 1388671942.0),
        ("Thu Jan 2 14:12:22 PST 2014", 1388671942.0),  # zone names Go does not know are UTC
        ("Thu Jan 2 14:12:22 GMT+1 2014", 1388671942.0),  # Go keeps the clock as UTC
        ("Thu Jan 02 14:12:22 -0700 2014", 1388697142.0),
        ("3:04PM", -62167219200.0 + 15 * 3600 + 4 * 60),
        ("12:00AM", -62167219200.0),
        ("12:30PM", -62167219200.0 + 12.5 * 3600),
        ("0000-01-01", -62167219200.0),
        ("2000-02-29", 951782400.0),
    ],
)
def test_string_literals_that_read_as_dates_are_unix_seconds(literal: str, seconds: float) -> None:
    expression = parse(f"'{literal}'")
    assert expression.root == Time(literal, seconds)
    assert expression.evaluate({}) == seconds


@pytest.mark.parametrize(
    "literal",
    [
        "2014-13-01",
        "2014-02-30",
        "2014-01-02 24:00",
        "2014-01-02 10:60",
        "2014-01-02 10:10:60",
        "2014-1-02",
        "14-01-02",
        "2014-01-02T14:12:22+25:00",
        "Xyz Jan 2 14:12:22 2014",
        "Thu Foo 2 14:12:22 2014",
        "Thu Jan 2 14:12:22 GMT+24 2014",
        "13:00PM",
        "3:04pm",
        "02/05/1970",
        "2014-01-02 ",
    ],
)
def test_strings_that_are_not_dates_stay_strings(literal: str) -> None:
    assert parse(f"'{literal}'").root == String(literal)


def test_a_date_is_a_number_where_a_string_might_be_expected() -> None:
    assert value("x == '2014-01-02'", x="2014-01-02") is False
    assert value("x == '2014-01-02'", x=1388620800) is True


# --------------------------------------------------------------------------- parse errors


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 1, "the expression is empty at the end; expected a value, a name or '('"),
        ("   ", 4, "the expression is empty"),
        ("a ==", 5, "the expression stops after operator '==' at the end; expected a value"),
        ("a == 'b", 6, "the string that starts here is not closed at position 6; expected a closing quote"),
        ('e == false"', 11, "the string that starts here is not closed"),
        ("[a b", 1, "the name in brackets that starts here is not closed at position 1; expected ']'"),
        ("a ==-1", 3, "unknown operator '==-' at position 3; expected one of + - *"),
        ("a = 1", 3, "unknown operator '='"),
        ("_a", 1, "unknown operator '_'"),
        ("a ] b", 3, "unknown operator ']'"),
        ("a # b", 3, "unknown operator '#'"),
        ("(a", 1, "'(' is never closed at position 1; expected a matching ')'"),
        ("a)", 2, "')' closes nothing at position 2"),
        ("a b", 3, "unexpected name b after name a at position 3; expected an operator, ')', ','"),
        ("1 2", 3, "unexpected number 2 after number 1"),
        ("true 1", 6, "unexpected number 1 after true"),
        ("((a) b)", 6, "unexpected name b at position 6; expected an operator or ')'"),
        ("foo(1)", 4, "'foo(' calls a function, and Argo Events defines none at position 4"),
        ("- -a", 3, "unexpected operator '-' after operator '-' at position 3; expected a number, a name"),
        ("!'a'", 2, "unexpected string 'a' after operator '!'"),
        ("a + '2014-01-01'", 5, "expected a value that is not a date: put the date in parentheses"),
        ("'2014-01-01' ? 1", 14, "expected another operator: put the date in parentheses"),
        (", a", 1, "unexpected ','"),
        ("1.2.3", 1, "'1.2.3' is not a number at position 1"),
        ("1e5", 2, "unexpected name e5 after number 1"),
        (".", 1, "'.' is not a number"),
        ("0x", 2, "unexpected name x after number 0"),
        ("0xZZ", 1, "'0x' is not a hexadecimal number"),
        ("0x1FFFFFFFFFFFFFFFF", 1, "is not a hexadecimal number"),
        ("1" * 400, 1, "is not a number"),
        ("a.", 1, "'a.' ends with a dot"),
        (
            "a.b",
            1,
            "'a.b' reads the unexported field 'b' of parameter 'a' at position 1; expected a parameter",
        ),
        ("a.B(1)", 4, "'a.B(' calls a method"),
        ("a \\", 3, "a backslash escapes nothing at position 3"),
        ("()", 2, "unexpected ')' at position 2; expected a value"),
        ("(a +)", 5, "unexpected ')'"),
        ("(a) b", 5, "unexpected name b at position 5; expected an operator, ')', ',' or the end"),
        ("(a)(b)", 4, "unexpected '('"),
        ("a) + (b", 2, "')' closes nothing"),
        ("a ? , b", 5, "unexpected ','"),
        ("(a b)", 4, "unexpected name b after name a"),
        ("x =~ '('", 6, "the regular expression '(' does not compile"),
        ("(" * 70 + "a" + ")" * 70, 65, "parentheses nest deeper than 64 levels"),
        (" + ".join(["a"] * 200), 511, "the expression nests deeper than 128 levels"),
    ],
)
def test_parse_errors_say_where_and_what_was_expected(text: str, position: int, fragment: str) -> None:
    caught = parse_error(text)
    assert caught.position == position
    assert fragment in str(caught)
    assert str(caught).startswith(f"cannot parse expression {text!r}: ")


def test_parse_is_cached_and_expressions_are_immutable() -> None:
    assert parse("a == 1") is parse("a == 1")
    with pytest.raises(AttributeError):
        parse("a == 1").text = "b"  # type: ignore[misc]


# --------------------------------------------------------------------------- printing back


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("a==b", "a == b"),
        ("(a)", "a"),
        ("((a + b)) * c", "(a + b) * c"),
        ("a - (b - c)", "a - (b - c)"),
        ("(a - b) - c", "a - b - c"),
        ("a || (b && c)", "a || b && c"),
        ("(a || b) && c", "(a || b) && c"),
        ("-(a)", "-a"),
        ("-(a + 1)", "-(a + 1)"),
        ("-(-a)", "-(-a)"),
        ("!('x')", '!("x")'),
        ("-(x) ** 2", "-x ** 2"),
        ("x in (1,2 , 3)", "x in (1, 2, 3)"),
        ("(1, (2, 3))", "1, (2, 3)"),
        ("'it\\'s' + \"a \\\"b\\\\\"", '"it\\\'s" + "a \\"b\\\\"'),
        ("[a-b] + [true] + [x]", "[a-b] + [true] + x"),
        ("[a\\]b]", "[a\\]b]"),
        ("a\\.B", "a.B"),
        ("a.B\\-c", "a.B\\-c"),
        ("0x10 + .5", "16 + 0.5"),
        ("0x 1F", "31"),
        ("!true && false", "!true && false"),
        ("100000000000000000000000", "100000000000000000000000"),
        ("a + ('2014-01-02')", 'a + ("2014-01-02")'),
        ("('2014-01-02') ? 1", '("2014-01-02") ? 1'),
        ("(a || '2014-01-02') ?? 1", '(a || "2014-01-02") ?? 1'),
        ("x =~ ('(' + y)", 'x =~ ("(" + y)'),
        ("x =~ ('a' + y)", 'x =~ "a" + y'),
        ("x =~ 'a' + y", 'x =~ "a" + y'),
        ("x =~ ('(')", 'x =~ ("(")'),
        ("c ? x : y", "c ? x : y"),
        ("c ? (x ? y : z) : w", "c ? (x ? y : z) : w"),
    ],
)
def test_unparse_is_canonical_and_parses_back(text: str, canonical: str) -> None:
    expression = parse(text)
    assert expression.unparse() == canonical
    assert str(expression) == canonical
    assert parse(canonical).root == expression.root


def test_expressions_built_from_trees() -> None:
    tree = Binary("&&", Binary("==", Variable("a"), Number(1.0)), Unary("!", Variable("b")))
    expression = Expression(tree)
    assert expression.text == "a == 1 && !b"
    assert expression.variables == {"a", "b"}
    assert expression.test({"a": 1, "b": False}) is True
    assert Expression(Binary("=~", String("x"), String("("))).unparse() == '"x" =~ ("(")'
    with pytest.raises(ExprError, match="unknown operator '=>'"):
        Binary("=>", Number(1.0), Number(2.0))
    with pytest.raises(ExprError, match="unknown prefix operator '\\+'"):
        Unary("+", Number(1.0))


def test_test_requires_a_boolean() -> None:
    assert parse("a > 1").test({"a": 2}) is True
    with pytest.raises(
        ExprError, match="'a \\+ 1' gave 3 \\(a number\\); a filter expression must give true or false"
    ):
        parse("a + 1").test({"a": 2})
    with pytest.raises(ExprError, match="gave null"):
        parse("false ? 1").test({})
