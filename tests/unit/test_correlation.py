"""Keyed correlation in the pure engine: keys, windows, expiry, restart rebuild, bounded state."""

from __future__ import annotations

import re
import tracemalloc
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from sensors.correlation import (
    MAX_KEY_LENGTH,
    CorrelationError,
    CorrelationState,
    check_correlation,
    compile_extractor,
    possible_fields,
)
from sensors.engine import Decisions, SensorEngine, expiry_key, idempotency_key
from sensors.event import Event
from sensors.spec import Correlation, CorrelationKey, Sensor
from tests.unit.sensor_factory import T0, dep, sensor

ILLUMINA_R = r"(?P<sample>[^/]+)_S\d+_L\d{3}_R%d_001\.fastq\.gz$"
H = timedelta(hours=1)


def correlated(
    correlation: dict[str, Any] | None = None,
    *,
    conditions: str = "r1 && r2",
    deps: list[dict[str, Any]] | None = None,
    extra_triggers: list[dict[str, Any]] | None = None,
) -> SensorEngine:
    spec = correlation or {
        "window": "6h",
        "dependencies": {
            "r1": {"path": "body.key", "regex": ILLUMINA_R % 1},
            "r2": {"path": "body.key", "regex": ILLUMINA_R % 2},
        },
        "onExpire": {"template": {"name": "notify", "log": {}}},
    }
    trigger = {"template": {"name": "align", "conditions": conditions, "log": {}, "correlation": spec}}
    dependencies = deps or [dep("r1", event="fastq"), dep("r2", event="fastq")]
    return SensorEngine(sensor(dependencies, [trigger, *(extra_triggers or [])]))


_ids = iter(range(1, 10**9))


def upload(key: str, at: datetime = T0, subject: str = "fastq", **body: Any) -> Event:
    return Event(
        id=f"up{next(_ids):05d}",
        source="webhook",
        subject=subject,
        type="webhook",
        time=at,
        data={"header": {}, "body": {"key": key, **body}, "metadata": {}},
    )


def fastq(sample: str, read: int, at: datetime = T0, lane: int = 1) -> Event:
    return upload(f"runs/250304_A01234_0042_BHXXYYDSXC/{sample}_S1_L00{lane}_R{read}_001.fastq.gz", at)


def fired(out: Decisions) -> list[tuple[str | None, dict[str, str]]]:
    return [(f.correlation_key, {d: e.id for d, e in f.events.items()}) for f in out.fires]


# --------------------------------------------------------------------------- keys


def test_interleaved_samples_pair_by_key() -> None:
    engine = correlated()
    a1, b1, b2, a2 = fastq("A", 1), fastq("B", 1), fastq("B", 2), fastq("A", 2)
    assert engine.observe(a1, T0).fires == []
    assert engine.observe(b1, T0).fires == []
    out = engine.observe(b2, T0)
    assert fired(out) == [("B", {"r1": b1.id, "r2": b2.id})]
    assert sorted(out.released) == sorted([b1.id, b2.id])
    assert engine.pending_keys() == {"align": {"A": {"r1": a1.id}}}
    out = engine.observe(a2, T0)
    assert fired(out) == [("A", {"r1": a1.id, "r2": a2.id})]
    assert engine.pending_keys() == {} and engine.pending() == {}
    assert engine.next_deadline() is None


def test_r1_of_one_sample_never_pairs_with_r2_of_another() -> None:
    engine = correlated()
    a1, b2 = fastq("A", 1), fastq("B", 2)
    assert engine.observe(a1, T0).fires == []
    out = engine.observe(b2, T0)
    assert out.fires == [] and out.released == []
    assert engine.pending_keys() == {"align": {"A": {"r1": a1.id}, "B": {"r2": b2.id}}}
    assert engine.holds(a1.id) and engine.holds(b2.id)


def test_latest_event_wins_per_key_and_dependency() -> None:
    engine = correlated()
    first, second, other = fastq("A", 1), fastq("A", 1), fastq("B", 1)
    engine.observe(first, T0)
    engine.observe(other, T0)
    out = engine.observe(second, T0)
    assert out.fires == [] and out.released == [first.id]  # superseded: acknowledged
    assert not engine.holds(first.id) and engine.holds(second.id) and engine.holds(other.id)
    out = engine.observe(fastq("A", 2), T0)
    assert fired(out)[0][1]["r1"] == second.id
    assert engine.pending_keys() == {"align": {"B": {"r1": other.id}}}  # B untouched


def test_a_second_r1_never_satisfies_r1_and_r2_alone() -> None:
    engine = correlated()
    for _ in range(3):
        assert engine.observe(fastq("A", 1), T0).fires == []
    assert list(engine.pending_keys()["align"]["A"]) == ["r1"]


def test_firing_clears_only_its_key() -> None:
    engine = correlated()
    a1, b1, a2 = fastq("A", 1), fastq("B", 1), fastq("A", 2)
    for ev in (a1, b1):
        engine.observe(ev, T0)
    out = engine.observe(a2, T0)
    assert [f.correlation_key for f in out.fires] == ["A"]
    assert b1.id not in out.released and engine.holds(b1.id)
    assert engine.pending_keys() == {"align": {"B": {"r1": b1.id}}}
    # A starts over: a new R1 alone does not fire
    assert engine.observe(fastq("A", 1), T0).fires == []


def test_or_conditions_fire_per_key_with_what_the_key_has() -> None:
    engine = correlated(conditions="r1 || r2")
    a1, b2 = fastq("A", 1), fastq("B", 2)
    assert fired(engine.observe(a1, T0)) == [("A", {"r1": a1.id})]
    assert fired(engine.observe(b2, T0)) == [("B", {"r2": b2.id})]
    assert engine.pending_keys() == {}


def test_plain_trigger_on_the_same_dependencies_keeps_argo_semantics() -> None:
    audit = {"template": {"name": "audit", "conditions": "r1 && r2", "log": {}}}
    engine = correlated(extra_triggers=[audit])
    a1, b2 = fastq("A", 1), fastq("B", 2)
    engine.observe(a1, T0)
    out = engine.observe(b2, T0)
    # the plain trigger pairs the latest R1 with the latest R2, whatever the sample (Argo)
    assert [(f.trigger, f.correlation_key) for f in out.fires] == [("audit", None)]
    # ...and releases its copies, but the correlated trigger still holds both
    assert out.released == [] and engine.holds(a1.id) and engine.holds(b2.id)
    assert engine.pending_keys() == {"align": {"A": {"r1": a1.id}, "B": {"r2": b2.id}}}


# --------------------------------------------------------------------------- key extraction


def test_parser_with_a_key_template_over_its_fields() -> None:
    spec = {
        "window": "1h",
        "key": "{{ .run }}/{{ .sample }}/L{{ .lane }}",
        "dependencies": {
            "r1": {"path": "body.key", "parse": "illumina"},
            "r2": {"path": "body.key", "parse": "illumina"},
        },
    }
    deps = [
        dep(
            "r1",
            event="fastq",
            filters={"data": [{"path": "body.key", "type": "string", "value": ["_R1_001"]}]},
        ),
        dep(
            "r2",
            event="fastq",
            filters={"data": [{"path": "body.key", "type": "string", "value": ["_R2_001"]}]},
        ),
    ]
    engine = correlated(spec, deps=deps)
    engine.observe(fastq("A", 1, lane=1), T0)
    engine.observe(fastq("A", 2, lane=2), T0)  # another lane: another key
    assert sorted(engine.pending_keys()["align"]) == [
        "250304_A01234_0042_BHXXYYDSXC/A/L1",
        "250304_A01234_0042_BHXXYYDSXC/A/L2",
    ]
    out = engine.observe(fastq("A", 2, lane=1), T0)
    assert [f.correlation_key for f in out.fires] == ["250304_A01234_0042_BHXXYYDSXC/A/L1"]


def test_key_extraction_failures_discard_the_event_for_that_trigger() -> None:
    spec = {
        "window": "1h",
        "dependencies": {
            "r1": {"path": "body.key", "parse": "illumina", "field": "sample"},
            "r2": {"path": "body.key", "parse": "illumina", "key": "{{ .sample }}_L{{ .lane }}"},
        },
    }
    engine = correlated(spec)
    cases = [
        (upload("notes/readme.txt"), "is not a name the illumina parser knows"),
        (
            Event(id="nokey", source="webhook", subject="fastq", type="webhook", time=T0, data={"body": {}}),
            "path 'body.key' does not exist",
        ),
    ]
    for ev, reason in cases:
        out = engine.observe(ev, T0)
        assert out.fires == [] and out.released == [ev.id]
        assert {d.dependency for d in out.discarded} == {"r1", "r2"}
        assert all(d.trigger == "align" and reason in d.errors[0] for d in out.discarded), out.discarded
    # merged lanes: r2's key template needs a lane the name does not have; r1 still takes it
    merged = upload("A_S1_R2_001.fastq.gz")
    out = engine.observe(merged, T0)
    assert [d.dependency for d in out.discarded] == ["r2"]
    assert "uses field 'lane', which this event does not have" in out.discarded[0].errors[0]
    assert engine.pending_keys() == {"align": {"A": {"r1": merged.id}}}


def test_templates_as_key_sources() -> None:
    spec = {
        "window": "1h",
        "dependencies": {
            "sheet": {"template": "{{ .Input.body.run }}"},
            "marker": {
                "path": "body.key",
                "regex": r"^(?P<run>[^/]+)/CopyComplete\.txt$",
                "key": "{{ .run | lower }}",
            },
        },
    }
    deps = [dep("sheet", event="sheet"), dep("marker", event="marker")]
    engine = correlated(spec, conditions="sheet && marker", deps=deps)
    sheet = upload("x", subject="sheet", run="run-7")
    engine.observe(sheet, T0)
    marker = upload("RUN-7/CopyComplete.txt", subject="marker")
    assert fired(engine.observe(marker, T0)) == [("run-7", {"sheet": sheet.id, "marker": marker.id})]
    missing = upload("x", subject="sheet")  # no run in the body
    out = engine.observe(missing, T0)
    assert "printed '<no value>'" in out.discarded[0].errors[0] and out.released == [missing.id]


def test_bare_path_gjson_path_and_non_string_values() -> None:
    spec = {
        "window": "1h",
        "dependencies": {
            "r1": {"path": "body.files.0.sample"},  # not a plain dotted path: gjson lookup
            "r2": {"path": "body.sample"},
        },
    }
    engine = correlated(spec)
    a = upload("k", files=[{"sample": 42}])
    b = upload("k", sample=42)  # a number: gjson String() gives "42"
    engine.observe(a, T0)
    assert fired(engine.observe(b, T0)) == [("42", {"r1": a.id, "r2": b.id})]


def test_optional_groups_and_sprig_defaults() -> None:
    spec = {
        "window": "1h",
        "dependencies": {
            "r1": {"path": "body.key", "regex": r"^(?:(?P<run>[^/]+)/)?x$"},
            "r2": {
                "path": "body.key",
                "parse": "illumina",
                "key": '{{ .sample }}/L{{ .lane | default "all" }}',
            },
        },
    }
    engine = correlated(spec)
    out = engine.observe(upload("x"), T0)  # the optional group did not take part
    assert any("optional group 'run' did not take part" in d.errors[0] for d in out.discarded)
    merged = upload("A_S1_R2_001.fastq.gz")  # no lane: the template's default applies
    engine.observe(merged, T0)
    assert engine.pending_keys() == {"align": {"A/Lall": {"r2": merged.id}}}
    out = engine.observe(upload("A/x"), T0)  # r1's key is the run folder "A": not the same key
    assert out.fires == [] and sorted(engine.pending_keys()["align"]) == ["A", "A/Lall"]


def test_more_key_shapes_and_their_failures() -> None:
    spec = {
        "window": "1h",
        "dependencies": {
            # two groups: one is the key (field), or both compose it (key)
            "r1": {"path": "body.key", "regex": r"(?P<run>[^/]+)/(?P<sample>[^/]+)\.r1$", "field": "sample"},
            "r2": {
                "path": "body.key",
                "regex": r"(?P<run>[^/]+)/(?P<sample>[^/]+)\.r2$",
                "key": "{{ .sample }}",
            },
            "m": {"path": "body.key", "parse": "illumina", "field": "lane"},
        },
    }
    deps = [dep("r1", event="f"), dep("r2", event="f"), dep("m", event="m")]
    engine = correlated(spec, conditions="r1 && (r2 || m)", deps=deps)
    r2 = upload("run/A.r2", subject="f")
    out = engine.observe(r2, T0)  # r2 alone does not satisfy r1 && (r2 || m)
    assert out.fires == [] and "does not match the regex" in out.discarded[0].errors[0]
    r1 = upload("run/A.r1", subject="f")
    assert fired(engine.observe(r1, T0)) == [("A", {"r1": r1.id, "r2": r2.id})]
    merged = upload("A_S1_R1_001.fastq.gz", subject="m")  # no lane: field 'lane' is missing
    out = engine.observe(merged, T0)
    assert "field 'lane' is missing" in out.discarded[0].errors[0]


def test_runtime_template_errors_and_odd_data_discard_with_the_reason() -> None:
    spec = {
        "window": "1h",
        "key": '{{ if eq .value "bad" }}{{ fail "refused sample" }}{{ end }}{{ .value }}',
        "dependencies": {
            "r1": {"path": "body.sample"},
            "r2": {"template": "{{ .Input.body.n | upper }}"},
        },
    }
    engine = correlated(spec, deps=[dep("r1", event="a"), dep("r2", event="b")])
    out = engine.observe(upload("k", subject="a", sample="bad"), T0)
    assert (
        "the key template failed" in out.discarded[0].errors[0]
        and "refused sample" in out.discarded[0].errors[0]
    )
    out = engine.observe(upload("k", subject="b", n=3), T0)  # upper of a number fails, as in Go
    assert "the key template failed" in out.discarded[0].errors[0]
    general = correlated(
        {
            "window": "1h",
            "key": "{{ .value | lower }}-{{ .other }}",
            "dependencies": _deps(r1={"path": "body.x"}),
        }
    )
    out = general.observe(upload("k", x="A"), T0)  # a general template printing <no value> for .other
    assert "printed '<no value>': a field it uses is missing" in out.discarded[0].errors[0]
    odd = Event(id="odd", source="webhook", subject="a", type="webhook", time=T0, data={"body": "text"})
    out = engine.observe(odd, T0)  # body is no object: the gjson lookup says the path is missing
    assert "path 'body.sample' does not exist" in out.discarded[0].errors[0]


def test_empty_and_overlong_keys_are_refused() -> None:
    spec = {"window": "1h", "dependencies": {"r1": {"path": "body.sample"}, "r2": {"path": "body.sample"}}}
    engine = correlated(spec)
    out = engine.observe(upload("k", sample=""), T0)
    assert [d.errors[0] for d in out.discarded] == ["the key is empty"] * 2
    out = engine.observe(upload("k", sample="x" * (MAX_KEY_LENGTH + 1)), T0)
    assert "longer than" in out.discarded[0].errors[0]
    assert engine.pending_keys() == {}


def test_transform_runs_before_key_extraction() -> None:
    jq = {"jq": "{key: .body.Records[0].s3.object.key}"}
    deps = [dep("r1", event="fastq", transform=jq), dep("r2", event="fastq", transform=jq)]
    spec = {
        "window": "1h",
        "dependencies": {
            "r1": {"path": "key", "regex": ILLUMINA_R % 1},
            "r2": {"path": "key", "regex": ILLUMINA_R % 2},
        },
    }
    engine = correlated(spec, deps=deps)

    def s3(key: str) -> Event:
        body = {"Records": [{"s3": {"object": {"key": key}}}]}
        return Event(id=key, source="webhook", subject="fastq", type="webhook", time=T0, data={"body": body})

    engine.observe(s3("A_S1_L001_R1_001.fastq.gz"), T0)
    out = engine.observe(s3("A_S1_L001_R2_001.fastq.gz"), T0)
    assert [f.correlation_key for f in out.fires] == ["A"]
    assert out.fires[0].events["r1"].data == {"key": "A_S1_L001_R1_001.fastq.gz"}


# --------------------------------------------------------------------------- idempotency


def test_idempotency_keys_include_the_correlation_key() -> None:
    e1, e2 = fastq("A", 1), fastq("A", 2)
    events = {"r1": e1, "r2": e2}
    plain = idempotency_key("s", "t", events)
    assert plain == idempotency_key("s", "t", events, None)  # unchanged for plain triggers
    keys = {plain, idempotency_key("s", "t", events, "A"), idempotency_key("s", "t", events, "B")}
    assert len(keys) == 3
    assert expiry_key("s", "t", "A", events) not in keys
    assert expiry_key("s", "t", "A", events) != expiry_key("s", "t", "B", events)
    engine = correlated()
    engine.observe(fastq("A", 1), T0)
    engine.observe(fastq("B", 1), T0)
    fires = engine.observe(fastq("A", 2), T0).fires + engine.observe(fastq("B", 2), T0).fires
    assert [f.key for f in fires] == [
        idempotency_key("s", "align", f.events, f.correlation_key) for f in fires
    ]
    assert len({f.key for f in fires}) == 2


# --------------------------------------------------------------------------- windows and expiry


def test_partial_set_expires_at_its_deadline_on_tick() -> None:
    engine = correlated()
    a1 = fastq("NA12878", 1, at=T0)
    engine.observe(a1, T0)
    assert engine.next_deadline() == T0 + 6 * H
    out = engine.tick(T0 + 6 * H - timedelta(microseconds=1))
    assert out.expired == [] and out.released == []
    out = engine.tick(T0 + 6 * H)
    assert len(out.expired) == 1
    expire = out.expired[0]
    assert (expire.sensor, expire.trigger, expire.key, expire.missing) == ("s", "align", "NA12878", ("r2",))
    assert dict(expire.events) == {"r1": a1} and expire.deadline == T0 + 6 * H
    assert expire.reason == "correlation window expired: missing r2 for key NA12878"
    assert expire.letter_key == expiry_key("s", "align", "NA12878", {"r1": a1})
    assert out.released == [a1.id] and not engine.holds(a1.id)
    assert engine.pending_keys() == {} and engine.next_deadline() is None
    assert engine.tick(T0 + 7 * H).expired == []  # expired once


def test_on_expire_is_a_firing_of_its_own_with_the_partial_events() -> None:
    engine = correlated()
    a1 = fastq("A", 1)
    engine.observe(a1, T0)
    (expire,) = engine.tick(T0 + 6 * H).expired
    fire = expire.on_expire
    assert fire is not None
    assert (fire.sensor, fire.trigger, fire.correlation_key, dict(fire.events)) == (
        "s",
        "notify",
        "A",
        {"r1": a1},
    )
    assert fire.key == idempotency_key("s", "notify", {"r1": a1}, "A")
    assert "notify" in engine.trigger_specs
    bare = {"window": "1h", "dependencies": {"r1": {"path": "body.sample"}, "r2": {"path": "body.sample"}}}
    without = correlated(bare, deps=[dep("r1", event="a"), dep("r2", event="b")])
    without.observe(upload("k", subject="a", sample="A"), T0)
    assert without.tick(T0 + H).expired[0].on_expire is None


def test_next_deadline_is_the_earliest_pending_set_and_skips_fired_ones() -> None:
    engine = correlated()
    engine.observe(fastq("A", 1, at=T0), T0)
    engine.observe(fastq("B", 1, at=T0 + H), T0 + H)
    engine.observe(fastq("C", 1, at=T0 + 2 * H), T0 + 2 * H)
    assert engine.next_deadline() == T0 + 6 * H
    engine.observe(fastq("A", 2, at=T0 + 2 * H), T0 + 2 * H)  # A fires
    assert engine.next_deadline() == T0 + 7 * H
    out = engine.tick(T0 + 7 * H + timedelta(minutes=30))
    assert [e.key for e in out.expired] == ["B"]
    assert engine.next_deadline() == T0 + 8 * H


def test_window_runs_from_the_first_event_of_the_set() -> None:
    engine = correlated()
    engine.observe(fastq("A", 1, at=T0), T0)
    again = fastq("A", 1, at=T0 + 5 * H)  # a re-delivery does not restart the window
    engine.observe(again, T0 + 5 * H)
    assert engine.next_deadline() == T0 + 6 * H
    (expire,) = engine.tick(T0 + 6 * H).expired
    assert dict(expire.events) == {"r1": again}


def test_an_earlier_event_out_of_order_moves_the_deadline_earlier() -> None:
    engine = correlated()
    engine.observe(fastq("A", 1, at=T0 + 2 * H), T0 + 2 * H)
    engine.observe(fastq("A", 1, at=T0), T0 + 2 * H)
    assert engine.next_deadline() == T0 + 6 * H
    assert [e.key for e in engine.tick(T0 + 6 * H).expired] == ["A"]
    assert engine.next_deadline() is None  # the later heap entry is stale


def test_an_event_past_its_sets_deadline_expires_the_set_and_opens_a_new_one() -> None:
    engine = correlated()
    a1 = fastq("A", 1, at=T0)
    engine.observe(a1, T0)
    late = fastq("A", 2, at=T0 + 7 * H)
    out = engine.observe(late, T0 + 7 * H)
    assert out.fires == []
    assert [(e.key, dict(e.events)) for e in out.expired] == [("A", {"r1": a1})]
    assert out.released == [a1.id]
    assert engine.pending_keys() == {"align": {"A": {"r2": late.id}}}
    assert engine.next_deadline() == T0 + 13 * H


def test_observe_never_expires_other_keys_by_the_clock() -> None:
    # An event of the window that is observed late (a replay, a slow queue) still pairs.
    engine = correlated()
    a1, a2 = fastq("A", 1, at=T0), fastq("A", 2, at=T0 + 5 * H)
    b1 = fastq("B", 1, at=T0)
    now = T0 + 30 * H
    engine.observe(a1, now)
    out = engine.observe(b1, now)
    assert out.expired == []
    assert fired(engine.observe(a2, now)) == [("A", {"r1": a1.id, "r2": a2.id})]


# --------------------------------------------------------------------------- restart


def _stream() -> list[Event]:
    stream = []
    for i in range(40):
        at = T0 + timedelta(minutes=i)
        stream.append(fastq(f"S{i % 7}", 1 + (i * 5) % 2, at=at))
        if i % 9 == 0:
            stream.append(fastq(f"S{i % 7}", 1, at=at))  # re-deliveries
    return stream


def test_replaying_the_stream_rebuilds_the_same_pending_keys() -> None:
    stream = _stream()
    first, second = correlated(), correlated()
    fires1 = [f.key for ev in stream for f in first.observe(ev, T0 + H).fires]
    # the replay runs a day later: observe decides on event time only
    fires2 = [f.key for ev in stream for f in second.observe(ev, T0 + 24 * H).fires]
    assert fires1 == fires2 and fires1
    assert first.pending_keys() == second.pending_keys() and first.pending_keys()
    assert first.next_deadline() == second.next_deadline()
    held = {ev.id for ev in stream if first.holds(ev.id)}
    assert held == {ev.id for ev in stream if second.holds(ev.id)}
    assert held == {i for keys in first.pending_keys()["align"].values() for i in keys.values()}


def test_an_old_partial_set_replayed_after_downtime_expires_on_the_first_tick() -> None:
    engine = correlated()
    old = fastq("A", 1, at=T0)
    now = T0 + 3 * 24 * H  # three days of downtime
    assert engine.observe(old, now).expired == []
    assert engine.next_deadline() == T0 + 6 * H  # already past
    out = engine.tick(now)
    assert [e.key for e in out.expired] == ["A"] and out.released == [old.id]
    assert out.expired[0].letter_key == expiry_key(
        "s", "align", "A", {"r1": old}
    )  # the same letter as before


# --------------------------------------------------------------------------- bounded state


def test_fired_keys_leave_no_state_behind() -> None:
    engine = correlated()
    for i in range(5000):
        engine.observe(fastq(f"S{i}", 1, at=T0), T0)
        assert len(engine.observe(fastq(f"S{i}", 2, at=T0), T0).fires) == 1
    state = engine._triggers[0].correlation
    assert state is not None and len(state) == 0
    assert state.scheduled <= 2 * len(state) + 1024  # stale deadlines are compacted
    assert engine.next_deadline() is None


def test_state_per_pending_key_stays_under_2_kb() -> None:
    engine = correlated()
    count = 3000
    events = [fastq(f"SAMPLE{i:06d}", 1) for i in range(count)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for ev in events:
            engine.observe(ev, T0)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert len(engine.pending_keys()["align"]) == count
    # the events themselves are the bus delivery's; what the engine adds per key is the bookkeeping
    assert 0 < grown / count < 2048, grown / count


# --------------------------------------------------------------------------- the model


def _sensor_with(correlation: dict[str, Any], conditions: str = "r1 && r2", **template: Any) -> None:
    trigger = {
        "template": {
            "name": "align",
            "conditions": conditions,
            "log": {},
            "correlation": correlation,
            **template,
        }
    }
    sensor([dep("r1", event="f"), dep("r2", event="f"), dep("m", event="m")], [trigger])


def _deps(**override: Any) -> dict[str, Any]:
    deps: dict[str, Any] = {
        "r1": {"path": "body.key", "regex": ILLUMINA_R % 1},
        "r2": {"path": "body.key", "regex": ILLUMINA_R % 2},
    }
    deps.update(override)
    return deps


@pytest.mark.parametrize(
    ("correlation", "message"),
    [
        ({"window": "0s", "dependencies": _deps()}, "must be a positive Go duration"),
        ({"window": "soon", "dependencies": _deps()}, "invalid duration"),
        ({"window": "1h", "dependencies": {}}, "name how each dependency"),
        (
            {"window": "1h", "dependencies": _deps(r2={"path": "body.key", "regex": "R2"})},
            "has no named group",
        ),
        (
            {"window": "1h", "dependencies": _deps(r2={"path": "body.key", "regex": "(?P<x"})},
            "not a valid regular expression",
        ),
        (
            {"window": "1h", "dependencies": _deps(r2={"path": "k", "parse": "pacbio"})},
            "unknown key parser 'pacbio'; known parsers: illumina, mgi, ont",
        ),
        (
            {"window": "1h", "dependencies": _deps(r2={"path": "k", "parse": "illumina"})},
            "say which is the key with 'field: <name>'",
        ),
        (
            {"window": "1h", "dependencies": _deps(r2={"path": "k", "parse": "mgi", "field": "sample"})},
            "'sample' is not a field this extraction gives",
        ),
        (
            {"window": "1h", "dependencies": _deps(r2={"path": "k", "regex": "(?P<a>x)(?P<b>y)"})},
            "names 2 groups (a, b)",
        ),
        (
            {"window": "1h", "key": "{{ .sample }}/{{ .lane }}", "dependencies": _deps()},
            "uses 'lane', which this extraction never gives",
        ),
        (
            {"window": "1h", "dependencies": _deps(r2={"template": "{{ .Input.x }}", "path": "k"})},
            "'template' builds the key by itself",
        ),
        ({"window": "1h", "dependencies": _deps(r2={"regex": "(?P<s>x)"})}, "a correlation key needs 'path'"),
        (
            {"window": "1h", "dependencies": _deps(r2={"path": "k", "regex": "(?P<s>x)", "parse": "ont"})},
            "either 'regex' or 'parse'",
        ),
        (
            {
                "window": "1h",
                "dependencies": _deps(r2={"path": "k", "field": "value", "key": "{{ .value }}"}),
            },
            "either 'field'",
        ),
        (
            {"window": "1h", "dependencies": _deps(r2={"template": "{{ uper .Input }}"})},
            'unknown function "uper"',
        ),
        (
            {"window": "1h", "key": "{{ uper .sample }}", "dependencies": _deps()},
            'key: unknown function "uper"',
        ),
        (
            {"window": "1h", "dependencies": _deps(m={"path": "k"})},
            "'m', which the trigger's conditions 'r1 && r2' do not use",
        ),
        (
            {"window": "1h", "dependencies": _deps(x={"path": "k"})},
            "names 'x', which is no dependency of this sensor",
        ),
        ({"window": "1h", "dependencies": {"r1": {"path": "k"}}}, "has no key for 'r2'"),
        (
            {"window": "1h", "dependencies": _deps(), "onExpire": {"template": {"name": "align", "log": {}}}},
            "onExpire is named 'align', which another trigger or onExpire uses",
        ),
        (
            {
                "window": "1h",
                "dependencies": _deps(),
                "onExpire": {"template": {"name": "n", "conditions": "r1", "log": {}}},
            },
            "it has no conditions or conditionsReset of its own",
        ),
    ],
)
def test_invalid_correlations_are_refused_with_the_reason(correlation: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        _sensor_with(correlation)
    assert message in str(info.value)


def test_correlation_and_conditions_reset_do_not_mix() -> None:
    reset = [{"byTime": {"cron": "0 0 * * *"}}]
    with pytest.raises(ValidationError, match="cannot have 'conditionsReset'"):
        _sensor_with({"window": "1h", "dependencies": _deps()}, conditionsReset=reset)


def test_unparsable_conditions_are_left_to_the_conditions_check() -> None:
    # the sensor model loads; the engine (and `triggergate validate`) report the conditions error
    trigger = {
        "template": {
            "name": "t",
            "conditions": "r1 &&",
            "log": {},
            "correlation": {"window": "1h", "dependencies": _deps()},
        }
    }
    spec = sensor([dep("r1"), dep("r2")], [trigger])
    with pytest.raises(ValueError, match="conditions"):
        SensorEngine(spec)


def test_state_can_be_built_from_a_spec_alone() -> None:
    spec = Correlation.model_validate({"window": "90m", "dependencies": _deps()})
    state = CorrelationState.from_spec(spec, frozenset({"r1", "r2"}))
    assert state.window == 5400 and state.order == ("r1", "r2")
    with pytest.raises(ValueError, match="has no key for r3"):
        CorrelationState.from_spec(spec, frozenset({"r1", "r2", "r3"}))
    with pytest.raises(ValueError, match="must be positive"):
        CorrelationState(0, {})
    event = replace(fastq("A", 1), time=T0)
    assert state.key_of("r1", event) == "A"
    assert CorrelationState.from_spec(spec).order == ("r1", "r2")
    assert state.satisfied("nothing") == frozenset() and not state.complete("nothing")
    with pytest.raises(CorrelationError, match="must be a positive Go duration"):
        check_correlation(Correlation.model_construct(window="0s", key=None, dependencies={}, on_expire=None))


# --------------------------------------------------------------------------- the documented example


def test_the_documented_sensor_loads_and_pairs_per_sample() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "correlation.md").read_text()
    block = re.search(r"```yaml\n(apiVersion:.*?)```", doc, re.S)
    assert block is not None
    engine = SensorEngine(Sensor.model_validate(yaml.safe_load(block.group(1))))

    def s3(name: str) -> Event:
        key = f"runs/250304_A01234_0042_BHXXYYDSXC/Data/{name}"
        return Event(id=name, source="uploads", subject="fastq", type="s3", time=T0, data={"key": key})

    engine.observe(s3("A_S1_L001_R1_001.fastq.gz"), T0)
    engine.observe(s3("B_S2_L001_R2_001.fastq.gz"), T0)
    out = engine.observe(s3("A_S1_L001_R2_001.fastq.gz"), T0)
    assert [(f.trigger, f.correlation_key, sorted(f.events)) for f in out.fires] == [
        ("align", "A", ["r1", "r2"])
    ]
    (expire,) = engine.tick(T0 + 6 * H).expired
    assert (expire.key, expire.missing) == ("B", ("r1",))
    assert expire.on_expire is not None and expire.on_expire.trigger == "notify-lab"


def test_compile_extractor_checks_what_it_is_given_on_its_own() -> None:
    # The model refuses these first; the compiler says the same when it is called directly.
    bad_regex = CorrelationKey.model_construct(
        path="k", regex="(?P<x", parse=None, field=None, key=None, template=None
    )
    with pytest.raises(CorrelationError, match=r"d\.regex '\(\?P<x' is not a valid regular expression"):
        compile_extractor(bad_regex, None, "d")
    bad_parser = CorrelationKey.model_construct(
        path="k", regex=None, parse="pacbio", field=None, key=None, template=None
    )
    with pytest.raises(CorrelationError, match=r"d\.parse: unknown key parser 'pacbio'"):
        compile_extractor(bad_parser, None, "d")
    assert possible_fields(CorrelationKey(template="{{ .Input.x }}")) is None
