"""Lineage in the state store: each firing keeps its events (a real SqliteStore on a real file)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.firing import FiringRunner
from gateway.outbox import Outbox
from gateway.secrets import SecretStore
from gateway.store import LINEAGE_EVENT_LIMIT, DeadLetter, FiringRecord, SqliteStore
from gateway.triggers import build_executor
from gateway.triggers.base import TriggerContext
from sensors.engine import Fire, idempotency_key
from sensors.spec import Trigger
from tests.unit.sensor_factory import event

pytestmark = pytest.mark.timeout(30)

# The state store's tables as triggergate wrote them before lineage events were kept (schema
# version 1): frozen here, so that opening such a file stays tested whatever the schema becomes.
OLD_SCHEMA = """
CREATE TABLE firings (
    key TEXT PRIMARY KEY, sensor TEXT NOT NULL, trigger TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL, result TEXT NOT NULL, started_at REAL NOT NULL,
    finished_at REAL NOT NULL, event_ids TEXT NOT NULL, dependencies TEXT NOT NULL
);
CREATE INDEX firings_by_finish ON firings (finished_at);
CREATE TABLE firing_events (
    event_id TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (event_id, key)
) WITHOUT ROWID;
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, sensor TEXT NOT NULL, trigger TEXT NOT NULL,
    reason TEXT NOT NULL, attempts INTEGER NOT NULL, events TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX dead_letters_by_time ON dead_letters (created_at);
CREATE TABLE replay_requests (
    letter_id TEXT PRIMARY KEY, letter TEXT NOT NULL, status TEXT NOT NULL, outcome TEXT NOT NULL,
    requested_at REAL NOT NULL, finished_at REAL
);
PRAGMA user_version = 1;
"""


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state.db")
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def cloud_event(event_id: str, body: Any, source: str = "sequencer") -> dict[str, Any]:
    data = {"header": {"Content-Type": ["application/json"]}, "body": body, "metadata": {}}
    return event(source=source, subject="run-complete", data=data, id=event_id).to_dict()


def firing(key: str, deps: dict[str, str], *, result: str = "created Workflow argo/x") -> FiringRecord:
    return FiringRecord(
        key=key,
        sensor="run-align",
        trigger="align-run",
        event_ids=list(deps.values()),
        dependencies=deps,
        status="succeeded",
        attempts=1,
        result=result,
        started_at=1.0,
        finished_at=2.0,
    )


async def test_a_firing_keeps_each_dependencys_event(store: SqliteStore) -> None:
    r1, r2 = (
        cloud_event("e1", {"key": "NA12878_R1.fastq.gz"}),
        cloud_event("e2", {"key": "NA12878_R2.fastq.gz"}),
    )
    rec = firing("k1", {"r1": "e1", "r2": "e2"})
    await store.record_firing(rec, events={"r1": r1, "r2": r2})
    assert await store.get_firing("k1") == rec  # the record itself is unchanged
    kept = await store.firing_events_kept("k1")
    assert [(e.dependency, e.event_id, e.event, e.truncated) for e in kept] == [
        ("r1", "e1", r1, False),
        ("r2", "e2", r2, False),
    ]
    assert kept[0].size == len(orjson.dumps(r1))
    found = await store.event_kept("e2")
    assert found is not None and found.event == r2 and found.key == "k1"
    assert await store.event_kept("nope") is None
    assert await store.firing_events_kept("nope") == []


async def test_the_first_record_of_a_key_keeps_its_events(store: SqliteStore) -> None:
    first = cloud_event("e1", {"run": "R42"})
    await store.record_firing(firing("k1", {"run": "e1"}), events={"run": first})
    await store.record_firing(firing("k1", {"run": "e9"}), events={"run": cloud_event("e9", {"run": "R43"})})
    assert [e.event for e in await store.firing_events_kept("k1")] == [first]
    assert await store.event_kept("e9") is None


async def test_one_event_of_several_firings_is_found_through_each(store: SqliteStore) -> None:
    ev = cloud_event("e1", {"run": "R42"})
    await store.record_firing(firing("a", {"run": "e1"}), events={"run": ev})
    await store.record_firing(firing("b", {"run": "e1"}, result="HTTP 200"), events={"run": ev})
    assert [r.key for r in await store.firings_for_event("e1")] == ["a", "b"]
    assert [e.key for e in await store.firing_events_kept("b")] == ["b"]
    found = await store.event_kept("e1")
    assert found is not None and found.event == ev


async def test_a_large_event_is_kept_truncated_with_its_context_whole(store: SqliteStore) -> None:
    body = {"reads": ["s3://lab-runs/R42/" + "x" * 100 + f"_{i}.fastq.gz" for i in range(2000)]}
    big = cloud_event("big", body)
    full = orjson.dumps(big)
    assert len(full) > 3 * LINEAGE_EVENT_LIMIT
    await store.record_firing(firing("k1", {"run": "big"}), events={"run": big})
    (kept,) = await store.firing_events_kept("k1")
    assert kept.truncated and kept.size == len(full)
    stored = orjson.dumps(kept.event)
    assert LINEAGE_EVENT_LIMIT - 200 < len(stored) <= LINEAGE_EVENT_LIMIT
    assert {k: v for k, v in kept.event.items() if k != "data"} == {
        k: v for k, v in big.items() if k != "data"
    }
    assert isinstance(kept.event["data"], str)
    assert orjson.dumps(big["data"]).decode().startswith(kept.event["data"])


@pytest.mark.parametrize("text", ['"\\' * 40_000, "\x01" * 70_000, "é漢" * 30_000])
async def test_truncation_stays_under_the_limit_when_json_escapes_grow_the_text(
    store: SqliteStore, text: str
) -> None:
    await store.record_firing(firing("k1", {"run": "e1"}), events={"run": cloud_event("e1", text)})
    (kept,) = await store.firing_events_kept("k1")
    assert kept.truncated
    assert len(orjson.dumps(kept.event)) <= LINEAGE_EVENT_LIMIT
    assert len(orjson.dumps(kept.event)) > LINEAGE_EVENT_LIMIT - 16  # the room is used


async def test_a_dead_letter_keeps_its_events_and_a_release_forgets_them(store: SqliteStore) -> None:
    ev = cloud_event("e1", {"run": "R43"})
    letter = DeadLetter(
        key="k1",
        sensor="run-align",
        trigger="align-run",
        reason="403 Forbidden",
        attempts=5,
        events=[{"dependency": "run", **ev}],
        created_at=5.0,
    )
    letter_id = await store.dead_letter(letter)
    (kept,) = await store.firing_events_kept("k1")
    assert (kept.dependency, kept.event) == ("run", ev)  # without the "dependency" attribute
    assert [d.id for d in await store.dead_letters_for_event("e1")] == [letter_id]
    found = await store.dead_letter_for_firing("k1")
    assert found is not None and found.id == letter_id
    assert await store.dead_letters_for_event("other") == []
    await store.release_dead_letter(letter_id)
    assert await store.firing_events_kept("k1") == []
    assert await store.event_kept("e1") is None
    assert await store.dead_letter_for_firing("k1") is None


async def test_a_runner_records_the_firing_with_its_events(tmp_path: Path, store: SqliteStore) -> None:
    trigger = Trigger.model_validate(
        {
            "template": {
                "name": "align-run",
                "argoWorkflow": {
                    "operation": "submit",
                    "source": {
                        "resource": {
                            "apiVersion": "argoproj.io/v1alpha1",
                            "kind": "Workflow",
                            "metadata": {"generateName": "run-align-"},
                            "spec": {"workflowTemplateRef": {"name": "run-align"}},
                        }
                    },
                },
            }
        }
    )
    ev = event(data={"header": {}, "body": {"run": "R42"}, "metadata": {}}, id="e1")
    async with httpx.AsyncClient() as http:
        context = TriggerContext(
            "run-align", "argo", SecretStore(tmp_path / "secrets"), http, kube=Outbox(tmp_path / "outbox")
        )
        runner = FiringRunner(build_executor(trigger, context), store)
        fire = Fire(
            "run-align", "align-run", {"run": ev}, idempotency_key("run-align", "align-run", {"run": ev})
        )
        outcome = await runner.run(fire)
    assert outcome.status == "succeeded" and outcome.result.startswith("created Workflow argo/run-align-")
    (kept,) = await store.firing_events_kept(fire.key)
    assert (kept.dependency, kept.event) == ("run", ev.to_dict())


def old_store(path: Path) -> None:
    """A state file as the previous triggergate left it: a succeeded firing, a dead letter."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(OLD_SCHEMA)
        conn.execute(
            "INSERT INTO firings VALUES ('old', 'run-align', 'align-run', 'succeeded', 1, "
            "'created Workflow argo/run-align-old', 1.0, 2.0, '[\"e-old\"]', '{\"run\": \"e-old\"}')"
        )
        conn.execute("INSERT INTO firing_events VALUES ('e-old', 'old')")
        letter_events = orjson.dumps([{"dependency": "run", **cloud_event("e-dl", {"run": "R9"})}]).decode()
        conn.execute(
            "INSERT INTO firings VALUES ('dl', 'run-align', 'align-run', 'dead-lettered', 3, "
            "'403 Forbidden', 3.0, 3.0, '[\"e-dl\"]', '{\"run\": \"e-dl\"}')"
        )
        conn.execute("INSERT INTO firing_events VALUES ('e-dl', 'dl')")
        conn.execute(
            "INSERT INTO dead_letters VALUES "
            "('L1', 'dl', 'run-align', 'align-run', '403 Forbidden', 3, ?, 3.0)",
            (letter_events,),
        )
        conn.commit()
    finally:
        conn.close()


async def test_a_state_file_from_before_lineage_events_opens_and_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old_store(path)
    new = cloud_event("e-new", {"run": "R50"})
    store = SqliteStore(path)
    await store.start()
    try:
        old = await store.get_firing("old")
        assert old is not None and old.result == "created Workflow argo/run-align-old"
        assert [r.key for r in await store.firings_for_event("e-old")] == ["old"]
        assert await store.firing_events_kept("old") == []  # the old version kept no events
        (from_letter,) = await store.firing_events_kept("dl")  # filled from the dead letter
        assert (from_letter.dependency, from_letter.event["data"]["body"]) == ("run", {"run": "R9"})
        assert await store.event_kept("e-dl") == from_letter
        await store.record_firing(firing("new", {"run": "e-new"}), events={"run": new})
    finally:
        await store.close()

    again = SqliteStore(path)  # the second open finds the table and changes nothing
    await again.start()
    try:
        assert [e.event for e in await again.firing_events_kept("new")] == [new]
        assert len(await again.firing_events_kept("dl")) == 1
        letter = await again.get_dead_letter("L1")
        assert letter is not None and await again.release_dead_letter("L1") == letter
        assert await again.firing_events_kept("dl") == []
    finally:
        await again.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)  # older versions still open it
        assert conn.execute("SELECT count(*) FROM lineage_events").fetchone() == (1,)
    finally:
        conn.close()


async def test_a_dead_letter_written_without_lineage_rows_shows_its_events(tmp_path: Path) -> None:
    """An older triggergate (after a rollback) writes dead letters into a migrated file."""
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    await store.start()
    await store.close()
    conn = sqlite3.connect(path)
    ev = cloud_event("e1", {"run": "R1"})
    conn.execute(
        "INSERT INTO dead_letters VALUES ('L1', 'k1', 's', 't', 'boom', 1, ?, 1.0)",
        (orjson.dumps([{"dependency": "run", **ev}]).decode(),),
    )
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    await store.start()
    try:
        (kept,) = await store.firing_events_kept("k1")
        assert (kept.dependency, kept.event) == ("run", ev)
    finally:
        await store.close()


async def test_two_openers_of_an_old_file_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old_store(path)
    stores = [SqliteStore(path) for _ in range(3)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        assert [len(await s.firing_events_kept("dl")) for s in stores] == [1, 1, 1]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_lineage_reads_use_the_indexes(tmp_path: Path, store: SqliteStore) -> None:
    await store.record_firing(firing("a", {"run": "e1"}), events={"run": cloud_event("e1", {})})
    conn = sqlite3.connect(tmp_path / "state.db")
    try:
        queries = [
            "SELECT event FROM lineage_events WHERE event_id = 'e1' AND key IN "
            "(SELECT key FROM firing_events WHERE event_id = 'e1')",
            "SELECT event FROM lineage_events WHERE key = 'a'",
            "SELECT id FROM dead_letters WHERE key IN (SELECT key FROM firing_events WHERE event_id = 'e1')",
        ]
        for query in queries:
            steps = [str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + query).fetchall()]
            assert not any(step.startswith("SCAN") for step in steps), (query, steps)
    finally:
        conn.close()
