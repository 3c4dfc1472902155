"""Property tests of the two expression parsers: govaluate expressions (sensors/expr.py) and trigger
conditions (sensors/conditions.py).

Random trees print and parse back to the same tree; random text and random token soup are either
parsed or refused with the parser's own error, never anything else; evaluation of any tree with any
JSON values either answers or raises ExprError."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.conditions import And, ConditionsError, Name, Or, parse_conditions
from sensors.conditions import Node as ConditionNode
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
from sensors.expr import Node as ExprNode

SETTINGS = settings(max_examples=200, deadline=None, database=None)  # no .hypothesis/ in the tree

# --------------------------------------------------------------------------- govaluate expressions

BINARY_OPS = [
    ",", "?", ":", "??", "||", "&&", "==", "!=", ">", "<", ">=", "<=", "=~", "!~", "in",
    "&", "|", "^", "<<", ">>", "+", "-", "*", "/", "%", "**",
]  # fmt: skip
DATES = ["2014-01-02", "2014-01-02 14:12:22", "2014-01-02T14:12:22Z", "3:04PM", "Thu Jan  2 14:12:22 2014"]

bare_names = st.from_regex(r"[A-Za-zé][A-Za-z0-9_é]{0,5}", fullmatch=True)
any_names = st.text(max_size=6)  # printed in [brackets] when they are not bare names
numbers = st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(abs)  # no literal is negative
# strings without ASCII digits: a string literal that reads as a date is a date (Time) instead
strings = st.text(alphabet=st.characters(blacklist_characters="0123456789"), max_size=8)
dates = st.sampled_from(DATES).map(lambda text: parse(repr(text)).root)
fields = st.from_regex(r"[A-Z0-9_][A-Za-z0-9_\-]{0,4}", fullmatch=True)  # exported Go field names
accessors = st.builds(
    lambda head, tail: Accessor((head, *tail)), bare_names, st.lists(fields, min_size=1, max_size=2)
)

leaves: st.SearchStrategy[ExprNode] = st.one_of(
    numbers.map(Number),
    strings.map(String),
    dates,
    st.booleans().map(Boolean),
    st.one_of(bare_names, any_names).map(Variable),
    accessors,
)
trees: st.SearchStrategy[ExprNode] = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(Unary, st.sampled_from(["-", "!", "~"]), children),
        st.builds(Binary, st.sampled_from(BINARY_OPS), children, children),
    ),
    max_leaves=12,
)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)

TOKENS = [
    "a", "b1", "[x y]", "[a.b]", "a.B", "a.b", "é", "1", "2.5", ".5", "0x1F", "0x", ".", "1e5",
    "'s'", '"t"', "'2014-01-02'", "'('", "true", "false", "in", "IN", "(", ")", ",", "+", "-", "*",
    "/", "%", "**", "&", "|", "^", "<<", ">>", "==", "!=", "<", ">", "<=", ">=", "=~", "!~", "&&",
    "||", "!", "~", "?", ":", "??", "=", "\\", "'", '"', "[", "]", "_", "#", " ",
]  # fmt: skip
token_soup = st.lists(st.sampled_from(TOKENS), max_size=14)


@SETTINGS
@given(trees)
def test_expression_trees_print_and_parse_back(tree: ExprNode) -> None:
    text = Expression(tree).unparse()
    again = parse(text)
    assert again.root == tree, text
    assert again.unparse() == text


def _parses_to_its_canonical_form_or_refuses(text: str) -> None:
    try:
        expression = parse(text)
    except ExprError as exc:
        assert exc.position is not None and 1 <= exc.position <= len(text) + 1
        return
    canonical = expression.unparse()
    assert parse(canonical).root == expression.root, canonical


@SETTINGS
@given(st.text(max_size=40))
def test_random_text_parses_or_raises_expr_error(text: str) -> None:
    _parses_to_its_canonical_form_or_refuses(text)


@SETTINGS
@given(token_soup)
def test_token_soup_parses_or_raises_expr_error(tokens: list[str]) -> None:
    _parses_to_its_canonical_form_or_refuses(" ".join(tokens))
    _parses_to_its_canonical_form_or_refuses("".join(tokens))


@SETTINGS
@given(trees, st.data())
def test_evaluation_answers_or_raises_expr_error(tree: ExprNode, data: st.DataObject) -> None:
    expression = Expression(tree)
    params = {name: data.draw(json_values, label=name) for name in sorted(expression.variables)}
    try:
        expression.evaluate(params)
    except ExprError as exc:
        assert str(exc).startswith(repr(expression.text))


# --------------------------------------------------------------------------- trigger conditions

DEPENDENCIES = ["a", "b", "dep-1", "dep_2", "C3"]

condition_trees: st.SearchStrategy[ConditionNode] = st.recursive(
    st.sampled_from(DEPENDENCIES).map(Name),
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda parts: And(tuple(parts))),
        st.lists(children, min_size=2, max_size=3).map(lambda parts: Or(tuple(parts))),
    ),
    max_leaves=8,
)
dependency_names = st.lists(
    st.one_of(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,4}", fullmatch=True), st.text(max_size=4)),
    min_size=1,
    max_size=4,
)
condition_soup = st.lists(
    st.sampled_from(["a", "b", "dep-1", "dep_1", "x", "&&", "||", "(", ")", "&", "|", "!", " ", "\t"]),
    max_size=12,
)


@SETTINGS
@given(condition_trees)
def test_condition_trees_print_and_parse_back(tree: ConditionNode) -> None:
    text = tree.unparse()
    again = parse_conditions(text, DEPENDENCIES)
    assert again.root == tree, text
    assert again.unparse() == text
    assert again.dependencies == _names(tree)


@SETTINGS
@given(condition_trees, st.sets(st.sampled_from(DEPENDENCIES)))
def test_reparsed_conditions_evaluate_the_same(tree: ConditionNode, satisfied: set[str]) -> None:
    again = parse_conditions(tree.unparse(), DEPENDENCIES)
    assert again.evaluate(satisfied) == tree.evaluate(satisfied)


@SETTINGS
@given(
    st.one_of(st.text(max_size=30), condition_soup.map("".join), condition_soup.map(" ".join)),
    dependency_names,
)
def test_random_conditions_parse_or_raise_conditions_error(text: str, names: list[str]) -> None:
    try:
        conditions = parse_conditions(text, names)
    except ConditionsError:
        return
    assert conditions.dependencies <= set(names)
    if all(_SPELLABLE.fullmatch(name) for name in conditions.dependencies):
        assert parse_conditions(conditions.unparse(), names).root == conditions.root


_SPELLABLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")  # the names conditions can spell


def _names(node: ConditionNode) -> set[str]:
    if isinstance(node, Name):
        return {node.dependency}
    return set().union(*(_names(part) for part in node.parts))


def test_time_leaves_are_dates() -> None:
    assert all(isinstance(parse(repr(text)).root, Time) for text in DATES)
