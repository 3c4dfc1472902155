"""Go ``text/template`` with the sprig functions, as Argo Events evaluates them.

Argo Events renders Go templates (``text/template`` with ``sprig.FuncMap()``, sprig v3.2.3) in a data
filter's ``template`` (``.Input`` is the path result as a string), a parameter's ``dataTemplate`` /
``contextTemplate`` (``.Input`` is the parsed event data / context) and, later, ``generateName``. This
module parses such a template once (:func:`compile_template`, cached) and renders it on data
(:meth:`Template.render`); callers pass the dot value, ``{"Input": value}``.

Values are what Go's ``encoding/json`` (gjson ``Value()``) makes of JSON: ``float64`` numbers (a
Python ``int`` in the data is taken as a JSON number: ``{{ .n }}`` for 3 prints ``3``, for 1234567
prints ``1.234567e+06`` as Go does), strings, bools, ``nil``, ``[]interface {}`` and
``map[string]interface {}``. The data is copied per render, so sprig's ``set``/``unset`` never change
the caller's data.

The language (Go 1.21+): text; ``{{ pipeline }}``; ``{{-``/``-}}`` trim markers; ``{{/* comments */}}``;
``if``/``else if``/``else``/``end``; ``range`` over lists and maps (sorted keys) with ``$i, $v :=`` and
``else``; ``break``/``continue``; ``with``/``else with``/``else``; ``$x := ...`` and ``$x = ...``; ``$``;
fields ``.a.b``, ``$x.a``, ``(pipeline).a``; pipes (the piped value is the *last* argument); string
(Go escapes), raw string, char, number, ``true``/``false``/``nil`` literals. ``define``/``template``/
``block`` are rejected: Argo templates have no named templates.

Go semantics kept: a missing map key (and JSON null) prints ``<no value>``; values print as ``fmt``'s
``%v`` (``map[a:1 b:2]`` with sorted keys, ``[1 2 3]``, ``1e+21``); truthiness; ``eq``/``lt``... type
rules (``eq .n 3`` on a JSON number is an error: it is a float64, write ``3.0``); function argument
types (``upper`` on a number is an error: convert with ``toString``); int vs int64 (sprig's arithmetic
returns int64, which ``substr``/``trunc`` do not accept, exactly as in Argo).

Functions: the Go builtins (``and or not len index print printf println html js urlquery eq ne lt
le gt ge``; ``printf`` implements Go's ``fmt`` verbs and flags) and sprig's pure functions
(:data:`FUNCTIONS` lists them), and triggergate's ``parseKey PARSER KEY`` (the fields of an object key,
:mod:`sensors.keyparse`). Sprig functions that read the clock (``now``, ``date``...), are random
(``uuidv4``, ``randAlphaNum``...), read the environment (``env``) or do network I/O are rejected when
the template is compiled: a replayed event must render the same output.

Deliberate differences from Go/sprig:

* the number of arguments of every call is checked when the template is compiled, not when it runs
  (Go accepts a wrong call in a branch that never runs);
* ``nospace``, ``initials`` and ``untitle`` work on characters; goutils works on bytes and mangles
  non-ASCII text;
* ``keys`` and ``values`` return sorted keys (Go's map order is random);
* ``camelcase`` of one letter keeps it (xstrings v1.3 drops the last rune);
* upper/lower/title use Unicode simple case mappings per character, as Go does, but from Python's
  tables (a few characters whose only mapping is a full one are left as they are);
* regular expressions are Python's ``re`` after a translation of RE2 syntax
  (:func:`sensors.goregex.go_regex`); the match loops (``regexFindAll``, ``regexReplaceAll``,
  ``regexSplit``) follow Go's rules for empty matches. Python backtracks: a pathological pattern can
  be slow on crafted data;
* a render stops with :class:`TemplateError` after :data:`MAX_STEPS` steps or :data:`MAX_OUTPUT`
  characters of output (Go has no limit);
* strings are Python ``str``: byte-based Go functions (``len``, ``index`` on a string, ``substr``,
  ``trunc``, ``abbrev``) count UTF-8 bytes, and a cut inside a character or ``b64dec`` of bytes that are
  not UTF-8 gives U+FFFD where Go would keep raw bytes.

Errors (:class:`TemplateError`) say what is wrong and where: ``unknown function "uper" at 1:4 in
'{{ uper .Input }}'``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import difflib
import functools
import hashlib
import json
import math
import re
import unicodedata
import urllib.parse
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Final, NoReturn, TypeVar

from sensors.goregex import go_regex
from sensors.keyparse import PARSERS
from sensors.paths import go_parse_float

__all__ = [
    "FORBIDDEN_FUNCTIONS",
    "FUNCTIONS",
    "MAX_OUTPUT",
    "MAX_STEPS",
    "Template",
    "TemplateError",
    "compile_template",
    "render",
]

MAX_STEPS: Final = 1_000_000
"""Actions, texts and range iterations one render may execute."""

MAX_OUTPUT: Final = 8 * 1024 * 1024
"""Characters one render (or one string built by a function) may produce."""

_CACHE_SIZE: Final = 256
_EXCERPT_WIDTH: Final = 80


# =========================================================================== errors


class TemplateError(ValueError):
    """A template that does not parse, or that fails while it renders.

    ``reason`` says what is wrong; ``line`` and ``column`` (1-based, characters) point at it in
    ``template`` and are ``None`` when the problem is not at one place (data that is not JSON-like,
    a render that runs too long). The message is ``<reason> at <line>:<column> in '<line of the
    template>'``, followed by a hint when there is one (``; did you mean "upper"?``).
    """

    def __init__(self, reason: str, template: str, position: int | None = None, *, hint: str = "") -> None:
        self.reason = reason
        self.template = template
        self.line: int | None = None
        self.column: int | None = None
        if position is None:
            message = f"{reason} in {_excerpt(template, 0)}"
        else:
            self.line = template.count("\n", 0, position) + 1
            self.column = position - (template.rfind("\n", 0, position) + 1) + 1
            message = f"{reason} at {self.line}:{self.column} in {_excerpt(template, position)}"
        super().__init__(f"{message}; {hint}" if hint else message)


def _excerpt(template: str, position: int) -> str:
    """The line of ``template`` holding ``position``, quoted, cut around it when it is long."""
    start = template.rfind("\n", 0, position) + 1
    end = template.find("\n", position)
    line = template[start : len(template) if end < 0 else end]
    if len(line) > _EXCERPT_WIDTH:
        half = _EXCERPT_WIDTH // 2
        left = max(0, min(position - start - half, len(line) - _EXCERPT_WIDTH))
        cut = line[left : left + _EXCERPT_WIDTH]
        line = ("..." if left > 0 else "") + cut + ("..." if left + _EXCERPT_WIDTH < len(line) else "")
    return "'" + line + "'"


class _CallError(Exception):
    """A function failed (Go: it returned an error or panicked); the caller adds the position."""


# =========================================================================== Go values


class _Missing:
    """Go's invalid ``reflect.Value``: a missing map key, or nil once a pipeline has produced it."""

    __slots__ = ()


_MISSING: Final[Any] = _Missing()


class _Int64(int):
    """A Go ``int64`` (sprig's arithmetic); plain Python ``int`` is Go's ``int``."""

    __slots__ = ()


class _Uint8(int):
    """A Go ``uint8``: a byte of a string (``index "abc" 0``)."""

    __slots__ = ()


class _StrList(list[str]):
    """A Go ``[]string`` (``splitList``, ``regexFindAll``, ``keys``...)."""

    __slots__ = ()


class _IntList(list[int]):
    """A Go ``[]int`` (``until``, ``untilStep``)."""

    __slots__ = ()


class _StrMap(dict[str, str]):
    """A Go ``map[string]string`` (``split``, ``splitn``)."""

    __slots__ = ()


def _is_nil(value: Any) -> bool:
    return value is None or value is _MISSING


def _go_type(value: Any) -> str:
    """Go's ``%T`` of a value."""
    if _is_nil(value):
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, _Int64):
        return "int64"
    if isinstance(value, _Uint8):
        return "uint8"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _StrList):
        return "[]string"
    if isinstance(value, _IntList):
        return "[]int"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, _StrMap):
        return "map[string]string"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__  # pragma: no cover - only JSON-like values are ever made


def _go_kind(value: Any) -> str:
    """Go's ``reflect.Kind`` name of a value (sprig ``kindOf``)."""
    if _is_nil(value):
        return "invalid"
    if isinstance(value, list):
        return "slice"
    if isinstance(value, dict):
        return "map"
    return _go_type(value)


def _from_data(value: Any, template: str) -> Any:
    """The caller's JSON-like data as Go values: a copy, with numbers as float64."""
    if value is None or isinstance(value, str | bool | float):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TemplateError(
                    f"template data must be JSON-like: map key {key!r} is a {type(key).__name__}, "
                    "not a string",
                    template,
                )
            out[key] = _from_data(item, template)
        return out
    if isinstance(value, list | tuple):
        return [_from_data(item, template) for item in value]
    raise TemplateError(
        f"template data must be JSON-like (dict, list, str, number, bool, None), not {type(value).__name__}",
        template,
    )


def _truth(value: Any) -> bool:
    """Go's ``template.IsTrue``: false, 0, nil and empty strings, lists and maps are false."""
    if _is_nil(value):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True  # pragma: no cover - only JSON-like values are ever made


def _empty(value: Any) -> bool:
    """sprig's ``empty``: the zero value of its type (nil included)."""
    return not _truth(value)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _utf8_cut(text: str, start: int, end: int | None = None) -> str:
    """``text[start:end]`` in UTF-8 bytes, as Go slices a string."""
    return text.encode("utf-8", "surrogatepass")[start:end].decode("utf-8", "replace")


# =========================================================================== Go fmt

_GO_SPACES: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_SIMPLE_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _quote(text: str, quote: str = '"', ascii_only: bool = False) -> str:
    """Go's ``strconv.Quote`` (``QuoteToASCII`` with ``ascii_only``; ``QuoteRune`` with ``'``)."""
    out = [quote]
    for ch in text:
        code = ord(ch)
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif ch.isprintable() and not (ascii_only and code >= 0x80):
            out.append(ch)
        elif ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(quote)
    return "".join(out)


def _can_backquote(text: str) -> bool:
    return all(
        ch == "\t" or (ch != "`" and ch != "\ufeff" and ord(ch) >= 0x20 and ch != "\x7f") for ch in text
    )


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest decimal digits of ``abs(value) > 0`` and the decimal point: ``0.DIGITS x 10**dp``."""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    assert isinstance(exponent, int)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped, len(stripped) + exponent


def _format_e(digits: str, dp: int, prec: int, upper: bool) -> str:
    out = digits[0] if digits else "0"
    if prec > 0:
        frac = digits[1 : 1 + prec]
        out += "." + frac + "0" * (prec - len(frac))
    exp = dp - 1 if digits else 0
    out += ("E" if upper else "e") + ("-" if exp < 0 else "+") + f"{abs(exp):02d}"
    return out


def _format_f(digits: str, dp: int, prec: int) -> str:
    out = digits[:dp] + "0" * (dp - len(digits)) if dp > 0 else "0"
    if prec > 0:
        out += "." + "".join(digits[dp + i] if 0 <= dp + i < len(digits) else "0" for i in range(prec))
    return out


def _format_float(value: float, verb: str, prec: int) -> str:
    """Go's ``strconv.FormatFloat(value, verb, prec, 64)`` (``prec`` -1: shortest)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    magnitude = abs(value)
    if verb in "xX":
        return sign + _format_hex_float(magnitude, verb == "X")
    if verb == "b":
        mantissa, exponent = math.frexp(magnitude)
        if magnitude == 0:
            return sign + "0p-1074"
        return sign + f"{int(mantissa * 2**53)}p{exponent - 53:+d}"
    py_verb = "f" if verb == "F" else verb
    if prec >= 0:
        return sign + format(magnitude, f".{prec}{py_verb}")
    digits, dp = _shortest_digits(magnitude) if magnitude else ("", 0)
    if py_verb in "eE":
        return sign + _format_e(digits, dp, len(digits) - 1, py_verb == "E")
    if py_verb == "f":
        return sign + _format_f(digits, dp, max(len(digits) - dp, 0))
    exp = dp - 1
    if exp < -4 or exp >= 6:  # Go: with the shortest digits the %e decision uses precision 6
        return sign + _format_e(digits, dp, len(digits) - 1, py_verb == "G")
    return sign + _format_f(digits, dp, max(len(digits) - dp, 0))


def _format_hex_float(magnitude: float, upper: bool) -> str:
    if magnitude == 0:
        text = "0x0p+00"
    else:
        mantissa, exponent = math.frexp(magnitude)
        frac = f"{int((mantissa * 2 - 1) * 2**52):013x}".rstrip("0")
        exp = exponent - 1
        text = "0x1" + ("." + frac if frac else "") + "p" + ("-" if exp < 0 else "+") + f"{abs(exp):02d}"
    return text.upper() if upper else text


def _sprint_value(value: Any) -> str:
    """Go's ``fmt.Sprint`` of one value (``%v``)."""
    if _is_nil(value):
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _format_float(value, "g", -1)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(_sprint_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{_sprint_value(value[key])}" for key in sorted(value)) + "]"
    return str(value)  # pragma: no cover - only JSON-like values are ever made


def _strval(value: Any) -> str:
    """sprig's ``strval``: strings as they are, anything else as ``%v``."""
    return value if isinstance(value, str) else _sprint_value(value)


@dataclass(slots=True)
class _Spec:
    """The flags, width and precision of one ``fmt`` verb."""

    minus: bool = False
    plus: bool = False
    sharp: bool = False
    sharp_v: bool = False
    space: bool = False
    zero: bool = False
    width: int | None = None
    prec: int | None = None


def _pad(text: str, spec: _Spec, allow_zero: bool = True) -> str:
    if spec.width is None or len(text) >= spec.width:
        return text
    fill = spec.width - len(text)
    if spec.minus:
        return text + " " * fill
    return ("0" if spec.zero and allow_zero else " ") * fill + text


def _bad_verb(verb: str, value: Any) -> str:
    if _is_nil(value):
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_go_type(value)}={_sprint_value(value)})"


def _fmt_integer(number: int, verb: str, spec: _Spec) -> str:
    if verb == "c":
        return _pad(
            chr(number) if 0 <= number <= 0x10FFFF and not 0xD800 <= number <= 0xDFFF else "\ufffd", spec
        )
    if verb == "q":
        rune = chr(number) if 0 <= number <= 0x10FFFF and not 0xD800 <= number <= 0xDFFF else "\ufffd"
        if spec.sharp and rune.isprintable():
            return _pad("'" + rune + "'", spec)
        return _pad(_quote(rune, "'", ascii_only=spec.plus), spec)
    if verb == "U":
        text = f"U+{number & 0xFFFFFFFFFFFFFFFF:04X}"
        if spec.sharp and 0 <= number <= 0x10FFFF and chr(number).isprintable():
            text += " '" + chr(number) + "'"
        return _pad(text, spec)
    bases = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}
    if verb not in bases:
        return _bad_verb(verb, number)
    base = bases[verb]
    negative = number < 0
    magnitude = -number if negative else number
    prec = 0
    if spec.prec is not None:
        prec = spec.prec
        if prec == 0 and magnitude == 0:
            return " " * (spec.width or 0)
    elif spec.zero and spec.width is not None and not spec.minus:
        prec = spec.width - (1 if negative or spec.plus or spec.space else 0)
    digits = format(magnitude, {2: "b", 8: "o", 10: "d", 16: "X" if verb == "X" else "x"}[base])
    digits = "0" * max(0, prec - len(digits)) + digits
    if spec.sharp:
        if base == 2:
            digits = "0b" + digits
        elif base == 8 and not digits.startswith("0"):
            digits = "0" + digits
        elif base == 16:
            digits = ("0X" if verb == "X" else "0x") + digits
    if verb == "O":
        digits = "0o" + digits
    sign = "-" if negative else "+" if spec.plus else " " if spec.space else ""
    return _pad(sign + digits, spec, allow_zero=False)


def _fmt_float(value: float, verb: str, spec: _Spec) -> str:
    if verb == "v":
        go_verb, prec = "g", -1
    elif verb in "bgGxX":
        go_verb, prec = verb, -1
    elif verb in "feEF":
        go_verb, prec = verb, 6
    else:
        return _bad_verb(verb, value)
    if spec.prec is not None and go_verb != "b":
        prec = spec.prec
    num = _format_float(value, go_verb, prec)
    if num[0] not in "+-":
        num = "+" + num
    if spec.space and num[0] == "+" and not spec.plus:
        num = " " + num[1:]
    if num[1] in "IN":  # Inf and NaN are not padded with zeros
        if num[1] == "N" and not spec.space and not spec.plus:
            num = num[1:]
        return _pad(num, spec, allow_zero=False)
    if spec.plus or num[0] != "+":
        if spec.zero and not spec.minus and spec.width is not None and spec.width > len(num):
            return num[0] + "0" * (spec.width - len(num)) + num[1:]
        return _pad(num, spec)
    return _pad(num[1:], spec)


def _fmt_string(text: str, verb: str, spec: _Spec) -> str:
    if verb in "vs":
        return _pad(text if spec.prec is None else text[: spec.prec], spec)
    if verb == "q":
        text = text if spec.prec is None else text[: spec.prec]
        if spec.sharp and _can_backquote(text):
            return _pad("`" + text + "`", spec)
        return _pad(_quote(text, ascii_only=spec.plus), spec)
    if verb in "xX":
        data = text.encode("utf-8", "surrogatepass")
        if spec.prec is not None:
            data = data[: spec.prec]
        digits = "0123456789ABCDEF" if verb == "X" else "0123456789abcdef"
        prefix = ("0X" if verb == "X" else "0x") if spec.sharp else ""
        parts = [digits[b >> 4] + digits[b & 15] for b in data]
        if spec.space:
            joined = " ".join(prefix + part for part in parts)
        else:
            joined = (prefix if parts else "") + "".join(parts)
        return _pad(joined, spec)
    return _bad_verb(verb, text)


def _go_syntax(value: Any) -> str:
    """Go's ``%#v`` of a value (nil is handled by the caller)."""
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool | float):
        return _sprint_value(value)
    if isinstance(value, _Uint8):
        return f"0x{int(value):x}"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, list):

        def element(item: Any) -> str:
            return "interface {}(nil)" if _is_nil(item) else _go_syntax(item)

        return _go_type(value) + "{" + ", ".join(element(item) for item in value) + "}"
    if isinstance(value, dict):

        def entry(key: str) -> str:
            item = value[key]
            return _quote(key) + ":" + ("interface {}(nil)" if _is_nil(item) else _go_syntax(item))

        return _go_type(value) + "{" + ", ".join(entry(key) for key in sorted(value)) + "}"
    return str(value)  # pragma: no cover - only JSON-like values are ever made


def _fmt_value(value: Any, verb: str, spec: _Spec, depth: int) -> str:
    """Go's ``printValue``: one value, containers element by element with the same verb."""
    if _is_nil(value):
        if depth == 0 and verb not in "vT":
            return _bad_verb(verb, None)
        return _pad("<nil>", spec)
    if verb == "T":
        return _pad(_go_type(value), spec)
    if verb == "v" and spec.sharp_v:
        return _pad(_go_syntax(value), spec)
    if isinstance(value, bool):
        return _pad("true" if value else "false", spec) if verb in "tv" else _bad_verb(verb, value)
    if isinstance(value, int):
        return _fmt_integer(int(value), verb, spec)
    if isinstance(value, float):
        return _fmt_float(value, verb, spec)
    if isinstance(value, str):
        return _fmt_string(value, verb, spec)
    if verb == "p":
        return _bad_verb(verb, value)
    if isinstance(value, list):
        return "[" + " ".join(_fmt_value(item, verb, spec, depth + 1) for item in value) + "]"
    if isinstance(value, dict):
        items = (
            f"{_fmt_value(key, verb, spec, depth + 1)}:{_fmt_value(value[key], verb, spec, depth + 1)}"
            for key in sorted(value)
        )
        return "map[" + " ".join(items) + "]"
    return _bad_verb(verb, value)  # pragma: no cover - only JSON-like values are ever made


def _parse_num(text: str, i: int) -> tuple[int | None, int]:
    """Go's ``parsenum``: digits at ``i``; a number above 1e6 consumes the rest of the format."""
    number, start = 0, i
    while i < len(text) and "0" <= text[i] <= "9":
        if number > 1_000_000:
            return None, len(text)
        number = number * 10 + int(text[i])
        i += 1
    return (number if i > start else None), i


def _arg_index(fmt: str, i: int, argnum: int, count: int) -> tuple[int, int, bool, bool]:
    """Go's ``argNumber``: an explicit ``[n]`` at ``i``; ``(argnum, i, good, found)``."""
    if i >= len(fmt) or fmt[i] != "[":
        return argnum, i, True, False
    close = fmt.find("]", i)
    if close < 0:
        return argnum, i + 1, False, True
    number = fmt[i + 1 : close]
    if number.isascii() and number.isdigit() and 0 < int(number) <= count:
        return int(number) - 1, close + 1, True, True
    return argnum, close + 1, False, True


def _int_arg(args: Sequence[Any], argnum: int) -> tuple[int | None, int]:
    """Go's ``intFromArg``: a ``*`` width or precision from the arguments."""
    if argnum >= len(args):
        return None, argnum
    value = args[argnum]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 1_000_000:
        return int(value), argnum + 1
    return None, argnum + 1


def _sprintf(fmt: str, args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprintf`` (verbs ``v s d q x X o O b c U e E f F g G t T %``, flags, ``*``, ``[n]``)."""
    out: list[str] = []
    argnum = 0
    reordered = False
    i, end = 0, len(fmt)
    while i < end:
        start = i
        while i < end and fmt[i] != "%":
            i += 1
        out.append(fmt[start:i])
        if i >= end:
            break
        i += 1
        spec = _Spec()
        while i < end and fmt[i] in "#0+- ":
            flag = fmt[i]
            if flag == "#":
                spec.sharp = True
            elif flag == "0":
                spec.zero = not spec.minus
            elif flag == "+":
                spec.plus = True
            elif flag == "-":
                spec.minus, spec.zero = True, False
            else:
                spec.space = True
            i += 1
        argnum, i, good, found = _arg_index(fmt, i, argnum, len(args))
        reordered |= found
        if i < end and fmt[i] == "*":
            width, argnum = _int_arg(args, argnum)
            i += 1
            if width is None:
                out.append("%!(BADWIDTH)")
            elif width < 0:
                spec.minus, spec.zero, spec.width = True, False, -width
            else:
                spec.width = width
        else:
            spec.width, i = _parse_num(fmt, i)
        if i < end and fmt[i] == ".":
            argnum, i, good_prec, found = _arg_index(fmt, i + 1, argnum, len(args))
            good, reordered = good and good_prec, reordered or found
            if i < end and fmt[i] == "*":
                prec, argnum = _int_arg(args, argnum)
                i += 1
                if prec is None:
                    out.append("%!(BADPREC)")
                spec.prec = prec if prec is not None and prec >= 0 else None
            else:
                prec, i = _parse_num(fmt, i)
                spec.prec = prec or 0
        argnum, i, good_verb, found = _arg_index(fmt, i, argnum, len(args))
        good, reordered = good and good_verb, reordered or found
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif not good:
            out.append(f"%!{verb}(BADINDEX)")
        elif argnum >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                spec.sharp_v, spec.sharp, spec.plus = spec.sharp, False, False
            out.append(_fmt_value(args[argnum], verb, spec, 0))
            argnum += 1
    if not reordered and argnum < len(args):
        extra = (
            "<nil>" if _is_nil(arg) else f"{_go_type(arg)}={_sprint_value(arg)}" for arg in args[argnum:]
        )
        out.append("%!(EXTRA " + ", ".join(extra) + ")")
    return "".join(out)


def _sprint(args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprint``: a space between operands when neither is a string."""
    out: list[str] = []
    previous_string = True
    for index, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if index > 0 and not is_string and not previous_string:
            out.append(" ")
        out.append(_sprint_value(arg))
        previous_string = is_string
    return "".join(out)


# =========================================================================== Go encoding/json


class _JSONError(Exception):
    """``json.Marshal`` refused a value (NaN or an infinity)."""


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise _JSONError(f"json: unsupported value: {_format_float(value, 'g', -1)}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = _format_float(value, "e", -1)
        if text[-4:-2] == "e-" and text[-2] == "0":
            text = text[:-2] + text[-1]
        return text
    return _format_float(value, "f", -1)


def _json_string(text: str, escape_html: bool) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in "\n\r\t\b\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}[ch])
        elif code < 0x20 or (escape_html and ch in "<>&") or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _to_json(value: Any, indent: str | None = None, escape_html: bool = True, level: int = 0) -> str:
    """Go's ``json.Marshal`` (``MarshalIndent`` with ``indent``): sorted keys, HTML-safe strings."""
    if _is_nil(value):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value, escape_html)
    if isinstance(value, list | dict):
        if isinstance(value, list):
            parts = [_to_json(item, indent, escape_html, level + 1) for item in value]
            opening, closing = "[", "]"
        else:
            parts = [
                _json_string(key, escape_html)
                + (": " if indent is not None else ":")
                + _to_json(value[key], indent, escape_html, level + 1)
                for key in sorted(value)
            ]
            opening, closing = "{", "}"
        if not parts:
            return opening + closing
        if indent is None:
            return opening + ",".join(parts) + closing
        inner = "\n" + indent * (level + 1)
        return opening + inner + ("," + inner).join(parts) + "\n" + indent * level + closing
    raise _JSONError(f"json: unsupported type: {_go_type(value)}")  # pragma: no cover


_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _checked_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return number


def _from_json(text: str) -> Any:
    """Go's ``json.Unmarshal`` into ``interface{}``: numbers are float64; raises ``ValueError``."""
    value = json.loads(
        text, parse_float=_checked_float, parse_int=_checked_float, parse_constant=_reject_constant
    )
    return _fix_strings(value) if "\\u" in text else value


def _fix_strings(value: Any) -> Any:
    """Lone surrogates (``"\\ud800"``) become U+FFFD, as Go decodes them."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_fix_strings(item) for item in value]
    if isinstance(value, dict):
        return {_fix_strings(key): _fix_strings(item) for key, item in value.items()}
    return value


# =========================================================================== lexer

_SPACE: Final = " \t\r\n"
_KEYWORDS: Final = frozenset(
    {"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"}
)
_OPERAND_KINDS: Final = frozenset(
    {"bool", "charconst", "dot", "field", "ident", "number", "nil", "rawstring", "string", "var", "lparen"}
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    value: str
    pos: int


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdecimal()


class _Lexer:
    """Go's ``text/template/parse`` lexer, delimiters ``{{`` and ``}}``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[_Token] = []

    def error(self, reason: str, position: int) -> NoReturn:
        raise TemplateError(reason, self.text, position)

    def emit(self, kind: str, start: int, end: int) -> None:
        self.tokens.append(_Token(kind, self.text[start:end], start))

    def has_left_trim(self, i: int) -> bool:
        return self.text[i : i + 1] == "-" and self.text[i + 1 : i + 2] != "" and self.text[i + 1] in _SPACE

    def at_right_delim(self, i: int) -> tuple[bool, bool]:
        text = self.text
        if text[i : i + 1] != "" and text[i] in _SPACE and text.startswith("-}}", i + 1):
            return True, True
        return text.startswith("}}", i), False

    def skip_space(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in _SPACE:
            i += 1
        return i

    def run(self) -> list[_Token]:
        text = self.text
        pos = 0
        while True:
            opening = text.find("{{", pos)
            if opening < 0:
                if pos < len(text):
                    self.emit("text", pos, len(text))
                self.tokens.append(_Token("eof", "", len(text)))
                return self.tokens
            text_end = opening
            if self.has_left_trim(opening + 2):
                text_end = pos + len(text[pos:opening].rstrip(_SPACE))
            if text_end > pos:
                self.emit("text", pos, text_end)
            inner = opening + 2
            after_marker = inner + 2 if self.has_left_trim(inner) else inner
            if text.startswith("/*", after_marker):
                close = text.find("*/", after_marker + 2)
                if close < 0:
                    self.error("unclosed comment", opening)
                delim, trim = self.at_right_delim(close + 2)
                if not delim:
                    self.error("comment ends before closing delimiter", opening)
                pos = close + 2 + (2 if trim else 0) + 2
                if trim:
                    pos = self.skip_space(pos)
                continue
            self.emit("left", opening, inner)
            pos = self.inside_action(after_marker, opening)

    def inside_action(self, i: int, opening: int) -> int:
        text, n = self.text, len(self.text)
        depth = 0
        while True:
            delim, trim = self.at_right_delim(i)
            if delim:
                if depth:
                    self.error("unclosed left paren", i)
                self.emit("right", i + (2 if trim else 0), i + (4 if trim else 2))
                i += 4 if trim else 2
                return self.skip_space(i) if trim else i
            if i >= n:
                self.error("unclosed action (missing }})", opening)
            ch = text[i]
            if ch in _SPACE:
                j = self.skip_space(i)
                if self.at_right_delim(j - 1) == (True, True):
                    j -= 1  # the last space belongs to the " -}}" trim marker (never the only one)
                self.emit("space", i, j)
                i = j
            elif ch == "=":
                self.emit("assign", i, i + 1)
                i += 1
            elif ch == ":":
                if text[i + 1 : i + 2] != "=":
                    self.error("expected :=", i)
                self.emit("declare", i, i + 2)
                i += 2
            elif ch == "|":
                self.emit("pipe", i, i + 1)
                i += 1
            elif ch in "\"'":
                i = self.quoted(i, ch)
            elif ch == "`":
                close = text.find("`", i + 1)
                if close < 0:
                    self.error("unterminated raw quoted string", i)
                self.emit("rawstring", i, close + 1)
                i = close + 1
            elif ch == "$":
                i = self.field_or_variable(i, "var")
            elif ch == "." and not (i + 1 < n and text[i + 1].isascii() and text[i + 1].isdigit()):
                i = self.field_or_variable(i, "field")
            elif ch in "+-." or (ch.isascii() and ch.isdigit()):
                i = self.number(i)
            elif _is_alnum(ch):
                i = self.identifier(i)
            elif ch == "(":
                depth += 1
                self.emit("lparen", i, i + 1)
                i += 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    self.error("unexpected right paren", i)
                self.emit("rparen", i, i + 1)
                i += 1
            elif ch.isascii() and ch.isprintable():
                self.emit("char", i, i + 1)
                i += 1
            else:
                self.error(f"unrecognized character in action: U+{ord(ch):04X}", i)

    def at_terminator(self, i: int) -> bool:
        if i >= len(self.text):
            return True
        ch = self.text[i]
        return ch in _SPACE or ch in ".,|:()" or self.text.startswith("}}", i)

    def quoted(self, i: int, quote: str) -> int:
        text = self.text
        j = i + 1
        while True:
            ch = text[j : j + 1]
            if ch == "\\":
                if text[j + 1 : j + 2] not in ("", "\n"):
                    j += 2
                    continue
                ch = ""
            if ch in ("", "\n"):
                self.error(
                    "unterminated quoted string" if quote == '"' else "unterminated character constant", i
                )
            j += 1
            if ch == quote:
                self.emit("string" if quote == '"' else "charconst", i, j)
                return j

    def field_or_variable(self, i: int, kind: str) -> int:
        j = i + 1
        if self.at_terminator(j):
            self.emit("var" if kind == "var" else "dot", i, j)
            return j
        while j < len(self.text) and _is_alnum(self.text[j]):
            j += 1
        if not self.at_terminator(j):
            self.error(f"bad character {_quote(self.text[j])}", j)
        self.emit(kind, i, j)
        return j

    def identifier(self, i: int) -> int:
        j = i
        while j < len(self.text) and _is_alnum(self.text[j]):
            j += 1
        if not self.at_terminator(j):
            self.error(f"bad character {_quote(self.text[j])}", j)
        word = self.text[i:j]
        if word in _KEYWORDS:
            kind = "keyword"
        elif word in ("true", "false"):
            kind = "bool"
        elif word == "nil":
            kind = "nil"
        else:
            kind = "ident"
        self.emit(kind, i, j)
        return j

    def number(self, i: int) -> int:
        text, n = self.text, len(self.text)

        def run(j: int, chars: str) -> int:
            while j < n and text[j] in chars:
                j += 1
            return j

        j = i + 1 if text[i] in "+-" else i
        digits = "0123456789_"
        if text[j : j + 1] == "0":
            j += 1
            prefix = text[j : j + 1]
            if prefix != "" and prefix in "xX":
                digits, j = "0123456789abcdefABCDEF_", j + 1
            elif prefix != "" and prefix in "oO":
                digits, j = "01234567_", j + 1
            elif prefix != "" and prefix in "bB":
                digits, j = "01_", j + 1
        j = run(j, digits)
        if text[j : j + 1] == ".":
            j = run(j + 1, digits)
        exponent = "eE" if len(digits) == 11 else "pP" if len(digits) == 23 else ""
        if exponent and text[j : j + 1] != "" and text[j] in exponent:
            j += 1
            if text[j : j + 1] != "" and text[j] in "+-":
                j += 1
            j = run(j, "0123456789_")
        if text[j : j + 1] == "i":
            j += 1
        if j < n and (_is_alnum(text[j]) or text[j] in "+-"):
            self.error(f"bad number syntax: {_quote(text[i : j + 1])}", i)
        self.emit("number", i, j)
        return j


# =========================================================================== parse tree


@dataclass(frozen=True, slots=True)
class _Func:
    """A template function: its implementation and Go parameter kinds."""

    name: str
    impl: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None

    def arity_error(self, count: int) -> str | None:
        if self.variadic is None and count != len(self.params):
            return f"wrong number of args for {self.name}: want {len(self.params)} got {count}"
        if self.variadic is not None and count < len(self.params):
            return f"wrong number of args for {self.name}: want at least {len(self.params)} got {count}"
        return None

    def kind(self, index: int) -> str:
        return self.params[index] if index < len(self.params) else self.variadic or "any"


@dataclass(frozen=True, slots=True)
class _Text:
    pos: int
    text: str


@dataclass(frozen=True, slots=True)
class _Dot:
    pos: int


@dataclass(frozen=True, slots=True)
class _Nil:
    pos: int


@dataclass(frozen=True, slots=True)
class _Bool:
    pos: int
    value: bool


@dataclass(frozen=True, slots=True)
class _Number:
    """A number literal; Go keeps every reading of it that is exact."""

    pos: int
    text: str
    as_int: int | None
    as_float: float | None
    is_uint: bool = False
    is_char: bool = False


@dataclass(frozen=True, slots=True)
class _String:
    pos: int
    text: str
    value: str


@dataclass(frozen=True, slots=True)
class _Field:
    pos: int
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Variable:
    pos: int
    names: tuple[str, ...]  # names[0] is "$x" (or "$"), the rest are fields


@dataclass(frozen=True, slots=True)
class _Ident:
    pos: int
    func: _Func


@dataclass(frozen=True, slots=True)
class _Command:
    pos: int
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Pipe:
    pos: int
    decls: tuple[str, ...]
    is_assign: bool
    cmds: tuple[_Command, ...]


@dataclass(frozen=True, slots=True)
class _Chain:
    pos: int
    node: Any
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Action:
    pos: int
    pipe: _Pipe


@dataclass(frozen=True, slots=True)
class _Control:
    """``if``, ``with`` or ``range``."""

    kind: str
    pos: int
    pipe: _Pipe
    body: tuple[Any, ...]
    orelse: tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class _Jump:
    """``break`` or ``continue``."""

    kind: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Marker:
    """``end`` or ``else`` while parsing (never in a finished tree)."""

    kind: str
    pos: int


def _node_text(node: Any) -> str:
    """A node as written, for error messages."""
    if isinstance(node, _Dot):
        return "."
    if isinstance(node, _Nil):
        return "nil"
    if isinstance(node, _Bool):
        return "true" if node.value else "false"
    if isinstance(node, _Number | _String):
        return node.text
    if isinstance(node, _Field):
        return "." + ".".join(node.names)
    if isinstance(node, _Variable):
        return ".".join(node.names)
    if isinstance(node, _Ident):
        return node.func.name
    if isinstance(node, _Chain):
        return _node_text(node.node) + "." + ".".join(node.fields)
    if isinstance(node, _Pipe):
        return "(" + " | ".join(" ".join(_node_text(arg) for arg in cmd.args) for cmd in node.cmds) + ")"
    return type(node).__name__  # pragma: no cover


# =========================================================================== Go literals

_GO_INT: Final = re.compile(
    r"([+-]?)(0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)"
)
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def _parse_int_base0(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)`` syntax (prefixes, ``_``, legacy octal), unbounded."""
    match = _GO_INT.fullmatch(text)
    if match is None:
        return None
    sign, body = match.groups()
    body = body.replace("_", "").lower()
    if body[:2] in ("0x", "0b", "0o"):
        value = int(body[2:], {"x": 16, "b": 2, "o": 8}[body[1]])
    elif body.startswith("0") and len(body) > 1:
        value = int(body[1:], 8)
    else:
        value = int(body)
    return -value if sign == "-" else value


def _wrap64(value: int) -> int:
    return (value - _INT64_MIN) % 2**64 + _INT64_MIN


_ESCAPES: Final = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def _unquote(literal: str) -> str:
    """Go's ``strconv.Unquote`` of a ``"..."``, ``'...'`` or raw literal; raises ``ValueError``."""
    quote = literal[0]
    if quote == "`":
        return literal[1:-1].replace("\r", "")
    body = literal[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        esc = body[i + 1]
        i += 2
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
        elif esc == quote:
            out.append(ord(quote))
        elif esc in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i : i + size]
            if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(f"bad \\{esc} escape")
            code = int(digits, 16)
            i += size
            if esc == "x":
                out.append(code)
            elif code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise ValueError(f"\\{esc}{digits} is not a valid character")
            else:
                out += chr(code).encode("utf-8")
        elif esc in "01234567":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
                raise ValueError("bad octal escape")
            out.append(int(digits, 8))
            i += 2
        else:
            raise ValueError(f"unknown escape \\{esc}")
    return out.decode("utf-8", "replace")


def _char_value(literal: str) -> int:
    """The rune of a Go character literal (``'a'``, ``'\\n'``, ``'\\x41'``...); raises ``ValueError``."""
    body = literal[1:-1]
    if not body.startswith("\\"):
        if len(body) != 1:
            raise ValueError("malformed character constant")
        return ord(body)
    esc, digits = body[1:2], body[2:]
    if esc in _ESCAPES and not digits:
        return _ESCAPES[esc]
    if esc == "'" and not digits:
        return ord("'")
    size = {"x": 2, "u": 4, "U": 8}.get(esc)
    if size is not None and len(digits) == size and all(c in "0123456789abcdefABCDEF" for c in digits):
        code = int(digits, 16)
        if esc == "x" or (code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF):
            return code
    octal = body[1:]
    if len(octal) == 3 and all(c in "01234567" for c in octal) and int(octal, 8) <= 255:
        return int(octal, 8)
    raise ValueError("malformed character constant")


def _number_node(token: _Token, template: str) -> _Number:
    """Go's ``parse.newNumber``: every exact reading (int, uint, float) of a literal."""
    text = token.value

    def fail(reason: str) -> NoReturn:
        raise TemplateError(reason, template, token.pos)

    if token.kind == "charconst":
        try:
            rune = _char_value(text)
        except ValueError as exc:
            fail(f"invalid character constant {text}: {exc}")
        return _Number(token.pos, text, rune, float(rune), is_char=True)
    if text.endswith("i"):
        fail(f"complex number {text} is not supported")
    as_int: int | None = None
    is_uint = False
    parsed = _parse_int_base0(text)
    if parsed is not None and _INT64_MIN <= parsed <= _INT64_MAX:
        as_int = parsed
    elif parsed is not None and 0 <= parsed < 2**64 and text[0] not in "+-":
        is_uint = True
    if as_int is not None or is_uint:
        assert parsed is not None
        return _Number(token.pos, text, as_int, float(parsed), is_uint=is_uint)
    lowered = text.lower()
    try:
        unsigned = lowered.lstrip("+-")
        if unsigned.startswith("0x"):
            if "p" not in unsigned:
                raise ValueError(text)
            as_float = float.fromhex(lowered.replace("_", ""))
        else:
            as_float = float(text)
    except (ValueError, OverflowError):
        fail(f"illegal number syntax: {_quote(text)}")
    if not any(c in lowered for c in ".ep"):
        fail(f"integer overflow: {_quote(text)}")
    if math.isinf(as_float):
        fail(f"number {text} is out of range")
    if as_float == int(as_float) and _INT64_MIN <= int(as_float) <= _INT64_MAX:
        as_int = int(as_float)
    return _Number(token.pos, text, as_int, as_float)


# =========================================================================== parser


class _Parser:
    """Go's ``text/template/parse`` parser, with the functions checked against :data:`_FUNCS`."""

    def __init__(self, template: str, tokens: list[_Token]) -> None:
        self.template = template
        self.tokens = tokens
        self.i = 0
        self.vars = ["$"]
        self.range_depth = 0

    def error(self, reason: str, position: int) -> NoReturn:
        raise TemplateError(reason, self.template, position)

    def next(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def next_non_space(self) -> _Token:
        token = self.next()
        while token.kind == "space":
            token = self.next()
        return token

    def peek_non_space(self) -> _Token:
        token = self.next_non_space()
        self.i -= 1
        return token

    def unexpected(self, token: _Token, context: str) -> NoReturn:
        shown = {"right": "}}", "left": "{{", "space": "space"}.get(token.kind, token.value)
        self.error(f"unexpected {_quote(shown)} in {context}", token.pos)

    def parse(self) -> tuple[Any, ...]:
        nodes: list[Any] = []
        while self.peek().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, _Marker):
                self.error(f"unexpected {{{{{node.kind}}}}}", node.pos)
            nodes.append(node)
        return tuple(nodes)

    def text_or_action(self) -> Any:
        token = self.next_non_space()
        if token.kind == "text":
            return _Text(token.pos, token.value)
        if token.kind == "left":
            return self.action(token)
        self.unexpected(token, "input")

    def action(self, left: _Token) -> Any:
        token = self.next_non_space()
        if token.kind == "keyword":
            word = token.value
            if word in ("define", "template", "block"):
                self.error(
                    f"{{{{{word}}}}} is not supported: Argo Events templates have no named templates",
                    token.pos,
                )
            if word in ("break", "continue"):
                closing = self.next_non_space()
                if closing.kind != "right":
                    self.unexpected(closing, f"{{{{{word}}}}}")
                if self.range_depth == 0:
                    self.error(f"{{{{{word}}}}} outside {{{{range}}}}", token.pos)
                return _Jump(word, token.pos)
            if word == "else":
                following = self.peek_non_space()
                if not (following.kind == "keyword" and following.value in ("if", "with")):
                    self.expect_right("else")
                return _Marker("else", token.pos)
            if word == "end":
                self.expect_right("end")
                return _Marker("end", token.pos)
            return self.control(word, left.pos)
        self.i -= 1
        return _Action(token.pos, self.pipeline("command", "right"))

    def expect_right(self, context: str) -> None:
        token = self.next_non_space()
        if token.kind != "right":
            self.unexpected(token, context)

    def control(self, kind: str, opening: int) -> _Control:
        mark = len(self.vars)
        pipe = self.pipeline(kind, "right")
        if kind == "range":
            self.range_depth += 1
        body, marker = self.item_list(kind, opening)
        if kind == "range":
            self.range_depth -= 1
        orelse: tuple[Any, ...] | None = None
        if marker.kind == "else":
            following = self.peek()
            if kind in ("if", "with") and following.kind == "keyword" and following.value == kind:
                self.next()
                orelse = (self.control(kind, following.pos),)
            else:
                orelse, marker = self.item_list(kind, opening)
                if marker.kind != "end":
                    self.error(f"expected {{{{end}}}} for {{{{{kind}}}}}; found {{{{else}}}}", marker.pos)
        del self.vars[mark:]
        return _Control(kind, opening, pipe, body, orelse)

    def item_list(self, kind: str, opening: int) -> tuple[tuple[Any, ...], _Marker]:
        nodes: list[Any] = []
        while self.peek_non_space().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, _Marker):
                return tuple(nodes), node
            nodes.append(node)
        self.error(f"{{{{{kind}}}}} is not closed: missing {{{{end}}}}", opening)

    def pipeline(self, context: str, end: str) -> _Pipe:
        pos = self.peek_non_space().pos
        decls: list[str] = []
        is_assign = False
        while self.peek_non_space().kind == "var":
            start = self.i
            variable = self.next()
            following = self.peek_non_space()
            if following.kind in ("assign", "declare"):
                is_assign = following.kind == "assign"
                self.next_non_space()
                if is_assign and variable.value not in self.vars:
                    self.error(
                        f"undefined variable {_quote(variable.value)} (declare it with :=)", variable.pos
                    )
                decls.append(variable.value)
                self.vars.append(variable.value)
                break
            if following.kind == "char" and following.value == ",":
                self.next_non_space()
                decls.append(variable.value)
                self.vars.append(variable.value)
                if context == "range" and len(decls) < 2:
                    if self.peek_non_space().kind in ("var", "right", "rparen"):
                        continue
                    self.error("range can only initialize variables", self.peek_non_space().pos)
                self.error(f"too many declarations in {context}", following.pos)
            self.i = start
            break
        cmds: list[_Command] = []
        after_pipe: _Token | None = None
        while True:
            token = self.next_non_space()
            if token.kind == end:
                if after_pipe is not None:
                    self.error("missing command after '|'", after_pipe.pos)
                if not cmds:
                    self.error(f"missing value for {context}", token.pos)
                for index, cmd in enumerate(cmds[1:]):
                    if isinstance(cmd.args[0], _Bool | _Dot | _Nil | _Number | _String):
                        self.error(f"non executable command in pipeline stage {index + 2}", cmd.pos)
                for index, cmd in enumerate(cmds):
                    self.check_call(cmd, piped=index > 0)
                return _Pipe(pos, tuple(decls), is_assign, tuple(cmds))
            if token.kind not in _OPERAND_KINDS:
                self.unexpected(token, context)
            self.i -= 1
            cmd, after_pipe = self.command()
            cmds.append(cmd)

    def check_call(self, cmd: _Command, piped: bool) -> None:
        first = cmd.args[0]
        if isinstance(first, _Ident):
            problem = first.func.arity_error(len(cmd.args) - 1 + (1 if piped else 0))
            if problem:
                self.error(problem, first.pos)

    def command(self) -> tuple[_Command, _Token | None]:
        pos = self.peek_non_space().pos
        args: list[Any] = []
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            token = self.next()
            if token.kind == "space":
                continue
            pipe: _Token | None = None
            if token.kind in ("right", "rparen"):
                self.i -= 1
            elif token.kind == "pipe":
                pipe = token
            else:
                self.unexpected(token, "operand")
            break
        for arg in args[1:]:  # the pipeline starts a command only at an operand: args is never empty
            if isinstance(arg, _Ident):
                self.check_operand_call(arg)
        return _Command(pos, tuple(args)), pipe

    def check_operand_call(self, node: Any) -> None:
        """A function named as an argument (or chain base) is called with no arguments."""
        if isinstance(node, _Ident):
            problem = node.func.arity_error(0)
            if problem:
                self.error(problem, node.pos)

    def operand(self) -> Any:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        fields: list[str] = []
        while self.peek().kind == "field":
            fields.append(self.next().value[1:])
        if isinstance(node, _Field):
            return _Field(node.pos, node.names + tuple(fields))
        if isinstance(node, _Variable):
            return _Variable(node.pos, node.names + tuple(fields))
        if isinstance(node, _Bool | _String | _Number | _Nil | _Dot):
            self.error(f"unexpected . after term {_quote(_node_text(node))}", node.pos)
        self.check_operand_call(node)
        return _Chain(node.pos, node, tuple(fields))

    def term(self) -> Any:
        token = self.next_non_space()
        kind, value, pos = token.kind, token.value, token.pos
        if kind == "ident":
            return _Ident(pos, self.function(value, pos))
        if kind == "dot":
            return _Dot(pos)
        if kind == "nil":
            return _Nil(pos)
        if kind == "var":
            if value not in self.vars:
                self.error(f"undefined variable {_quote(value)}", pos)
            return _Variable(pos, (value,))
        if kind == "field":
            return _Field(pos, (value[1:],))
        if kind == "bool":
            return _Bool(pos, value == "true")
        if kind in ("number", "charconst"):
            return _number_node(token, self.template)
        if kind == "lparen":
            return self.pipeline("parenthesized pipeline", "rparen")
        if kind in ("string", "rawstring"):
            try:
                return _String(pos, value, _unquote(value))
            except ValueError as exc:
                self.error(f"invalid string literal {value}: {exc}", pos)
        self.i -= 1
        return None

    def function(self, name: str, pos: int) -> _Func:
        func = _FUNCS.get(name)
        if func is not None:
            return func
        if name in FORBIDDEN_FUNCTIONS:
            self.error(f"function {_quote(name)} is not allowed: {FORBIDDEN_FUNCTIONS[name]}", pos)
        if name in _UNSUPPORTED:
            self.error(
                f"function {_quote(name)} (sprig) is not supported by triggergate; "
                "see sensors.templates.FUNCTIONS for the functions that are",
                pos,
            )
        close = difflib.get_close_matches(name, list(_FUNCS), n=1)
        hint = f"did you mean {_quote(close[0])}?" if close else "see sensors.templates.FUNCTIONS"
        raise TemplateError(f"unknown function {_quote(name)}", self.template, pos, hint=hint)


# =========================================================================== execution


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NO_FINAL: Final[Any] = object()
_KIND_NAMES: Final = {
    "str": "string",
    "int": "int",
    "float": "float64",
    "bool": "bool",
    "map": "map[string]interface {}",
}
_KIND_TYPES: Final[dict[str, type]] = {"str": str, "int": int, "float": float, "bool": bool, "map": dict}


class _State:
    """One render: the output, the variable stack and the step budget."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.out: list[str] = []
        self.size = 0
        self.steps = 0
        self.vars: list[tuple[str, Any]] = []

    def error(self, node: Any, reason: str) -> NoReturn:
        raise TemplateError(reason, self.template, node.pos)

    def emit(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT:
            raise TemplateError(f"output is longer than {MAX_OUTPUT} characters", self.template)
        self.out.append(text)

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateError(f"render took more than {MAX_STEPS} steps", self.template)

    # ------------------------------------------------------------------ variables

    def lookup(self, node: _Variable) -> Any:
        name = node.names[0]
        for var, value in reversed(self.vars):
            if var == name:
                return value
        self.error(node, f"undefined variable {_quote(name)}")  # pragma: no cover - checked when parsed

    def assign(self, name: str, value: Any) -> None:
        for index in range(len(self.vars) - 1, -1, -1):
            if self.vars[index][0] == name:
                self.vars[index] = (name, value)
                return
        raise AssertionError(name)  # pragma: no cover - checked when parsed

    # ------------------------------------------------------------------ walking

    def walk(self, dot: Any, nodes: Sequence[Any]) -> None:
        for node in nodes:
            self.tick()
            if isinstance(node, _Text):
                self.emit(node.text)
            elif isinstance(node, _Action):
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.decls:
                    self.emit("<no value>" if value is _MISSING else _sprint_value(value))
            elif isinstance(node, _Control):
                mark = len(self.vars)
                try:
                    if node.kind == "range":
                        self.walk_range(dot, node)
                    else:
                        value = self.pipeline(dot, node.pipe)
                        if _truth(value):
                            self.walk(value if node.kind == "with" else dot, node.body)
                        elif node.orelse is not None:
                            self.walk(dot, node.orelse)
                finally:
                    del self.vars[mark:]
            else:
                raise _Break() if node.kind == "break" else _Continue()

    def walk_range(self, dot: Any, node: _Control) -> None:
        value = self.pipeline(dot, node.pipe)
        items: list[tuple[Any, Any]]
        if _is_nil(value):
            items = []
        elif isinstance(value, list):
            items = list(enumerate(value))
        elif isinstance(value, dict):
            items = [(key, value[key]) for key in sorted(value)]
        else:
            self.error(node.pipe, f"range can't iterate over {_sprint_value(value)} (a {_go_type(value)})")
        if not items:
            if node.orelse is not None:
                self.walk(dot, node.orelse)
            return
        decls, top = node.pipe.decls, len(self.vars)
        for index, elem in items:
            self.tick()
            if node.pipe.is_assign:
                if len(decls) == 2:
                    self.assign(decls[0], index)
                    self.assign(decls[1], elem)
                else:
                    self.assign(decls[0], elem)
            elif len(decls) == 2:
                self.vars[top - 2] = (decls[0], index)
                self.vars[top - 1] = (decls[1], elem)
            elif decls:
                self.vars[top - 1] = (decls[0], elem)
            mark = len(self.vars)
            try:
                self.walk(elem, node.body)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.vars[mark:]

    # ------------------------------------------------------------------ pipelines and commands

    def pipeline(self, dot: Any, pipe: _Pipe) -> Any:
        value = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
            if value is None:  # Go: an interface holding nil becomes an invalid value
                value = _MISSING
        for name in pipe.decls:
            if pipe.is_assign:
                self.assign(name, value)
            else:
                self.vars.append((name, value))
        return value

    def command(self, dot: Any, cmd: _Command, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, _Field):
            return self.field_chain(dot, dot, first, first.names, cmd.args, final)
        if isinstance(first, _Chain):
            return self.chain(dot, first, cmd.args, final)
        if isinstance(first, _Ident):
            return self.call(dot, first, cmd.args, final)
        if isinstance(first, _Variable):
            return self.variable(dot, first, cmd.args, final)
        self.not_a_function(cmd.args, final)
        if isinstance(first, _Pipe):
            return self.pipeline(dot, first)
        if isinstance(first, _Bool):
            return first.value
        if isinstance(first, _Dot):
            return dot
        if isinstance(first, _Nil):
            self.error(first, "nil is not a command")
        if isinstance(first, _Number):
            return self.ideal_constant(first)
        return first.value  # _String

    def not_a_function(self, args: Sequence[Any], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            self.error(args[0], f"can't give argument to non-function {_node_text(args[0])}")

    def ideal_constant(self, node: _Number) -> Any:
        """A number literal where any type is accepted: Go's choice of int or float64."""
        text = node.text.lower().lstrip("+-")
        is_hex_int = text.startswith("0x") and "p" not in text
        if (
            node.as_float is not None
            and not is_hex_int
            and not node.is_char
            and any(c in text for c in ".ep")
        ):
            return node.as_float
        if node.as_int is not None:
            return node.as_int
        self.error(node, f"{node.text} overflows int")

    def variable(self, dot: Any, node: _Variable, args: Sequence[Any], final: Any) -> Any:
        value = self.lookup(node)
        if len(node.names) == 1:
            self.not_a_function(args, final)
            return value
        return self.field_chain(dot, value, node, node.names[1:], args, final)

    def chain(self, dot: Any, node: _Chain, args: Sequence[Any], final: Any) -> Any:
        base = node.node
        if isinstance(base, _Pipe):
            receiver = self.pipeline(dot, base)
        else:  # a function called with no arguments; a nil result is an error, as in Go
            receiver = self.call(dot, base, (base,), _NO_FINAL)
        return self.field_chain(dot, receiver, node, node.fields, args, final)

    def field_chain(
        self, dot: Any, receiver: Any, node: Any, names: Sequence[str], args: Sequence[Any], final: Any
    ) -> Any:
        for name in names[:-1]:
            receiver = self.field(node, name, receiver, has_args=False)
        return self.field(node, names[-1], receiver, has_args=len(args) > 1 or final is not _NO_FINAL)

    def field(self, node: Any, name: str, receiver: Any, has_args: bool) -> Any:
        if receiver is _MISSING:
            return _MISSING  # Go: a field of an invalid value is invalid, silently
        if receiver is None:
            self.error(
                node, f"nil pointer evaluating interface {{}}.{name} (the value before .{name} is null)"
            )
        if isinstance(receiver, dict):
            if has_args:
                self.error(node, f"{name} is not a method but has arguments")
            return receiver.get(name, _MISSING)
        self.error(node, f"can't evaluate field {name} in type {_go_type(receiver)}")

    # ------------------------------------------------------------------ function calls

    def call(self, dot: Any, ident: _Ident, args: Sequence[Any], final: Any) -> Any:
        func = ident.func
        operands = args[1:]
        if func.name in ("and", "or"):
            value: Any = _MISSING
            for node in operands:
                value = self.arg(dot, "val", node)
                if _truth(value) == (func.name == "or"):
                    return value
            return self.validate(ident, final, "val") if final is not _NO_FINAL else value
        values = [
            self.arg(dot, func.kind(index), node, index + 1, func.name) for index, node in enumerate(operands)
        ]
        if final is not _NO_FINAL:
            values.append(self.validate(ident, final, func.kind(len(operands)), len(operands) + 1, func.name))
        try:
            return func.impl(*values)
        except _CallError as exc:
            self.error(ident, f"error calling {func.name}: {exc}")
        except RecursionError:
            self.error(ident, f"error calling {func.name}: the value nests too deeply")

    def arg(self, dot: Any, kind: str, node: Any, index: int = 0, func: str = "") -> Any:
        """Go's ``evalArg``: one argument evaluated for a parameter of ``kind``."""
        if isinstance(node, _Dot):
            return self.validate(node, dot, kind, index, func)
        if isinstance(node, _Nil):
            if kind in ("any", "val"):
                return None
            if kind == "map":
                return {}
            self.error(node, f"cannot assign nil to {_KIND_NAMES[kind]}")
        if isinstance(node, _Field):
            value = self.field_chain(dot, dot, node, node.names, (node,), _NO_FINAL)
            return self.validate(node, value, kind, index, func)
        if isinstance(node, _Variable):
            return self.validate(node, self.variable(dot, node, (node,), _NO_FINAL), kind, index, func)
        if isinstance(node, _Pipe):
            return self.validate(node, self.pipeline(dot, node), kind, index, func)
        if isinstance(node, _Ident):
            return self.validate(node, self.call(dot, node, (node,), _NO_FINAL), kind, index, func)
        if isinstance(node, _Chain):
            return self.validate(node, self.chain(dot, node, (node,), _NO_FINAL), kind, index, func)
        if kind in ("any", "val"):
            if isinstance(node, _Bool):
                return node.value
            if isinstance(node, _Number):
                return self.ideal_constant(node)
            return node.value  # _String
        if kind == "bool" and isinstance(node, _Bool):
            return node.value
        if kind == "str" and isinstance(node, _String):
            return node.value
        if kind == "int" and isinstance(node, _Number) and node.as_int is not None:
            return node.as_int
        if kind == "float" and isinstance(node, _Number) and node.as_float is not None:
            return node.as_float
        expected = {"bool": "bool", "str": "string", "int": "integer", "float": "float"}.get(
            kind, _KIND_NAMES[kind]
        )
        self.error(node, f"expected {expected}; found {_node_text(node)}")

    def validate(self, node: Any, value: Any, kind: str, index: int = 0, func: str = "") -> Any:
        """Go's ``validateType``: a value computed at run time for a parameter of ``kind``."""
        if kind in ("any", "val"):
            return None if value is _MISSING else value
        if value is _MISSING:
            if kind == "map":
                return {}
            self.error(node, f"invalid value; expected {_KIND_NAMES[kind]} (the value is missing)")
        if type(value) is _KIND_TYPES[kind]:
            return value
        what = f"wrong type for argument {index} of {func}" if func else "wrong type for value"
        hint = ""
        if kind == "str" and isinstance(value, int | float) and not isinstance(value, bool):
            hint = " (convert it with toString or printf)"
        elif kind == "int" and isinstance(value, int | float) and not isinstance(value, bool):
            hint = " (convert it with int)"
        self.error(node, f"{what}: expected {_KIND_NAMES[kind]}, got {_go_type(value)}{hint}")


# =========================================================================== public API


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template; :meth:`render` it on any number of values. Immutable and thread-safe."""

    text: str
    _root: tuple[Any, ...]

    def render(self, data: Any) -> str:
        """Execute the template with ``data`` as the dot (``{"Input": value}``); the output text.

        ``data`` must be JSON-like; it is copied (numbers become float64). Raises
        :class:`TemplateError` when the template fails (wrong types, index out of range, ``fail``...).
        """
        state = _State(self.text)
        try:
            dot = _from_data(data, self.text)
            state.vars.append(("$", dot))
            state.walk(dot, self._root)
        except RecursionError:
            raise TemplateError("the data or the template nests too deeply", self.text) from None
        return "".join(state.out)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def compile_template(text: str) -> Template:
    """Parse ``text`` once (cached); raises :class:`TemplateError` on a syntax error, an unknown or
    forbidden function, an undefined variable or a call with the wrong number of arguments."""
    try:
        tokens = _Lexer(text).run()
        return Template(text, _Parser(text, tokens).parse())
    except RecursionError:
        raise TemplateError("the template nests too deeply", text) from None


def render(text: str, data: Any) -> str:
    """``compile_template(text).render(data)``."""
    return compile_template(text).render(data)


# =========================================================================== function table

_FUNCS: dict[str, _Func] = {}
_F = TypeVar("_F", bound=Callable[..., Any])


def _func(*names: str, params: tuple[str, ...] = (), variadic: str | None = None) -> Callable[[_F], _F]:
    """Register a template function under ``names`` with Go parameter kinds.

    Kinds: ``any`` (``interface{}``: nil for a missing value), ``val`` (a builtin's ``reflect.Value``),
    ``str``, ``int``, ``float``, ``bool``, ``map`` (``map[string]interface{}``).
    """

    def register(impl: _F) -> _F:
        for name in names:
            _FUNCS[name] = _Func(name, impl, params, variadic)
        return impl

    return register


def _check_size(text: str) -> str:
    if len(text) > MAX_OUTPUT:
        raise _CallError(f"result is longer than {MAX_OUTPUT} characters")
    return text


# --------------------------------------------------------------------------- Go builtins


@_func("and", "or", params=("val",), variadic="val")
def _and_or(*args: Any) -> Any:  # pragma: no cover - and/or short-circuit in _State.call
    raise AssertionError("and/or are evaluated lazily")


@_func("not", params=("val",))
def _not(value: Any) -> bool:
    return not _truth(value)


@_func("len", params=("val",))
def _len(value: Any) -> int:
    if _is_nil(value):
        raise _CallError("len of nil pointer")
    if isinstance(value, str):
        return _utf8_len(value)
    if isinstance(value, list | dict):
        return len(value)
    raise _CallError(f"len of type {_go_type(value)}")


@_func("index", params=("val",), variadic="val")
def _index(item: Any, *indexes: Any) -> Any:
    if _is_nil(item):
        raise _CallError("index of untyped nil")
    for key in indexes:
        if _is_nil(item):
            raise _CallError("index of nil pointer")
        if isinstance(item, list | str):
            if _is_nil(key):
                raise _CallError("cannot index slice/array with nil")
            if not isinstance(key, int) or isinstance(key, bool):
                raise _CallError(f"cannot index slice/array with type {_go_type(key)}")
            size = _utf8_len(item) if isinstance(item, str) else len(item)
            if key < 0 or key >= size:
                raise _CallError(f"index out of range: {int(key)}")
            item = _Uint8(item.encode("utf-8", "surrogatepass")[key]) if isinstance(item, str) else item[key]
        elif isinstance(item, dict):
            if _is_nil(key):
                raise _CallError("value is nil; should be of type string")
            if not isinstance(key, str):
                raise _CallError(f"value has type {_go_type(key)}; should be string")
            item = item.get(key, "" if isinstance(item, _StrMap) else None)
        else:
            raise _CallError(f"can't index item of type {_go_type(item)}")
    return item


@_func("print", variadic="any")
def _print(*args: Any) -> str:
    return _check_size(_sprint(args))


@_func("printf", params=("str",), variadic="any")
def _printf(fmt: str, *args: Any) -> str:
    return _check_size(_sprintf(fmt, args))


@_func("println", variadic="any")
def _println(*args: Any) -> str:
    return _check_size(" ".join(_sprint_value(arg) for arg in args) + "\n")


def _eval_args(args: Sequence[Any]) -> str:
    """Go's ``evalArgs`` for html/js/urlquery: one string as it is, else ``Sprint`` (nil: ``<no value>``)."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _sprint(["<no value>" if _is_nil(arg) else arg for arg in args])


@_func("html", variadic="any")
def _html(*args: Any) -> str:
    table = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
    return "".join(table.get(ch, ch) for ch in _eval_args(args))


@_func("js", variadic="any")
def _js(*args: Any) -> str:
    table = {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "<": "\\u003C",
        ">": "\\u003E",
        "&": "\\u0026",
        "=": "\\u003D",
    }
    out = []
    for ch in _eval_args(args):
        if ch in table:
            out.append(table[ch])
        elif ord(ch) < 0x20 or (ord(ch) >= 0x80 and not ch.isprintable()):
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


@_func("urlquery", variadic="any")
def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_eval_args(args), safe="")


def _basic_kind(value: Any) -> str:
    if _is_nil(value):
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def _incompatible(a: Any, b: Any) -> _CallError:
    hint = ""
    if {_basic_kind(a), _basic_kind(b)} == {"int", "float"}:
        hint = " (JSON numbers are float64: compare with a float literal such as 3.0, or convert with int)"
    return _CallError(f"incompatible types for comparison: {_go_type(a)} and {_go_type(b)}{hint}")


@_func("eq", params=("val",), variadic="val")
def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise _CallError("missing argument for comparison")
    kind = _basic_kind(first)
    for other in others:
        if kind != _basic_kind(other):
            if not _is_nil(first) and not _is_nil(other):
                raise _incompatible(first, other)
            continue
        if kind == "other":
            raise _CallError(f"non-comparable type {_go_type(first)}")
        if kind == "nil" or first == other:
            return True
    return False


@_func("ne", params=("val", "val"))
def _ne(first: Any, second: Any) -> bool:
    return not _eq(first, second)


@_func("lt", params=("val", "val"))
def _lt(first: Any, second: Any) -> bool:
    kinds = _basic_kind(first), _basic_kind(second)
    if kinds[0] in ("nil", "other") or kinds[1] in ("nil", "other"):
        raise _CallError(f"invalid type for comparison: {_go_type(first)} and {_go_type(second)}")
    if kinds[0] != kinds[1]:
        raise _incompatible(first, second)
    if kinds[0] == "bool":
        raise _CallError("invalid type for comparison: bool")
    return bool(first < second)


@_func("le", params=("val", "val"))
def _le(first: Any, second: Any) -> bool:
    return _lt(first, second) or _eq(first, second)


@_func("gt", params=("val", "val"))
def _gt(first: Any, second: Any) -> bool:
    return not _le(first, second)


@_func("ge", params=("val", "val"))
def _ge(first: Any, second: Any) -> bool:
    return not _lt(first, second)


# --------------------------------------------------------------------------- sprig: strings


def _simple_case(ch: str, convert: Callable[[str], str]) -> str:
    converted = convert(ch)
    return converted if len(converted) == 1 else ch


def _map_case(text: str, convert: Callable[[str], str]) -> str:
    if text.isascii():
        return convert(text)
    return "".join(_simple_case(ch, convert) for ch in text)


def _is_upper(ch: str) -> bool:
    return unicodedata.category(ch) == "Lu"


def _is_number(ch: str) -> bool:
    return unicodedata.category(ch).startswith("N")


@_func("upper", params=("str",))
def _upper(text: str) -> str:
    return _map_case(text, str.upper)


@_func("lower", params=("str",))
def _lower(text: str) -> str:
    return _map_case(text, str.lower)


def _is_title_separator(ch: str) -> bool:
    if ch.isascii():
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdecimal():
        return False
    return ch in _GO_SPACES


@_func("title", params=("str",))
def _title(text: str) -> str:
    out = []
    previous = " "
    for ch in text:
        out.append(_simple_case(ch, str.title) if _is_title_separator(previous) else ch)
        previous = ch
    return "".join(out)


@_func("untitle", params=("str",))
def _untitle(text: str) -> str:
    out = []
    previous = " "
    for ch in text:
        out.append(_simple_case(ch, str.lower) if previous in _GO_SPACES else ch)
        previous = ch
    return "".join(out)


@_func("swapcase", params=("str",))
def _swapcase(text: str) -> str:
    def swap(ch: str) -> str:
        if _is_upper(ch) or unicodedata.category(ch) == "Lt":
            return _simple_case(ch, str.lower)
        if unicodedata.category(ch) == "Ll":
            return _simple_case(ch, str.upper)
        return ch

    return "".join(swap(ch) for ch in text)


@_func("initials", params=("str",))
def _initials(text: str) -> str:
    out = []
    gap = True
    for ch in text:
        if ch in _GO_SPACES:
            gap = True
        elif gap:
            out.append(ch)
            gap = False
    return "".join(out)


@_func("trim", params=("str",))
def _trim(text: str) -> str:
    return text.strip(_GO_SPACES)


@_func("trimAll", "trimall", params=("str", "str"))
def _trim_all(cutset: str, text: str) -> str:
    return text.strip(cutset)


@_func("trimPrefix", params=("str", "str"))
def _trim_prefix(prefix: str, text: str) -> str:
    return text.removeprefix(prefix)


@_func("trimSuffix", params=("str", "str"))
def _trim_suffix(suffix: str, text: str) -> str:
    return text.removesuffix(suffix)


@_func("nospace", params=("str",))
def _nospace(text: str) -> str:
    return "".join(ch for ch in text if ch not in _GO_SPACES)


@_func("contains", params=("str", "str"))
def _contains(substr: str, text: str) -> bool:
    return substr in text


@_func("hasPrefix", params=("str", "str"))
def _has_prefix(prefix: str, text: str) -> bool:
    return text.startswith(prefix)


@_func("hasSuffix", params=("str", "str"))
def _has_suffix(suffix: str, text: str) -> bool:
    return text.endswith(suffix)


@_func("replace", params=("str", "str", "str"))
def _replace(old: str, new: str, text: str) -> str:
    return _check_size(text.replace(old, new))


@_func("repeat", params=("int", "str"))
def _repeat(count: int, text: str) -> str:
    if count < 0:
        raise _CallError("strings: negative Repeat count")
    if count * len(text) > MAX_OUTPUT:
        raise _CallError(f"result is longer than {MAX_OUTPUT} characters")
    return text * count


@_func("substr", params=("int", "int", "str"))
def _substr(start: int, end: int, text: str) -> str:
    size = _utf8_len(text)
    if start < 0:
        start = 0
    elif end < 0 or end > size:
        end = size
    if not 0 <= start <= end <= size:
        raise _CallError(f"runtime error: slice bounds out of range [{start}:{end}] with length {size}")
    return _utf8_cut(text, start, end)


@_func("trunc", params=("int", "str"))
def _trunc(count: int, text: str) -> str:
    size = _utf8_len(text)
    if count < 0 and size + count > 0:
        return _utf8_cut(text, size + count)
    if count >= 0 and size > count:
        return _utf8_cut(text, 0, count)
    return text


def _abbreviate(text: str, offset: int, width: int) -> str:
    """goutils ``AbbreviateFull`` (bytes, like Go)."""
    size = _utf8_len(text)
    if text == "" or size <= width:
        return text
    offset = min(offset, size)
    if size - offset < width - 3:
        offset = size - (width - 3)
    if offset <= 4:
        return _utf8_cut(text, 0, width - 3) + "..."
    if offset + width - 3 < size:
        return "..." + _abbreviate(_utf8_cut(text, offset), 0, width - 3)
    return "..." + _utf8_cut(text, size - (width - 3))


@_func("abbrev", params=("int", "str"))
def _abbrev(width: int, text: str) -> str:
    return text if width < 4 else _abbreviate(text, 0, width)


@_func("abbrevboth", params=("int", "int", "str"))
def _abbrevboth(left: int, right: int, text: str) -> str:
    if right < 4 or (left > 0 and right < 7):
        return text
    return _abbreviate(text, left, right)


@_func("quote", variadic="any")
def _quote_all(*values: Any) -> str:
    return " ".join(_quote(_strval(value)) for value in values if not _is_nil(value))


@_func("squote", variadic="any")
def _squote(*values: Any) -> str:
    return " ".join("'" + _sprint_value(value) + "'" for value in values if not _is_nil(value))


@_func("cat", variadic="any")
def _cat(*values: Any) -> str:
    return _check_size(" ".join(_sprint_value(value) for value in values if not _is_nil(value)))


@_func("indent", params=("int", "str"))
def _indent(spaces: int, text: str) -> str:
    if spaces < 0:
        raise _CallError("strings: negative Repeat count")
    pad = " " * spaces
    return _check_size(pad + text.replace("\n", "\n" + pad))


@_func("nindent", params=("int", "str"))
def _nindent(spaces: int, text: str) -> str:
    return "\n" + _indent(spaces, text)


@_func("plural", params=("str", "str", "int"))
def _plural(one: str, many: str, count: int) -> str:
    return one if count == 1 else many


@_func("sha1sum", params=("str",))
def _sha1sum(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


@_func("sha256sum", params=("str",))
def _sha256sum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@_func("adler32sum", params=("str",))
def _adler32sum(text: str) -> str:
    return str(zlib.adler32(text.encode("utf-8", "surrogatepass")))


@_func("toString", params=("any",))
def _to_string(value: Any) -> str:
    return _strval(value)


def _strslice(value: Any) -> _StrList:
    """sprig's ``strslice``: a list as strings (nil elements dropped), a scalar as one string."""
    if isinstance(value, list):
        return _StrList(_strval(item) for item in value if not _is_nil(item))
    if _is_nil(value):
        return _StrList()
    return _StrList([_strval(value)])


@_func("toStrings", params=("any",))
def _to_strings(value: Any) -> _StrList:
    return _strslice(value)


@_func("join", params=("str", "any"))
def _join(sep: str, value: Any) -> str:
    return _check_size(sep.join(_strslice(value)))


@_func("sortAlpha", params=("any",))
def _sort_alpha(value: Any) -> _StrList:
    if isinstance(value, list):
        return _StrList(sorted(_strslice(value)))
    return _StrList([_strval(value)])


def _go_split(text: str, sep: str, limit: int) -> list[str]:
    """Go's ``strings.SplitN`` (``limit`` < 0: all)."""
    if limit == 0:
        return []
    if sep == "":
        chars = list(text)
        if 0 < limit < len(chars):
            return [*chars[: limit - 1], "".join(chars[limit - 1 :])]
        return chars
    return text.split(sep, limit - 1 if limit > 0 else -1)


@_func("splitList", params=("str", "str"))
def _split_list(sep: str, text: str) -> _StrList:
    return _StrList(_go_split(text, sep, -1))


@_func("split", params=("str", "str"))
def _split(sep: str, text: str) -> _StrMap:
    return _StrMap((f"_{index}", part) for index, part in enumerate(_go_split(text, sep, -1)))


@_func("splitn", params=("str", "int", "str"))
def _splitn(sep: str, limit: int, text: str) -> _StrMap:
    return _StrMap((f"_{index}", part) for index, part in enumerate(_go_split(text, sep, limit)))


def _snake_like(text: str, connector: str) -> str:
    """xstrings v1.3 ``camelCaseToLowerCase`` (``snakecase``, ``kebabcase``)."""
    out: list[str] = []
    i, n = 0, len(text)
    current = connector
    while i < n:
        previous = current
        current = text[i]
        i += 1
        if _is_upper(current):
            if previous != connector and not _is_number(previous):
                out.append(connector)
            out.append(_simple_case(current, str.lower))
            if i >= n:
                break
            current = text[i]
            i += 1
            if not _is_upper(current):
                out.append(current)
                continue
            while i < n:  # a run of capitals: "HTTPServer" -> "http_server"
                upper = current
                current = text[i]
                i += 1
                if not _is_upper(current):
                    if current in "_ -":
                        current = connector
                        out += [_simple_case(upper, str.lower), connector]
                    elif _is_number(current):
                        out += [_simple_case(upper, str.lower), connector, current]
                    else:
                        out += [connector, _simple_case(upper, str.lower), current]
                    break
                out.append(_simple_case(upper, str.lower))
            else:
                out.append(_simple_case(current, str.lower))
        elif _is_number(current):
            if previous != connector and not _is_number(previous):
                out.append(connector)
            out.append(current)
        else:
            if current in " -_":
                current = connector
            out.append(current)
    return "".join(out)


@_func("snakecase", params=("str",))
def _snakecase(text: str) -> str:
    return _snake_like(text, "_")


@_func("kebabcase", params=("str",))
def _kebabcase(text: str) -> str:
    return _snake_like(text, "-")


@_func("camelcase", params=("str",))
def _camelcase(text: str) -> str:
    """xstrings v1.3 ``ToCamelCase``: ``http_server`` -> ``HttpServer`` (leading ``_`` kept)."""
    stripped = text.lstrip("_")
    out = ["_" * (len(text) - len(stripped))]
    if not stripped:
        return out[0]
    previous = _simple_case(stripped[0], str.upper)
    for ch in stripped[1:]:
        if previous == "_" and ch == "_":
            out.append(previous)
            previous = ch
            continue
        current = _simple_case(ch, str.upper if previous == "_" else str.lower)
        if previous != "_":
            out.append(previous)
        previous = current
    out.append(previous)
    return "".join(out)


# --------------------------------------------------------------------------- sprig: encodings

_B64_ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_B32_ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=")


def _strict_decode(text: str, alphabet: frozenset[str], quantum: int, decode: Callable[[str], bytes]) -> str:
    """Go's StdEncoding ``DecodeString`` (``\\r``/``\\n`` ignored, padding required); sprig returns the
    error text instead of failing."""
    data = text.replace("\r", "").replace("\n", "")
    for index, ch in enumerate(data):
        if ch not in alphabet:
            return f"illegal base{64 if quantum == 4 else 32} data at input byte {index}"
    if len(data) % quantum:
        return (
            f"illegal base{64 if quantum == 4 else 32} data at input byte {len(data) - len(data) % quantum}"
        )
    try:
        return decode(data).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        padding = data.find("=")
        return f"illegal base{64 if quantum == 4 else 32} data at input byte {max(padding, 0)}"


@_func("b64enc", params=("str",))
def _b64enc(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


@_func("b64dec", params=("str",))
def _b64dec(text: str) -> str:
    return _strict_decode(text, _B64_ALPHABET, 4, lambda data: base64.b64decode(data, validate=True))


@_func("b32enc", params=("str",))
def _b32enc(text: str) -> str:
    return base64.b32encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


@_func("b32dec", params=("str",))
def _b32dec(text: str) -> str:
    return _strict_decode(text, _B32_ALPHABET, 8, base64.b32decode)


@_func("toJson", params=("any",))
def _to_json_fn(value: Any) -> str:
    try:
        return _check_size(_to_json(value))
    except _JSONError:
        return ""


@_func("mustToJson", params=("any",))
def _must_to_json(value: Any) -> str:
    try:
        return _check_size(_to_json(value))
    except _JSONError as exc:
        raise _CallError(str(exc)) from None


@_func("toPrettyJson", params=("any",))
def _to_pretty_json(value: Any) -> str:
    try:
        return _check_size(_to_json(value, indent="  "))
    except _JSONError:
        return ""


@_func("mustToPrettyJson", params=("any",))
def _must_to_pretty_json(value: Any) -> str:
    try:
        return _check_size(_to_json(value, indent="  "))
    except _JSONError as exc:
        raise _CallError(str(exc)) from None


@_func("toRawJson", params=("any",))
def _to_raw_json(value: Any) -> str:
    try:
        return _check_size(_to_json(value, escape_html=False))
    except _JSONError:
        return ""


@_func("mustToRawJson", params=("any",))
def _must_to_raw_json(value: Any) -> str:
    try:
        return _check_size(_to_json(value, escape_html=False))
    except _JSONError as exc:
        raise _CallError(str(exc)) from None


@_func("fromJson", params=("str",))
def _from_json_fn(text: str) -> Any:
    try:
        return _from_json(text)
    except ValueError:
        return None


@_func("mustFromJson", params=("str",))
def _must_from_json(text: str) -> Any:
    try:
        return _from_json(text)
    except ValueError as exc:
        raise _CallError(str(exc)) from None


# --------------------------------------------------------------------------- sprig: defaults, flow


@_func("default", params=("any",), variadic="any")
def _default(fallback: Any, *given: Any) -> Any:
    return fallback if not given or _empty(given[0]) else given[0]


@_func("empty", params=("any",))
def _empty_fn(value: Any) -> bool:
    return _empty(value)


@_func("coalesce", variadic="any")
def _coalesce(*values: Any) -> Any:
    return next((value for value in values if not _empty(value)), None)


@_func("all", variadic="any")
def _all(*values: Any) -> bool:
    return all(not _empty(value) for value in values)


@_func("any", variadic="any")
def _any(*values: Any) -> bool:
    return any(not _empty(value) for value in values)


@_func("ternary", params=("any", "any", "bool"))
def _ternary(when_true: Any, when_false: Any, condition: bool) -> Any:
    return when_true if condition else when_false


@_func("fail", params=("str",))
def _fail(message: str) -> NoReturn:
    raise _CallError(message)


@_func("hello")
def _hello() -> str:
    return "Hello!"


# --------------------------------------------------------------------------- sprig: conversions


def _to_int64(value: Any) -> int:
    """spf13/cast ``ToInt64``: conversion errors give 0."""
    if _is_nil(value):
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value) or not _INT64_MIN <= value < 2**63:
            return _INT64_MIN  # what amd64 makes of an out-of-range float-to-int conversion
        return int(value)
    if isinstance(value, str):
        parsed = _parse_int_base0(_trim_zero_decimal(value))
        return parsed if parsed is not None and _INT64_MIN <= parsed <= _INT64_MAX else 0
    return 0


def _trim_zero_decimal(text: str) -> str:
    """spf13/cast ``trimZeroDecimal``: ``"12.000"`` -> ``"12"``."""
    found_zero = False
    for index in range(len(text), 0, -1):
        ch = text[index - 1]
        if ch == ".":
            if found_zero:
                return text[: index - 1]
        elif ch == "0":
            found_zero = True
        else:
            return text
    return text


def _to_float64(value: Any) -> float:
    """spf13/cast ``ToFloat64``: conversion errors give 0."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        number, ok = go_parse_float(value)
        return number if ok else 0.0
    return 0.0


@_func("int", params=("any",))
def _int(value: Any) -> int:
    return _to_int64(value)


@_func("int64", params=("any",))
def _int64(value: Any) -> _Int64:
    return _Int64(_to_int64(value))


@_func("float64", params=("any",))
def _float64(value: Any) -> float:
    return _to_float64(value)


@_func("atoi", params=("str",))
def _atoi(text: str) -> int:
    if re.fullmatch(r"[+-]?[0-9]+", text) is None:
        return 0
    return max(_INT64_MIN, min(_INT64_MAX, int(text)))


@_func("toDecimal", params=("any",))
def _to_decimal(value: Any) -> _Int64:
    text = _sprint_value(value)
    if re.fullmatch(r"[+-]?[0-7]+", text) is None:
        return _Int64(0)
    number = int(text, 8)
    return _Int64(number if _INT64_MIN <= number <= _INT64_MAX else 0)


# --------------------------------------------------------------------------- sprig: math


@_func("add", variadic="any")
def _add(*values: Any) -> _Int64:
    return _Int64(_wrap64(sum(_to_int64(value) for value in values)))


@_func("add1", params=("any",))
def _add1(value: Any) -> _Int64:
    return _Int64(_wrap64(_to_int64(value) + 1))


@_func("sub", params=("any", "any"))
def _sub(first: Any, second: Any) -> _Int64:
    return _Int64(_wrap64(_to_int64(first) - _to_int64(second)))


@_func("mul", params=("any",), variadic="any")
def _mul(first: Any, *others: Any) -> _Int64:
    product = _to_int64(first)
    for other in others:
        product = _wrap64(product * _to_int64(other))
    return _Int64(product)


def _go_divmod(dividend: int, divisor: int) -> tuple[int, int]:
    if divisor == 0:
        raise _CallError("runtime error: integer divide by zero")
    quotient = abs(dividend) // abs(divisor) * (1 if (dividend < 0) == (divisor < 0) else -1)
    return _wrap64(quotient), dividend - divisor * quotient


@_func("div", params=("any", "any"))
def _div(first: Any, second: Any) -> _Int64:
    return _Int64(_go_divmod(_to_int64(first), _to_int64(second))[0])


@_func("mod", params=("any", "any"))
def _mod(first: Any, second: Any) -> _Int64:
    return _Int64(_go_divmod(_to_int64(first), _to_int64(second))[1])


@_func("max", "biggest", params=("any",), variadic="any")
def _max(first: Any, *others: Any) -> _Int64:
    return _Int64(max([_to_int64(first), *(_to_int64(other) for other in others)]))


@_func("min", params=("any",), variadic="any")
def _min(first: Any, *others: Any) -> _Int64:
    return _Int64(min([_to_int64(first), *(_to_int64(other) for other in others)]))


def _decimal(value: Any) -> Decimal:
    number = _to_float64(value)
    if math.isnan(number) or math.isinf(number):
        raise _CallError(f"cannot create a Decimal from {_format_float(number, 'g', -1)}")
    return Decimal(repr(number))


def _decimal_op(first: Any, others: Sequence[Any], operation: str) -> float:
    """shopspring/decimal arithmetic on the shortest decimals of the floats (sprig's ``addf``...)."""
    with localcontext() as context:
        context.prec = 100
        result = _decimal(first)
        for other in others:
            operand = _decimal(other)
            if operation == "add":
                result += operand
            elif operation == "sub":
                result -= operand
            elif operation == "mul":
                result *= operand
            else:
                if operand == 0:
                    raise _CallError("decimal division by 0")
                result = (result / operand).quantize(Decimal(1).scaleb(-16), rounding=ROUND_HALF_UP)
        return float(result)


@_func("addf", variadic="any")
def _addf(*values: Any) -> float:
    return _decimal_op(0.0, values, "add")


@_func("add1f", params=("any",))
def _add1f(value: Any) -> float:
    return _decimal_op(value, (1,), "add")


@_func("subf", params=("any",), variadic="any")
def _subf(first: Any, *others: Any) -> float:
    return _decimal_op(first, others, "sub")


@_func("mulf", params=("any",), variadic="any")
def _mulf(first: Any, *others: Any) -> float:
    return _decimal_op(first, others, "mul")


@_func("divf", params=("any",), variadic="any")
def _divf(first: Any, *others: Any) -> float:
    return _decimal_op(first, others, "div")


def _go_max(first: float, second: float) -> float:
    if math.isnan(first) or math.isnan(second):
        return math.nan
    return max(first, second)


def _go_min(first: float, second: float) -> float:
    if math.isnan(first) or math.isnan(second):
        return math.nan
    return min(first, second)


@_func("maxf", params=("any",), variadic="any")
def _maxf(first: Any, *others: Any) -> float:
    return functools.reduce(_go_max, (_to_float64(other) for other in others), _to_float64(first))


@_func("minf", params=("any",), variadic="any")
def _minf(first: Any, *others: Any) -> float:
    return functools.reduce(_go_min, (_to_float64(other) for other in others), _to_float64(first))


@_func("floor", params=("any",))
def _floor(value: Any) -> float:
    number = _to_float64(value)
    return float(math.floor(number)) if math.isfinite(number) else number


@_func("ceil", params=("any",))
def _ceil(value: Any) -> float:
    number = _to_float64(value)
    return float(math.ceil(number)) if math.isfinite(number) else number


@_func("round", params=("any", "int"), variadic="float")
def _round(value: Any, places: int, *round_on: float) -> float:
    threshold = round_on[0] if round_on else 0.5
    power = math.inf if places > 308 else 10.0**places
    digit = power * _to_float64(value)
    if not math.isfinite(digit):
        return digit / power
    fraction = math.modf(digit)[0]
    return float(math.ceil(digit) if fraction >= threshold else math.floor(digit)) / power


def _until_step(start: int, stop: int, step: int) -> _IntList:
    if (stop < start and step >= 0) or (stop >= start and step <= 0):
        return _IntList()
    count = len(range(start, stop, step))
    if count > MAX_OUTPUT:
        raise _CallError(f"result has more than {MAX_OUTPUT} elements")
    return _IntList(range(start, stop, step))


@_func("until", params=("int",))
def _until(count: int) -> _IntList:
    return _until_step(0, count, -1 if count < 0 else 1)


@_func("untilStep", params=("int", "int", "int"))
def _until_step_fn(start: int, stop: int, step: int) -> _IntList:
    return _until_step(start, stop, step)


@_func("seq", variadic="int")
def _seq(*params: int) -> str:
    if len(params) == 1:
        start, end = 1, params[0]
        step = -1 if end < start else 1
        numbers = _until_step(start, end + step, step)
    elif len(params) == 2:
        start, end = params
        step = -1 if end < start else 1
        numbers = _until_step(start, end + step, step)
    elif len(params) == 3:
        start, step, end = params
        increment = 1
        if end < start:
            increment = -1
            if step > 0:
                return ""
        numbers = _until_step(start, end + increment, step)
    else:
        return ""
    return _check_size(" ".join(map(str, numbers)))


# --------------------------------------------------------------------------- sprig: lists


def _as_list(value: Any, what: str) -> list[Any]:
    if isinstance(value, list):
        return value
    raise _CallError(f"Cannot {what} on type {_go_kind(value)}")


@_func("list", "tuple", variadic="any")
def _list(*values: Any) -> list[Any]:
    return list(values)


@_func("append", "push", "mustAppend", "mustPush", params=("any", "any"))
def _push(items: Any, value: Any) -> list[Any]:
    return [*_as_list(items, "push"), value]


@_func("prepend", "mustPrepend", params=("any", "any"))
def _prepend(items: Any, value: Any) -> list[Any]:
    return [value, *_as_list(items, "prepend")]


@_func("first", "mustFirst", params=("any",))
def _first(items: Any) -> Any:
    values = _as_list(items, "find first")
    return values[0] if values else None


@_func("last", "mustLast", params=("any",))
def _last(items: Any) -> Any:
    values = _as_list(items, "find last")
    return values[-1] if values else None


@_func("rest", "mustRest", params=("any",))
def _rest(items: Any) -> list[Any]:
    return list(_as_list(items, "find rest")[1:])


@_func("initial", "mustInitial", params=("any",))
def _initial(items: Any) -> list[Any]:
    return list(_as_list(items, "find initial")[:-1])


@_func("reverse", "mustReverse", params=("any",))
def _reverse(items: Any) -> list[Any]:
    return list(reversed(_as_list(items, "find reverse")))


@_func("compact", "mustCompact", params=("any",))
def _compact(items: Any) -> list[Any]:
    return [item for item in _as_list(items, "compact") if not _empty(item)]


def _deep_equal(first: Any, second: Any) -> bool:
    """Go's ``reflect.DeepEqual`` on template values: types must match (1 and 1.0 differ)."""
    if _go_type(first) != _go_type(second):
        return False
    if isinstance(first, list):
        return len(first) == len(second) and all(
            _deep_equal(a, b) for a, b in zip(first, second, strict=True)
        )
    if isinstance(first, dict):
        return first.keys() == second.keys() and all(_deep_equal(first[key], second[key]) for key in first)
    return _is_nil(first) or bool(first == second)


def _unique(items: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not any(_deep_equal(item, seen) for seen in out):
            out.append(item)
    return out


@_func("uniq", "mustUniq", params=("any",))
def _uniq(items: Any) -> list[Any]:
    return _unique(_as_list(items, "find uniq"))


@_func("without", "mustWithout", params=("any",), variadic="any")
def _without(items: Any, *omit: Any) -> list[Any]:
    return [item for item in _as_list(items, "find without") if not any(_deep_equal(item, o) for o in omit)]


@_func("has", "mustHas", params=("any", "any"))
def _has(needle: Any, haystack: Any) -> bool:
    return any(_deep_equal(needle, item) for item in _as_list(haystack, "find has"))


@_func("slice", "mustSlice", params=("any",), variadic="any")
def _slice(items: Any, *indexes: Any) -> Any:
    if not isinstance(items, list):
        raise _CallError(f"list should be type of slice or array but {_go_kind(items)}")
    if not items:
        return None
    start = _to_int64(indexes[0]) if indexes else 0
    end = _to_int64(indexes[1]) if len(indexes) > 1 else len(items)
    if not 0 <= start <= end <= len(items):
        raise _CallError(f"reflect: slice index out of range [{start}:{end}] with length {len(items)}")
    if isinstance(items, _StrList):
        return _StrList(items[start:end])
    if isinstance(items, _IntList):
        return _IntList(items[start:end])
    return items[start:end]


@_func("concat", variadic="any")
def _concat(*lists: Any) -> list[Any]:
    out: list[Any] = []
    for items in lists:
        if not isinstance(items, list):
            raise _CallError(f"Cannot concat type {_go_kind(items)} as list")
        out.extend(items)
    return out


@_func("chunk", "mustChunk", params=("int", "any"))
def _chunk(size: int, items: Any) -> list[Any]:
    values = _as_list(items, "chunk")
    if size <= 0:
        raise _CallError(f"chunk size must be positive, got {size}")
    return [values[start : start + size] for start in range(0, len(values), size)]


@_func("dig", params=("any", "any", "any"), variadic="any")
def _dig(*args: Any) -> Any:
    *keys, fallback, mapping = args
    if not isinstance(mapping, dict) or isinstance(mapping, _StrMap):
        raise _CallError(
            f"interface conversion: interface {{}} is {_go_type(mapping)}, not map[string]interface {{}}"
        )
    for index, key in enumerate(keys):
        if not isinstance(key, str):
            raise _CallError(f"interface conversion: interface {{}} is {_go_type(key)}, not string")
        if key not in mapping:
            return fallback
        if index == len(keys) - 1:
            return mapping[key]
        mapping = mapping[key]
        if not isinstance(mapping, dict) or isinstance(mapping, _StrMap):
            raise _CallError(
                f"interface conversion: interface {{}} is {_go_type(mapping)}, not map[string]interface {{}}"
            )
    return fallback  # pragma: no cover - keys is never empty (three arguments at least)


# --------------------------------------------------------------------------- sprig: dicts


@_func("dict", variadic="any")
def _dict(*pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index in range(0, len(pairs), 2):
        out[_strval(pairs[index])] = pairs[index + 1] if index + 1 < len(pairs) else ""
    return out


@_func("get", params=("map", "str"))
def _get(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key, "")


@_func("set", params=("map", "str", "any"))
def _set(mapping: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    mapping[key] = value
    return mapping


@_func("unset", params=("map", "str"))
def _unset(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    mapping.pop(key, None)
    return mapping


@_func("hasKey", params=("map", "str"))
def _has_key(mapping: dict[str, Any], key: str) -> bool:
    return key in mapping


@_func("pluck", params=("str",), variadic="map")
def _pluck(key: str, *mappings: dict[str, Any]) -> list[Any]:
    return [mapping[key] for mapping in mappings if key in mapping]


@_func("keys", variadic="map")
def _keys(*mappings: dict[str, Any]) -> _StrList:
    return _StrList(sorted(key for mapping in mappings for key in mapping))


@_func("values", params=("map",))
def _values(mapping: dict[str, Any]) -> list[Any]:
    return [mapping[key] for key in sorted(mapping)]


@_func("pick", params=("map",), variadic="str")
def _pick(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: mapping[key] for key in keys if key in mapping}


@_func("omit", params=("map",), variadic="str")
def _omit(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key not in keys}


@_func("deepCopy", "mustDeepCopy", params=("any",))
def _deep_copy(value: Any) -> Any:
    if _is_nil(value):
        raise _CallError("deepCopy: nil value")
    return copy.deepcopy(value)


# --------------------------------------------------------------------------- sprig: reflection


@_func("typeOf", params=("any",))
def _type_of(value: Any) -> str:
    return _go_type(value)


@_func("typeIs", params=("str", "any"))
def _type_is(target: str, value: Any) -> bool:
    return target == _go_type(value)


@_func("typeIsLike", params=("str", "any"))
def _type_is_like(target: str, value: Any) -> bool:
    return target in (_go_type(value), "*" + _go_type(value))


@_func("kindOf", params=("any",))
def _kind_of(value: Any) -> str:
    return _go_kind(value)


@_func("kindIs", params=("str", "any"))
def _kind_is(target: str, value: Any) -> bool:
    return target == _go_kind(value)


@_func("deepEqual", params=("any", "any"))
def _deep_equal_fn(first: Any, second: Any) -> bool:
    return _deep_equal(first, second)


# --------------------------------------------------------------------------- sprig: paths


def _path_clean(path: str) -> str:
    """Go's ``path.Clean``."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(segment)
    joined = "/".join(parts)
    return "/" + joined if rooted else joined or "."


@_func("base", "osBase", params=("str",))
def _path_base(path: str) -> str:
    if path == "":
        return "."
    path = path.rstrip("/")
    return path[path.rfind("/") + 1 :] if path else "/"


@_func("dir", "osDir", params=("str",))
def _path_dir(path: str) -> str:
    return _path_clean(path[: path.rfind("/") + 1])


@_func("clean", "osClean", params=("str",))
def _path_clean_fn(path: str) -> str:
    return _path_clean(path)


@_func("ext", "osExt", params=("str",))
def _path_ext(path: str) -> str:
    for index in range(len(path) - 1, -1, -1):
        if path[index] == "/":
            break
        if path[index] == ".":
            return path[index:]
    return ""


@_func("isAbs", "osIsAbs", params=("str",))
def _path_is_abs(path: str) -> bool:
    return path.startswith("/")


# --------------------------------------------------------------------------- sprig: regular expressions


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled_regex(pattern: str) -> re.Pattern[str]:
    # sensors.filters will import this module (data filter templates); importing it here, at the
    # first regex call, keeps the two modules free of an import cycle.

    return go_regex(pattern)


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return _compiled_regex(pattern)
    except re.error as exc:
        raise _CallError(f"error parsing regexp: {exc}: `{pattern}`") from None


def _all_matches(regex: re.Pattern[str], text: str, limit: int) -> list[re.Match[str]]:
    """Go's ``allMatches``: an empty match right after a previous match is skipped."""
    if limit < 0:
        limit = len(text) + 1
    out: list[re.Match[str]] = []
    pos, previous_end = 0, -1
    while len(out) < limit and pos <= len(text):
        match = regex.search(text, pos)
        if match is None:
            break
        accept = True
        if match.end() == pos:
            if match.start() == previous_end:
                accept = False
            pos += 1
        else:
            pos = match.end()
        previous_end = match.end()
        if accept:
            out.append(match)
    return out


def _replace_all(regex: re.Pattern[str], text: str, replacement: Callable[[re.Match[str]], str]) -> str:
    """Go's ``Regexp.replaceAll``."""
    out: list[str] = []
    last_end = search_pos = 0
    while search_pos <= len(text):
        match = regex.search(text, search_pos)
        if match is None:
            break
        out.append(text[last_end : match.start()])
        if match.end() > last_end or match.start() == 0:
            out.append(replacement(match))
        last_end = match.end()
        if search_pos + 1 > match.end():
            search_pos += 1
        else:
            search_pos = match.end()
    out.append(text[last_end:])
    return _check_size("".join(out))


def _expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""
    out: list[str] = []
    rest = template
    while True:
        dollar = rest.find("$")
        if dollar < 0:
            break
        out.append(rest[:dollar])
        rest = rest[dollar + 1 :]
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        brace = rest.startswith("{")
        body = rest[1:] if brace else rest
        length = 0
        while length < len(body) and _is_alnum(body[length]):
            length += 1
        if length == 0 or (brace and body[length : length + 1] != "}"):
            out.append("$")
            continue
        name = body[:length]
        rest = body[length + 1 :] if brace else body[length:]
        group: int | None
        if name.isascii() and name.isdigit() and not (name[0] == "0" and len(name) > 1) and len(name) <= 8:
            group = int(name)
        else:
            group = match.re.groupindex.get(name)
        if group is not None and group <= match.re.groups and match.group(group) is not None:
            out.append(match.group(group))
    out.append(rest)
    return "".join(out)


@_func("regexMatch", params=("str", "str"))
def _regex_match(pattern: str, text: str) -> bool:
    try:
        return _regex(pattern).search(text) is not None
    except _CallError:
        return False  # sprig ignores the error


@_func("mustRegexMatch", params=("str", "str"))
def _must_regex_match(pattern: str, text: str) -> bool:
    return _regex(pattern).search(text) is not None


@_func("regexFind", "mustRegexFind", params=("str", "str"))
def _regex_find(pattern: str, text: str) -> str:
    match = _regex(pattern).search(text)
    return match.group(0) if match else ""


@_func("regexFindAll", "mustRegexFindAll", params=("str", "str", "int"))
def _regex_find_all(pattern: str, text: str, limit: int) -> _StrList:
    return _StrList(match.group(0) for match in _all_matches(_regex(pattern), text, limit))


@_func("regexReplaceAll", "mustRegexReplaceAll", params=("str", "str", "str"))
def _regex_replace_all(pattern: str, text: str, replacement: str) -> str:
    return _replace_all(_regex(pattern), text, lambda match: _expand(replacement, match))


@_func("regexReplaceAllLiteral", "mustRegexReplaceAllLiteral", params=("str", "str", "str"))
def _regex_replace_all_literal(pattern: str, text: str, replacement: str) -> str:
    return _replace_all(_regex(pattern), text, lambda match: replacement)


@_func("regexSplit", "mustRegexSplit", params=("str", "str", "int"))
def _regex_split(pattern: str, text: str, limit: int) -> _StrList:
    regex = _regex(pattern)
    if limit == 0:
        return _StrList()
    if pattern and not text:
        return _StrList([""])
    out = _StrList()
    begin = end = 0
    for match in _all_matches(regex, text, limit):
        if limit > 0 and len(out) == limit - 1:
            break
        end = match.start()
        if match.end() != 0:
            out.append(text[begin:end])
        begin = match.end()
    if end != len(text):
        out.append(text[begin:])
    return out


@_func("regexQuoteMeta", params=("str",))
def _regex_quote_meta(text: str) -> str:
    return "".join("\\" + ch if ch in "\\.+*?()|[]{}^$" else ch for ch in text)


# --------------------------------------------------------------------------- triggergate: key parsers


@_func("parseKey", params=("str", "str"))
def _parse_key(parser: str, key: str) -> dict[str, Any]:
    """triggergate's own function: the fields of object ``key`` for a key parser of
    :mod:`sensors.keyparse` (``{{ (parseKey "illumina" .Input.key).sample }}``); an empty map when
    the key is not a file that platform writes."""
    found = PARSERS.get(parser)
    if found is None:
        raise _CallError(f"unknown key parser {_quote(parser)}; known parsers: {', '.join(sorted(PARSERS))}")
    return dict(found.parse(key) or {})


# =========================================================================== the lists users see

_NON_DETERMINISTIC: Final = (
    "it is non-deterministic, and a replayed event must render the same output; "
    "derive values from the event instead (e.g. sha256sum of a field)"
)
_CLOCK: Final = (
    "it reads the clock or the local time zone, and a replayed event must render the same output; "
    "use the event's time (contextTemplate: .Input.time)"
)

FORBIDDEN_FUNCTIONS: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "uuidv4",
            "randAlphaNum",
            "randAlpha",
            "randAscii",
            "randNumeric",
            "randBytes",
            "randInt",
            "shuffle",
            "genPrivateKey",
            "genCA",
            "genCAWithKey",
            "genSelfSignedCert",
            "genSelfSignedCertWithKey",
            "genSignedCert",
            "genSignedCertWithKey",
            "buildCustomCert",
            "encryptAES",
            "bcrypt",
            "htpasswd",
        ),
        _NON_DETERMINISTIC,
    ),
    **dict.fromkeys(("now", "ago", "date", "htmlDate"), _CLOCK),
    "env": "it reads the process environment; put the value in the manifest or a secret",
    "expandenv": "it reads the process environment; put the value in the manifest or a secret",
    "getHostByName": "it does network I/O (DNS)",
}
"""Sprig functions a template may not call, and why."""

_UNSUPPORTED: Final = frozenset(
    {
        "semver",
        "semverCompare",
        "urlParse",
        "urlJoin",
        "wrap",
        "wrapWith",
        "merge",
        "mergeOverwrite",
        "mustMerge",
        "mustMergeOverwrite",
        "derivePassword",
        "decryptAES",
        "call",
        "dateInZone",
        "date_in_zone",
        "dateModify",
        "date_modify",
        "mustDateModify",
        "must_date_modify",
        "htmlDateInZone",
        "toDate",
        "mustToDate",
        "unixEpoch",
        "duration",
        "durationRound",
    }
)

FUNCTIONS: Final[frozenset[str]] = frozenset(_FUNCS)
"""The functions a template may call: Go's builtins and sprig's pure functions."""
