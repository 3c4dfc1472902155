"""The sensor engine: a pure state machine from events to decisions.

``SensorEngine(sensor).observe(event, now)`` routes the event to the sensor's dependencies
(exact match on ``eventSourceName``/``eventName``), applies each dependency's filters, stores the
event in the slot of every trigger that waits on that dependency (the latest event per dependency
wins), evaluates each trigger's ``conditions`` and returns the decisions. It never sleeps, reads
clocks, performs I/O or logs.

Acknowledgement bookkeeping is part of the result: an event is *held* while some trigger keeps it
in a slot. ``Decisions.released`` lists the ids of events that are no longer held (superseded,
fired, or never stored), so the runtime can acknowledge them on the bus once the firings that
carry them are done. Replaying the unacknowledged events in order therefore rebuilds the state.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from sensors.conditions import Conditions, parse_conditions
from sensors.event import Event
from sensors.filters import CompiledFilter, compile_filters
from sensors.schedule import CronSchedule
from sensors.spec import Sensor, Trigger
from sensors.transform import Transform, TransformError, compile_transform


def idempotency_key(sensor: str, trigger: str, events: Mapping[str, Event]) -> str:
    """A stable key for one firing: the sensor, the trigger and the ids of the events it carries.

    A replay or a retry of the same firing yields the same key, so a receiver (or the state store)
    can recognise it as already done.
    """
    parts = [sensor, trigger] + [f"{dep}={events[dep].id}" for dep in sorted(events)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Fire:
    """Carry out ``trigger`` of ``sensor`` with ``events`` (dependency name -> its latest event)."""

    sensor: str
    trigger: str
    events: Mapping[str, Event]
    key: str

    @property
    def event_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(event.id for event in self.events.values()))


@dataclass(frozen=True, slots=True)
class Discarded:
    """An event that matched a dependency's source and name but not its filters."""

    dependency: str
    event_id: str
    errors: tuple[str, ...]


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


@dataclass(slots=True)
class _TriggerState:
    name: str
    conditions: Conditions
    slots: dict[str, Event] = field(default_factory=dict)
    resets: tuple[CronSchedule, ...] = ()
    reset_at: datetime | None = None  # the latest reset tick that has passed
    next_reset: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Dependency:
    name: str
    filters: CompiledFilter
    transform: Transform | None = None


class SensorEngine:
    """The state of one sensor: per trigger, the latest accepted event of each dependency."""

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
            self._triggers.append(state)
            for dep_name in state.conditions.dependencies:
                self._by_dependency.setdefault(dep_name, []).append(state)
        self._holds: Counter[str] = Counter()
        self.spec = sensor
        self.trigger_specs: dict[str, Trigger] = {t.name: t for t in sensor.spec.triggers}

    def routes(self) -> set[tuple[str, str]]:
        """The (eventSourceName, eventName) pairs this sensor listens to."""
        return set(self._routes)

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
            dep_event = event
            if dep.transform is not None:
                # Transform before filters (Argo); the transformed data is what parameters see.
                try:
                    dep_event = replace(event, data=dep.transform.apply(event.data))
                except TransformError as exc:
                    decisions.discarded.append(Discarded(dep.name, event.id, (str(exc),)))
                    continue
            result = dep.filters.evaluate(dep_event)
            if not result.passed:
                decisions.discarded.append(Discarded(dep.name, event.id, result.errors))
                continue
            if result.errors:
                decisions.warnings.append(FilterWarning(dep.name, event.id, result.errors))
            accepted.append((dep.name, dep_event))
        decisions.accepted = [name for name, _ in accepted]
        for dep_name, dep_event in accepted:
            for state in self._by_dependency.get(dep_name, ()):
                if state.reset_at is not None and event.time < state.reset_at:
                    continue  # the event belongs to a period that a conditionsReset has closed
                old = state.slots.get(dep_name)
                state.slots[dep_name] = dep_event
                self._holds[event.id] += 1
                if old is not None:
                    self._release_one(old.id)
                    candidates.append(old.id)
        fired: set[int] = set()
        for dep_name, _ in accepted:
            for state in self._by_dependency.get(dep_name, ()):
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
        """Time-driven decisions: ``conditionsReset`` ticks that have passed clear their trigger's state."""
        decisions = Decisions()
        candidates: list[str] = []
        self._reset_due(now, candidates)
        self._collect_released(candidates, decisions)
        return decisions

    def next_deadline(self) -> datetime | None:
        """When ``tick`` next has something to do (None: never)."""
        deadlines = [s.next_reset for s in self._triggers if s.next_reset is not None]
        return min(deadlines) if deadlines else None

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
        """Per trigger, the dependency slots that are filled: dependency name -> event id."""
        return {
            state.name: {dep: ev.id for dep, ev in state.slots.items()}
            for state in self._triggers
            if state.slots
        }

    def _release_one(self, event_id: str) -> None:
        self._holds[event_id] -= 1
