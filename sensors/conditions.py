"""The dependency expression of a trigger: ``conditions`` with ``&&``, ``||`` and parentheses.

As in Argo Events, ``-`` and ``_`` in dependency names are the same character (``dep-1a`` names the
dependency ``dep_1a``), and an empty expression means "every dependency of the sensor".
Unlike Argo, a name that is no dependency is an error when the sensor is loaded (Argo accepts it
and the trigger silently never fires).
"""

from __future__ import annotations

import re
from collections.abc import Sequence, Set
from dataclasses import dataclass

_TOKEN = re.compile(r"\s*(?:(\|\|)|(&&)|(\()|(\))|([A-Za-z0-9_][A-Za-z0-9_\-]*))")


class ConditionsError(ValueError):
    """The expression does not parse or names an unknown dependency."""


@dataclass(frozen=True, slots=True)
class Name:
    dependency: str

    def evaluate(self, satisfied: Set[str]) -> bool:
        return self.dependency in satisfied

    def unparse(self) -> str:
        return self.dependency


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Node, ...]

    def evaluate(self, satisfied: Set[str]) -> bool:
        return all(part.evaluate(satisfied) for part in self.parts)

    def unparse(self) -> str:
        """``a && b``; a part that is itself an ``&&`` or ``||`` is parenthesised."""
        return " && ".join(
            f"({part.unparse()})" if isinstance(part, And | Or) else part.unparse() for part in self.parts
        )


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Node, ...]

    def evaluate(self, satisfied: Set[str]) -> bool:
        return any(part.evaluate(satisfied) for part in self.parts)

    def unparse(self) -> str:
        """``a || b && c``; a part that is itself an ``||`` is parenthesised."""
        return " || ".join(
            f"({part.unparse()})" if isinstance(part, Or) else part.unparse() for part in self.parts
        )


Node = Name | And | Or


@dataclass(frozen=True, slots=True)
class Conditions:
    """A parsed expression: ``evaluate(satisfied)`` and the dependencies it names."""

    root: Node
    dependencies: frozenset[str]
    text: str

    def evaluate(self, satisfied: Set[str]) -> bool:
        return self.root.evaluate(satisfied)

    def unparse(self) -> str:
        """Canonical text that parses back to the same tree (``text`` is what the manifest says).

        Names are printed as they are: a dependency whose name the expression cannot spell (only
        reachable through empty conditions) does not parse back.
        """
        return self.root.unparse()


def _normal(name: str) -> str:
    return name.replace("-", "_")


def _tokenize(expr: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    text = expr.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            col = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise ConditionsError(
                f"unexpected character {text[col]!r} at position {col + 1} in conditions {expr!r}; "
                "use dependency names, '&&', '||' and parentheses"
            )
        kind = ("or", "and", "(", ")", "name")[match.lastindex - 1 if match.lastindex else 0]
        tokens.append((kind, match.group(match.lastindex or 0), match.start(match.lastindex or 0)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, expr: str, names: dict[str, str]) -> None:
        self.expr = expr
        self.names = names
        self.tokens = _tokenize(expr)
        self.pos = 0
        self.used: set[str] = set()

    def _peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def _fail(self, what: str) -> ConditionsError:
        if self.pos < len(self.tokens):
            _, text, col = self.tokens[self.pos]
            return ConditionsError(f"{what} at position {col + 1} ({text!r}) in conditions {self.expr!r}")
        return ConditionsError(f"{what} at the end of conditions {self.expr!r}")

    def parse(self) -> Node:
        node = self._or()
        if self.pos != len(self.tokens):
            raise self._fail("expected '&&', '||' or the end")
        return node

    def _or(self) -> Node:
        parts = [self._and()]
        while self._peek() == "or":
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _and(self) -> Node:
        parts = [self._atom()]
        while self._peek() == "and":
            self.pos += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _atom(self) -> Node:
        kind = self._peek()
        if kind == "(":
            self.pos += 1
            node = self._or()
            if self._peek() != ")":
                raise self._fail("expected ')'")
            self.pos += 1
            return node
        if kind == "name":
            _, text, _ = self.tokens[self.pos]
            dependency = self.names.get(_normal(text))
            if dependency is None:
                known = ", ".join(sorted(self.names.values()))
                raise ConditionsError(
                    f"conditions {self.expr!r} name {text!r}, which is no dependency of this sensor; "
                    f"dependencies: {known}"
                )
            self.pos += 1
            self.used.add(dependency)
            return Name(dependency)
        raise self._fail("expected a dependency name or '('")


def parse_conditions(expr: str, dependency_names: Sequence[str]) -> Conditions:
    """Parse ``expr`` over the sensor's dependency names.

    An empty expression is the AND of every dependency, as in Argo Events.
    """
    names: dict[str, str] = {}
    for name in dependency_names:
        key = _normal(name)
        if key in names and names[key] != name:
            raise ConditionsError(
                f"dependencies {names[key]!r} and {name!r} cannot both exist: '-' and '_' are the same "
                "character in conditions"
            )
        names[key] = name
    if not expr.strip():
        deps = tuple(dict.fromkeys(dependency_names))
        root: Node = Name(deps[0]) if len(deps) == 1 else And(tuple(Name(d) for d in deps))
        return Conditions(root=root, dependencies=frozenset(deps), text="")
    parser = _Parser(expr, names)
    root = parser.parse()
    return Conditions(root=root, dependencies=frozenset(parser.used), text=expr)
