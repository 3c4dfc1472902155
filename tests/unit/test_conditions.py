from __future__ import annotations

import pytest

from sensors.conditions import ConditionsError, parse_conditions

DEPS = ["dep01", "dep_02", "dep04", "a", "b", "c"]


@pytest.mark.parametrize(
    ("expr", "satisfied", "expected"),
    [
        ("a", set(), False),
        ("a", {"a"}, True),
        ("a && b", {"a"}, False),
        ("a && b", {"a", "b"}, True),
        ("a || b", {"b"}, True),
        ("a || b", set(), False),
        ("(dep01 || dep-02) && dep04", {"dep_02", "dep04"}, True),
        ("(dep01 || dep-02) && dep04", {"dep01"}, False),
        ("a && b || c", {"c"}, True),  # && binds tighter than ||
        ("a && (b || c)", {"c"}, False),
        ("a && (b || c)", {"a", "c"}, True),
        ("  a&&b  ", {"a", "b"}, True),
        ("((a))", {"a"}, True),
    ],
)
def test_evaluation(expr: str, satisfied: set[str], expected: bool) -> None:
    assert parse_conditions(expr, DEPS).evaluate(satisfied) is expected


def test_empty_conditions_mean_all_dependencies() -> None:
    cond = parse_conditions("", ["x", "y"])
    assert cond.dependencies == {"x", "y"}
    assert not cond.evaluate({"x"})
    assert cond.evaluate({"x", "y"})
    single = parse_conditions("   ", ["x"])
    assert single.evaluate({"x"})


def test_dash_and_underscore_are_the_same_character() -> None:
    cond = parse_conditions("dep-1a", ["dep_1a"])
    assert cond.dependencies == {"dep_1a"}
    assert cond.evaluate({"dep_1a"})


def test_dependencies_lists_only_named() -> None:
    assert parse_conditions("a || b", DEPS).dependencies == {"a", "b"}


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("a &&", "expected a dependency name or '(' at the end"),
        ("a b", "expected '&&', '||' or the end at position 3"),
        ("(a", "expected ')' at the end"),
        ("a)", "expected '&&', '||' or the end at position 2"),
        ("x", "'x', which is no dependency of this sensor; dependencies: a, b"),
        ("a & b", "unexpected character '&' at position 3"),
        ("&& a", "expected a dependency name or '(' at position 1"),
    ],
)
def test_errors_say_where_and_what(expr: str, message: str) -> None:
    with pytest.raises(ConditionsError) as err:
        parse_conditions(expr, ["a", "b"])
    assert message in str(err.value)


def test_names_that_collide_after_aliasing_are_rejected() -> None:
    with pytest.raises(ConditionsError, match="same character"):
        parse_conditions("a-b", ["a-b", "a_b"])
