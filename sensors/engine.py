"""The sensor engine: a pure state machine from events to decisions.

``SensorEngine(sensor).observe(event, now)`` routes the event to the sensor's dependencies
(exact match on ``eventSourceName``/``eventName``), applies each dependency's filters, stores the
event in the slot of every trigger that waits on that dependency (the latest event per dependency
wins), evaluates each trigger's ``conditions`` and returns the decisions. It never sleeps, reads
clocks, performs I/O or logs.

Acknowledgement bookkeeping is part of the result: an event is *held* while some trigger keeps it
in a slot. ``Decisions.released`` lists the ids of events that are no longer held (superseded,
fired, expired, or never stored), so the runtime can acknowledge them on the bus once the firings
and expiries that carry them are done. Replaying the unacknowledged events in order therefore
rebuilds the state.

A trigger with ``correlation`` (triggergate's extension, :mod:`sensors.correlation`) keeps its
slots per key instead: each accepted event's key is extracted, the conditions are evaluated over
that key's slots, a ``Fire`` carries the key and clears only that key, and a partial set whose
window has passed becomes an ``Expire`` decision. Windows are judged on event time: ``tick(now)``
expires sets whose deadline is at or before ``now``, and ``observe`` expires a key's set only when
the arriving event of that key is itself past the deadline; ``observe`` never expires other keys
by the clock, so replaying the unacknowledged events rebuilds the same pending keys however late
the replay runs (the first ``tick`` afterwards expires what is overdue).

When several processes share a sensor's events (the Kafka bus), ``partition_keys(event)`` says where
an event belongs so that every event one piece of state needs reaches the same consumer: the
correlation key when all triggers correlate by the same key sources, else the sensor's name.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sensors.conditions import And, Conditions, Name, parse_conditions
from sensors.correlation import ClosedSet, CorrelationKeyError, CorrelationState
from sensors.event import Event
from sensors.filters import CompiledFilter, compile_filters
from sensors.schedule import CronSchedule
from sensors.spec import Sensor, Trigger
from sensors.transform import Transform, TransformError, compile_transform


def idempotency_key(
    sensor: str, trigger: str, events: Mapping[str, Event], correlation_key: str | None = None
) -> str:
    """A stable key for one firing: the sensor, the trigger, the ids of the events it carries and,
    for a correlated trigger, the correlation key (so that two keys never share a firing).

    A replay or a retry of the same firing yields the same key, so a receiver (or the state store)
    can recognise it as already done. Without a correlation key the key is what it always was.
    """
    parts = [sensor, trigger] + [f"{dep}={events[dep].id}" for dep in sorted(events)]
    if correlation_key is not None:
        parts.append(f"#key={correlation_key}")
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def expiry_key(sensor: str, trigger: str, correlation_key: str, events: Mapping[str, Event]) -> str:
    """The stable key of one expiry (its dead letter): differs from every firing's key."""
    parts = [sensor, trigger, f"#key={correlation_key}", "#expired"]
    parts += [f"{dep}={events[dep].id}" for dep in sorted(events)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Fire:
    """Carry out ``trigger`` of ``sensor`` with ``events`` (dependency name -> its latest event).

    ``key`` is the firing's idempotency key; ``correlation_key`` the key of a correlated trigger's
    set (``None`` for a trigger without ``correlation``).
    """

    sensor: str
    trigger: str
    events: Mapping[str, Event]
    key: str
    correlation_key: str | None = None

    @property
    def event_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(event.id for event in self.events.values()))


@dataclass(frozen=True, slots=True)
class Expire:
    """A partial set of a correlated trigger whose window passed.

    ``events`` are the set's latest event per dependency, ``missing`` the dependencies of the
    trigger's conditions it lacks, ``deadline`` when the window ended (first event time + window).
    ``letter_key`` identifies its dead letter (stable across replays); ``on_expire`` is the firing of
    the correlation's ``onExpire`` trigger, if it has one. The events are released in the same
    ``Decisions``; acknowledge them once the expiry has been carried out.
    """

    sensor: str
    trigger: str
    key: str
    events: Mapping[str, Event]
    missing: tuple[str, ...]
    deadline: datetime
    letter_key: str
    on_expire: Fire | None = None

    @property
    def event_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(event.id for event in self.events.values()))

    @property
    def reason(self) -> str:
        """``correlation window expired: missing r2 for key NA12878``."""
        missing = ", ".join(self.missing) if self.missing else "nothing (the conditions did not hold)"
        return f"correlation window expired: missing {missing} for key {self.key}"


@dataclass(frozen=True, slots=True)
class Discarded:
    """An event that matched a dependency's source and name but not its filters, or (with
    ``trigger`` set) whose correlation key that trigger could not extract."""

    dependency: str
    event_id: str
    errors: tuple[str, ...]
    trigger: str = ""


@dataclass(frozen=True, slots=True)
class FilterWarning:
    """An event that passed a dependency's filters with errors (Argo's ``or`` rule)."""

    dependency: str
    event_id: str
    errors: tuple[str, ...]


@dataclass(slots=True)
class Decisions:
    fires: list[Fire] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    discarded: list[Discarded] = field(default_factory=list)
    warnings: list[FilterWarning] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    expired: list[Expire] = field(default_factory=list)


@dataclass(slots=True)
class _TriggerState:
    name: str
    conditions: Conditions
    slots: dict[str, Event] = field(default_factory=dict)
    resets: tuple[CronSchedule, ...] = ()
    reset_at: datetime | None = None  # the latest reset tick that has passed
    next_reset: datetime | None = None
    correlation: CorrelationState | None = None  # keyed slots instead of ``slots``
    on_expire: str | None = None  # the name of the correlation's onExpire trigger
    all_of: bool = False  # the conditions are the AND of every correlated dependency


@dataclass(frozen=True, slots=True)
class _Dependency:
    name: str
    filters: CompiledFilter
    transform: Transform | None = None


def _accept(dep: _Dependency, event: Event) -> tuple[Event | None, tuple[str, ...]]:
    """``event`` as ``dep`` sees it (transformed), or ``None`` when it is discarded; and the errors met
    (the reason it is discarded, or the filter warnings of an accepted event)."""
    if dep.transform is not None:
        # Transform before filters (Argo); the transformed data is what parameters see.
        try:
            event = replace(event, data=dep.transform.apply(event.data))
        except TransformError as exc:
            return None, (str(exc),)
    result = dep.filters.evaluate(event)
    if not result.passed:
        return None, result.errors
    return event, result.errors


def _partition_extractors(triggers: list[_TriggerState], spec: Sensor) -> CorrelationState | None:
    """The correlation whose keys partition the sensor, or ``None`` to partition it by name.

    By key only when every trigger is correlated with the same key sources (per-dependency
    extraction and the ``key`` template): then every event of one key meets every other event of that
    key in one consumer, whichever trigger it is for. Anything else (a trigger without correlation,
    different key sources, a ``conditionsReset``) keeps the whole sensor in one consumer.
    """
    templates = [trigger.template for trigger in spec.spec.triggers]
    if not templates or any(t.correlation is None or t.conditions_reset for t in templates):
        return None
    first = templates[0].correlation
    assert first is not None
    for template in templates[1:]:
        other = template.correlation
        assert other is not None
        if other.dependencies != first.dependencies or other.key != first.key:
            return None
    return triggers[0].correlation


class SensorEngine:
    """The state of one sensor: per trigger, the latest accepted event of each dependency (per key
    for a trigger with ``correlation``)."""

    def __init__(self, sensor: Sensor) -> None:
        self.name = sensor.metadata.name
        dep_names = [dep.name for dep in sensor.spec.dependencies]
        self._routes: dict[tuple[str, str], list[_Dependency]] = {}
        for dep in sensor.spec.dependencies:
            route = (dep.event_source_name, dep.event_name)
            transform = compile_transform(dep.transform.jq, dep.transform.script) if dep.transform else None
            self._routes.setdefault(route, []).append(_Dependency(dep.name, compile_filters(dep), transform))
        self._triggers: list[_TriggerState] = []
        self._by_dependency: dict[str, list[_TriggerState]] = {}
        for trigger in sensor.spec.triggers:
            resets = tuple(
                CronSchedule.parse(r.by_time.cron, r.by_time.timezone)
                for r in trigger.template.conditions_reset
                if r.by_time is not None
            )
            state = _TriggerState(
                trigger.name, parse_conditions(trigger.template.conditions, dep_names), resets=resets
            )
            correlation = trigger.template.correlation
            if correlation is not None:
                state.correlation = CorrelationState.from_spec(correlation, state.conditions.dependencies)
                state.on_expire = correlation.on_expire.name if correlation.on_expire is not None else None
                root = state.conditions.root
                parts = root.parts if isinstance(root, And) else (root,)
                state.all_of = all(isinstance(part, Name) for part in parts) and (
                    state.conditions.dependencies == set(state.correlation.order)
                )
            self._triggers.append(state)
            for dep_name in state.conditions.dependencies:
                self._by_dependency.setdefault(dep_name, []).append(state)
        self._correlated = [state for state in self._triggers if state.correlation is not None]
        self._holds: Counter[str] = Counter()
        self.spec = sensor
        self.trigger_specs: dict[str, Trigger] = {t.name: t for t in sensor.spec.triggers}
        for trigger in sensor.spec.triggers:
            correlation = trigger.template.correlation
            if correlation is not None and correlation.on_expire is not None:
                self.trigger_specs[correlation.on_expire.name] = correlation.on_expire
        self.partition_name = f"{sensor.metadata.namespace}.{self.name}"
        self._partition_by = _partition_extractors(self._triggers, sensor)

    def routes(self) -> set[tuple[str, str]]:
        """The (eventSourceName, eventName) pairs this sensor listens to."""
        return set(self._routes)

    @property
    def partitioned_by_key(self) -> bool:
        """Whether :meth:`partition_keys` gives correlation keys (else the sensor's name)."""
        return self._partition_by is not None

    def partition_keys(self, event: Event) -> list[str]:
        """Where ``event`` belongs when several consumers share this sensor's events (empty: nowhere,
        no dependency routes it). Pure, and leaves the state alone.

        A sensor whose triggers are all correlated with the same key sources is partitioned by
        correlation key: the key the engine extracts under the first dependency (in sensor order)
        that accepts the event after its transform and filters; an event that gives no key under any
        dependency goes to :attr:`partition_name` (the engine discards it anyway). Any other sensor
        is partitioned by :attr:`partition_name` (``<namespace>.<name>``), so that one consumer
        holds all of its state.
        """
        deps = self._routes.get((event.source, event.subject))
        if not deps:
            return []
        correlation = self._partition_by
        if correlation is None:
            return [self.partition_name]
        for dep in deps:
            if dep.name not in correlation.extractors:
                continue  # no trigger waits on it: it never joins a set
            dep_event, _ = _accept(dep, event)
            if dep_event is None:
                continue
            try:
                return [correlation.key_of(dep.name, dep_event)]
            except CorrelationKeyError:
                continue
        return [self.partition_name]

    def observe(self, event: Event, now: datetime) -> Decisions:
        """Feed one event observed at ``now`` (which drives ``conditionsReset``)."""
        decisions = Decisions()
        candidates: list[str] = [event.id]
        self._reset_due(now, candidates)
        deps = self._routes.get((event.source, event.subject))
        if not deps:
            decisions.released.append(event.id)
            return decisions
        accepted: list[tuple[str, Event]] = []
        for dep in deps:
            dep_event, errors = _accept(dep, event)
            if dep_event is None:
                decisions.discarded.append(Discarded(dep.name, event.id, errors))
                continue
            if errors:
                decisions.warnings.append(FilterWarning(dep.name, event.id, errors))
            accepted.append((dep.name, dep_event))
        decisions.accepted = [name for name, _ in accepted]
        keyed: dict[tuple[int, str], tuple[_TriggerState, str]] = {}
        for dep_name, dep_event in accepted:
            for state in self._by_dependency.get(dep_name, ()):
                if state.correlation is not None:
                    key = self._put_keyed(state, dep_name, dep_event, decisions, candidates)
                    if key is not None:
                        keyed[(id(state), key)] = (state, key)
                    continue
                if state.reset_at is not None and event.time < state.reset_at:
                    continue  # the event belongs to a period that a conditionsReset has closed
                old = state.slots.get(dep_name)
                state.slots[dep_name] = dep_event
                self._holds[event.id] += 1
                if old is not None:
                    self._release_one(old.id)
                    candidates.append(old.id)
        fired: set[int] = set()
        for state, key in keyed.values():
            self._fire_keyed(state, key, decisions, candidates)
        for dep_name, _ in accepted:
            for state in self._by_dependency.get(dep_name, ()):
                if state.correlation is not None:
                    continue
                if id(state) in fired or not state.conditions.evaluate(state.slots.keys()):
                    continue
                fired.add(id(state))
                events = dict(state.slots)
                decisions.fires.append(
                    Fire(self.name, state.name, events, idempotency_key(self.name, state.name, events))
                )
                for held in state.slots.values():
                    self._release_one(held.id)
                    candidates.append(held.id)
                state.slots.clear()
        self._collect_released(candidates, decisions)
        return decisions

    def tick(self, now: datetime) -> Decisions:
        """Time-driven decisions: ``conditionsReset`` ticks that have passed clear their trigger's
        state; correlated sets whose deadline is at or before ``now`` expire (``Decisions.expired``)."""
        decisions = Decisions()
        candidates: list[str] = []
        self._reset_due(now, candidates)
        if self._correlated:
            at = now.timestamp()
            for state in self._correlated:
                assert state.correlation is not None
                for closed in state.correlation.due(at):
                    self._expire(state, closed, decisions, candidates)
        self._collect_released(candidates, decisions)
        return decisions

    def next_deadline(self) -> datetime | None:
        """When ``tick`` next has something to do (None: never): the next ``conditionsReset`` tick or
        the earliest deadline of a pending correlated set."""
        deadlines = [s.next_reset for s in self._triggers if s.next_reset is not None]
        for state in self._correlated:
            assert state.correlation is not None
            deadline = state.correlation.next_deadline()
            if deadline is not None:
                deadlines.append(datetime.fromtimestamp(deadline, UTC))
        return min(deadlines) if deadlines else None

    def _put_keyed(
        self, state: _TriggerState, dep_name: str, event: Event, decisions: Decisions, candidates: list[str]
    ) -> str | None:
        """Store ``event`` in its key's set of a correlated trigger; the key, or None if it has none."""
        correlation = state.correlation
        assert correlation is not None
        try:
            key = correlation.key_of(dep_name, event)
        except CorrelationKeyError as exc:
            decisions.discarded.append(Discarded(dep_name, event.id, (str(exc),), state.name))
            return None
        old, expired = correlation.put(key, dep_name, event)
        self._holds[event.id] += 1
        if expired is not None:  # the set had expired before this event happened: it opens a new one
            self._expire(state, expired, decisions, candidates)
        if old is not None:
            self._release_one(old.id)
            candidates.append(old.id)
        return key

    def _fire_keyed(
        self, state: _TriggerState, key: str, decisions: Decisions, candidates: list[str]
    ) -> None:
        correlation = state.correlation
        assert correlation is not None
        if state.all_of:  # conditions "a && b && ...": every slot filled
            if not correlation.complete(key):
                return
        elif not state.conditions.evaluate(correlation.satisfied(key)):
            return
        events = correlation.take(key).events
        decisions.fires.append(
            Fire(self.name, state.name, events, idempotency_key(self.name, state.name, events, key), key)
        )
        for held in events.values():
            self._release_one(held.id)
            candidates.append(held.id)

    def _expire(
        self, state: _TriggerState, closed: ClosedSet, decisions: Decisions, candidates: list[str]
    ) -> None:
        correlation = state.correlation
        assert correlation is not None
        events = closed.events
        missing = tuple(
            name for name in correlation.order if name not in events and name in state.conditions.dependencies
        )
        on_expire = None
        if state.on_expire is not None:
            on_expire = Fire(
                self.name,
                state.on_expire,
                events,
                idempotency_key(self.name, state.on_expire, events, closed.key),
                closed.key,
            )
        decisions.expired.append(
            Expire(
                sensor=self.name,
                trigger=state.name,
                key=closed.key,
                events=events,
                missing=missing,
                deadline=datetime.fromtimestamp(closed.deadline, UTC),
                letter_key=expiry_key(self.name, state.name, closed.key, events),
                on_expire=on_expire,
            )
        )
        for held in events.values():
            self._release_one(held.id)
            candidates.append(held.id)

    def _reset_due(self, now: datetime, candidates: list[str]) -> None:
        for state in self._triggers:
            if not state.resets:
                continue
            if state.next_reset is not None and now < state.next_reset:
                continue
            if state.next_reset is not None:  # a tick passed: clear this trigger's saved events
                for held in state.slots.values():
                    self._release_one(held.id)
                    candidates.append(held.id)
                state.slots.clear()
            # On the first call (start, or the first event after it) only the schedule is set up:
            # events older than the previous tick are then refused, as Argo drops saved state
            # older than the previous tick when a sensor starts.
            state.reset_at = max(schedule.previous(now) for schedule in state.resets)
            state.next_reset = min(schedule.following(now) for schedule in state.resets)

    def _collect_released(self, candidates: list[str], decisions: Decisions) -> None:
        seen: set[str] = set()
        for event_id in candidates:
            if event_id not in seen and self._holds[event_id] <= 0:
                seen.add(event_id)
                self._holds.pop(event_id, None)
                decisions.released.append(event_id)

    def holds(self, event_id: str) -> bool:
        return self._holds.get(event_id, 0) > 0

    def pending(self) -> dict[str, dict[str, str]]:
        """Per trigger without ``correlation``, the dependency slots that are filled: dependency name ->
        event id. Correlated triggers are in :meth:`pending_keys`."""
        return {
            state.name: {dep: ev.id for dep, ev in state.slots.items()}
            for state in self._triggers
            if state.slots
        }

    def pending_keys(self) -> dict[str, dict[str, dict[str, str]]]:
        """Per correlated trigger with pending sets: key -> dependency name -> event id."""
        out: dict[str, dict[str, dict[str, str]]] = {}
        for state in self._correlated:
            assert state.correlation is not None
            if len(state.correlation):
                out[state.name] = state.correlation.pending()
        return out

    def _release_one(self, event_id: str) -> None:
        self._holds[event_id] -= 1
