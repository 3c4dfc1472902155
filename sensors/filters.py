"""Argo Events dependency filters: which events a dependency accepts.

Semantics are Argo's (``pkg/sensors/dependencies/filter.go``), kind by kind, in Argo's order
exprs -> data -> context -> time -> script:

* **data** (``filters.data[]``): each filter looks up ``path`` (gjson, see :mod:`sensors.paths`) in the
  event data. ``type: string`` values are unanchored regular expressions (``=``/empty comparator:
  matches, ``!=``: does not match, other comparators never pass); ``type: number`` compares the
  field's gjson ``.Float()`` with each value (``= != < <= > >=``); ``type: bool`` compares the field's
  gjson ``.Bool()`` with each value parsed as Go's ``strconv.ParseBool``. A filter passes when any
  of its values does. ``dataLogicalOperator: and`` (default): the first failing filter decides
  (its error, if any, is returned at once); ``or``: the first passing filter decides, and when none
  passes the errors of all are joined (``data filter errors [e1 / e2]``). A missing path is an
  error ``path '<p>' does not exist``. Events without data (``None``) pass.
* **context** (``filters.context``): exact equality on each non-empty field of ``type``,
  ``subject``, ``source``, ``datacontenttype``. Never an error.
* **time** (``filters.time``): ``start``/``stop`` as ``HH:MM:SS`` on the calendar date of the event's
  ``time`` in ``timezone`` (IANA name, default UTC); start inclusive, stop exclusive; when stop is
  before start the window crosses midnight (``t >= start or t < stop``). An unknown timezone is an
  error.
* **exprs** (``filters.exprs[]``): each item binds its ``fields`` (``name`` -> the gjson ``path``'s
  value) and evaluates ``expr`` in govaluate's language (:mod:`sensors.expr`, parsed once here). A
  missing path is an error ``path '<p>' does not exist``; an item without ``fields`` is skipped (it
  passes); an expression that fails, or gives something other than true or false, is an error.
  ``exprLogicalOperator`` combines the items as ``dataLogicalOperator`` combines data filters
  (``expr filter error (...)`` / ``expr filter errors [e1 / e2]``). Events without data pass.
  (Argo treats a non-boolean result as false without saying why; the verdict is the same here,
  with an error that says it.)
* **script** is rejected when a manifest is loaded (:mod:`sensors.spec`); its place in the order is
  kept here (``_KINDS``) so that it slots in.

``filtersLogicalOperator`` combines the kinds that are configured: ``and`` (default) -> all must
pass and any error makes the result false (with that error); ``or`` -> any configured kind passing
passes, and the errors of the others are still reported (``passed`` with ``errors``: Argo's "passed
with errors"). A dependency without ``filters`` passes everything.

String values are compiled as Python regular expressions after a light translation of Go RE2
syntax (``\\z``, ``$``, ``\\Q...\\E``, ``[[:alpha:]]`` classes, ``(?<name>...)``) with ASCII classes,
as in Go. Python accepts a few constructs RE2 rejects (look-arounds, back-references), and unlike
RE2 it backtracks: a pathological pattern (``(a+)+$``) can be slow on crafted data.

Use :func:`compile_filters` once per dependency and :meth:`CompiledFilter.evaluate` per event:
expressions, regular expressions, numbers, booleans and time zones are built at compile time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sensors.event import Event
from sensors.expr import ExprError, Expression
from sensors.expr import parse as parse_expression
from sensors.goregex import go_regex
from sensors.lua import LuaError, compile_script_filter
from sensors.paths import PathResult, go_parse_bool, go_parse_float, lookup
from sensors.spec import (
    ContextFilter,
    DataFilter,
    EventDependency,
    EventDependencyFilter,
    ExprFilter,
    TimeFilter,
)
from sensors.templates import Template, TemplateError, compile_template

__all__ = [
    "CompiledFilter",
    "FilterCompileError",
    "FilterResult",
    "compile_filters",
    "evaluate",
    "go_regex",
]


class FilterCompileError(ValueError):
    """A filter that this version cannot evaluate (validation normally rejects it earlier)."""


@dataclass(frozen=True, slots=True)
class FilterResult:
    """The verdict on one event: ``passed``, and the filter errors met on the way.

    ``passed`` with ``errors`` happens with ``filtersLogicalOperator: or`` (Argo accepts the event and
    warns). ``" / ".join(errors)`` is Argo's error text.
    """

    passed: bool
    errors: tuple[str, ...] = ()


PASSED = FilterResult(True)

# The outcome of one kind of filter: (passed, error or None).
Outcome = tuple[bool, str | None]


class _Kind(Protocol):
    """One kind of filter (exprs, data, context, time, script) compiled for a dependency."""

    # An error of this kind ends the evaluation even with ``or`` (Argo's script filter).
    fatal: bool

    def evaluate(self, event: Event) -> Outcome: ...


# --------------------------------------------------------------------------- data


_Verdict = bool | str  # True/False, or an error message
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _BadValue:
    """A filter value that does not parse; it is an error when the evaluation reaches it."""

    message: str


def _any_value(values: Sequence[_T | _BadValue], test: Callable[[_T], bool]) -> _Verdict:
    """Argo's loop over a filter's values: the first error or the first passing value decides."""
    for value in values:
        if isinstance(value, _BadValue):
            return value.message
        if test(value):
            return True
    return False


@dataclass(frozen=True, slots=True)
class _DataCheck:
    """One compiled data filter (with its ``template``, applied to the value before the test)."""

    path: str
    test: Callable[[PathResult], _Verdict]
    template: Template | None = None

    def verdict(self, found: PathResult) -> _Verdict:
        if self.template is None:
            return self.test(found)
        try:
            out = self.template.render({"Input": found.string()})
        except TemplateError as exc:
            return f"template error on path '{self.path}': {exc}"
        if out in ("", "<no value>"):
            return f"template evaluated to empty string or no value on path '{self.path}'"
        return self.test(PathResult(out))


def _compile_string(spec: DataFilter) -> Callable[[PathResult], _Verdict]:
    patterns: list[re.Pattern[str] | _BadValue] = []
    for value in spec.value:
        try:
            patterns.append(go_regex(value))
        except re.error as exc:
            patterns.append(
                _BadValue(
                    f"value '{value}' of the string filter on path '{spec.path}' is not a valid "
                    f"regular expression: {exc}"
                )
            )
    comparator = spec.comparator

    def test(found: PathResult) -> _Verdict:
        text = found.string()

        def matches(pattern: re.Pattern[str]) -> bool:
            hit = pattern.search(text) is not None
            if comparator in ("=", ""):
                return hit
            if comparator == "!=":
                return not hit
            return False

        return _any_value(patterns, matches)

    return test


_NUMBER_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "": lambda event, value: event == value,
    "=": lambda event, value: event == value,
    "!=": lambda event, value: event != value,
    "<": lambda event, value: event < value,
    "<=": lambda event, value: event <= value,
    ">": lambda event, value: event > value,
    ">=": lambda event, value: event >= value,
}


def _never(event: float, value: float) -> bool:
    return False


def _compile_number(spec: DataFilter) -> Callable[[PathResult], _Verdict]:
    numbers: list[float | _BadValue] = []
    for value in spec.value:
        number, ok = go_parse_float(value)
        numbers.append(
            number
            if ok
            else _BadValue(f"value '{value}' of the number filter on path '{spec.path}' is not a number")
        )
    compare = _NUMBER_COMPARATORS.get(spec.comparator, _never)

    def test(found: PathResult) -> _Verdict:
        event_value = found.float()
        return _any_value(numbers, lambda number: compare(event_value, number))

    return test


def _compile_bool(spec: DataFilter) -> Callable[[PathResult], _Verdict]:
    booleans: list[bool | _BadValue] = []
    for value in spec.value:
        parsed = go_parse_bool(value)
        booleans.append(
            _BadValue(
                f"value '{value}' of the bool filter on path '{spec.path}' is not a boolean "
                "(use true or false)"
            )
            if parsed is None
            else parsed
        )

    def test(found: PathResult) -> _Verdict:
        event_value = found.bool()
        return _any_value(booleans, lambda value: value == event_value)

    return test


def _compile_unsupported(spec: DataFilter) -> Callable[[PathResult], _Verdict]:
    message = f"unsupported JSON type '{spec.type}' on path '{spec.path}'; use string, number or bool"
    return lambda found: message


_TYPES: dict[str, Callable[[DataFilter], Callable[[PathResult], _Verdict]]] = {
    "string": _compile_string,
    "number": _compile_number,
    "bool": _compile_bool,
}


def _compile_check(spec: DataFilter) -> Callable[[PathResult], _Verdict]:
    if not spec.value:
        return lambda found: f"no values specified for the filter on path '{spec.path}'"
    return _TYPES.get(spec.type, _compile_unsupported)(spec)


class _DataFilters:
    """``filters.data`` with ``dataLogicalOperator``."""

    fatal = False

    def __init__(self, specs: Sequence[DataFilter], operator: str) -> None:
        checks = []
        for spec in specs:
            template = None
            if spec.template:
                try:
                    template = compile_template(spec.template)
                except TemplateError as exc:
                    raise FilterCompileError(f"data filter template on path '{spec.path}': {exc}") from None
            checks.append(_DataCheck(spec.path, _compile_check(spec), template))
        self.any = operator == "or"
        self.checks = tuple(checks)

    def evaluate(self, event: Event) -> Outcome:
        data = event.data
        if data is None:
            return True, None
        errors: list[str] = []
        for check in self.checks:
            found = lookup(data, check.path)
            verdict: _Verdict = (
                f"path '{check.path}' does not exist" if found is None else check.verdict(found)
            )
            if verdict is True:
                if self.any:
                    return True, None
            elif verdict is False:
                if not self.any:
                    return False, None
            elif self.any:
                errors.append(verdict)
            else:
                return False, f"data filter error ({verdict})"
        if not self.any:
            return True, None
        if errors:
            return False, f"data filter errors [{' / '.join(errors)}]"
        return False, None


# --------------------------------------------------------------------------- exprs


@dataclass(frozen=True, slots=True)
class _ExprCheck:
    """One compiled expression filter: the parsed expression and its (name, path) bindings."""

    expression: Expression
    fields: tuple[tuple[str, str], ...]

    def verdict(self, data: object) -> _Verdict | None:
        """True/False, an error message, or None when no field is bound (Argo skips the item)."""
        if not self.fields:
            return None
        params: dict[str, object] = {}
        for name, path in self.fields:
            found = lookup(data, path)
            if found is None:
                return f"path '{path}' does not exist"
            params[name] = found.value
        try:
            return self.expression.test(params)
        except ExprError as exc:
            return str(exc)


def _compile_expr(index: int, spec: ExprFilter) -> _ExprCheck:
    try:
        expression = parse_expression(spec.expr)
    except ExprError as exc:
        raise FilterCompileError(f"exprs[{index}]: {exc}") from None
    return _ExprCheck(expression, tuple((field.name, field.path) for field in spec.fields))


class _ExprFilters:
    """``filters.exprs`` with ``exprLogicalOperator``."""

    fatal = False

    def __init__(self, specs: Sequence[ExprFilter], operator: str) -> None:
        self.any = operator == "or"
        self.checks = tuple(_compile_expr(index, spec) for index, spec in enumerate(specs))

    def evaluate(self, event: Event) -> Outcome:
        data = event.data
        if data is None:
            return True, None
        errors: list[str] = []
        for check in self.checks:
            verdict = check.verdict(data)
            if verdict is None:
                continue
            if verdict is True:
                if self.any:
                    return True, None
            elif verdict is False:
                if not self.any:
                    return False, None
            elif self.any:
                errors.append(verdict)
            else:
                return False, f"expr filter error ({verdict})"
        if not self.any:
            return True, None
        if errors:
            return False, f"expr filter errors [{' / '.join(errors)}]"
        return False, None


# --------------------------------------------------------------------------- context


class _ContextFilter:
    """``filters.context``: exact equality on the non-empty fields Argo compares."""

    fatal = False

    def __init__(self, spec: ContextFilter) -> None:
        self.expected = tuple(
            (name, value)
            for name in ("type", "subject", "source", "datacontenttype")
            if (value := getattr(spec, name))
        )

    def evaluate(self, event: Event) -> Outcome:
        return all(getattr(event, name) == value for name, value in self.expected), None


# --------------------------------------------------------------------------- time

_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})")


def _clock(text: str) -> time:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ValueError(f"'{text}' is not a time of day as HH:MM:SS")
    hour, minute, second = (int(group) for group in match.groups())
    try:
        return time(hour, minute, second)
    except ValueError:
        raise ValueError(f"'{text}' is not a time of day as HH:MM:SS") from None


class _TimeFilter:
    """``filters.time``: a daily window on the event's ``time``."""

    fatal = False

    def __init__(self, spec: TimeFilter) -> None:
        self.error: str | None = None
        self.zone: tzinfo = UTC
        self.start = self.stop = time(0)
        try:
            self.start = _clock(spec.start)
            self.stop = _clock(spec.stop)
            if spec.timezone:
                self.zone = _zone(spec.timezone)
        except ValueError as exc:
            self.error = f"time filter error ({exc})"

    def evaluate(self, event: Event) -> Outcome:
        if self.error is not None:
            return False, self.error
        moment = event.time if event.time.tzinfo is not None else event.time.replace(tzinfo=UTC)
        day = moment.astimezone(self.zone).date()
        start = datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)
        stop = datetime.combine(day, self.stop, tzinfo=self.zone).astimezone(UTC)
        if start < stop:
            return start <= moment < stop, None
        return moment >= start or moment < stop, None


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"invalid timezone '{name}': use an IANA name such as 'Europe/Berlin' or 'UTC' ({exc})"
        ) from None


# --------------------------------------------------------------------------- combination


def _compile_exprs(filters: EventDependencyFilter) -> _Kind | None:
    return _ExprFilters(filters.exprs, filters.expr_logical_operator) if filters.exprs else None


def _compile_data(filters: EventDependencyFilter) -> _Kind | None:
    return _DataFilters(filters.data, filters.data_logical_operator) if filters.data else None


def _compile_context(filters: EventDependencyFilter) -> _Kind | None:
    return _ContextFilter(filters.context) if filters.context is not None else None


def _compile_time(filters: EventDependencyFilter) -> _Kind | None:
    return _TimeFilter(filters.time) if filters.time is not None else None


class _ScriptFilter:
    """``filters.script``: a sandboxed Lua script over ``event`` (the data) that must return ``true``."""

    fatal = True  # Argo: a script error ends the evaluation even with ``or``

    def __init__(self, script: str) -> None:
        try:
            self.script = compile_script_filter(script)
        except LuaError as exc:
            raise FilterCompileError(str(exc)) from None

    def evaluate(self, event: Event) -> Outcome:
        try:
            return self.script.evaluate(event.data), None
        except LuaError as exc:
            return False, f"script filter error: {exc}"


def _compile_script(filters: EventDependencyFilter) -> _Kind | None:
    if filters.script:
        return _ScriptFilter(filters.script)
    return None


# Argo's evaluation order. Each returns the compiled kind, or None when it is not configured.
_KINDS: tuple[Callable[[EventDependencyFilter], _Kind | None], ...] = (
    _compile_exprs,
    _compile_data,
    _compile_context,
    _compile_time,
    _compile_script,
)


class CompiledFilter:
    """The filters of one dependency, ready to judge events."""

    def __init__(self, filters: EventDependencyFilter | None, operator: str = "") -> None:
        self.unfiltered = filters is None
        self.any = operator == "or"
        self.kinds: tuple[_Kind, ...] = ()
        if filters is not None:
            self.kinds = tuple(kind for build in _KINDS if (kind := build(filters)) is not None)

    def evaluate(self, event: Event) -> FilterResult:
        """Judge one event with Argo's rules (see the module docstring)."""
        if self.unfiltered:
            return PASSED
        passed = not self.any
        errors: list[str] = []
        for kind in self.kinds:
            ok, error = kind.evaluate(event)
            if error is not None:
                if kind.fatal or not self.any:
                    return FilterResult(False, (error,))
                errors.append(error)
            passed = (passed or ok) if self.any else (passed and ok)
        return FilterResult(passed, tuple(errors))


def compile_filters(dependency: EventDependency) -> CompiledFilter:
    """Compile the filters of ``dependency`` once; call ``.evaluate(event)`` per event."""
    return CompiledFilter(dependency.filters, dependency.filters_logical_operator)


def evaluate(dependency: EventDependency, event: Event) -> FilterResult:
    """Judge ``event`` against the filters of ``dependency`` (compiles them each time: prefer
    :func:`compile_filters` where the same dependency judges many events)."""
    return compile_filters(dependency).evaluate(event)
