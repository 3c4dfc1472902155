"""``triggergate lineage event|firing|object`` over a real state directory (store and outbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli import app
from gateway.lineage import objects_made
from gateway.outbox import Outbox
from gateway.secrets import SecretStore
from gateway.store import DeadLetter, FiringRecord, SqliteStore
from gateway.triggers.base import TriggerContext
from sensors.fanout import item_key, report_key
from sensors.objects import EVENT_IDS_ANNOTATION, FIRING_LABEL
from tests.unit.sensor_factory import event
from tests.unit.test_fanout_runner import (
    PREFIX,
    RUN,
    Harness,
    MemoryBucket,
    align_trigger,
    marker,
    parent,
    upload_run,
)

pytestmark = pytest.mark.timeout(60)

runner = CliRunner()
K1, K2, K3 = "a" * 32, "b" * 32, "c" * 32
BODY = {"run": "R42", "bucket": "lab-runs", "instrument": "NovaSeqX"}
E1 = event(
    source="sequencer", subject="run-complete", data={"header": {}, "body": BODY, "metadata": {}}, id="e1"
)
E2 = event(source="sequencer", subject="run-complete", data={"header": {}, "body": {"run": "R43"}}, id="e2")
WORKFLOW = "run-align-abcdefghij"


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the machine has, these tests see no in-cluster service account."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def workflow(name: str, key: str | None, event_ids: str = "e1") -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "argo"}
    if key is not None:
        metadata["labels"] = {FIRING_LABEL: key}
        metadata["annotations"] = {EVENT_IDS_ANNOTATION: event_ids}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": metadata, "spec": {}}


def record(key: str, trigger: str, result: str, finished: float, deps: dict[str, str]) -> FiringRecord:
    return FiringRecord(
        key=key,
        sensor="run-align",
        trigger=trigger,
        event_ids=list(deps.values()),
        dependencies=deps,
        status="succeeded",
        attempts=1 if trigger == "align-run" else 2,
        result=result,
        started_at=finished - 1,
        finished_at=finished,
    )


def seed(state: Path) -> str:
    """K1 created a Workflow (in the outbox) and K2 told a LIMS, both from e1; K3 failed on e2."""

    async def main() -> str:
        store = SqliteStore(state / "state.db")
        await store.start()
        try:
            created = f"created Workflow argo/{WORKFLOW} in the outbox"
            await store.record_firing(
                record(K1, "align-run", created, 1e9, {"run": "e1"}), events={"run": E1.to_dict()}
            )
            await store.record_firing(
                record(K2, "notify", "HTTP 200", 1e9 + 1, {"run": "e1"}), events={"run": E1.to_dict()}
            )
            await Outbox(state / "outbox").create(workflow(WORKFLOW, K1), "argo")
            return await store.dead_letter(
                DeadLetter(
                    key=K3,
                    sensor="run-align",
                    trigger="align-run",
                    reason="create Workflow argo/run-align-x: 403 Forbidden",
                    attempts=5,
                    events=[{"dependency": "run", **E2.to_dict()}],
                    created_at=1e9 + 2,
                )
            )
        finally:
            await store.close()

    state.mkdir(parents=True, exist_ok=True)
    return asyncio.run(main())


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    seed(state)
    yield state


def lineage(state: Path, *args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, ["lineage", *args, "--state-dir", str(state)], input=stdin)


def test_event_lists_every_firing_that_used_it_with_what_it_created(state: Path) -> None:
    shown = lineage(state, "event", "e1")
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "event e1: webhook from sequencer/run-complete" in out and '"run":"R42"' in out
    assert "firings that used it (2):" in out
    line = next(row for row in out.splitlines() if K1 in row)
    assert (
        "run-align/align-run" in line and "succeeded" in line and f"created Workflow argo/{WORKFLOW}" in line
    )
    assert "2001-09-09T01:46:40Z" in line  # finished, in UTC
    assert "run-align/notify" in out and K2 in out and "dead letters" not in out
    doc = orjson.loads(lineage(state, "event", "e1", "--json").output)
    assert [f["key"] for f in doc["firings"]] == [K1, K2]
    assert doc["event"] == E1.to_dict() and doc["dead_letters"] == []


def test_event_shows_the_dead_letters_holding_it(state: Path) -> None:
    shown = lineage(state, "event", "e2")
    assert shown.exit_code == 0, shown.output
    assert "dead letters holding it (1):" in shown.output and "403 Forbidden" in shown.output
    doc = orjson.loads(lineage(state, "event", "e2", "--json").output)
    (letter,) = doc["dead_letters"]
    assert letter["firing"] == K3 and doc["firings"][0]["status"] == "dead-lettered"


def test_an_unknown_event_says_where_else_to_look(state: Path) -> None:
    shown = lineage(state, "event", "nope")
    assert shown.exit_code == 1
    assert f"no firing used event nope in {state / 'state.db'}" in shown.output
    assert "waiting on the bus" in shown.output
    assert f"kubectl exec triggergate-N -- triggergate lineage event nope --state-dir {state}" in shown.output


def test_firing_shows_its_events_in_full_and_the_objects_it_created(state: Path) -> None:
    shown = lineage(state, "firing", K1)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert f"firing {K1}" in out and "sensor/trigger: run-align/align-run" in out
    outbox_file = state / "outbox" / "argo" / f"{WORKFLOW}.yaml"
    assert f"created:        Workflow argo/{WORKFLOW} (outbox file {outbox_file})" in out
    for line in ("  run", "    id:      e1", "    source:  sequencer", "    subject: run-complete"):
        assert line + "\n" in out
    assert '"instrument": "NovaSeqX"' in out  # the webhook body, whole
    assert "other firings that used these events (1):" in out and K2 in out
    doc = orjson.loads(lineage(state, "firing", K1, "--json").output)
    assert doc["firing"]["result"] == f"created Workflow argo/{WORKFLOW} in the outbox"
    assert doc["events"] == [
        {
            "dependency": "run",
            "id": "e1",
            "role": None,
            "event": E1.to_dict(),
            "size": len(E1.to_json()),
            "truncated": False,
        }
    ]
    assert doc["objects"] == [
        {"kind": "Workflow", "namespace": "argo", "name": WORKFLOW, "outbox": str(outbox_file)}
    ]
    assert [f["key"] for f in doc["related_firings"]] == [K2] and doc["dead_letter"] is None


def test_a_dead_lettered_firing_shows_its_letter(state: Path) -> None:
    shown = lineage(state, "firing", K3)
    assert shown.exit_code == 0, shown.output
    assert "status:         dead-lettered (5 attempts)" in shown.output
    assert "dead letter:" in shown.output and '"run": "R43"' in shown.output


def test_an_unknown_firing_says_which_replica_to_ask(state: Path) -> None:
    shown = lineage(state, "firing", "f" * 32)
    assert shown.exit_code == 1
    assert shown.output.strip() == (
        f"no firing with key {'f' * 32} in {state / 'state.db'}; lineage is kept in the state directory "
        "of the replica that fired: with several replicas, ask each (kubectl exec triggergate-N -- "
        f"triggergate lineage firing {'f' * 32} --state-dir {state})"
    )


def test_a_truncated_event_says_so(tmp_path: Path) -> None:
    big = event(data={"body": {"blob": "x" * 100_000}}, id="big")

    async def main() -> None:
        store = SqliteStore(tmp_path / "state.db")
        await store.start()
        await store.record_firing(
            record(K1, "align-run", "HTTP 200", 10.0, {"run": "big"}), events={"run": big.to_dict()}
        )
        await store.close()

    asyncio.run(main())
    shown = lineage(tmp_path, "firing", K1)
    assert shown.exit_code == 0, shown.output
    assert f"data (truncated: the event's JSON was {len(big.to_json())} bytes" in shown.output
    assert '{"body":{"blob":"xxxx' in shown.output


def test_object_by_name_is_read_from_the_outbox(state: Path) -> None:
    shown = lineage(state, "object", f"argo/{WORKFLOW}")
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert out.startswith(f"Workflow argo/{WORKFLOW} (from outbox file {state / 'outbox' / 'argo'}")
    assert f"{FIRING_LABEL}: {K1}" in out and f"{EVENT_IDS_ANNOTATION}: e1" in out
    assert f"firing {K1}" in out and '"instrument": "NovaSeqX"' in out
    doc = orjson.loads(lineage(state, "object", f"argo/{WORKFLOW}", "--json").output)
    assert doc["object"]["firing"] == K1 and doc["object"]["event_ids"] == ["e1"]
    assert doc["events"][0]["event"]["data"]["body"] == BODY


def test_object_from_a_file_or_stdin(state: Path, tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(workflow(WORKFLOW, K1)))
    shown = lineage(state, "object", "-f", str(path))
    assert shown.exit_code == 0, shown.output
    assert f"Workflow argo/{WORKFLOW} (from {path})" in shown.output and '"run": "R42"' in shown.output
    piped = lineage(state, "object", "-f", "-", "--json", stdin=orjson.dumps(workflow(WORKFLOW, K1)).decode())
    assert piped.exit_code == 0, piped.output
    assert orjson.loads(piped.output)["firing"]["key"] == K1


def test_a_list_answers_each_object_and_fails_for_an_unknown_firing(state: Path, tmp_path: Path) -> None:
    path = tmp_path / "wfs.yaml"
    items = [workflow(WORKFLOW, K1), workflow("run-align-gone", "d" * 32, "e7,e8")]
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    shown = lineage(state, "object", "-f", str(path))
    assert shown.exit_code == 1
    assert f"firing {K1}" in shown.output
    assert (
        f"Workflow argo/run-align-gone was created by firing {'d' * 32} (its events: e7, e8), but there is "
        f"no firing with key {'d' * 32} in {state / 'state.db'}; lineage is kept in the state directory"
    ) in shown.output
    docs = orjson.loads(lineage(state, "object", "-f", str(path), "--json").stdout)
    assert [d["object"]["name"] for d in docs] == [WORKFLOW, "run-align-gone"]
    assert "firing" in docs[0] and "firing" not in docs[1]


def test_object_errors_say_what_to_do(state: Path, tmp_path: Path) -> None:
    neither = lineage(state, "object")
    assert neither.exit_code == 2 and "give either NAMESPACE/NAME or -f FILE" in neither.output
    assert lineage(state, "object", "argo/x", "-f", "wf.yaml").exit_code == 2
    bare = lineage(state, "object", WORKFLOW)
    assert bare.exit_code == 1 and "give the object as NAMESPACE/NAME (e.g. argo/" in bare.output
    dots = lineage(state, "object", "argo/..")
    assert dots.exit_code == 1 and "'argo/..' is not a valid object name" in dots.output
    missing = lineage(state, "object", "argo/nope")
    assert missing.exit_code == 1
    assert f"Workflow argo/nope is not in the outbox {state / 'outbox'}" in missing.output
    assert "pass --kubeconfig or --kube-context" in missing.output
    assert "kubectl get workflow -n argo nope -o yaml" in missing.output
    no_config = lineage(state, "object", "argo/nope", "--kubeconfig", str(tmp_path / "none"))
    assert no_config.exit_code == 1 and "no such file" in no_config.output
    foreign = tmp_path / "foreign.yaml"
    foreign.write_text(yaml.safe_dump(workflow("by-hand", None)))
    unlabeled = lineage(state, "object", "-f", str(foreign))
    assert unlabeled.exit_code == 1
    assert f"has no {FIRING_LABEL} label: triggergate did not create it" in unlabeled.output
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert "no Kubernetes object in" in lineage(state, "object", "-f", str(empty)).output
    assert "no state store at" in lineage(tmp_path / "nowhere", "firing", K1).output


# -- fan-out: the marker event and the item are both dependencies of the item's firing ----------


def fan_out(tmp_path: Path) -> None:
    """The run of tests/unit/test_fanout_runner.py through the real FanOutRunner: NA12878 and
    NA12879 fired (Workflows in the outbox), NA12880 incomplete (reported as a dead letter)."""

    async def main() -> None:
        store = SqliteStore(tmp_path / "state.db")
        await store.start()
        try:
            async with httpx.AsyncClient() as http:
                outbox = tmp_path / "outbox"
                context = TriggerContext(
                    "seq", "default", SecretStore(tmp_path / "secrets"), http, kube=Outbox(outbox)
                )
                h = Harness(store, MemoryBucket(), outbox, context)
                upload_run(h.bucket)
                outcome = await h.runner(align_trigger()).run(parent(marker("m1")))
                assert outcome.status == "succeeded"
        finally:
            await store.close()

    asyncio.run(main())


def test_a_fan_out_item_shows_the_marker_and_the_sample_with_its_files(tmp_path: Path) -> None:
    fan_out(tmp_path)
    key = item_key("seq", "align", "seq", PREFIX, "NA12878")
    shown = lineage(tmp_path, "firing", key)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "  marker (fan-out marker)\n    id:      m1\n    source:  uploads" in out
    assert f'"key": "{PREFIX}CopyComplete.txt"' in out
    assert f"  sample (fan-out item: sample NA12878 of run {RUN})\n    id:      {key}" in out
    assert f"    files:   4 files under s3://seq/{PREFIX}\n" in out
    assert f"             {PREFIX}Data/NA12878_S1_L001_R1_001.fastq.gz\n" in out
    (made,) = [line for line in out.splitlines() if line.startswith("  created:")]
    assert "Workflow default/bwa-align-" in made and "outbox file" in made
    # the other firings of the marker event: the marker's own firing and the other sample
    assert (
        "other firings that used these events (" in out and f"run {RUN} (s3://seq/{PREFIX}): 2 fired" in out
    )
    doc = orjson.loads(lineage(tmp_path, "firing", key, "--json").output)
    assert [(e["dependency"], e["role"]) for e in doc["events"]] == [
        ("marker", "fan-out marker"),
        ("sample", "fan-out item"),
    ]
    assert doc["events"][1]["event"]["data"]["sample"] == "NA12878"


def test_the_marker_event_leads_to_every_sample_and_the_incomplete_report(tmp_path: Path) -> None:
    fan_out(tmp_path)
    doc = orjson.loads(lineage(tmp_path, "event", "m1", "--json").output)
    keys = {f["key"] for f in doc["firings"]}
    samples = {item_key("seq", "align", "seq", PREFIX, s) for s in ("NA12878", "NA12879")}
    assert samples <= keys and parent(marker("m1")).key in keys
    (letter,) = doc["dead_letters"]
    assert letter["firing"] == report_key(item_key("seq", "align", "seq", PREFIX, "NA12880"))
    assert "NA12880" in letter["reason"]
    objects = [f["result"] for f in doc["firings"] if f["key"] in samples]
    assert all(result.startswith("created Workflow default/bwa-align-") for result in objects)
    # and back: from the Workflow's file to the sample and the marker
    (path,) = [p for p in (tmp_path / "outbox").rglob("*.yaml") if "NA12878" in p.read_text()]
    shown = lineage(tmp_path, "object", "-f", str(path))
    assert shown.exit_code == 0, shown.output
    assert (
        "sample (fan-out item: sample NA12878" in shown.output and "marker (fan-out marker)" in shown.output
    )


def test_the_objects_of_a_firing_are_read_from_its_result(state: Path) -> None:
    outbox = state / "outbox"
    again = record(
        K1, "align-run", f"Workflow argo/{WORKFLOW} already exists (created by this firing before)", 1, {}
    )
    (made,) = objects_made(again, outbox)
    assert (made.kind, made.namespace, made.name, made.outbox) == (
        "Workflow",
        "argo",
        WORKFLOW,
        outbox / "argo" / f"{WORKFLOW}.yaml",
    )
    other = record(K2, "align-run", f"created Workflow argo/{WORKFLOW} in the outbox", 1, {})
    assert objects_made(other, outbox)[0].outbox is None  # the file's label names another firing
    namespace = record(K1, "ns", "created Namespace lab-x; labels phase=Active reached", 1, {})
    assert [str(m) for m in objects_made(namespace, outbox)] == ["Namespace lab-x"]
    failed = replace(other, status="dead-lettered", result="create Workflow argo/x: 403 Forbidden")
    assert objects_made(failed, outbox) == []
    assert objects_made(record(K1, "notify", "HTTP 200", 1, {}), outbox) == []
