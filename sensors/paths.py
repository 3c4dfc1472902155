"""gjson-style path lookup and sjson-style writes on parsed JSON, as Argo Events users write paths.

Argo Events evaluates ``dataKey``, filter ``path`` and parameter ``dest`` with the Go libraries
``tidwall/gjson`` (read) and ``tidwall/sjson`` (write) on the raw JSON bytes of an event. triggergate
keeps event data parsed (``dict``/``list``/``str``/``int``/``float``/``bool``/``None``); this module gives
the same answers on parsed data.

Read (:func:`lookup`), the gjson path syntax:

* ``a.b.c`` keys; ``items.1.name`` array indexes; a key of digits on an object is a key (``"0"``).
* ``a\\.b`` escapes ``.``, ``*``, ``?``, ``|`` and ``\\`` itself.
* ``*`` and ``?`` wildcards in keys: the first key (in document order) that matches and for which
  the rest of the path exists.
* ``items.#`` array length; ``items.#.name`` the ``name`` of every element (elements without it are
  left out), nested freely (``a.#.b.#.c``).
* queries ``items.#(kind=="fastq")`` (first match) and ``items.#(size>10)#`` (all matches) with
  ``== = != < <= > >= %`` (like) ``!%`` (not like), a bare path for existence (``#(meta)``), values
  without a path for arrays of scalars (``#(=="a")``, ``#(%"*.gz")``), ``~true ~false ~null ~*``
  conversions and nested queries.
* ``|`` pipes: the rest of the path applies to the result so far (differs from ``.`` after ``#``).
* multipaths ``[a,b]`` (array) and ``{a,"x":b}`` (object), static values ``!true``/``!"s"``/``!1``,
  and the modifiers ``@this @reverse @ugly @pretty @valid @flatten @join @keys @values @tostr
  @fromstr @group @dig`` (with ``:arg``). An ``@name`` that is not a modifier is a key.

Not supported: JSON-lines paths (``..``). Deliberate difference: an escaped wildcard (``a\\*``) is
always literal; gjson loses the escape when the same key also holds an unescaped wildcard.

:class:`PathResult` carries the gjson conversions used by filters and parameters: ``string()``
(``.String()``), ``float()`` (``.Float()``), ``bool()`` (``.Bool()``), ``raw()`` (``.Raw``, as compact
JSON: the original formatting of the event is not kept) and ``is_string``.

Write (:func:`set_path`), the sjson path syntax: see its docstring.

The ``go_*`` functions are Go's ``strconv`` rules, shared by filters and parameters.
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import orjson

__all__ = [
    "PathError",
    "PathResult",
    "compact_json",
    "go_format_float",
    "go_parse_bool",
    "go_parse_float",
    "lookup",
    "set_path",
]

Location = tuple[str | int, ...]
"""Where a value sits in the document: the keys and indexes from the root."""

_MISSING: Final[Any] = object()
"""A path that does not exist (``None`` is JSON null)."""

# A hit: the value, where it sits (None when computed), and where each element of a computed
# array sits (for ``#.key`` and ``#(...)#`` results, as gjson's ``Indexes``).
_Hit = tuple[Any, Location | None, tuple[Location, ...] | None]

_CACHE_SIZE = 8192


class PathError(ValueError):
    """A path cannot be written (``set_path``)."""


# --------------------------------------------------------------------------- Go conversions

_GO_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GO_HEX = re.compile(r"([+-]?)0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+)")
_GO_SPECIAL = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_ASCII_DIGITS = re.compile(r"[0-9]+")


def go_parse_float(text: str) -> tuple[float, bool]:
    """Go's ``strconv.ParseFloat(text, 64)``: ``(value, ok)``.

    Accepts what Go accepts (decimal, exponent, ``inf``/``infinity``/``nan`` in any case, hex floats
    with a ``p`` exponent) and rejects what Go rejects (spaces, ``1_000``). A syntax error gives
    ``(0.0, False)``; a value out of range gives ``(±inf, False)``.
    """
    if _GO_DECIMAL.fullmatch(text):
        value = float(text)
        return value, not math.isinf(value)
    lowered = text.lower()
    unsigned = lowered[1:] if lowered[:1] in ("+", "-") else lowered
    sign = -1.0 if lowered.startswith("-") else 1.0
    special = _GO_SPECIAL.get(unsigned)
    if special is not None and (unsigned != "nan" or unsigned == lowered):
        return sign * special, True
    hexed = _GO_HEX.fullmatch(text)
    if hexed:
        try:
            value = float.fromhex("0x" + hexed.group(2))
        except OverflowError:
            return sign * math.inf, False
        return sign * value, True
    return 0.0, False


def go_parse_bool(text: str) -> bool | None:
    """Go's ``strconv.ParseBool``: ``True``/``False``, or ``None`` when ``text`` is not a boolean."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    return None


def go_format_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(value, 'f', -1, 64)``: shortest digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(Decimal(repr(value)).normalize(), "f")


def compact_json(value: Any) -> str:
    """Compact JSON text of a parsed value (what gjson's ``.Raw`` is for compact input)."""
    return orjson.dumps(value).decode("utf-8")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _gjson_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_format_float(value)
    return compact_json(value)


def _gjson_float(value: Any) -> float:
    if value is True:
        return 1.0
    if isinstance(value, str):
        return go_parse_float(value)[0]
    if _is_number(value):
        return float(value)
    return 0.0


def _gjson_bool(value: Any) -> bool:
    if value is True:
        return True
    if isinstance(value, str):
        return value.lower() in ("1", "t", "true")
    if _is_number(value):
        return bool(value != 0)
    return False


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class PathResult:
    """A value found at a path, with gjson's conversions.

    ``location`` is where the value sits in the document (keys and indexes from the root), or
    ``None`` when the value is computed (``#`` counts, ``#.key`` arrays, multipaths, modifiers, or
    anything after a ``|``).
    """

    value: Any
    location: Location | None = None

    @property
    def is_string(self) -> builtins.bool:
        """The value is a JSON string (gjson type ``String``)."""
        return isinstance(self.value, str)

    @property
    def type(self) -> str:
        """gjson's type name: ``Null``, ``False``, ``Number``, ``String``, ``True`` or ``JSON``."""
        value = self.value
        if value is None:
            return "Null"
        if value is True:
            return "True"
        if value is False:
            return "False"
        if isinstance(value, str):
            return "String"
        if _is_number(value):
            return "Number"
        return "JSON"

    def string(self) -> str:
        """gjson ``.String()``: strings as they are, numbers as Go prints them (``1`` for ``1.0``),
        ``true``/``false``, ``""`` for null, objects and arrays as compact JSON."""
        return _gjson_string(self.value)

    def float(self) -> builtins.float:
        """gjson ``.Float()``: numbers; numeric strings parsed as Go does; ``true`` is 1; else 0."""
        return _gjson_float(self.value)

    def bool(self) -> builtins.bool:
        """gjson ``.Bool()``: ``true``; strings ``1``/``t``/``true`` in any case; numbers != 0."""
        return _gjson_bool(self.value)

    def raw(self) -> str:
        """gjson ``.Raw`` as compact JSON: ``"text"`` quoted, ``null``, ``1.5``, ``{"a":1}``."""
        return compact_json(self.value)


def lookup(data: Any, path: str) -> PathResult | None:
    """The value at a gjson ``path`` in parsed JSON ``data``, or ``None`` when the path does not exist.

    A JSON null that exists gives ``PathResult(None)``; a missing path gives ``None``.
    """
    hit = _get(data, path, ())
    if hit is None:
        return None
    return PathResult(hit[0], hit[1])


# --------------------------------------------------------------------------- path components


@dataclass(frozen=True, slots=True)
class _ObjectPart:
    """One component of a path applied to an object (gjson ``parseObjectPath``)."""

    key: str
    pattern: re.Pattern[str] | None  # set when the key holds unescaped wildcards
    rest: str  # the path after this component
    more: bool  # rest follows a '.': wildcard matches are tried until the rest exists
    piped: bool  # rest follows a '|' (or a '.' before a modifier or multipath): first match only


@dataclass(frozen=True, slots=True)
class _Query:
    path: str
    op: str
    value: str
    all: bool


@dataclass(frozen=True, slots=True)
class _ArrayPart:
    """One component of a path applied to an array (gjson ``parseArrayPath``)."""

    index: int | None  # a plain index
    hashed: bool  # the component starts with '#' (count, each, query) or holds one
    count: bool  # exactly '#'
    each: bool  # '#.rest': the rest applies to every element
    query: _Query | None
    left: str | None  # path applied to each element / the matched element
    right: str | None  # path applied after a '|' to the result


def _wildcard_regex(tokens: list[tuple[str, bool]]) -> re.Pattern[str]:
    parts = []
    for text, wild in tokens:
        if wild:
            parts.append(".*" if text == "*" else ".")
        else:
            parts.append(re.escape(text))
    return re.compile("".join(parts), re.DOTALL)


@lru_cache(maxsize=_CACHE_SIZE)
def _like_pattern(pattern: str) -> re.Pattern[str]:
    """tidwall/match: ``*`` any run, ``?`` one character, ``\\`` escapes the next character."""
    tokens: list[tuple[str, bool]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            tokens.append((pattern[i + 1], False))
            i += 2
            continue
        tokens.append((ch, ch in "*?"))
        i += 1
    return _wildcard_regex(tokens)


def _modifier_name_at(path: str) -> str | None:
    """The modifier named at the start of ``path`` (which starts with '@'), if it is one."""
    end = 1
    while end < len(path) and path[end] not in ".|:":
        end += 1
    name = path[1:end]
    return name if name in _MODIFIERS else None


def _is_dot_piper(path: str) -> bool:
    """After a '.', a modifier or multipath makes the '.' act as '|' (gjson ``isDotPiperChar``)."""
    if path[0] == "@":
        return _modifier_name_at(path) is not None
    return path[0] in "[{"


@lru_cache(maxsize=_CACHE_SIZE)
def _object_part(path: str) -> _ObjectPart:
    tokens: list[tuple[str, bool]] = []
    wild = False
    i = 0
    rest, more, piped = "", False, False
    while i < len(path):
        ch = path[i]
        if ch == "|":
            rest, piped = path[i + 1 :], True
            break
        if ch == ".":
            if i < len(path) - 1 and _is_dot_piper(path[i + 1 :]):
                rest, piped = path[i + 1 :], True
            else:
                rest, more = path[i + 1 :], True
            break
        if ch == "\\":
            if i + 1 < len(path):
                tokens.append((path[i + 1], False))
            i += 2
            continue
        if ch in "*?":
            wild = True
            tokens.append((ch, True))
        else:
            tokens.append((ch, False))
        i += 1
    key = "".join(text for text, _ in tokens)
    return _ObjectPart(key, _wildcard_regex(tokens) if wild else None, rest, more, piped)


def _skip_string(path: str, i: int) -> int:
    """``path[i]`` is '"': the index of the closing quote (or the end)."""
    i += 1
    while i < len(path):
        if path[i] == "\\":
            i += 2
            continue
        if path[i] == '"':
            return i
        i += 1
    return i


def _parse_query(path: str) -> tuple[str, str, str, int, bool] | None:
    """gjson ``parseQuery`` on ``#(...)``: (path, op, value, index after ')', value had escapes)."""
    i, j, depth, escaped = 2, 0, 1, False
    while i < len(path):
        ch = path[i]
        if depth == 1 and j == 0 and ch in "!=<>%":
            j = i
            i += 1
            continue
        if ch == "\\":
            i += 1
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0:
                break
        elif ch == '"':
            end = _skip_string(path, i)
            escaped = escaped or "\\" in path[i:end]
            i = end
        i += 1
    if depth > 0:
        return None
    if j == 0:
        return path[2:i].strip(" \t\r\n"), "", "", i + 1, escaped
    qpath = path[2:j].strip(" \t\r\n")
    value = path[j:i].strip(" \t\r\n")
    trail = 0
    if len(value) == 1:
        trail = 1
    elif value[:2] in ("!=", "!%", "<=", ">="):
        trail = 2
    elif value[:2] == "==":
        value, trail = value[1:], 1
    elif value[0] in "<>=%":
        trail = 1
    return qpath, value[:trail], value[trail:].strip(" \t\r\n"), i + 1, escaped


def _split_pipe(path: str) -> tuple[str, str | None]:
    """gjson ``splitPossiblePipe``: split at the first '|' that is not inside a ``.#(...)`` query."""
    if "|" not in path:
        return path, None
    if path[0] == "{":
        end = _squash(path)
        if end < len(path) and path[end] == "|":
            return path[:end], path[end + 1 :]
        return path, None
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "\\":
            i += 1
        elif ch == "." and path[i + 1 : i + 2] == "#" and path[i + 2 : i + 3] in ("[", "("):
            opener = path[i + 2]
            closer = "]" if opener == "[" else ")"
            i += 3
            depth = 1
            while i < len(path):
                if path[i] == "\\":
                    i += 1
                elif path[i] == opener:
                    depth += 1
                elif path[i] == closer:
                    depth -= 1
                    if depth == 0:
                        break
                elif path[i] == '"':
                    i = _skip_string(path, i)
                i += 1
        elif ch == "|":
            return path[:i], path[i + 1 :]
        i += 1
    return path, None


@lru_cache(maxsize=_CACHE_SIZE)
def _array_part(path: str) -> _ArrayPart:
    hashed = False
    query: _Query | None = None
    each = False
    part, rest, pipe = path, None, None
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "|":
            part, pipe = path[:i], path[i + 1 :]
            break
        if ch == ".":
            part = path[:i]
            if not hashed and i < len(path) - 1 and _is_dot_piper(path[i + 1 :]):
                pipe = path[i + 1 :]
            else:
                rest = path[i + 1 :]
            break
        if ch == "#":
            hashed = True
            if i == 0 and len(path) > 1:
                if path[1] == ".":
                    each = True
                elif path[1] in "[(":
                    parsed = _parse_query(path)
                    if parsed is None:
                        return _ArrayPart(None, True, False, False, None, None, None)  # no ')'
                    qpath, op, value, after, escaped = parsed
                    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                        value = value[1:-1]
                        if escaped:
                            value = _json_unescape(value)
                    i = after - 1
                    query = _Query(qpath, op, value, path[after : after + 1] == "#")
        i += 1
    index = int(part) if not hashed and _ASCII_DIGITS.fullmatch(part) else None
    if rest is not None and (each or (query is not None and query.all)):
        left, right = _split_pipe(rest)
        return _ArrayPart(index, hashed, False, each, query, left, right)
    if rest is not None:
        return _ArrayPart(index, hashed, False, each, query, rest, None)
    return _ArrayPart(index, hashed, part == "#", False, query, None, pipe)


_ESCAPES = {"\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", '"': '"'}


def _hex4(text: str) -> int:
    return int(text, 16) if re.fullmatch(r"[0-9a-fA-F]{4}", text) else 0


def _json_unescape(text: str) -> str:
    """gjson ``unescape``: JSON escapes decoded; it stops at a control character or a bad escape."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch < " ":
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        if nxt != "u" or i + 6 > len(text):
            break
        code = _hex4(text[i + 2 : i + 6])
        i += 6
        if 0xD800 <= code < 0xE000:
            low = _hex4(text[i + 2 : i + 6]) if text[i : i + 2] == "\\u" else 0
            if 0xD800 <= code < 0xDC00 and 0xDC00 <= low < 0xE000:
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                i += 6
            else:
                i += 6 if text[i : i + 2] == "\\u" else 0
                code = 0xFFFD
        out.append(chr(code))
    return "".join(out)


# --------------------------------------------------------------------------- evaluation


def _unlocated(hit: _Hit | None) -> _Hit | None:
    return None if hit is None else (hit[0], None, None)


def _get(value: Any, path: str, loc: Location) -> _Hit | None:
    """gjson ``Get``: modifiers, static values and multipaths first, then keys and indexes."""
    if len(path) > 1:
        first = path[0]
        if first == "@":
            modifier = _modifier(path)
            if modifier is not None:
                return _computed(*modifier(value))
        elif first == "!":
            static = _static(path)
            if static is not None:
                return _computed(*static)
        elif first in "[{":
            selectors = _selectors(path)
            if selectors is not None and selectors[1][:1] in ("", ".", "|"):
                built = _build_multipath(value, first, selectors[0])
                rest = selectors[1]
                if rest:
                    return _unlocated(_get(built, rest[1:], ()))
                return built, None, None
    if isinstance(value, dict):
        return _get_object(value, path, loc)
    if isinstance(value, list):
        return _get_array(value, path, loc)
    return None


def _computed(value: Any, rest: str) -> _Hit | None:
    """The result of a modifier or static value, then the rest of the path after '.' or '|'."""
    if value is _MISSING:
        return None
    if rest[:1] in (".", "|"):
        return _unlocated(_get(value, rest[1:], ()))
    return value, None, None


def _descend(value: Any, path: str, loc: Location) -> _Hit | None:
    if isinstance(value, dict):
        return _get_object(value, path, loc)
    if isinstance(value, list):
        return _get_array(value, path, loc)
    return None


def _get_object(obj: dict[str, Any], path: str, loc: Location) -> _Hit | None:
    part = _object_part(path)
    pattern = part.pattern
    keys: Iterable[str]
    if pattern is None:
        keys = (part.key,) if part.key in obj else ()
    else:
        keys = (key for key in obj if pattern.fullmatch(key))
    for key in keys:
        child = obj[key]
        if part.more:
            hit = _descend(child, part.rest, (*loc, key))
            if hit is not None:
                return hit
            continue
        if part.piped:
            return _unlocated(_get(child, part.rest, ()))
        return child, (*loc, key), None
    return None


def _get_array(arr: list[Any], path: str, loc: Location) -> _Hit | None:
    part = _array_part(path)
    if not part.hashed:
        index = part.index
        if index is None or index >= len(arr):
            return None
        child = arr[index]
        if part.left is not None:
            return _descend(child, part.left, (*loc, index))
        if part.right is not None:
            return _unlocated(_get(child, part.right, ()))
        return child, (*loc, index), None
    if part.query is not None:
        return _get_query(arr, part, part.query, loc)
    if part.each:
        values: list[Any] = []
        locations: list[Location | None] = []
        for index, child in enumerate(arr):
            hit = _get(child, part.left or "", (*loc, index))
            if hit is not None:
                values.append(hit[0])
                locations.append(hit[1])
        return _finish_array(values, locations, part.right)
    if part.count:
        if part.right is not None:
            return _unlocated(_get(len(arr), part.right, ()))
        return len(arr), None, None
    return None


def _finish_array(values: list[Any], locations: list[Location | None], right: str | None) -> _Hit | None:
    if right is not None:
        return _unlocated(_get(values, right, ()))
    located = tuple(loc for loc in locations if loc is not None)
    return values, None, located if len(located) == len(locations) else None


def _get_query(arr: list[Any], part: _ArrayPart, query: _Query, loc: Location) -> _Hit | None:
    values: list[Any] = []
    locations: list[Location | None] = []
    for index, child in enumerate(arr):
        if isinstance(child, dict | list):
            hit = _get(child, query.path, ())
            probe = _MISSING if hit is None else hit[0]
        elif query.path:
            continue
        else:
            probe = child
        if not _query_matches(query, probe):
            continue
        found: _Hit | None
        if part.left is not None:
            found = _get(child, part.left, (*loc, index))
        else:
            found = child, (*loc, index), None
        if not query.all:
            if found is not None and part.right is not None:
                return _unlocated(_get(found[0], part.right, ()))
            return found
        if found is not None:
            values.append(found[0])
            locations.append(found[1])
    if query.all:
        return _finish_array(values, locations, part.right)
    return None


def _truthy_conversion(name: str, value: Any) -> bool | None:
    """gjson's ``~`` query values: ``~true``, ``~false``, ``~null``, ``~*``."""
    if name == "*":
        return value is not _MISSING
    if name == "null":
        return value is _MISSING or value is None
    if name == "true":
        return value is not _MISSING and _gjson_bool(value)
    if name == "false":
        if value is _MISSING or value is None or value is False:
            return True
        if isinstance(value, str):
            return go_parse_bool(value.lower()) is False
        return _is_number(value) and bool(value == 0)
    return None


def _query_matches(query: _Query, value: Any) -> bool:
    expected = query.value
    if expected.startswith("~"):
        converted = _truthy_conversion(expected[1:], value)
        if converted is None:
            return False
        value, expected = converted, "true"
    if value is _MISSING:
        return False
    op = query.op
    if op == "":
        return True
    if isinstance(value, str):
        if op == "%":
            return _like_pattern(expected).fullmatch(value) is not None
        if op == "!%":
            return _like_pattern(expected).fullmatch(value) is None
        return _compare(op, value, expected)
    if value is True:
        return {"=": expected == "true", "!=": expected != "true", ">": expected == "false", ">=": True}.get(
            op, False
        )
    if value is False:
        return {"=": expected == "false", "!=": expected != "false", "<": expected == "true", "<=": True}.get(
            op, False
        )
    if _is_number(value):
        return _compare(op, float(value), go_parse_float(expected)[0])
    return False


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    return False


# --------------------------------------------------------------------------- multipaths, statics


def _squash(path: str) -> int:
    """gjson ``squash``: the end of the balanced ``{...}``/``[...]``/``(...)``/``"..."`` at the start."""
    i, depth = 0, 0
    if path[0] != '"':
        i, depth = 1, 1
    while i < len(path):
        ch = path[i]
        if ch == '"':
            i = _skip_string(path, i)
            if depth == 0:
                return min(i + 1, len(path))
        elif ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(path)


@lru_cache(maxsize=_CACHE_SIZE)
def _selectors(path: str) -> tuple[tuple[tuple[str | None, str], ...], str] | None:
    """gjson ``parseSubSelectors`` on ``[p1,p2]`` or ``{p1,"name":p2}``: (selectors, rest)."""
    selectors: list[tuple[str | None, str]] = []
    modifier, depth, colon, start = 0, 1, 0, 1
    i = 1
    while i < len(path):
        ch = path[i]
        push = False
        if ch == "\\":
            i += 1
        elif ch == "@":
            if modifier == 0 and path[i - 1] in ".|":
                modifier = i
        elif ch == ":":
            if modifier == 0 and colon == 0 and depth == 1:
                colon = i
        elif ch == ",":
            push = depth == 1
        elif ch == '"':
            i = _skip_string(path, i)
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
            push = depth == 0
        if push:
            if colon == 0:
                selectors.append((None, path[start:i]))
            else:
                selectors.append((path[start:colon], path[colon + 1 : i]))
            colon, modifier, start = 0, 0, i + 1
            if depth == 0:
                return tuple(selectors), path[i + 1 :]
        i += 1
    return None


def _name_of_last(path: str) -> str:
    for i in range(len(path) - 1, -1, -1):
        if path[i] in "|." and not (i > 0 and path[i - 1] == "\\"):
            return path[i + 1 :]
    return path


def _is_simple_name(name: str) -> bool:
    return not any(ch < " " or ch in "[]{}()#|!" for ch in name)


def _quoted_name(name: str) -> str:
    """A multipath key as written: a valid JSON string is decoded, anything else is kept."""
    if name.startswith('"'):
        try:
            return str(orjson.loads(name))  # valid JSON that starts with '"' is a string
        except orjson.JSONDecodeError:
            return name
    return name


def _build_multipath(value: Any, kind: str, selectors: tuple[tuple[str | None, str], ...]) -> Any:
    if kind == "[":
        items = []
        for _, path in selectors:
            hit = _get(value, path, ())
            if hit is not None:
                items.append(hit[0])
        return items
    obj: dict[str, Any] = {}
    for name, path in selectors:
        hit = _get(value, path, ())
        if hit is None:
            continue
        if name:
            key = _quoted_name(name)
        else:
            last = _name_of_last(path)
            key = last if _is_simple_name(last) else "_"
        obj.setdefault(key, hit[0])
    return obj


_STATIC_NUMBER = re.compile(r"[+-]?[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?")
_STATIC_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None, "nan": math.nan, "inf": math.inf}


@lru_cache(maxsize=_CACHE_SIZE)
def _static(path: str) -> tuple[Any, str] | None:
    """gjson ``execStatic``: ``!true``, ``!null``, ``!"text"``, ``!12.5``, ``!{"a":1}``: (value, rest)."""
    body = path[1:]
    if body[0] in '{["':
        end = _squash(body)
        try:
            return orjson.loads(body[:end]), body[end:]
        except orjson.JSONDecodeError:
            return None
    if body[0] in "+-0123456789":
        match = _STATIC_NUMBER.match(body)
        text = match.group(0) if match else ""
        value, ok = go_parse_float(text)
        if not ok:
            return None
        number: Any = int(text) if _ASCII_DIGITS.fullmatch(text.lstrip("-")) else value
        return number, body[len(text) :]
    end = 0
    while end < len(body) and body[end] not in ".|":
        end += 1
    word = body[:end].lower()
    if word in _STATIC_WORDS:
        return _STATIC_WORDS[word], body[end:]
    return None


# --------------------------------------------------------------------------- modifiers


def _arg_object(arg: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(arg) if arg else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _mod_identity(value: Any, arg: str) -> Any:
    return value


def _mod_reverse(value: Any, arg: str) -> Any:
    if isinstance(value, list):
        return value[::-1]
    if isinstance(value, dict):
        return dict(reversed(list(value.items())))
    return value


def _flatten(items: list[Any], deep: bool) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, list):
            out.extend(_flatten(item, deep) if deep else item)
        else:
            out.append(item)
    return out


def _mod_flatten(value: Any, arg: str) -> Any:
    if not isinstance(value, list):
        return value
    return _flatten(value, _gjson_bool(_arg_object(arg).get("deep", False)))


def _mod_join(value: Any, arg: str) -> Any:
    if not isinstance(value, list):
        return value
    preserve = _gjson_bool(_arg_object(arg).get("preserve", False))
    out: dict[str, Any] = {}
    for item in value:
        if isinstance(item, dict):
            for key, val in item.items():
                if preserve:
                    out.setdefault(key, val)  # gjson keeps duplicates; a lookup sees the first
                else:
                    out[key] = val
    return out


def _mod_keys(value: Any, arg: str) -> Any:
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, list):
        return [None] * len(value)
    return [None]


def _mod_values(value: Any, arg: str) -> Any:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return value
    return [value]


def _mod_tostr(value: Any, arg: str) -> Any:
    return compact_json(value)


def _mod_fromstr(value: Any, arg: str) -> Any:
    if value is None:
        return _MISSING
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return _MISSING


def _mod_group(value: Any, arg: str) -> Any:
    if not isinstance(value, dict):
        return _MISSING
    rows: list[dict[str, Any]] = []
    for key, column in value.items():
        if isinstance(column, list):
            for index, item in enumerate(column):
                if index == len(rows):
                    rows.append({})
                rows[index].setdefault(key, item)
    return rows


def _mod_dig(value: Any, arg: str) -> Any:
    found: list[Any] = []

    def descend(node: Any) -> None:
        hit = _get(node, arg, ())
        if hit is not None:
            found.append(hit[0])
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            descend(child)

    descend(value)
    return found


_MODIFIERS: dict[str, Callable[[Any, str], Any]] = {
    "pretty": _mod_identity,
    "ugly": _mod_identity,
    "this": _mod_identity,
    "valid": _mod_identity,
    "reverse": _mod_reverse,
    "flatten": _mod_flatten,
    "join": _mod_join,
    "keys": _mod_keys,
    "values": _mod_values,
    "tostr": _mod_tostr,
    "fromstr": _mod_fromstr,
    "group": _mod_group,
    "dig": _mod_dig,
}


@lru_cache(maxsize=_CACHE_SIZE)
def _modifier(path: str) -> Callable[[Any], tuple[Any, str]] | None:
    """gjson ``execModifier``: ``@name``, ``@name:arg``; returns ``value -> (result, rest)``."""
    name = _modifier_name_at(path)
    if name is None:
        return None
    rest = path[1 + len(name) :]
    arg = ""
    if rest.startswith(":") and len(rest) > 1:
        rest = rest[1:]
        if rest[0] in '{["':
            end = _squash(rest)
        else:
            end = 0
            while end < len(rest) and rest[end] != "|":
                end = end + _squash(rest[end:]) if rest[end] in '{["(' else end + 1
        arg, rest = rest[:end], rest[end:]
    elif rest.startswith(":"):
        rest = ""
    function = _MODIFIERS[name]
    return lambda value: (function(value, arg), rest)


# --------------------------------------------------------------------------- sjson


@dataclass(frozen=True, slots=True)
class _SetPart:
    key: str  # the component with escapes removed
    force: bool  # written as ':key': never an array index when created


@lru_cache(maxsize=_CACHE_SIZE)
def _set_parts(path: str) -> tuple[_SetPart, ...] | None:
    """sjson ``parsePath``: the components of a simple path, or None for a complex one."""
    parts: list[_SetPart] = []
    rest = path
    while True:
        force = rest.startswith(":")
        if force:
            rest = rest[1:]
        chars: list[str] = []
        i, more = 0, False
        while i < len(rest):
            ch = rest[i]
            if ch == ".":
                more = True
                break
            if ch in "|#@*?":
                return None
            if ch == "\\":
                if i + 1 < len(rest):
                    chars.append(rest[i + 1])
                i += 2
                continue
            chars.append(ch)
            i += 1
        parts.append(_SetPart("".join(chars), force))
        if not more:
            return tuple(parts)
        rest = rest[i + 1 :]


def _numeric(part: _SetPart) -> int | None:
    """sjson ``atoui``: digits (or nothing) make an array index when the path is created."""
    if part.force:
        return None
    if part.key == "":
        return 0
    return int(part.key) if _ASCII_DIGITS.fullmatch(part.key) else None


def _build(parts: tuple[_SetPart, ...], value: Any) -> Any:
    if not parts:
        return value
    head = parts[0]
    index = _numeric(head)
    if index is not None or (not head.force and head.key == "-1"):
        return [None] * (index or 0) + [_build(parts[1:], value)]
    return {head.key: _build(parts[1:], value)}


def _set(node: Any, parts: tuple[_SetPart, ...], value: Any) -> Any:
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict) and head.key in node:
        copy = dict(node)
        copy[head.key] = _set(node[head.key], rest, value) if rest else value
        return copy
    if isinstance(node, list) and _ASCII_DIGITS.fullmatch(head.key) and int(head.key) < len(node):
        position = int(head.key)
        items = list(node)
        items[position] = _set(node[position], rest, value) if rest else value
        return items
    index = _numeric(head)
    if not isinstance(node, dict | list):
        node = [] if index is not None else {}
    if isinstance(node, dict):
        copy = dict(node)
        copy[head.key] = _build(rest, value)
        return copy
    if index is None:
        if head.key == "-1" and not head.force:
            return [*node, _build(rest, value)]
        raise PathError(
            f"cannot set array element for non-numeric key '{head.key}': "
            "use an index (0, 1, ...) or -1 to append"
        )
    return [*node, *([None] * (index - len(node))), _build(rest, value)]


def _replace_at(node: Any, location: Location, value: Any) -> Any:
    """A copy of ``node`` with the value at ``location`` (found by a lookup on it) replaced."""
    if not location:
        return value
    head = location[0]
    if isinstance(node, dict) and isinstance(head, str):
        copy_dict = dict(node)
        copy_dict[head] = _replace_at(node[head], location[1:], value)
        return copy_dict
    assert isinstance(node, list) and isinstance(head, int), "location does not match the document"
    copy_list = list(node)
    copy_list[head] = _replace_at(node[head], location[1:], value)
    return copy_list


def set_path(doc: Any, path: str, value: Any) -> Any:
    """Write ``value`` at an sjson ``path`` and return the new document; ``doc`` is not modified.

    Rules (sjson's, as Argo uses it for parameter ``dest``):

    * Components are separated by ``.``; ``\\`` escapes the next character (``labels.app\\.io/name``).
    * An existing key or index is replaced (a digit component on an existing array is an index,
      on an existing object a key).
    * A missing component is created: on an object as a key (``"0"`` too); on an array a
      digit component sets that index, padding with ``null`` (``friends.4`` on two items gives
      ``[a, b, null, null, x]``), ``-1`` appends, anything else is a :class:`PathError`.
    * Missing containers below are created as sjson does: a digit component (or ``-1``) creates
      an array (``a.2`` on ``{}`` gives ``{"a": [null, null, x]}``), anything else an object. A
      leading ``:`` forces an object key (``users.:2313``). A scalar (or ``None``, the empty
      document) in the way is replaced by the container.
    * A path with ``#``, ``@``, ``*``, ``?`` or ``|`` is a gjson query: every existing value it
      finds is replaced (``friends.#.name``, ``friends.#(age>40)#.name``); if it finds nothing the
      document is returned unchanged, as sjson does.
    * An empty path is a :class:`PathError`.
    """
    if path == "":
        raise PathError("path cannot be empty")
    parts = _set_parts(path)
    if parts is not None:
        return _set(doc, parts, value)
    hit = _get(doc, path, ())
    if hit is None:
        return doc
    _, location, locations = hit
    if location:
        return _replace_at(doc, location, value)
    for element in locations or ():
        doc = _replace_at(doc, element, value)
    return doc
