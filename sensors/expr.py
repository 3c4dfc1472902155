"""Expression filters (``filters.exprs[].expr``): the govaluate language, parsed and evaluated.

Argo Events evaluates each ``expr`` with ``github.com/Knetic/govaluate`` (v3, 2017) over parameters
bound from the filter's ``fields`` (gjson values: float numbers, strings, booleans, null, objects,
arrays). :func:`parse` reads the same language and :meth:`Expression.evaluate` gives the same
answers, so an Argo manifest keeps its meaning.

Values
  numbers ``1``, ``2.5``, ``.5``, ``0x1F`` (no exponent, no sign: ``-1`` is a negation); strings in
  ``'...'`` or ``"..."`` (either quote ends a string; a backslash escapes any character); a string that
  reads as a date (``'2014-01-02'``, ``'2014-01-02 14:12:22'``, RFC 3339, ISO 8601, ANSIC, Unix and Ruby
  dates, ``'3:04PM'``) *is* that date, in Unix seconds, as in govaluate (dates without a zone are UTC);
  ``true``, ``false``; parameter names: a letter then letters, digits or ``_`` (``status``), any text
  in brackets (``[response-time]``) or with backslash escapes (``response\\-time``); arrays
  ``(1, 'a', x)``. ``a.B`` reads field ``B`` of a Go struct in govaluate; event values are JSON, so it
  is always an evaluation error (a lowercase ``a.b`` does not parse: write ``[a.b]`` for such a name).

Operators, lowest precedence first; every binary operator is left-associative (``a - b - c`` is
``(a - b) - c``, ``c ? x : y`` is ``(c ? x) : y``), as govaluate's planner makes them:

====  ===========================  ========================================================
 1    ``,``                         builds an array; an array on the left is extended
 2    ``?`` ``:`` ``??``            ``c ? x``: ``x`` if ``c`` is true, else null; ``x : y`` and
                                    ``x ?? y``: ``x`` unless it is null, else ``y``
 3    ``||``                        booleans only; short-circuits
 4    ``&&``                        booleans only; short-circuits
 5    ``== !=``                     deep equality of any values (a number never equals a string)
      ``> < >= <=``                 two numbers, or two strings (byte-wise order)
      ``=~ !~``                     string against a Go regular expression (unanchored search)
      ``in``                        membership in an array, by ``==``
 6    ``& | ^``                     on the numbers as int64
 7    ``<< >>``                     on the numbers as uint64
 8    ``+ -``                       ``+`` concatenates (Go ``%v`` formatting) when a side is a string
 9    ``* / %``                     float arithmetic (``1 / 0`` is ``+Inf``, ``%`` is Go's ``math.Mod``)
10    ``**``                        ``math.Pow``
11    prefix ``-`` ``!`` ``~``      on one value, name or parenthesised expression
====  ===========================  ========================================================

Operators are read as the longest run of operator characters, as govaluate reads them: write
``a == -1`` and ``a || !b``, not ``a==-1`` or ``a||!b``. Any other type combination is an
evaluation error that says which operator and which value, as is a name that no parameter binds
(``No parameter 'x' found.``). Parse errors say where (a 1-based position) and what was expected.

Deliberate differences from govaluate, all of them about expressions that are broken there too:

* rejected when parsed: tokens after a complete expression (govaluate silently ignores them, so
  ``(a) b`` means ``a``), empty parentheses and missing operands (``(a +)``: govaluate fails on every
  evaluation), and method calls ``a.B()``;
* ``in`` compares with ``==`` (govaluate uses Go's ``==`` there, which panics on arrays and objects);
* numbers that do not fit int64/uint64 in bitwise operators convert as Go does on amd64.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, ClassVar

from sensors.goregex import go_regex
from sensors.paths import go_format_float, go_parse_float

__all__ = [
    "Accessor",
    "Binary",
    "Boolean",
    "ExprError",
    "Expression",
    "Node",
    "Number",
    "String",
    "Time",
    "Unary",
    "Variable",
    "parse",
]

_MAX_DEPTH = 128
"""Deepest expression tree accepted (evaluation and unparsing recurse once per level)."""
_MAX_NESTING = 64
"""Deepest parenthesis nesting accepted (parsing recurses a few times per level)."""


class ExprError(ValueError):
    """An expression that does not parse, or that fails on the values it is evaluated with.

    ``position`` is the 1-based character position of a parse error (``None`` for evaluation errors).
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


# --------------------------------------------------------------------------- Go values

_INT64_MIN = -(2**63)
_UINT64_MASK = 2**64 - 1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf if value > 0 else -math.inf


def _go_g(value: float) -> str:
    """Go's ``strconv.FormatFloat(value, 'g', -1, 64)``, which ``fmt``'s ``%v`` uses."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    exponent = int(digits_tuple.exponent)
    point = len(digits) + exponent  # the decimal point sits after this many digits
    exp = point - 1
    if exp < -4 or exp >= 6:  # Go's 'g' with the shortest precision switches at 1e-4 and 1e6 (%e)
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _go_format(value: Any) -> str:
    """Go's ``fmt`` ``%v`` of a JSON value (what ``+`` concatenates)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return _go_g(_as_float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(_go_format(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{_go_format(value[key])}" for key in sorted(value)) + "]"
    return str(value)


def _go_equal(left: Any, right: Any) -> bool:
    """``reflect.DeepEqual`` on JSON values: types must agree, numbers compare as float64."""
    if left is None or right is None:
        return left is right
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) or _is_number(right):
        return _is_number(left) and _is_number(right) and _as_float(left) == _as_float(right)
    if isinstance(left, str) or isinstance(right, str):
        return isinstance(left, str) and isinstance(right, str) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return left is right or (
            len(left) == len(right) and all(_go_equal(a, b) for a, b in zip(left, right, strict=True))
        )
    if isinstance(left, dict) and isinstance(right, dict):
        return left is right or (
            left.keys() == right.keys() and all(_go_equal(left[key], right[key]) for key in left)
        )
    return bool(left == right)


def _describe(value: Any) -> str:
    """A value for an error message: ``"abc" (a string)``, ``1 (a number)``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (a boolean)"
    if _is_number(value):
        number = _as_float(value)
        readable = number == 0 or 1e-6 <= abs(number) < 1e21  # plain digits; else 1e+300
        return f"{go_format_float(number) if readable else _go_g(number)} (a number)"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"{_quote(shown)} (a string)"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _int64(value: float) -> int:
    """Go's ``int64(value)``: truncation; NaN and out-of-range values give the amd64 result."""
    if math.isnan(value) or not _INT64_MIN <= value < 2**63:
        return _INT64_MIN
    return int(value)


def _uint64(value: float) -> int:
    """Go's ``uint64(value)`` as amd64 computes it (negative values wrap around)."""
    if math.isnan(value) or value < 2**63:
        return _int64(value) & _UINT64_MASK
    return (_int64(value - 2**63) ^ _INT64_MIN) & _UINT64_MASK


def _go_divide(left: float, right: float) -> float:
    if right == 0:
        if left == 0 or math.isnan(left):
            return math.nan
        return math.copysign(math.inf, left) * math.copysign(1.0, right)
    return left / right


def _go_mod(left: float, right: float) -> float:
    """Go's ``math.Mod``: the sign of ``left``; NaN for a zero or NaN divisor and an infinite dividend."""
    if right == 0 or math.isinf(left) or math.isnan(left) or math.isnan(right):
        return math.nan
    return math.fmod(left, right)


def _odd_integer(value: float) -> bool:
    return math.isfinite(value) and value.is_integer() and math.fmod(value, 2) != 0


def _go_pow(left: float, right: float) -> float:
    """Go's ``math.Pow``: infinities and NaN where Python raises."""
    try:
        return math.pow(left, right)
    except OverflowError:
        return -math.inf if left < 0 and _odd_integer(right) else math.inf
    except ValueError:  # 0 ** negative, or negative ** fraction
        if left == 0:
            return math.copysign(math.inf, left) if _odd_integer(right) else math.inf
        return math.nan


# --------------------------------------------------------------------------- regular expressions


def _compile_pattern(pattern: str) -> re.Pattern[str] | str:
    """The compiled Go regular expression, or the reason it does not compile."""
    try:
        return go_regex(pattern)
    except (re.error, ValueError, OverflowError, RecursionError, IndexError) as exc:
        return str(exc)


@lru_cache(maxsize=512)
def _runtime_pattern(pattern: str) -> re.Pattern[str] | str:
    return _compile_pattern(pattern)


# --------------------------------------------------------------------------- dates

_FRACTION = r"(?:[.,][0-9]+)?"
_CLOCK = r"(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})" + _FRACTION
_DAY = r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
_WORDS = r"(?P<wd>[A-Za-z]{3}) +(?P<mon>[A-Za-z]{3}) +"
_ZONE_COLON = r"(?P<z>Z|[+-][0-9]{2}:[0-9]{2})"
_ZONE_PLAIN = r"(?P<z>Z|[+-][0-9]{4})"
_ABBREVIATION = r"(?P<abbr>UTC|GMT(?:[+-][0-9]{1,2})?|[+-][0-9]{1,2}|ChST|MeST|WITA|[A-Z]{3}|[A-Z]{3,4}T)"

# govaluate's date layouts (ANSIC, UnixDate, RubyDate, Kitchen, RFC 3339 and its own ISO 8601 list)
# as Go's time.Parse reads them: a space matches one or more spaces, hours take one or two digits,
# fractional seconds may follow the seconds.
_DATE_LAYOUTS = tuple(
    re.compile(layout)
    for layout in (
        _WORDS + r"(?P<d>[0-9]{1,2}) +" + _CLOCK + r" +(?P<y>[0-9]{4})",
        _WORDS + r"(?P<d>[0-9]{1,2}) +" + _CLOCK + r" +" + _ABBREVIATION + r" +(?P<y>[0-9]{4})",
        _WORDS + r"(?P<d>[0-9]{2}) +" + _CLOCK + r" +(?P<z>[+-][0-9]{4}) +(?P<y>[0-9]{4})",
        r"(?P<h12>[0-9]{1,2}):(?P<mi>[0-9]{2})(?P<ampm>AM|PM)",
        _DAY + "T" + _CLOCK + _ZONE_COLON,
        _DAY,
        _DAY + r" +(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{2})",
        _DAY + " +" + _CLOCK,
        _DAY + " +" + _CLOCK + r"(?P<z>[+-][0-9]{2}:[0-9]{2})",
        _DAY + r"T(?P<h>[0-9]{1,2})" + _ZONE_PLAIN,
        _DAY + r"T(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{2})" + _ZONE_PLAIN,
        _DAY + "T" + _CLOCK + _ZONE_PLAIN,
    )
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (year 0 included)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _zone_offset(fields: dict[str, str | None]) -> int | None:
    """Seconds east of UTC of a numeric zone; 0 for ``Z``, zone names and no zone; None if invalid.

    Go's time.Parse gives a zone name it does not know (in a UTC process: every name but UTC) a
    made-up location and keeps the clock reading as UTC; ``GMT+3`` included.
    """
    zone = fields.get("z")
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 24 or minutes > 60:
            return None
        offset = hours * 3600 + minutes * 60
        return -offset if zone[0] == "-" else offset
    abbreviation = fields.get("abbr") or ""
    signed = abbreviation[3:] if abbreviation.startswith("GMT") else abbreviation
    if signed[:1] in ("+", "-") and abs(int(signed)) > 23:
        return None
    return 0


def _date_seconds(fields: dict[str, str | None]) -> float | None:
    """Unix seconds of the matched layout's fields, or None when a field is out of range."""
    minute, second = int(fields.get("mi") or 0), int(fields.get("s") or 0)
    if fields.get("h12") is not None:  # Kitchen (3:04PM) is a time on 0000-01-01
        hour = int(fields["h12"] or 0)
        if hour > 12:
            return None
        hour = hour % 12 + (12 if fields["ampm"] == "PM" else 0)
        year, month, day = 0, 1, 1
    else:
        hour = int(fields.get("h") or 0)
        year, day = int(fields["y"] or 0), int(fields["d"] or 0)
        named = (fields.get("mon") or "").lower()
        weekday = (fields.get("wd") or "").lower()
        if not named:
            month = int(fields["mo"] or 0)
        elif named in _MONTHS and weekday in _WEEKDAYS:
            month = _MONTHS.index(named) + 1
        else:
            return None
        if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month) and hour <= 23):
            return None
    offset = _zone_offset(fields)
    if offset is None or minute > 59 or second > 59:
        return None
    return float(_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset)


def _parse_date(text: str) -> float | None:
    """The Unix seconds of a string literal that reads as a date in one of govaluate's layouts."""
    for layout in _DATE_LAYOUTS:
        match = layout.fullmatch(text)
        if match is not None:
            seconds = _date_seconds(match.groupdict())
            if seconds is not None:
                return seconds
    return None


# --------------------------------------------------------------------------- tokens

_START = "START"
_NUMBER = "NUMBER"
_BOOLEAN = "BOOLEAN"
_STRING = "STRING"
_DATE = "DATE"
_NAME = "NAME"
_ACCESSOR = "ACCESSOR"
_OPEN = "OPEN"
_CLOSE = "CLOSE"
_PREFIX = "PREFIX"
_MODIFIER = "MODIFIER"
_COMPARATOR = "COMPARATOR"
_LOGICAL = "LOGICAL"
_TERNARY = "TERNARY"
_SEPARATOR = "SEPARATOR"
_END = "END"

_PREFIX_OPS = frozenset({"-", "!", "~"})
_MODIFIER_OPS = frozenset({"+", "-", "*", "/", "%", "**", "&", "|", "^", ">>", "<<"})
_LOGICAL_OPS = frozenset({"&&", "||"})
_COMPARATOR_OPS = frozenset({"==", "!=", ">", ">=", "<", "<=", "=~", "!~", "in"})
_TERNARY_OPS = frozenset({"?", ":", "??"})
_REGEX_OPS = frozenset({"=~", "!~"})

_VALUES = frozenset({_NUMBER, _BOOLEAN, _STRING, _DATE, _NAME, _ACCESSOR})
_OPERATOR_KINDS = frozenset({_MODIFIER, _COMPARATOR, _LOGICAL, _TERNARY, _SEPARATOR})

# govaluate's lexer states: which token kind may follow which (lexerState.go).
_AFTER_VALUE = frozenset({_MODIFIER, _COMPARATOR, _LOGICAL, _CLOSE, _TERNARY, _SEPARATOR})
_NEXT: dict[str, frozenset[str]] = {
    _START: frozenset({_PREFIX, _OPEN}) | _VALUES,
    _OPEN: frozenset({_PREFIX, _OPEN, _CLOSE}) | _VALUES,
    _CLOSE: frozenset({_OPEN, _CLOSE}) | _OPERATOR_KINDS | (_VALUES - {_ACCESSOR}),
    _NUMBER: _AFTER_VALUE,
    _BOOLEAN: _AFTER_VALUE,
    _STRING: _AFTER_VALUE,
    _NAME: _AFTER_VALUE,
    _DATE: _AFTER_VALUE - {_TERNARY},
    _ACCESSOR: _AFTER_VALUE | {_OPEN},
    _MODIFIER: frozenset({_PREFIX, _OPEN, _CLOSE}) | (_VALUES - {_DATE}),
    _COMPARATOR: frozenset({_PREFIX, _OPEN, _CLOSE}) | _VALUES,
    _LOGICAL: frozenset({_PREFIX, _OPEN, _CLOSE}) | _VALUES,
    _PREFIX: frozenset({_NUMBER, _BOOLEAN, _NAME, _ACCESSOR, _OPEN, _CLOSE}),
    _TERNARY: frozenset({_PREFIX, _OPEN, _SEPARATOR}) | _VALUES,
    _SEPARATOR: frozenset({_PREFIX, _OPEN}) | _VALUES,
}
_CAN_END = frozenset({_CLOSE}) | _VALUES

_EXPECT_VALUE = "a value, a name or '('"
_EXPECT_OPERATOR = "an operator, ')', ',' or the end of the expression"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    value: Any  # float, str, bool, tuple of accessor parts, or the operator
    start: int  # 0-based offset in the text
    source: str  # the text of the token as written


def _syntax_error(text: str, offset: int, problem: str, expected: str) -> ExprError:
    where = "at the end" if offset >= len(text) else f"at position {offset + 1}"
    return ExprError(f"cannot parse expression {text!r}: {problem} {where}; expected {expected}", offset + 1)


def _describe_token(token: _Token) -> str:
    kind = token.kind
    if kind == _END:  # pragma: no cover - the lexer's checks leave no way to stop early
        return "the end of the expression"
    if kind in (_OPEN, _CLOSE, _SEPARATOR):
        return f"'{token.source}'"
    if kind in (_NAME, _ACCESSOR):
        return f"name {token.source}"
    if kind == _NUMBER:
        return f"number {token.source}"
    if kind == _STRING:
        return f"string {token.source}"
    if kind == _DATE:
        return f"date {token.source}"
    if kind == _BOOLEAN:
        return token.source
    return f"operator '{token.source}'"


def _is_space(char: str) -> bool:
    """Go's ``unicode.IsSpace`` (Python also counts the ASCII separators 0x1c-0x1f)."""
    return char.isspace() and char not in "\x1c\x1d\x1e\x1f"


def _is_numeric(char: str) -> bool:
    return char.isdecimal() or char == "."


def _is_hex(char: str) -> bool:
    lowered = char.lower()
    return char.isdecimal() or (len(lowered) == 1 and lowered in "abcdef")


def _is_name_char(char: str) -> bool:
    return char.isalpha() or char.isdecimal() or char in "_."


def _is_symbol_char(char: str) -> bool:
    return not (char.isdecimal() or char.isalpha() or char in "()[]'\"")


def _is_not_quote(char: str) -> bool:
    return char not in "'\""


class _Lexer:
    """govaluate's tokenizer (parsing.go): the same tokens, from the same characters."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[_Token] = []

    def _read(self, pos: int, accept: Callable[[str], bool], *, whitespace: bool) -> tuple[str, int, bool]:
        """Read from ``pos`` while ``accept`` holds; a backslash escapes the next character.

        ``whitespace``: spaces belong to the text (strings, bracketed names); otherwise a space ends
        a non-empty read and is skipped before one. Returns the text, where reading stopped (at the
        rejected character) and whether a rejected character (rather than the end) stopped it.
        """
        text = self.text
        out: list[str] = []
        while pos < len(text):
            char = text[pos]
            if char == "\\":
                if pos + 1 >= len(text):
                    raise _syntax_error(
                        text, pos, "a backslash escapes nothing", "a character after the backslash"
                    )
                out.append(text[pos + 1])
                pos += 2
                continue
            if not whitespace and _is_space(char):
                if out:
                    return "".join(out), pos + 1, True
                pos += 1
                continue
            if not accept(char):
                return "".join(out), pos, True
            out.append(char)
            pos += 1
        return "".join(out), pos, False

    def tokenize(self) -> list[_Token]:
        text = self.text
        pos = 0
        state = _START
        while pos < len(text):
            char = text[pos]
            if _is_space(char):
                pos += 1
                continue
            if _is_numeric(char):
                token, pos = self._number(pos)
            elif char == ",":
                token, pos = _Token(_SEPARATOR, ",", pos, ","), pos + 1
            elif char == "[":
                token, pos = self._bracketed(pos)
            elif char.isalpha():
                token, pos = self._word(pos)
            elif not _is_not_quote(char):
                token, pos = self._string(pos)
            elif char == "(":
                token, pos = _Token(_OPEN, "(", pos, "("), pos + 1
            elif char == ")":
                token, pos = _Token(_CLOSE, ")", pos, ")"), pos + 1
            else:
                token, pos = self._symbol(pos, state)
            self.tokens.append(token)
            state = token.kind
        return self.tokens

    def _number(self, start: int) -> tuple[_Token, int]:
        text = self.text
        if text[start] == "0" and start + 2 < len(text) and text[start + 1] == "x":
            digits, pos, _ = self._read(start + 2, _is_hex, whitespace=False)
            if not re.fullmatch(r"[0-9a-fA-F]+", digits) or int(digits, 16) > _UINT64_MASK:
                raise _syntax_error(
                    text,
                    start,
                    f"'{text[start:pos].strip()}' is not a hexadecimal number",
                    "hexadecimal digits (0-9, a-f) after 0x, at most 0xFFFFFFFFFFFFFFFF",
                )
            return _Token(_NUMBER, float(int(digits, 16)), start, text[start:pos].strip()), pos
        digits, pos, _ = self._read(start, _is_numeric, whitespace=False)
        value, ok = go_parse_float(digits)
        if not ok:
            raise _syntax_error(
                text, start, f"'{digits}' is not a number", "a number such as 12 or 0.5 (no exponent)"
            )
        return _Token(_NUMBER, value, start, text[start:pos].strip()), pos

    def _bracketed(self, start: int) -> tuple[_Token, int]:
        name, pos, closed = self._read(start + 1, lambda char: char != "]", whitespace=True)
        if not closed:
            raise _syntax_error(
                self.text, start, "the name in brackets that starts here is not closed", "']'"
            )
        return _Token(_NAME, name, start, self.text[start : pos + 1]), pos + 1

    def _string(self, start: int) -> tuple[_Token, int]:
        value, pos, closed = self._read(start + 1, _is_not_quote, whitespace=True)
        if not closed:
            raise _syntax_error(
                self.text,
                start,
                "the string that starts here is not closed",
                "a closing quote (write \\' or \\\" for a quote inside a string)",
            )
        source = self.text[start : pos + 1]
        seconds = _parse_date(value)
        if seconds is not None:
            return _Token(_DATE, (value, seconds), start, source), pos + 1
        return _Token(_STRING, value, start, source), pos + 1

    def _word(self, start: int) -> tuple[_Token, int]:
        text = self.text
        word, pos, _ = self._read(start, _is_name_char, whitespace=False)
        source = text[start:pos].rstrip()
        if word in ("true", "false"):
            return _Token(_BOOLEAN, word == "true", start, source), pos
        if word in ("in", "IN"):
            return _Token(_COMPARATOR, "in", start, source), pos
        if "." not in word:
            return _Token(_NAME, word, start, source), pos
        if word.endswith("."):
            raise _syntax_error(
                text,
                start,
                f"'{word}' ends with a dot",
                "a field name after the dot (write [name.] for such a name)",
            )
        parts = tuple(word.split("."))
        for part in parts[1:]:
            first = part[:1]
            upper = first.upper()
            if upper != first and len(upper) == 1:
                raise _syntax_error(
                    text,
                    start,
                    f"'{word}' reads the unexported field '{part}' of parameter '{parts[0]}'",
                    f"a parameter name: write [{word}] for a name with dots, or bind the nested path "
                    "as a field of its own",
                )
        return _Token(_ACCESSOR, parts, start, source), pos

    def _symbol(self, start: int, state: str) -> tuple[_Token, int]:
        symbol, pos, _ = self._read(start, _is_symbol_char, whitespace=False)
        source = self.text[start:pos].rstrip()
        if _PREFIX in _NEXT[state] and symbol in _PREFIX_OPS:
            return _Token(_PREFIX, symbol, start, source), pos
        for kind, symbols in (
            (_MODIFIER, _MODIFIER_OPS),
            (_LOGICAL, _LOGICAL_OPS),
            (_COMPARATOR, _COMPARATOR_OPS),
            (_TERNARY, _TERNARY_OPS),
        ):
            if symbol in symbols:
                return _Token(kind, symbol, start, source), pos
        shown = symbol or self.text[start]
        raise _syntax_error(
            self.text,
            start,
            f"unknown operator '{shown}'",
            "one of + - * / % ** & | ^ << >> == != > >= < <= =~ !~ in && || ! ~ ? : ?? , "
            "(put spaces between operators: a == -1, not a==-1; names start with a letter or use [brackets])",
        )


def _check_parentheses(text: str, tokens: list[_Token]) -> None:
    opened: list[_Token] = []
    for token in tokens:
        if token.kind == _OPEN:
            opened.append(token)
        elif token.kind == _CLOSE:
            if not opened:
                raise _syntax_error(text, token.start, "')' closes nothing", "a '(' before it")
            opened.pop()
    if opened:
        raise _syntax_error(text, opened[-1].start, "'(' is never closed", "a matching ')'")


def _check_order(text: str, tokens: list[_Token]) -> None:
    """govaluate's ``checkExpressionSyntax``: each token kind may follow only certain kinds."""
    state = _START
    previous: _Token | None = None
    for token in tokens:
        if token.kind not in _NEXT[state]:
            raise _order_error(text, previous, token)
        state = token.kind
        previous = token
    if previous is None:
        raise _syntax_error(text, len(text), "the expression is empty", _EXPECT_VALUE)
    if state not in _CAN_END:
        raise _syntax_error(
            text, len(text), f"the expression stops after {_describe_token(previous)}", _EXPECT_VALUE
        )


def _order_error(text: str, previous: _Token | None, token: _Token) -> ExprError:
    described = _describe_token(token)
    if previous is None:
        return _syntax_error(text, token.start, f"unexpected {described}", _EXPECT_VALUE)
    after = f"{described} after {_describe_token(previous)}"
    if previous.kind == _NAME and token.kind == _OPEN:
        return _syntax_error(
            text,
            token.start,
            f"'{previous.source}(' calls a function, and Argo Events defines none",
            "an operator between the name and '('",
        )
    if previous.kind == _PREFIX:
        return _syntax_error(
            text, token.start, f"unexpected {after}", "a number, a name, true, false or '(' after a prefix"
        )
    if token.kind == _DATE:
        return _syntax_error(
            text,
            token.start,
            f"unexpected {after}",
            "a value that is not a date: put the date in parentheses",
        )
    if previous.kind == _DATE and token.kind == _TERNARY:
        return _syntax_error(
            text, token.start, f"unexpected {after}", "another operator: put the date in parentheses"
        )
    expected = _EXPECT_OPERATOR if previous.kind in _CAN_END else _EXPECT_VALUE
    return _syntax_error(text, token.start, f"unexpected {after}", expected)


def _check_patterns(text: str, tokens: list[_Token]) -> None:
    """govaluate compiles a string literal right after ``=~``/``!~`` when parsing."""
    for index, token in enumerate(tokens[:-1]):
        following = tokens[index + 1]
        if token.kind == _COMPARATOR and token.value in _REGEX_OPS and following.kind == _STRING:
            compiled = _compile_pattern(following.value)
            if isinstance(compiled, str):
                raise _syntax_error(
                    text,
                    following.start,
                    f"the regular expression {following.source} does not compile ({compiled})",
                    "a Go (RE2) regular expression",
                )


# --------------------------------------------------------------------------- tree


def _quote(text: str) -> str:
    return '"' + re.sub(r"([\\\"'])", r"\\\1", text) + '"'


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    depth: ClassVar[int] = 1

    def evaluate(self, params: Mapping[str, Any]) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class String:
    value: str
    depth: ClassVar[int] = 1

    def evaluate(self, params: Mapping[str, Any]) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class Time:
    """A string literal that reads as a date: its Unix seconds."""

    text: str
    seconds: float
    depth: ClassVar[int] = 1

    def evaluate(self, params: Mapping[str, Any]) -> Any:
        return self.seconds


@dataclass(frozen=True, slots=True)
class Boolean:
    value: bool
    depth: ClassVar[int] = 1

    def evaluate(self, params: Mapping[str, Any]) -> Any:
        return self.value


def _lookup(params: Mapping[str, Any], name: str) -> Any:
    try:
        value = params[name]
    except KeyError:
        bound = ", ".join(sorted(params)[:20]) or "none"
        raise ExprError(f"No parameter '{name}' found. (bound: {bound})") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return _as_float(value)  # govaluate reads every number as float64
    return value


@dataclass(frozen=True, slots=True)
class Variable:
    """A parameter, bound by name at evaluation."""

    name: str
    depth: ClassVar[int] = 1

    def evaluate(self, params: Mapping[str, Any]) -> Any:
        return _lookup(params, self.name)


@dataclass(frozen=True, slots=True)
class Accessor:
    """``a.B``: a field of a Go struct parameter; on JSON values always an error."""

    parts: tuple[str, ...]
    depth: ClassVar[int] = 1

    def evaluate(self, params: Mapping[str, Any]) -> Any:
        _lookup(params, self.parts[0])
        raise ExprError(
            f"Unable to access '{self.parts[1]}', '{self.parts[0]}' is not a struct: event values are "
            f"JSON; bind the nested path with a field of its own instead of '{'.'.join(self.parts)}'"
        )


def _unary_minus(value: Any) -> Any:
    if not _is_number(value):
        raise ExprError(f"prefix '-' needs a number, not {_describe(value)}")
    return -_as_float(value)


def _unary_not(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ExprError(f"prefix '!' needs a boolean, not {_describe(value)}")
    return not value


def _unary_invert(value: Any) -> Any:
    if not _is_number(value):
        raise ExprError(f"prefix '~' needs a number, not {_describe(value)}")
    return float(~_int64(_as_float(value)))


_UNARY: dict[str, Callable[[Any], Any]] = {"-": _unary_minus, "!": _unary_not, "~": _unary_invert}


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node
    depth: int = field(init=False, compare=False, repr=False)
    _apply: Callable[[Any], Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in _UNARY:
            raise ExprError(f"unknown prefix operator {self.op!r}; use one of - ! ~")
        object.__setattr__(self, "depth", self.operand.depth + 1)
        object.__setattr__(self, "_apply", _UNARY[self.op])

    def evaluate(self, params: Mapping[str, Any]) -> Any:
        return self._apply(self.operand.evaluate(params))


def _numbers(op: str, left: Any, right: Any) -> tuple[float, float]:
    for side, value in (("left", left), ("right", right)):
        if not _is_number(value):
            raise ExprError(f"'{op}' needs two numbers, but its {side} side is {_describe(value)}")
    return _as_float(left), _as_float(right)


def _booleans(op: str, left: Any, right: Any) -> None:
    for side, value in (("left", left), ("right", right)):
        if not isinstance(value, bool):
            raise ExprError(f"'{op}' needs two booleans, but its {side} side is {_describe(value)}")


def _arithmetic(op: str, compute: Callable[[float, float], float]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        return compute(*_numbers(op, left, right))

    return apply


def _bitwise(op: str, compute: Callable[[int, int], int]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        a, b = _numbers(op, left, right)
        return float(compute(_int64(a), _int64(b)))

    return apply


def _shift(op: str, compute: Callable[[int, int], int]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        a, b = _numbers(op, left, right)
        count = _uint64(b)
        return float(compute(_uint64(a), count) & _UINT64_MASK if count < 64 else 0)

    return apply


def _add(left: Any, right: Any) -> Any:
    if _is_number(left) and _is_number(right):
        return _as_float(left) + _as_float(right)
    if isinstance(left, str) or isinstance(right, str):
        return _go_format(left) + _go_format(right)
    raise ExprError(f"'+' adds two numbers or joins strings, not {_describe(left)} and {_describe(right)}")


def _ordering(op: str, compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        if _is_number(left) and _is_number(right):
            return compare(_as_float(left), _as_float(right))
        if isinstance(left, str) and isinstance(right, str):
            return compare(left, right)
        raise ExprError(
            f"'{op}' compares two numbers or two strings, not {_describe(left)} and {_describe(right)}"
        )

    return apply


def _logical(op: str) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        _booleans(op, left, right)
        return left and right if op == "&&" else left or right

    return apply


def _membership(left: Any, right: Any) -> Any:
    if not isinstance(right, list):
        raise ExprError(f"'in' needs an array on its right, such as (1, 2), not {_describe(right)}")
    return any(_go_equal(left, item) for item in right)


def _ternary_if(left: Any, right: Any) -> Any:
    if not isinstance(left, bool):
        raise ExprError(f"'?' needs a boolean on its left, not {_describe(left)}")
    return right if left else None


def _separate(left: Any, right: Any) -> Any:
    return [*left, right] if isinstance(left, list) else [left, right]


def _matcher(op: str, literal: re.Pattern[str] | None) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        if not isinstance(left, str):
            raise ExprError(f"'{op}' needs a string on its left, not {_describe(left)}")
        pattern: re.Pattern[str] | str
        if literal is not None:
            pattern = literal
        elif isinstance(right, str):
            pattern = _runtime_pattern(right)
            if isinstance(pattern, str):
                raise ExprError(f"'{op}' cannot compile the regular expression {_quote(right)}: {pattern}")
        else:
            raise ExprError(
                f"'{op}' needs a regular expression (a string) on its right, not {_describe(right)}"
            )
        found = pattern.search(left) is not None
        return found if op == "=~" else not found

    return apply


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    ",": _separate,
    "?": _ternary_if,
    ":": lambda left, right: right,  # reached only when the left side is null (see Binary.evaluate)
    "??": lambda left, right: right,
    "||": _logical("||"),
    "&&": _logical("&&"),
    "==": _go_equal,
    "!=": lambda left, right: not _go_equal(left, right),
    ">": _ordering(">", lambda a, b: a > b),
    "<": _ordering("<", lambda a, b: a < b),
    ">=": _ordering(">=", lambda a, b: a >= b),
    "<=": _ordering("<=", lambda a, b: a <= b),
    "in": _membership,
    "=~": _matcher("=~", None),  # Binary compiles a literal pattern once and builds its own
    "!~": _matcher("!~", None),
    "&": _bitwise("&", lambda a, b: a & b),
    "|": _bitwise("|", lambda a, b: a | b),
    "^": _bitwise("^", lambda a, b: a ^ b),
    "<<": _shift("<<", lambda a, b: a << b),
    ">>": _shift(">>", lambda a, b: a >> b),
    "+": _add,
    "-": _arithmetic("-", lambda a, b: a - b),
    "*": _arithmetic("*", lambda a, b: a * b),
    "/": _arithmetic("/", _go_divide),
    "%": _arithmetic("%", _go_mod),
    "**": _arithmetic("**", _go_pow),
}

_LEVELS: dict[str, int] = {
    ",": 1,
    **dict.fromkeys(_TERNARY_OPS, 2),
    "||": 3,
    "&&": 4,
    **dict.fromkeys(_COMPARATOR_OPS, 5),
    **dict.fromkeys(("&", "|", "^"), 6),
    **dict.fromkeys(("<<", ">>"), 7),
    **dict.fromkeys(("+", "-"), 8),
    **dict.fromkeys(("*", "/", "%"), 9),
    "**": 10,
}


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node
    depth: int = field(init=False, compare=False, repr=False)
    _apply: Callable[[Any, Any], Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in _BINARY:
            raise ExprError(f"unknown operator {self.op!r}")
        object.__setattr__(self, "depth", max(self.left.depth, self.right.depth) + 1)
        apply = _BINARY[self.op]
        if self.op in _REGEX_OPS:
            literal = _compile_pattern(self.right.value) if isinstance(self.right, String) else None
            apply = _matcher(self.op, literal if isinstance(literal, re.Pattern) else None)
        object.__setattr__(self, "_apply", apply)

    def evaluate(self, params: Mapping[str, Any]) -> Any:
        left = self.left.evaluate(params)
        op = self.op
        if op == "&&":
            if left is False:
                return False
        elif op == "||":
            if left is True:
                return True
        elif op in (":", "??"):
            if left is not None:
                return left
        elif op == "?" and left is False:
            return None
        return self._apply(left, self.right.evaluate(params))


Node = Number | String | Time | Boolean | Variable | Accessor | Unary | Binary


# --------------------------------------------------------------------------- unparse

_NAME_KEYWORDS = frozenset({"true", "false", "in", "IN"})


def _name_text(name: str) -> str:
    bare = (
        name[:1].isalpha()
        and all(char.isalpha() or char.isdecimal() or char == "_" for char in name[1:])
        and name not in _NAME_KEYWORDS
    )
    return name if bare else "[" + re.sub(r"([\\\]])", r"\\\1", name) + "]"


def _accessor_text(parts: tuple[str, ...]) -> str:
    return ".".join(
        "".join(char if char.isalpha() or char.isdecimal() or char == "_" else "\\" + char for char in part)
        for part in parts
    )


def _render(node: Node) -> tuple[str, Node | None, Node | None]:
    """Canonical text of ``node``, with the literal it starts with and ends with (None: not a literal).

    The literals matter because govaluate's lexer refuses a date after an arithmetic operator or
    before ``?``/``:``/``??`` and compiles a string right after ``=~``/``!~``: such neighbours are
    parenthesised.
    """
    if isinstance(node, Number):
        return go_format_float(node.value), node, node
    if isinstance(node, String):
        return _quote(node.value), node, node
    if isinstance(node, Time):
        return _quote(node.text), node, node
    if isinstance(node, Boolean):
        return ("true" if node.value else "false"), node, node
    if isinstance(node, Variable):
        return _name_text(node.name), None, None
    if isinstance(node, Accessor):
        return _accessor_text(node.parts), None, None
    if isinstance(node, Unary):
        text, _, _ = _render(node.operand)
        # a prefix takes one value, a name or '(' ... ')', and neither a string nor a date (lexer rule)
        if not isinstance(node.operand, Number | Boolean | Variable | Accessor):
            text = f"({text})"
        return f"{node.op}{text}", None, None
    level = _LEVELS[node.op]
    left, left_first, left_last = _render(node.left)
    if (isinstance(node.left, Binary) and _LEVELS[node.left.op] < level) or (
        node.op in _TERNARY_OPS and isinstance(left_last, Time)
    ):
        left, left_first = f"({left})", None
    right, right_first, right_last = _render(node.right)
    if (
        (isinstance(node.right, Binary) and _LEVELS[node.right.op] <= level)
        or (node.op in _MODIFIER_OPS and isinstance(right_first, Time))
        or (
            node.op in _REGEX_OPS
            and isinstance(right_first, String)
            and isinstance(_compile_pattern(right_first.value), str)
        )
    ):
        right, right_last = f"({right})", None
    joint = ", " if node.op == "," else f" {node.op} "
    return f"{left}{joint}{right}", left_first, right_last


# --------------------------------------------------------------------------- parser


class _Parser:
    """Precedence climbing over the checked tokens (every level is left-associative)."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = [*tokens, _Token(_END, None, len(text), "")]
        self.pos = 0
        self.nesting = 0

    def parse(self) -> Node:
        node = self._binary(1)
        token = self.tokens[self.pos]
        if token.kind != _END:
            raise _syntax_error(
                self.text, token.start, f"unexpected {_describe_token(token)}", _EXPECT_OPERATOR
            )
        return node

    def _limit(self, node: Node, token: _Token) -> Node:
        if node.depth > _MAX_DEPTH:
            raise _syntax_error(
                self.text,
                token.start,
                f"the expression nests deeper than {_MAX_DEPTH} levels",
                "a smaller expression (split it into several exprs)",
            )
        return node

    def _binary(self, min_level: int) -> Node:
        left = self._prefixed()
        while True:
            token = self.tokens[self.pos]
            if token.kind not in _OPERATOR_KINDS or _LEVELS[token.value] < min_level:
                return left
            self.pos += 1
            right = self._binary(_LEVELS[token.value] + 1)
            left = self._limit(Binary(token.value, left, right), token)

    def _prefixed(self) -> Node:
        token = self.tokens[self.pos]
        if token.kind != _PREFIX:
            return self._atom()
        self.pos += 1
        return self._limit(Unary(token.value, self._atom()), token)

    def _atom(self) -> Node:
        token = self.tokens[self.pos]
        self.pos += 1
        kind = token.kind
        if kind == _NUMBER:
            return Number(token.value)
        if kind == _STRING:
            return String(token.value)
        if kind == _DATE:
            return Time(*token.value)
        if kind == _BOOLEAN:
            return Boolean(token.value)
        if kind == _NAME:
            return Variable(token.value)
        if kind == _ACCESSOR:
            if self.tokens[self.pos].kind == _OPEN:
                raise _syntax_error(
                    self.text,
                    self.tokens[self.pos].start,
                    f"'{token.source}(' calls a method, which JSON values do not have",
                    "an operator",
                )
            return Accessor(token.value)
        if kind == _OPEN:
            self.nesting += 1
            if self.nesting > _MAX_NESTING:
                raise _syntax_error(
                    self.text,
                    token.start,
                    f"parentheses nest deeper than {_MAX_NESTING} levels",
                    "a smaller expression (split it into several exprs)",
                )
            inner = self._binary(1)
            closing = self.tokens[self.pos]
            if closing.kind != _CLOSE:
                raise _syntax_error(
                    self.text, closing.start, f"unexpected {_describe_token(closing)}", "an operator or ')'"
                )
            self.pos += 1
            self.nesting -= 1
            return inner
        raise _syntax_error(self.text, token.start, f"unexpected {_describe_token(token)}", _EXPECT_VALUE)


# --------------------------------------------------------------------------- expression


def _names(node: Node) -> frozenset[str]:
    if isinstance(node, Variable):
        return frozenset({node.name})
    if isinstance(node, Accessor):
        return frozenset({node.parts[0]})
    if isinstance(node, Unary):
        return _names(node.operand)
    if isinstance(node, Binary):
        return _names(node.left) | _names(node.right)
    return frozenset()


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression: evaluate it against parameters, list its names, print it back.

    Build one with :func:`parse` (or from a tree: ``Expression(Binary("==", Variable("a"),
    Number(1.0)))``); it is immutable and safe to share.
    """

    root: Node
    text: str = field(default="", compare=False)
    variables: frozenset[str] = field(init=False, compare=False)
    """The parameter names the expression uses."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "variables", _names(self.root))
        if not self.text:
            object.__setattr__(self, "text", self.unparse())

    def evaluate(self, params: Mapping[str, Any]) -> Any:
        """The value of the expression with ``params`` bound (JSON values; ints count as floats).

        Raises :class:`ExprError` naming the expression and the problem: a type error, or a name
        that ``params`` does not bind.
        """
        try:
            return self.root.evaluate(params)
        except ExprError as exc:
            raise ExprError(f"{self.text!r}: {exc}") from None
        except RecursionError:
            raise ExprError(f"{self.text!r}: the values nest too deeply to compare") from None

    def test(self, params: Mapping[str, Any]) -> bool:
        """:meth:`evaluate`, requiring a boolean (what a filter needs)."""
        result = self.evaluate(params)
        if not isinstance(result, bool):
            raise ExprError(
                f"{self.text!r} gave {_describe(result)}; a filter expression must give true or false"
            )
        return result

    def unparse(self) -> str:
        """Canonical text that parses back to the same tree (minimal parentheses, spaced operators)."""
        return _render(self.root)[0]

    def __str__(self) -> str:
        return self.unparse()


@lru_cache(maxsize=1024)
def parse(text: str) -> Expression:
    """Parse a govaluate expression; raises :class:`ExprError` saying where and what was expected."""
    try:
        tokens = _Lexer(text).tokenize()
        _check_parentheses(text, tokens)
        _check_order(text, tokens)
        _check_patterns(text, tokens)
        root = _Parser(text, tokens).parse()
    except RecursionError:  # pragma: no cover - the nesting limits stop well before
        raise ExprError(f"cannot parse expression {text!r}: it nests too deeply") from None
    return Expression(root, text)
