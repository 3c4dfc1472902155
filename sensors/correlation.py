"""Keyed correlation: per-key dependency sets, windows and expiry for one trigger (pure).

A trigger with ``correlation`` (triggergate's extension, see ``docs/correlation.md``) evaluates its
``conditions`` per *key*: each dependency says how the key is extracted from its (transformed)
event, and ``r1 && r2`` then fires once per key, with that key's latest R1 and R2.

This module holds two things:

* **Key extraction**, compiled once per (trigger, dependency) by :func:`compile_extractor`: a
  function ``Event -> str`` that raises :class:`CorrelationKeyError` (with the reason the event is
  discarded) when the key cannot be built. Regular expressions, parsers and templates are compiled
  when the manifest loads; ``observe`` only runs them.
* **State**, :class:`CorrelationState`: for each pending key the latest event of each dependency
  (a reference to the event, nothing copied) and the set's deadline; a heap of deadlines for
  ``tick``/``next_deadline``. Deadlines are measured on event time from the earliest event that
  joined the set: ``deadline = min(event.time) + window``. A set whose deadline is at or before a
  time ``t`` has expired at ``t``.

Nothing here reads a clock, logs or does I/O; the engine (:mod:`sensors.engine`) turns what this
state reports into decisions and keeps the acknowledgement bookkeeping.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sensors.conditions import ConditionsError, parse_conditions
from sensors.event import Event
from sensors.goregex import go_regex
from sensors.keyparse import KeyParser, UnknownParserError, get_parser
from sensors.paths import PathResult, lookup
from sensors.spec import Correlation, CorrelationKey, SensorSpec, parse_go_duration
from sensors.templates import Template, TemplateError, compile_template

__all__ = [
    "MAX_KEY_LENGTH",
    "CorrelationError",
    "CorrelationKeyError",
    "CorrelationState",
    "Extractor",
    "check_correlation",
    "compile_extractor",
    "possible_fields",
    "sensor_correlation_problems",
]

MAX_KEY_LENGTH: Final = 512
"""Characters a correlation key may have; a longer one is discarded (it would bloat the state)."""

_NO_VALUE: Final = "<no value>"
_SIMPLE_FIELD: Final = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SIMPLE_PATH: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")
_MISSING: Final = object()

Extractor = Callable[[Event], str]
"""``Event -> key``; raises :class:`CorrelationKeyError`."""


class CorrelationError(ValueError):
    """A ``correlation`` block that cannot work; the message names the field and what is allowed."""


class CorrelationKeyError(Exception):
    """The key of an event cannot be built; ``str(exc)`` is the reason, for ``Decisions.discarded``."""


# --------------------------------------------------------------------------- key extraction


def _regex(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return go_regex(pattern)
    except re.error as exc:
        message = f"{where}.regex {pattern!r} is not a valid regular expression: {exc}"
        raise CorrelationError(message) from None


def _parser(name: str, where: str) -> KeyParser:
    try:
        return get_parser(name)
    except UnknownParserError as exc:
        raise CorrelationError(f"{where}.parse: {exc}") from None


def _template(text: str, where: str) -> Template:
    try:
        return compile_template(text)
    except TemplateError as exc:
        raise CorrelationError(f"{where}: {exc}") from None


def possible_fields(spec: CorrelationKey, where: str = "dependency") -> frozenset[str] | None:
    """The named fields a dependency's extraction may give (``None`` for a ``template``, which gives
    the key itself): a regex's named groups, a parser's fields, or ``value`` for a bare ``path``."""
    if spec.template is not None:
        return None
    if spec.regex is not None:
        return frozenset(_regex(spec.regex, where).groupindex)
    if spec.parse is not None:
        return _parser(spec.parse, where).fields
    return frozenset({"value"})


def _simple_fields(text: str) -> list[str] | None:
    """The fields of a template made only of text and ``{{ .field }}`` actions, else ``None``."""
    fields: list[str] = []
    pos = 0
    for match in _SIMPLE_FIELD.finditer(text):
        if "{{" in text[pos : match.start()] or "}}" in text[pos : match.start()]:
            return None
        fields.append(match.group(1))
        pos = match.end()
    if "{{" in text[pos:] or "}}" in text[pos:]:
        return None
    return fields


def _composer(text: str, where: str) -> Callable[[Mapping[str, str]], str]:
    """A key template over the fields, as a function. Plain ``{{ .field }}`` templates are joined
    without the template engine; anything else renders with it (sprig functions included)."""
    template = _template(text, where)
    fields = _simple_fields(text)
    if fields is None:

        def render(values: Mapping[str, str]) -> str:
            try:
                out = template.render(dict(values))
            except TemplateError as exc:
                raise CorrelationKeyError(f"the key template failed: {exc}") from None
            if _NO_VALUE in out:
                raise CorrelationKeyError(
                    f"the key template {text!r} printed {_NO_VALUE!r}: a field it uses is missing; "
                    f"fields of this event: {', '.join(sorted(values)) or '(none)'}"
                )
            return out

        return render
    literals = _SIMPLE_FIELD.split(text)[::2]  # text between the actions

    def join(values: Mapping[str, str]) -> str:
        out = [literals[0]]
        for name, literal in zip(fields, literals[1:], strict=True):
            value = values.get(name)
            if value is None:
                raise CorrelationKeyError(
                    f"the key template {text!r} uses field {name!r}, which this event does not have; "
                    f"its fields: {', '.join(sorted(values)) or '(none)'}"
                )
            out.append(value)
            out.append(literal)
        return "".join(out)

    return join


def _text_at(path: str) -> Callable[[Any], str]:
    """The string at a gjson ``path`` of the event data (gjson ``String()`` of non-strings)."""
    simple = tuple(path.split(".")) if _SIMPLE_PATH.fullmatch(path) else None

    def general(data: Any) -> str:
        found = lookup(data, path)
        if found is None:
            raise CorrelationKeyError(f"path {path!r} does not exist in the event data")
        return found.string()

    if simple is None:
        return general

    def fast(data: Any) -> str:
        value = data
        for part in simple:
            if not isinstance(value, dict):
                return general(data)
            value = value.get(part, _MISSING)
            if value is _MISSING:
                return general(data)  # gjson wildcards/escapes are not in a simple path: missing
        return value if isinstance(value, str) else PathResult(value).string()

    return fast


def compile_extractor(spec: CorrelationKey, trigger_key: str | None, where: str = "dependency") -> Extractor:
    """Compile one dependency's key extraction (``spec``) with the trigger's default ``key`` template.

    Raises :class:`CorrelationError` for what cannot work whatever the event: an invalid regex or
    template, an unknown parser, a ``field`` the extraction never gives, or several fields and no
    way to choose (name one with ``field`` or compose them with ``key``).
    """
    if spec.template is not None:
        template = _template(spec.template, f"{where}.template")

        def from_template(event: Event) -> str:
            try:
                key = template.render({"Input": event.data})
            except TemplateError as exc:
                raise CorrelationKeyError(f"the key template failed: {exc}") from None
            if _NO_VALUE in key:
                raise CorrelationKeyError(
                    f"the key template {spec.template!r} printed {_NO_VALUE!r}: the data has no such field"
                )
            return _checked(key)

        return from_template

    assert spec.path is not None  # the model requires a path without a template
    text_at = _text_at(spec.path)
    fields = possible_fields(spec, where)
    assert fields is not None
    extract_fields = _fields_of(spec, where)
    compose = _compose_for(spec, trigger_key, fields, where)
    group = _single_group(spec, trigger_key, fields)
    if group is not None:  # the common case, one named group is the key: no dict of fields
        pattern = _regex(spec.regex or "", where)

        def by_group(event: Event) -> str:
            text = text_at(event.data)
            match = pattern.search(text)
            if match is None:
                raise CorrelationKeyError(_no_match(text, spec))
            value = match[group]
            if value is None:  # the group did not take part: say why
                return _checked(compose(extract_fields(text)))
            return _checked(value)

        return by_group

    def extract(event: Event) -> str:
        return _checked(compose(extract_fields(text_at(event.data))))

    return extract


def _single_group(spec: CorrelationKey, trigger_key: str | None, fields: frozenset[str]) -> str | None:
    """The named group that is the key as it is, when the key is just that group of a regex."""
    if spec.regex is None or spec.key is not None:
        return None
    if spec.field is not None:
        return spec.field
    if trigger_key is None and len(fields) == 1:
        return next(iter(fields))
    return None


def _no_match(text: str, spec: CorrelationKey) -> str:
    return f"{text!r} (at {spec.path}) does not match the regex {spec.regex!r}"


def _fields_of(spec: CorrelationKey, where: str) -> Callable[[str], Mapping[str, str]]:
    path = spec.path
    if spec.regex is not None:
        pattern = _regex(spec.regex, where)

        def by_regex(text: str) -> Mapping[str, str]:
            match = pattern.search(text)
            if match is None:
                raise CorrelationKeyError(_no_match(text, spec))
            return {name: value for name, value in match.groupdict().items() if value is not None}

        return by_regex
    if spec.parse is not None:
        parser = _parser(spec.parse, where)

        def by_parser(text: str) -> Mapping[str, str]:
            parsed = parser.parse(text)
            if parsed is None:
                raise CorrelationKeyError(
                    f"{text!r} (at {path}) is not a name the {parser.name} parser knows "
                    f"({parser.description})"
                )
            return parsed

        return by_parser
    return lambda text: {"value": text}


def _compose_for(
    spec: CorrelationKey, trigger_key: str | None, fields: frozenset[str], where: str
) -> Callable[[Mapping[str, str]], str]:
    if spec.key is not None:
        _check_template_fields(spec.key, fields, f"{where}.key")
        return _composer(spec.key, f"{where}.key")
    if spec.field is not None:
        name = spec.field
        if name not in fields:
            raise CorrelationError(
                f"{where}.field: {name!r} is not a field this extraction gives; "
                f"its fields: {', '.join(sorted(fields))}"
            )

        def pick(values: Mapping[str, str]) -> str:
            value = values.get(name)
            if value is None:
                raise CorrelationKeyError(
                    f"field {name!r} is missing; fields of this event: "
                    f"{', '.join(sorted(values)) or '(none)'}"
                )
            return value

        return pick
    if trigger_key is not None:
        _check_template_fields(trigger_key, fields, f"{where} (with correlation.key)")
        return _composer(trigger_key, "correlation.key")
    if len(fields) == 1:
        (only,) = fields

        def single(values: Mapping[str, str]) -> str:
            value = values.get(only)
            if value is None:
                raise CorrelationKeyError(f"the optional group {only!r} did not take part in the match")
            return value

        return single
    how = (
        f"regex {spec.regex!r} names {len(fields)} groups"
        if spec.regex is not None
        else (f"the {spec.parse} parser gives several fields")
    )
    raise CorrelationError(
        f"{where}: {how} ({', '.join(sorted(fields)) or 'none'}); say which is the key with "
        "'field: <name>', or build it with 'key: \"{{ .sample }}_{{ .lane }}\"'"
        + (" (name a group: (?P<sample>...))" if not fields else "")
    )


def _check_template_fields(text: str, fields: frozenset[str], where: str) -> None:
    used = _simple_fields(text)
    if used is None:
        return  # a general template: checked per event
    unknown = [name for name in used if name not in fields]
    if unknown:
        raise CorrelationError(
            f"{where}: the key template {text!r} uses {', '.join(repr(n) for n in unknown)}, which this "
            f"extraction never gives; its fields: {', '.join(sorted(fields))}"
        )


def _checked(key: str) -> str:
    if not key:
        raise CorrelationKeyError("the key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise CorrelationKeyError(f"the key is longer than {MAX_KEY_LENGTH} characters ({len(key)})")
    return key


def check_correlation(spec: Correlation) -> None:
    """Compile every extraction of ``spec`` (raises :class:`CorrelationError`); for load-time checks."""
    window = parse_go_duration(spec.window)
    if window <= 0:
        raise CorrelationError(f"window {spec.window!r} must be a positive Go duration such as '6h'")
    if spec.key is not None:
        _template(spec.key, "key")
    for name, dep in spec.dependencies.items():
        compile_extractor(dep, spec.key, f"dependencies.{name}")


def sensor_correlation_problems(spec: SensorSpec) -> list[str]:
    """What is wrong with the correlated triggers of a sensor as a whole (empty: nothing).

    Every dependency that a correlated trigger's conditions name needs a key source, and every key
    source must belong to such a dependency; an ``onExpire`` trigger's name must differ from every
    trigger's and from every other ``onExpire``. Conditions that do not parse are left to the
    conditions check, which reports them with their position.
    """
    problems: list[str] = []
    names = [dep.name for dep in spec.dependencies]
    taken = {trigger.name for trigger in spec.triggers}
    for trigger in spec.triggers:
        correlation = trigger.template.correlation
        if correlation is None:
            continue
        where = f"trigger {trigger.name!r} correlation"
        unknown = [name for name in correlation.dependencies if name not in names]
        for name in unknown:
            problems.append(
                f"{where}.dependencies names {name!r}, which is no dependency of this sensor; "
                f"dependencies: {', '.join(names)}"
            )
        try:
            used = parse_conditions(trigger.template.conditions, names).dependencies
        except ConditionsError:
            used = None
        if used is not None:
            for name in sorted(used - set(correlation.dependencies)):
                problems.append(
                    f"{where}.dependencies has no key for {name!r}, which the trigger's conditions name; "
                    "say how its key is built (path with regex or parse, or template)"
                )
            for name in correlation.dependencies:
                if name in names and name not in used:
                    problems.append(
                        f"{where}.dependencies names {name!r}, which the trigger's conditions "
                        f"{trigger.template.conditions!r} do not use; remove it or add it to the conditions"
                    )
        if correlation.on_expire is not None:
            expire_name = correlation.on_expire.name
            if expire_name in taken:
                problems.append(
                    f"{where}.onExpire is named {expire_name!r}, which another trigger or onExpire uses; "
                    "names must be unique within a sensor"
                )
            taken.add(expire_name)
    return problems


# --------------------------------------------------------------------------- state


class _Set:
    """One pending key: the latest event per dependency (by position) and the deadline (epoch s)."""

    __slots__ = ("deadline", "events", "seq")

    def __init__(self, size: int, deadline: float, seq: int) -> None:
        self.events: list[Event | None] = [None] * size
        self.deadline = deadline
        self.seq = seq


@dataclass(frozen=True, slots=True)
class ClosedSet:
    """A set taken out of the state: its key, events (dependency -> event) and deadline (epoch s)."""

    key: str
    events: dict[str, Event]
    deadline: float


class CorrelationState:
    """The pending keys of one correlated trigger.

    ``dependencies`` are the trigger's correlated dependencies (those its conditions name), each
    with its compiled extractor. The engine calls :meth:`key_of`, then :meth:`put`; when the
    trigger's conditions hold for a key it calls :meth:`take`; :meth:`due` hands out the sets whose
    deadline has passed.
    """

    def __init__(self, window: float, extractors: Mapping[str, Extractor]) -> None:
        if window <= 0:
            raise CorrelationError(f"the correlation window must be positive, got {window} s")
        self.window = window
        self.extractors = dict(extractors)
        self.order: tuple[str, ...] = tuple(self.extractors)
        self.index = {name: i for i, name in enumerate(self.order)}
        self._sets: dict[str, _Set] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0

    @classmethod
    def from_spec(cls, spec: Correlation, dependencies: frozenset[str] | None = None) -> CorrelationState:
        """Compile ``spec``; ``dependencies`` (the trigger's conditions) must all have a key source."""
        extractors = {
            name: compile_extractor(dep, spec.key, f"correlation.dependencies.{name}")
            for name, dep in spec.dependencies.items()
        }
        if dependencies is not None:
            missing = sorted(dependencies - set(extractors))
            if missing:
                raise CorrelationError(
                    f"correlation.dependencies has no key for {', '.join(missing)}; every dependency "
                    "that the trigger's conditions name needs one"
                )
        return cls(parse_go_duration(spec.window), extractors)

    def __len__(self) -> int:
        """The number of pending keys."""
        return len(self._sets)

    @property
    def scheduled(self) -> int:
        """Entries in the deadline heap (pending sets plus stale entries not yet compacted)."""
        return len(self._heap)

    def key_of(self, dependency: str, event: Event) -> str:
        """The key of ``event`` for ``dependency``; raises :class:`CorrelationKeyError`."""
        return self.extractors[dependency](event)

    def put(self, key: str, dependency: str, event: Event) -> tuple[Event | None, ClosedSet | None]:
        """Store ``event`` as ``dependency`` of ``key``. Returns the event it superseded (latest wins)
        and the set that had already expired at ``event.time`` (the event then opens a new set)."""
        at = event.time.timestamp()
        expired: ClosedSet | None = None
        current = self._sets.get(key)
        if current is not None and current.deadline <= at:
            expired = self._close(key, current)
            current = None
        if current is None:
            self._seq += 1
            current = _Set(len(self.order), at + self.window, self._seq)
            self._sets[key] = current
            self._push(current.deadline, current.seq, key)
        elif at + self.window < current.deadline:  # an earlier event (out of order) opens the set earlier
            current.deadline = at + self.window
            self._push(current.deadline, current.seq, key)
        slot = self.index[dependency]
        old = current.events[slot]
        current.events[slot] = event
        return old, expired

    def complete(self, key: str) -> bool:
        """Every correlated dependency is present for ``key``."""
        current = self._sets.get(key)
        return current is not None and None not in current.events

    def satisfied(self, key: str) -> frozenset[str]:
        """The dependencies present for ``key``."""
        current = self._sets.get(key)
        if current is None:
            return frozenset()
        return frozenset(name for name, ev in zip(self.order, current.events, strict=True) if ev is not None)

    def take(self, key: str) -> ClosedSet:
        """Remove ``key`` (it fired) and return its set."""
        return self._close(key, self._sets[key])

    def due(self, now: float) -> Iterator[ClosedSet]:
        """Remove and yield every set whose deadline is at or before ``now`` (epoch s), earliest first."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, seq, key = heapq.heappop(heap)
            current = self._sets.get(key)
            if current is None or current.seq != seq or current.deadline != deadline:
                continue  # stale: fired, superseded by a newer set, or moved earlier
            yield self._close(key, current)

    def next_deadline(self) -> float | None:
        """The earliest deadline of a pending set (epoch seconds), or ``None``."""
        heap = self._heap
        while heap:
            deadline, seq, key = heap[0]
            current = self._sets.get(key)
            if current is not None and current.seq == seq and current.deadline == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def pending(self) -> dict[str, dict[str, str]]:
        """key -> dependency -> event id, for every pending key."""
        return {
            key: {name: ev.id for name, ev in zip(self.order, current.events, strict=True) if ev is not None}
            for key, current in self._sets.items()
        }

    def _events(self, current: _Set) -> dict[str, Event]:
        return {name: ev for name, ev in zip(self.order, current.events, strict=True) if ev is not None}

    def _close(self, key: str, current: _Set) -> ClosedSet:
        del self._sets[key]
        return ClosedSet(key, self._events(current), current.deadline)

    def _push(self, deadline: float, seq: int, key: str) -> None:
        heap = self._heap
        heapq.heappush(heap, (deadline, seq, key))
        if len(heap) > 2 * len(self._sets) + 1024:  # mostly stale entries of fired sets: rebuild
            self._heap = [(s.deadline, s.seq, k) for k, s in self._sets.items()]
            heapq.heapify(self._heap)
