from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from pydantic import ValidationError

from sensors.engine import SensorEngine, idempotency_key
from tests.unit.sensor_factory import T0, dep, event, log_trigger, sensor


def test_single_dependency_fires_on_every_event() -> None:
    engine = SensorEngine(sensor([dep("d")], [log_trigger("t")]))
    e1 = event()
    out = engine.observe(e1, T0)
    assert [f.trigger for f in out.fires] == ["t"]
    assert out.fires[0].events == {"d": e1}
    assert out.released == [e1.id]
    assert engine.pending() == {}


def test_unrouted_event_is_released_at_once() -> None:
    engine = SensorEngine(sensor([dep("d")], [log_trigger("t")]))
    other = event(source="elsewhere")
    out = engine.observe(other, T0)
    assert out.fires == [] and out.released == [other.id] and out.accepted == []


def test_and_waits_for_both_and_latest_event_wins() -> None:
    engine = SensorEngine(sensor([dep("a", event="a"), dep("b", event="b")], [log_trigger("t", "a && b")]))
    a1, a2, b1 = event(subject="a"), event(subject="a"), event(subject="b")
    out1 = engine.observe(a1, T0)
    assert out1.fires == [] and out1.released == []  # held
    assert engine.holds(a1.id)
    out2 = engine.observe(a2, T0)
    assert out2.fires == [] and out2.released == [a1.id]  # superseded: latest wins
    assert engine.pending() == {"t": {"a": a2.id}}
    out3 = engine.observe(b1, T0)
    assert len(out3.fires) == 1
    assert out3.fires[0].events == {"a": a2, "b": b1}
    assert sorted(out3.released) == sorted([a2.id, b1.id])
    assert engine.pending() == {}
    assert not engine.holds(a2.id)


def test_no_conditions_means_all_dependencies() -> None:
    engine = SensorEngine(sensor([dep("a", event="a"), dep("b", event="b")], [log_trigger("t")]))
    assert engine.observe(event(subject="a"), T0).fires == []
    assert len(engine.observe(event(subject="b"), T0).fires) == 1


def test_or_fires_with_every_saved_dependency() -> None:
    # Argo's JetStream bus hands the action every saved dependency, not only the satisfied branch.
    engine = SensorEngine(
        sensor(
            [dep("a", event="a"), dep("b", event="b"), dep("c", event="c")],
            [log_trigger("t", "(a && b) || c")],
        )
    )
    a1, c1 = event(subject="a"), event(subject="c")
    assert engine.observe(a1, T0).fires == []
    out = engine.observe(c1, T0)
    assert len(out.fires) == 1 and out.fires[0].events == {"a": a1, "c": c1}
    assert engine.pending() == {}


def test_triggers_keep_their_own_state() -> None:
    engine = SensorEngine(
        sensor(
            [dep("a", event="a"), dep("b", event="b")],
            [log_trigger("t1", "a"), log_trigger("t2", "a && b")],
        )
    )
    a1 = event(subject="a")
    out = engine.observe(a1, T0)
    assert [f.trigger for f in out.fires] == ["t1"]
    # t2 still holds a1: it is not released although t1 fired with it.
    assert out.released == []
    assert engine.pending() == {"t2": {"a": a1.id}}
    out2 = engine.observe(event(subject="b"), T0)
    assert [f.trigger for f in out2.fires] == ["t2"]
    assert a1.id in out2.released


def test_dependency_not_in_conditions_is_not_held() -> None:
    engine = SensorEngine(sensor([dep("a", event="a"), dep("b", event="b")], [log_trigger("t", "a")]))
    b1 = event(subject="b")
    out = engine.observe(b1, T0)
    assert out.fires == [] and out.released == [b1.id] and out.accepted == ["b"]


def test_data_filter_discards_and_reports() -> None:
    filters = {"data": [{"path": "body.kind", "type": "string", "value": ["^fastq$"]}]}
    engine = SensorEngine(sensor([dep("d", filters=filters)], [log_trigger("t")]))
    good = event(data={"body": {"kind": "fastq"}})
    bad = event(data={"body": {"kind": "bam"}})
    missing = event(data={"body": {}})
    assert len(engine.observe(good, T0).fires) == 1
    out = engine.observe(bad, T0)
    assert out.fires == [] and out.released == [bad.id] and out.discarded[0].dependency == "d"
    out = engine.observe(missing, T0)
    assert out.fires == [] and "does not exist" in " ".join(out.discarded[0].errors)


def test_two_dependencies_on_the_same_event_with_different_filters() -> None:
    small = {"data": [{"path": "body.size", "type": "number", "comparator": "<", "value": ["10"]}]}
    large = {"data": [{"path": "body.size", "type": "number", "comparator": ">=", "value": ["10"]}]}
    engine = SensorEngine(
        sensor(
            [dep("small", filters=small), dep("large", filters=large)],
            [log_trigger("ts", "small"), log_trigger("tl", "large")],
        )
    )
    assert [f.trigger for f in engine.observe(event(data={"body": {"size": 3}}), T0).fires] == ["ts"]
    assert [f.trigger for f in engine.observe(event(data={"body": {"size": 30}}), T0).fires] == ["tl"]


def test_idempotency_key_is_stable_and_distinct() -> None:
    e1, e2 = event(id="x1"), event(id="x2")
    k = idempotency_key("s", "t", {"a": e1, "b": e2})
    assert k == idempotency_key("s", "t", {"b": e2, "a": e1})
    assert k != idempotency_key("s", "t2", {"a": e1, "b": e2})
    assert k != idempotency_key("s", "t", {"a": e2, "b": e1})
    assert len(k) == 32


def test_replay_rebuilds_the_same_firings() -> None:
    spec = sensor([dep("a", event="a"), dep("b", event="b")], [log_trigger("t", "a && b")])
    stream = [event(subject="a"), event(subject="a"), event(subject="b"), event(subject="a")]
    first = SensorEngine(spec)
    keys1 = [f.key for e in stream for f in first.observe(e, T0).fires]
    second = SensorEngine(spec)
    keys2 = [f.key for e in stream for f in second.observe(e, T0).fires]
    assert keys1 == keys2 and len(keys1) == 1
    assert first.pending() == second.pending() == {"t": {"a": stream[3].id}}


def test_tick_has_no_decisions_without_resets() -> None:
    engine = SensorEngine(sensor([dep("d")], [log_trigger("t")]))
    out = engine.tick(T0)
    assert out.fires == [] and out.released == []


def test_routes() -> None:
    engine = SensorEngine(sensor([dep("a", event="a"), dep("b", source="s3", event="b")], [log_trigger("t")]))
    assert engine.routes() == {("webhook", "a"), ("s3", "b")}


def _reset_sensor(cron: str = "59 23 * * *", tz: str | None = "America/Los_Angeles") -> SensorEngine:
    reset: dict[str, object] = {"byTime": {"cron": cron, **({"timezone": tz} if tz else {})}}
    trig = {"template": {"name": "t", "conditions": "a && b", "conditionsReset": [reset], "log": {}}}
    return SensorEngine(sensor([dep("a", event="a"), dep("b", event="b")], [trig]))


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_conditions_reset_clears_state_at_the_tick() -> None:
    engine = _reset_sensor()
    # 23:00 in Los Angeles on 21 Nov is 07:00 UTC on 22 Nov
    a1 = replace(event(subject="a"), time=_at("2026-11-22T07:00:00+00:00"))
    out = engine.observe(a1, _at("2026-11-22T07:00:01+00:00"))
    assert out.fires == [] and engine.pending() == {"t": {"a": a1.id}}
    assert engine.next_deadline() == _at("2026-11-21T23:59:00-08:00")
    assert engine.tick(_at("2026-11-22T07:58:59+00:00")).released == []
    out = engine.tick(_at("2026-11-22T07:59:00+00:00"))  # 23:59 in Los Angeles
    assert out.released == [a1.id] and engine.pending() == {}
    # today's b does not pair with yesterday's a
    b1 = replace(event(subject="b"), time=_at("2026-11-22T08:30:00+00:00"))
    assert engine.observe(b1, _at("2026-11-22T08:30:00+00:00")).fires == []
    a2 = replace(event(subject="a"), time=_at("2026-11-22T09:00:00+00:00"))
    assert len(engine.observe(a2, _at("2026-11-22T09:00:00+00:00")).fires) == 1


def test_reset_tick_passed_while_an_event_arrives() -> None:
    engine = _reset_sensor(cron="0 * * * *", tz=None)
    a1 = replace(event(subject="a"), time=_at("2026-11-22T10:10:00+00:00"))
    engine.observe(a1, _at("2026-11-22T10:10:00+00:00"))
    b1 = replace(event(subject="b"), time=_at("2026-11-22T11:05:00+00:00"))
    out = engine.observe(b1, _at("2026-11-22T11:05:00+00:00"))  # the 11:00 tick passed first
    assert out.fires == [] and a1.id in out.released
    assert engine.pending() == {"t": {"b": b1.id}}


def test_replay_after_downtime_drops_state_older_than_the_previous_tick() -> None:
    # The process was down at the reset tick; on start the replayed event from before the tick
    # must not pair with an event from after it (Argo PR #1585).
    engine = _reset_sensor(cron="0 0 * * *", tz=None)
    old_a = replace(event(subject="a"), time=_at("2026-11-21T22:00:00+00:00"))
    now = _at("2026-11-22T06:00:00+00:00")
    out = engine.observe(old_a, now)  # replayed at start
    assert out.released == [old_a.id] and engine.pending() == {}
    b1 = replace(event(subject="b"), time=_at("2026-11-22T06:00:00+00:00"))
    assert engine.observe(b1, now).fires == []


def test_invalid_cron_or_zone_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="invalid cron expression"):
        _reset_sensor(cron="61 * * * *")
    with pytest.raises(ValidationError, match="unknown time zone"):
        _reset_sensor(tz="Mars/Olympus")


def test_transform_runs_before_filters_and_feeds_parameters() -> None:
    transform = {"jq": ".body.kind |= ascii_downcase"}
    filters = {"data": [{"path": "body.kind", "type": "string", "value": ["^fastq$"]}]}
    engine = SensorEngine(sensor([dep("d", transform=transform, filters=filters)], [log_trigger("t")]))
    e1 = event(data={"body": {"kind": "FASTQ"}})
    out = engine.observe(e1, T0)
    assert len(out.fires) == 1
    fired = out.fires[0].events["d"]
    assert fired.id == e1.id and fired.data == {"body": {"kind": "fastq"}}
    assert out.released == [e1.id]


def test_failing_transform_discards_the_event() -> None:
    engine = SensorEngine(sensor([dep("d", transform={"jq": ".body.items[0]"})], [log_trigger("t")]))
    e1 = event(data={"body": {"items": ["not an object"]}})
    out = engine.observe(e1, T0)
    assert out.fires == [] and out.released == [e1.id]
    assert "JSON object" in " ".join(out.discarded[0].errors)


def test_lua_transform_and_expr_filter_together() -> None:
    transform = {"script": "event.body.total = event.body.a + event.body.b; return event"}
    filters = {"exprs": [{"expr": "total > 10", "fields": [{"name": "total", "path": "body.total"}]}]}
    engine = SensorEngine(sensor([dep("d", transform=transform, filters=filters)], [log_trigger("t")]))
    assert len(engine.observe(event(data={"body": {"a": 4, "b": 9}}), T0).fires) == 1
    assert engine.observe(event(data={"body": {"a": 1, "b": 2}}), T0).fires == []
