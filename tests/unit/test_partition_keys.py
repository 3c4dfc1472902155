"""``SensorEngine.partition_keys``: where an event belongs when several consumers share a sensor.

The rule (docs/deploy.md, "Partitioning"): a sensor whose triggers all correlate with the same key
sources is partitioned by the correlation key the engine extracts for the event (first dependency,
in sensor order, that accepts it and gives a key); any other sensor, and an event with no key, by
the sensor's ``<namespace>.<name>``; an event no dependency routes belongs nowhere.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sensors.engine import SensorEngine
from sensors.event import Event
from sensors.spec import Sensor
from tests.unit.sensor_factory import T0, dep, log_trigger

READ = r"(?P<sample>[^/]+)_S\d+_L\d{3}_R%d_001\.fastq\.gz$"
KEYS = {"r1": {"path": "body.key", "regex": READ % 1}, "r2": {"path": "body.key", "regex": READ % 2}}
NAME = "lab.seq"  # <namespace>.<name> of every sensor below


def build(
    triggers: list[dict[str, Any]], deps: list[dict[str, Any]] | None = None, namespace: str = "lab"
) -> SensorEngine:
    return SensorEngine(
        Sensor.model_validate(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Sensor",
                "metadata": {"name": "seq", "namespace": namespace},
                "spec": {
                    "dependencies": deps or [dep("r1", event="fastq"), dep("r2", event="fastq")],
                    "triggers": triggers,
                },
            }
        )
    )


def correlated(name: str = "align", conditions: str = "r1 && r2", **correlation: Any) -> dict[str, Any]:
    spec = {"window": "1h", "dependencies": KEYS, **correlation}
    return {"template": {"name": name, "conditions": conditions, "log": {}, "correlation": spec}}


_ids = iter(range(10**9))


def upload(key: str, subject: str = "fastq", source: str = "webhook", **body: Any) -> Event:
    return Event(
        id=f"ev{next(_ids):06d}",
        source=source,
        subject=subject,
        type="webhook",
        time=T0,
        data={"header": {}, "body": {"key": key, **body}, "metadata": {}},
    )


R1, R2 = "run1/NA12878_S1_L001_R1_001.fastq.gz", "run1/NA12878_S1_L001_R2_001.fastq.gz"
ONLY_R1 = [{"path": "body.lane", "type": "string", "value": ["1"]}]

CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None, Event, list[str]]] = [
    # (what, triggers, dependencies (None: r1, r2 on webhook/fastq), event, partition keys)
    ("no dependency routes it", [correlated()], None, upload(R1, subject="bam"), []),
    ("another EventSource", [correlated()], None, upload(R1, source="minio"), []),
    ("correlated: R1 by sample", [correlated()], None, upload(R1), ["NA12878"]),
    ("correlated: R2 by sample", [correlated()], None, upload(R2), ["NA12878"]),
    ("correlated: no key under any dependency", [correlated()], None, upload("notes.txt"), [NAME]),
    ("plain trigger: by name", [log_trigger("t", "r1 && r2")], None, upload(R1), [NAME]),
    (
        "two triggers, same key sources (windows may differ): by key",
        [correlated("a"), correlated("b", window="6h")],
        None,
        upload(R2),
        ["NA12878"],
    ),
    (
        "two triggers, different key templates: by name",
        [correlated("a"), correlated("b", key="{{ .sample }}-x")],
        None,
        upload(R1),
        [NAME],
    ),
    (
        "two triggers, different key sources: by name",
        [
            correlated("a"),
            correlated(
                "b",
                dependencies={"r1": {"path": "body.key", "regex": READ % 1}, "r2": {"path": "body.key"}},
            ),
        ],
        None,
        upload(R1),
        [NAME],
    ),
    ("correlated and plain: by name", [correlated(), log_trigger("t", "r1")], None, upload(R1), [NAME]),
    (
        "a conditionsReset: by name",
        [{"template": {"name": "t", "log": {}, "conditionsReset": [{"byTime": {"cron": "0 0 * * *"}}]}}],
        None,
        upload(R1),
        [NAME],
    ),
    (
        "filters reject it under every dependency: no key",
        [correlated()],
        [
            dep("r1", event="fastq", filters={"data": ONLY_R1}),
            dep("r2", event="fastq", filters={"data": ONLY_R1}),
        ],
        upload(R1, lane="2"),
        [NAME],
    ),
    (
        "transform before the key, as the engine does",
        [correlated()],
        [
            dep("r1", event="fastq", transform={"jq": "{body: {key: .body.inner}}"}),
            dep("r2", event="fastq", transform={"jq": "{body: {key: .body.inner}}"}),
        ],
        upload("ignored", inner="run1/HG002_S2_L001_R1_001.fastq.gz"),
        ["HG002"],
    ),
    (
        "a dependency no trigger waits on: by name",
        [correlated()],
        [dep("r1", event="fastq"), dep("r2", event="fastq"), dep("qc", event="qc")],
        upload(R1, subject="qc"),
        [NAME],
    ),
]


@pytest.mark.parametrize(
    ("triggers", "deps", "event", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_partition_keys(
    triggers: list[dict[str, Any]], deps: list[dict[str, Any]] | None, event: Event, expected: list[str]
) -> None:
    assert build(triggers, deps).partition_keys(event) == expected


def test_the_first_dependency_in_sensor_order_that_gives_a_key_wins() -> None:
    # Both dependencies listen to the same events, with filters and different key sources.
    deps = [
        dep("a", event="fastq", filters={"data": [{"path": "body.kind", "type": "string", "value": ["a"]}]}),
        dep("b", event="fastq"),
    ]
    keys = {
        "a": {"path": "body.key", "regex": r"^(?P<k>[^/]+)/"},
        "b": {"path": "body.key", "regex": r"(?P<k>[A-Za-z0-9]+)_S"},
    }
    trigger = {
        "template": {
            "name": "t",
            "conditions": "a && b",
            "log": {},
            "correlation": {"window": "1h", "dependencies": keys},
        }
    }
    engine = build([trigger], deps)
    assert engine.partitioned_by_key
    assert engine.partition_keys(upload(R1, kind="a")) == ["run1"]  # a accepts it: its key
    assert engine.partition_keys(upload(R1, kind="b")) == ["NA12878"]  # a's filter refuses it: b's key
    assert engine.partition_keys(upload("flat.txt", kind="a")) == [NAME]  # neither gives a key
    # a accepts it but gives no key (its regex needs a '/'); b gives one, and the engine keeps it there
    event = upload("x_Sy", kind="a")
    assert engine.partition_keys(event) == ["x"]
    engine.observe(event, T0)
    assert engine.pending_keys() == {"t": {"x": {"b": event.id}}}


def test_the_name_includes_the_namespace() -> None:
    engine = build([log_trigger("t", "r1")], namespace="sequencing")
    assert not engine.partitioned_by_key
    assert engine.partition_name == "sequencing.seq"
    assert engine.partition_keys(upload(R1)) == ["sequencing.seq"]


def test_partition_keys_agree_with_the_keys_the_engine_stores_events_under() -> None:
    engine = build([correlated(onExpire={"template": {"name": "notify", "log": {}}})])
    samples = ["NA12878", "HG002", "HG003", "weird-name.v2"]
    events = [upload(f"run1/{s}_S{i}_L001_R{r}_001.fastq.gz") for r in (1, 2) for i, s in enumerate(samples)]
    events.insert(3, upload("run1/README"))
    for i, event in enumerate(events):
        before = engine.pending_keys()
        routed = engine.partition_keys(event)
        assert engine.pending_keys() == before  # asking changes nothing
        out = engine.observe(event, T0 + timedelta(seconds=i))
        stored = {
            key
            for trigger in engine.pending_keys().values()
            for key, deps in trigger.items()
            if event.id in deps.values()
        }
        stored |= {f.correlation_key for f in out.fires if event.id in f.event_ids}
        if out.discarded and not stored:
            assert routed == [NAME]
        else:
            assert set(routed) == stored, event.data
    assert engine.pending_keys() == {}
