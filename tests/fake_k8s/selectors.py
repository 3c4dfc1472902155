"""Label and field selectors, parsed and matched as ``k8s.io/apimachinery`` does.

Label selectors: comma-separated requirements, all of which must hold (AND):
``a=b``, ``a==b``, ``a!=b``, ``a`` (exists), ``!a`` (does not exist), ``a in (x,y)``, ``a notin (x,y)``,
``a>1``, ``a<1`` (integer comparison; the key must exist). ``!=`` and ``notin`` also match objects without
the label, as the real server does. Field selectors: ``field=value``, ``field==value``, ``field!=value``
over the fields a resource supports (here ``metadata.name`` and ``metadata.namespace``).

Errors raise :class:`SelectorError` with the real server's wording; the HTTP layer answers 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")


class SelectorError(ValueError):
    """A selector that does not parse; the message is what the API server would say."""


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key (qualified name), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None."""
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _VALUE.match(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if not has:
            return False
        try:
            left, right = int(str(value)), int(self.values[0])
        except ValueError:
            return False
        return left > right if self.op == ">" else left < right


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse a label selector; the empty selector matches everything."""
    tokens: list[str] = [t for t in _TOKEN.findall(text) if t]
    reqs: list[Requirement] = []
    pos = 0

    def fail(detail: str) -> SelectorError:
        return SelectorError(f"unable to parse requirement: {detail}")

    def take() -> str | None:
        nonlocal pos
        if pos >= len(tokens):
            return None
        pos += 1
        return tokens[pos - 1]

    def check_key(key: str) -> None:
        problem = label_key_problem(key)
        if problem:
            raise fail(f'key: Invalid value: "{key}": {problem}')

    def check_value(key: str, value: str) -> None:
        problem = label_value_problem(value)
        if problem:
            raise fail(f'values[0][{key}]: Invalid value: "{value}": {problem}')

    while pos < len(tokens):
        tok = take()
        if tok == "!":
            key = take() or ""
            check_key(key)
            reqs.append(Requirement(key, "!"))
        elif tok is None or tok in ("=", "==", "!=", "(", ")", ",", ">", "<"):
            raise fail(f"found '{tok}', expected: !, identifier, or 'end of string'")
        else:
            key = tok
            check_key(key)
            op = take()
            if op is None or op == ",":
                reqs.append(Requirement(key, "exists"))
                continue
            if op in ("=", "==", "!="):
                nxt = tokens[pos] if pos < len(tokens) else None
                value = "" if nxt in (None, ",") else (take() or "")
                check_value(key, value)
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            elif op in (">", "<"):
                value = take() or ""
                if not re.fullmatch(r"-?\d+", value):
                    raise fail(f"for 'Gt', 'Lt' operators, the value must be an integer, got {value!r}")
                reqs.append(Requirement(key, op, (value,)))
            elif op in ("in", "notin"):
                if take() != "(":
                    raise fail("found '" + str(tokens[pos - 1] if pos else "") + "', expected: '('")
                values: list[str] = []
                while True:
                    v = take()
                    if v is None:
                        raise fail("found 'end of string', expected: ')'")
                    if v == ")":
                        break
                    if v == ",":
                        continue
                    check_value(key, v)
                    values.append(v)
                if not values:
                    raise fail(f"for 'in', 'notin' operators, values set can't be empty (key {key})")
                reqs.append(Requirement(key, op, tuple(values)))
            else:
                raise fail(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")
            after = take()
            if after not in (None, ","):
                raise fail(f"found '{after}', expected: ',' or 'end of string'")
    return reqs


def labels_match(reqs: list[Requirement], obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        actual = meta.get(self.field.split(".", 1)[1]) or ""
        return (actual != self.value) if self.negate else (actual == self.value)


def parse_field_selector(text: str, supported: tuple[str, ...] = FIELDS) -> list[FieldRequirement]:
    reqs: list[FieldRequirement] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = re.fullmatch(r"([^=!]+?)\s*(!=|==|=)\s*(.*)", part)
        if m is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        reqs.append(FieldRequirement(field, value, op == "!="))
    return reqs


def fields_match(reqs: list[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    return all(r.matches(obj) for r in reqs)
