"""FanOutRunner: a marker firing becomes one Workflow per complete sample, through the real firing
path (SQLite store, argoWorkflow executor writing to the outbox); runs are read from a bucket held
in memory (the S3 path itself is tested against the moto server in tests/integration/test_fanout.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.aws import AwsError
from gateway.fanout import FanOutRunner
from gateway.firing import FiringRunner
from gateway.outbox import Outbox, list_outbox
from gateway.replay import ReplayWorker
from gateway.secrets import SecretStore
from gateway.store import SqliteStore
from gateway.triggers import build_executor
from gateway.triggers.base import TriggerContext
from sensors.engine import Fire, idempotency_key
from sensors.event import Event
from sensors.fanout import FANOUT_SOURCE, RunLocation, item_key, report_key
from sensors.objects import deterministic_name
from sensors.spec import FanOut, Trigger

RUN = "250304_A01234_0042_BHXXYYDSXC"
PREFIX = f"runs/{RUN}/"
T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


@dataclass
class MemoryBucket:
    """A bucket in memory behind the fan-out's resolver interface; ``failures`` are raised first."""

    objects: dict[str, dict[str, bytes]] = field(default_factory=dict)
    failures: list[AwsError] = field(default_factory=list)
    calls: int = 0

    def put(self, bucket: str, key: str, body: bytes = b"") -> None:
        self.objects.setdefault(bucket, {})[key] = body

    async def resolve(self, spec: FanOut, location: RunLocation) -> tuple[list[str], str | None]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        objects = self.objects.get(location.bucket)
        if objects is None:
            raise AwsError(
                f"S3 ListObjectsV2 s3://{location.bucket}/{location.prefix}: NoSuchBucket: "
                "The specified bucket does not exist",
                retriable=False,
                code="NoSuchBucket",
            )
        keys = sorted(k for k in objects if k.startswith(location.prefix))
        if spec.manifest is None:
            return keys, None
        body = objects.get(location.prefix + spec.manifest)
        if body is None:
            raise AwsError("S3 GetObject: NoSuchKey", retriable=False, code="NoSuchKey")
        return keys, body.decode()

    async def preflight(self) -> list[str]:
        return []

    async def close(self) -> None:
        return None


def fastqs(sample: str, number: int, lanes: tuple[int, ...] = (1, 2)) -> list[str]:
    return [
        f"{PREFIX}Data/{sample}_S{number}_L{lane:03d}_R{read}_001.fastq.gz"
        for lane in lanes
        for read in (1, 2)
    ]


def align_trigger(fan_out: dict[str, Any] | None = None, **extra: Any) -> Trigger:
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "bwa-align-"},
        "spec": {
            "workflowTemplateRef": {"name": "bwa-align"},
            "arguments": {"parameters": [{"name": "sample"}, {"name": "fastq1"}, {"name": "fastq2"}]},
        },
    }
    params = [
        {"src": {"dependencyName": "sample", "dataKey": key}, "dest": f"spec.arguments.parameters.{i}.value"}
        for i, key in enumerate(("sample", "fastq1", "fastq2"))
    ]
    spec = fan_out or {"parser": "illumina", "onIncomplete": {"template": {"name": "notify-lab", "log": {}}}}
    return Trigger.model_validate(
        {
            "template": {
                "name": "align",
                "conditions": "marker",
                "fanOut": spec,
                "argoWorkflow": {
                    "operation": "submit",
                    "source": {"resource": workflow},
                    "parameters": params,
                },
            },
            **extra,
        }
    )


def marker(event_id: str = "m1", bucket: str = "seq") -> Event:
    data = {"bucket": bucket, "key": f"{PREFIX}CopyComplete.txt"}
    return Event(id=event_id, source="uploads", subject="run-files", type="s3", time=T0, data=data)


def parent(event: Event) -> Fire:
    events = {"marker": event}
    return Fire("seq", "align", events, idempotency_key("seq", "align", events))


@dataclass
class Harness:
    store: SqliteStore
    bucket: MemoryBucket
    outbox: Path
    context: TriggerContext

    def runner(self, trigger: Trigger, **options: Any) -> FanOutRunner:
        fan_out = trigger.template.fan_out
        assert fan_out is not None
        on_incomplete = None
        if fan_out.on_incomplete is not None:
            on_incomplete = FiringRunner(build_executor(fan_out.on_incomplete, self.context), self.store)
        dlq = None
        if trigger.dlq_trigger is not None:
            dlq = FiringRunner(build_executor(trigger.dlq_trigger, self.context), self.store)
        return FanOutRunner(
            build_executor(trigger, self.context),
            self.store,
            resolver=self.bucket,
            dlq=dlq,
            on_incomplete=on_incomplete,
            **options,
        )

    def workflows(self) -> dict[str, list[str]]:
        """sample -> [fastq1, fastq2] of every Workflow in the outbox."""
        out: dict[str, list[str]] = {}
        for entry in list_outbox(self.outbox):
            params = yaml.safe_load(entry.path.read_text())["spec"]["arguments"]["parameters"]
            assert params[0]["value"] not in out, f"two Workflows for {params[0]['value']}"
            out[params[0]["value"]] = [params[1]["value"], params[2]["value"]]
        return out


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    async with httpx.AsyncClient() as http:
        outbox = tmp_path / "outbox"
        context = TriggerContext(
            "seq", "default", SecretStore(tmp_path / "secrets"), http, kube=Outbox(outbox)
        )
        yield Harness(store, MemoryBucket(), outbox, context)
    await store.close()


def upload_run(bucket: MemoryBucket) -> None:
    """NA12878 and NA12879 complete; NA12880 lacks its lane-2 R2; Undetermined."""
    bucket.put("seq", f"{PREFIX}CopyComplete.txt")
    bucket.put("seq", f"{PREFIX}RunInfo.xml")
    for key in (
        fastqs("NA12878", 1) + fastqs("NA12879", 2) + fastqs("NA12880", 3)[:3] + fastqs("Undetermined", 0)
    ):
        bucket.put("seq", key)


def urls(sample: str, number: int, read: int) -> str:
    return " ".join(f"s3://seq/{k}" for k in fastqs(sample, number) if f"_R{read}_" in k)


async def test_one_workflow_per_complete_sample_and_a_report_for_the_incomplete_one(h: Harness) -> None:
    upload_run(h.bucket)
    runner = h.runner(align_trigger())
    fire = parent(marker())
    outcome = await runner.run(fire)
    assert outcome.status == "succeeded"
    assert outcome.result == (
        f"run {RUN} (s3://seq/{PREFIX}): 2 fired, 0 already done, 0 dead lettered, 1 incomplete (reported), "
        "skipped Undetermined"
    )
    assert h.workflows() == {
        "NA12878": [urls("NA12878", 1, 1), urls("NA12878", 1, 2)],
        "NA12879": [urls("NA12879", 2, 1), urls("NA12879", 2, 2)],
    }
    (letter,) = await h.store.list_dead_letters()
    incomplete_key = item_key("seq", "align", "seq", PREFIX, "NA12880")
    assert (letter.key, letter.trigger, letter.attempts) == (report_key(incomplete_key), "align", 0)
    assert letter.reason == f"sample NA12880 of run {RUN} is incomplete: lane 2 has R1 but no R2"
    events = {e["dependency"]: e for e in letter.events}
    assert events["marker"]["id"] == "m1" and events["marker"]["data"]["key"] == f"{PREFIX}CopyComplete.txt"
    assert events["sample"]["source"] == FANOUT_SOURCE and events["sample"]["data"]["missing"] == [
        "lane 2 R2"
    ]
    notified = await h.store.get_firing(item_key("seq", "notify-lab", "seq", PREFIX, "NA12880"))
    assert notified is not None and notified.status == "succeeded" and notified.trigger == "notify-lab"
    recorded = await h.store.get_firing(fire.key)
    assert recorded is not None and recorded.result == outcome.result and recorded.event_ids == ["m1"]
    item = await h.store.get_firing(item_key("seq", "align", "seq", PREFIX, "NA12878"))
    assert item is not None and item.event_ids == ["m1", item.key] and item.dependencies["sample"] == item.key
    assert runner.counts == {"fired": 2, "incomplete": 1, "skipped": 1}


async def test_redelivered_and_reuploaded_markers_launch_nothing_twice(h: Harness) -> None:
    upload_run(h.bucket)
    runner = h.runner(align_trigger())
    await runner.run(parent(marker("m1")))
    before = sorted(p.name for p in h.outbox.rglob("*.yaml"))
    again = await runner.run(parent(marker("m1")))
    assert again.status == "already-done" and h.bucket.calls == 1  # not even listed again
    reuploaded = await h.runner(align_trigger()).run(parent(marker("m2")))  # a new runner: as after a restart
    assert reuploaded.status == "succeeded"
    assert "0 fired, 2 already done, 0 dead lettered, 1 incomplete" in reuploaded.result
    assert sorted(p.name for p in h.outbox.rglob("*.yaml")) == before
    assert len(await h.store.list_dead_letters()) == 1  # the report is stored once
    notifications = [f for f in await h.store.list_firings() if f.trigger == "notify-lab"]
    assert len(notifications) == 1


async def test_replaying_the_report_launches_the_sample_once_its_files_are_there(h: Harness) -> None:
    upload_run(h.bucket)
    runner = h.runner(align_trigger())
    runners = {("seq", "align"): runner}
    await runner.run(parent(marker()))
    (letter,) = await h.store.list_dead_letters()
    # still incomplete: reported again (same key), nothing launched
    await h.store.request_replay(letter.id, 0.0)
    assert await ReplayWorker(h.store, runners).replay_pending() == 1
    request = await h.store.get_replay(letter.id)
    assert (
        request is not None
        and request.status == "dead-lettered"
        and "lane 2 has R1 but no R2" in request.outcome
    )
    (letter,) = await h.store.list_dead_letters()
    assert letter.key == report_key(item_key("seq", "align", "seq", PREFIX, "NA12880"))
    # the R2 arrives; the replay launches NA12880 under its item key
    h.bucket.put("seq", fastqs("NA12880", 3)[3])
    await h.store.request_replay(letter.id, 0.0)
    await ReplayWorker(h.store, runners).replay_pending()
    request = await h.store.get_replay(letter.id)
    assert request is not None and request.status == "succeeded", request
    assert h.workflows()["NA12880"] == [urls("NA12880", 3, 1), urls("NA12880", 3, 2)]
    assert await h.store.list_dead_letters() == []
    assert await h.store.firing_done(item_key("seq", "align", "seq", PREFIX, "NA12880"))
    # a later re-uploaded marker finds all three done
    result = await runner.run(parent(marker("m3")))
    assert "0 fired, 3 already done, 0 dead lettered, 0 incomplete" in result.result


async def test_a_missing_bucket_dead_letters_the_marker_and_a_replay_fans_out(h: Harness) -> None:
    runner = h.runner(align_trigger(), sleep=no_sleep)
    fire = parent(marker())
    outcome = await runner.run(fire)
    assert outcome.status == "dead-lettered" and h.bucket.calls == 1  # not retried: permanent
    (letter,) = await h.store.list_dead_letters()
    assert letter.key == fire.key and [e["dependency"] for e in letter.events] == ["marker"]
    assert letter.reason.startswith(f"fan-out: cannot resolve run s3://seq/{PREFIX}: S3 ListObjectsV2")
    assert "NoSuchBucket" in letter.reason
    assert (await runner.run(fire)).status == "already-done"  # a re-delivered marker waits for the replay
    upload_run(h.bucket)
    await h.store.request_replay(letter.id, 0.0)
    await ReplayWorker(h.store, {("seq", "align"): runner}).replay_pending()
    assert sorted(h.workflows()) == ["NA12878", "NA12879"]
    remaining = await h.store.list_dead_letters()
    assert [d.key for d in remaining] == [report_key(item_key("seq", "align", "seq", PREFIX, "NA12880"))]


async def no_sleep(_: float) -> None:
    return None


async def test_retriable_listing_errors_are_retried_with_the_retry_strategy(h: Harness) -> None:
    upload_run(h.bucket)
    slow = AwsError(
        "S3 ListObjectsV2: SlowDown: Please reduce your request rate", retriable=True, code="SlowDown"
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    trigger = align_trigger(retryStrategy={"steps": 3, "duration": "2s", "factor": 2})
    h.bucket.failures = [slow, slow]
    outcome = await h.runner(trigger, sleep=sleep).run(parent(marker()))
    assert (outcome.status, outcome.attempts, slept) == ("succeeded", 3, [2.0, 4.0])
    assert sorted(h.workflows()) == ["NA12878", "NA12879"]
    h.bucket.failures = [slow, slow, slow]
    failed = await h.runner(trigger, sleep=sleep).run(parent(marker("m2")))
    assert (failed.status, failed.attempts) == ("dead-lettered", 3)
    letters = {d.key: d for d in await h.store.list_dead_letters()}
    assert "SlowDown" in letters[parent(marker("m2")).key].reason


async def test_a_marker_without_a_bucket_and_a_missing_manifest_are_dead_lettered(h: Harness) -> None:
    runner = h.runner(align_trigger())
    odd = Event(id="w", source="uploads", subject="run-files", type="webhook", time=T0, data={"body": {}})
    outcome = await runner.run(parent(odd))
    assert outcome.status == "dead-lettered" and "has no string 'bucket' and 'key'" in outcome.result
    upload_run(h.bucket)
    manifest = h.runner(align_trigger({"parser": "illumina", "source": "manifest"}))
    outcome = await manifest.run(parent(marker()))
    assert outcome.status == "dead-lettered" and "NoSuchKey" in outcome.result
    assert runner.counts["marker-dead-lettered"] == 1


async def test_a_failing_item_is_dead_lettered_under_its_key_and_replayed_as_it_was(h: Harness) -> None:
    upload_run(h.bucket)
    blocked = item_key("seq", "align", "seq", PREFIX, "NA12879")
    # someone else's Workflow holds the name NA12879's firing derives: a permanent failure of that item
    path = h.outbox / "default" / f"{deterministic_name('bwa-align-', blocked)}.yaml"
    path.parent.mkdir(parents=True)
    labels = {"triggergate.io/firing": "someone-else"}
    foreign = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": path.stem, "labels": labels},
    }
    path.write_text(yaml.safe_dump(foreign))
    runner = h.runner(align_trigger(dlqTrigger={"template": {"name": "failed", "log": {}}}))
    outcome = await runner.run(parent(marker()))
    assert "1 fired, 0 already done, 1 dead lettered, 1 incomplete" in outcome.result
    letters = {d.key: d for d in await h.store.list_dead_letters()}
    letter = letters[blocked]
    assert letter.trigger == "align" and "already exists and was not created by this firing" in letter.reason
    assert {e["dependency"] for e in letter.events} == {"marker", "sample"}
    assert [f.trigger for f in await h.store.list_firings() if f.trigger == "failed"] == ["failed"]
    assert runner.counts["dead-lettered"] == 1
    path.unlink()
    await h.store.request_replay(letter.id, 0.0)
    await ReplayWorker(h.store, {("seq", "align"): runner}).replay_pending()
    request = await h.store.get_replay(letter.id)
    assert request is not None and request.status == "succeeded", request
    assert h.workflows()["NA12879"] == [urls("NA12879", 2, 1), urls("NA12879", 2, 2)]
    assert h.bucket.calls == 1  # an item's replay fires it as it was: no second listing


async def test_items_run_one_at_a_time_per_key_and_bounded_overall(h: Harness) -> None:
    for n in range(1, 13):
        for key in fastqs(f"S{n}", n):
            h.bucket.put("seq", key)
    runner = h.runner(align_trigger({"parser": "illumina"}), items_in_flight=3)
    executor = runner.executor
    running = 0
    most = 0
    original = executor.execute

    async def execute(fire: Fire) -> str:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.01)
            return await original(fire)
        finally:
            running -= 1

    executor.execute = execute  # type: ignore[method-assign]
    await asyncio.gather(runner.run(parent(marker("a"))), runner.run(parent(marker("b"))))
    # the two markers of one run at once: each sample fired by one, "already done" for the other
    assert (runner.counts["fired"], runner.counts["already-done"], len(h.workflows())) == (12, 12, 12)
    assert 2 <= most <= 3


async def test_a_replayed_report_whose_run_is_gone_is_reported_again(h: Harness) -> None:
    upload_run(h.bucket)
    runner = h.runner(align_trigger())
    runners = {("seq", "align"): runner}
    await runner.run(parent(marker()))
    (letter,) = await h.store.list_dead_letters()
    for key in fastqs("NA12880", 3):  # the lab deleted the sample's files
        h.bucket.objects["seq"].pop(key, None)
    await h.store.request_replay(letter.id, 0.0)
    await ReplayWorker(h.store, runners).replay_pending()
    (again,) = await h.store.list_dead_letters()
    assert again.key == letter.key
    assert (
        again.reason == f"sample NA12880 of run {RUN} is incomplete: no file of it is in the bucket any more"
    )
    # the bucket itself is gone: the report's replay is dead-lettered with the listing's reason
    del h.bucket.objects["seq"]
    await h.store.request_replay(again.id, 0.0)
    await ReplayWorker(h.store, runners).replay_pending()
    (last,) = await h.store.list_dead_letters()
    assert last.key == letter.key and "NoSuchBucket" in last.reason
