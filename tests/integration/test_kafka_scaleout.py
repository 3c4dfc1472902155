"""Two ``triggergate run`` processes on one Kafka bus (tansu) share a stream of correlated events.

Each process runs the same Sensor (``r1 && r2`` correlated by sample, an http trigger to the
Receiver) and the same webhook EventSource on a port of its own, and both publish what their
webhook receives (active-active). The bus partitions each sensor's events by correlation key, so
one consumer holds each sample's state; a killed process's partitions move to the survivor, which
rebuilds their state from what was not acknowledged. Exactly once is judged by the firing's
idempotency key: the Receiver sees each ``Idempotency-Key`` header.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.k8s import KubeClient, find_cluster
from gateway.store import SqliteStore
from tests.brokers import Tansu, free_port, unique
from tests.fake_k8s import FakeKubeAPI
from tests.integration.gatewayproc import GatewayProcess
from tests.integration.kube_support import (
    ARGO,
    NAMESPACE,
    make_fire,
    make_runner,
    submit_trigger,
    workflow_template,
)
from tests.integration.receiver import Received, Receiver

pytestmark = pytest.mark.integration

READ = r"(?P<sample>[^/]+)_S\d+_L\d{3}_R%d_001\.fastq\.gz$"
REBALANCED = "bus partitions rebalanced"


@pytest.fixture(scope="module")
def kafka() -> Iterator[Tansu]:
    broker = Tansu().start()
    yield broker
    broker.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver().start()
    yield rec
    rec.stop()


def sensor(receiver_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "align"},
        "spec": {
            "dependencies": [
                {"name": "r1", "eventSourceName": "sequencer", "eventName": "fastq"},
                {"name": "r2", "eventSourceName": "sequencer", "eventName": "fastq"},
            ],
            "triggers": [
                {
                    "template": {
                        "name": "bwa",
                        "conditions": "r1 && r2",
                        "correlation": {
                            "window": "1h",
                            "dependencies": {
                                "r1": {"path": "body.key", "regex": READ % 1},
                                "r2": {"path": "body.key", "regex": READ % 2},
                            },
                        },
                        "http": {
                            "url": f"{receiver_url}/fired",
                            "payload": [
                                {"src": {"dependencyName": "r1", "dataKey": "body.sample"}, "dest": "sample"}
                            ],
                        },
                    },
                    "retryStrategy": {"steps": 5, "duration": "50ms"},
                }
            ],
        },
    }


def event_source(port: int) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "sequencer"},
        "spec": {"webhook": {"fastq": {"port": str(port), "endpoint": "/fastq", "method": "POST"}}},
    }


@dataclass
class Replica:
    """One gateway process: its webhook port, state directory and manifests."""

    name: str
    port: int
    state: Path
    manifests: list[Path]
    bus: str
    process: GatewayProcess | None = None

    def start(self) -> Replica:
        self.process = GatewayProcess(
            self.manifests, self.state, self.port, extra_args=["--bus", self.bus, "--shutdown-grace", "5"]
        ).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fastq"

    def logs(self) -> str:
        return self.process.logs() if self.process is not None else ""

    def fired(self) -> list[str]:
        """The idempotency keys of the firings this process carried out (from its JSON log)."""
        keys = []
        for line in self.logs().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "firing" in record and " succeeded: " in str(record.get("msg", "")):
                keys.append(record["firing"])
        return keys

    def rebalances(self) -> int:
        return self.logs().count(REBALANCED)


@dataclass
class Cluster:
    tmp: Path
    kafka: Tansu
    receiver: Receiver
    replicas: list[Replica] = field(default_factory=list)

    def __post_init__(self) -> None:
        topic, group = unique("events"), unique("gw")
        bus = (
            f"kafka://{self.kafka.bootstrap}/{topic}?consumerGroup={group}&partitions=4"
            # 3 s, not tansu's fastest 1 s: a replica whose loop stalls for a second on a loaded CI
            # machine must not be evicted (that is a rebalance the first test says does not happen).
            "&sessionTimeout=3s&heartbeatInterval=300ms"
        )
        common = self.tmp / "common"
        common.mkdir()
        (common / "sensor.yaml").write_text(yaml.safe_dump(sensor(self.receiver.url), sort_keys=False))
        for name in ("p1", "p2"):
            port = free_port()
            own = self.tmp / name
            own.mkdir()
            (own / "event-source.yaml").write_text(yaml.safe_dump(event_source(port), sort_keys=False))
            self.replicas.append(Replica(name, port, self.tmp / f"state-{name}", [common, own], bus))

    def stop(self) -> None:
        for replica in self.replicas:
            if replica.process is not None:
                replica.process.kill()


@pytest.fixture
def cluster(tmp_path: Path, kafka: Tansu, receiver: Receiver) -> Iterator[Cluster]:
    group = Cluster(tmp_path, kafka, receiver)
    yield group
    group.stop()


def fastq(sample: str, read: int) -> tuple[str, dict[str, str]]:
    """A CloudEvent id (the same id sent twice is one event) and the webhook body of one upload."""
    return f"{sample}-R{read}", {"key": f"run7/{sample}_S1_L001_R{read}_001.fastq.gz", "sample": sample}


class Sender:
    """Posts uploads to the replicas' webhooks; a refused or cut request goes to the next replica."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self.down: set[str] = set()
        self.client = httpx.Client(timeout=10.0)
        self.sent = 0

    def send(self, upload: tuple[str, dict[str, str]], prefer: int) -> None:
        ce_id, body = upload
        headers = {
            "ce-specversion": "1.0",
            "ce-id": ce_id,
            "ce-source": "novaseq-x/lh00123",
            "ce-type": "fastq.uploaded",
            "content-type": "application/json",
        }
        order = self.replicas[prefer % 2 :] + self.replicas[: prefer % 2]
        for _ in range(3):
            for replica in order:
                if replica.name in self.down:
                    continue
                try:
                    response = self.client.post(replica.url, json=body, headers=headers)
                except httpx.TransportError:
                    continue  # killed: the next replica gets it (the same ce-id, so the same event)
                if response.status_code == 200:
                    self.sent += 1
                    return
            time.sleep(0.2)
        raise AssertionError(f"no replica accepted {ce_id}")

    def close(self) -> None:
        self.client.close()


def wait_for(check: Callable[[], bool], what: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        time.sleep(0.05)


def samples_fired(received: list[Received]) -> set[str]:
    return {r.json()["sample"] for r in received}


def start_both(cluster: Cluster, sender: Sender) -> None:
    """p1 first, until it fires a warm-up sample (it holds every partition); then p2, until p1
    gave up its partitions to the rebalance that lets p2 in."""
    p1, p2 = cluster.replicas
    p1.start()
    sender.send(fastq("warmup", 1), 0)
    sender.send(fastq("warmup", 2), 0)
    wait_for(lambda: "warmup" in samples_fired(cluster.receiver.snapshot()), "the warm-up firing", 30)
    p2.start()
    wait_for(lambda: p1.rebalances() >= 1, "p1 to hand partitions to p2", 30)


def test_one_process_handles_every_event_of_a_key(cluster: Cluster) -> None:
    sender = Sender(cluster.replicas)
    try:
        start_both(cluster, sender)
        samples = [f"S{i:03d}" for i in range(40)]
        for i, sample in enumerate(samples):  # R1 to one webhook, R2 to the other
            sender.send(fastq(sample, 1), i)
            sender.send(fastq(sample, 2), i + 1)
        wait_for(lambda: samples_fired(cluster.receiver.snapshot()) >= set(samples), "every sample", 30)
        time.sleep(0.5)  # room for a firing that should not happen
    finally:
        sender.close()
    received = [r for r in cluster.receiver.snapshot() if r.json()["sample"] != "warmup"]
    keys = Counter(r.headers["idempotency-key"] for r in received)
    assert len(received) == len(samples) and len(keys) == len(samples), keys  # once each
    p1, p2 = (Counter(replica.fired()) for replica in cluster.replicas)
    assert not set(p1) & set(p2), "a sample fired in both processes"
    assert set(keys) <= set(p1) | set(p2)
    # Both processes took part: the 40 keys spread over the 4 partitions, 2 per process.
    mine = [sum(1 for key in keys if key in fired) for fired in (p1, p2)]
    assert all(count > 0 for count in mine), mine
    print(f"firings per process: {mine}")


def test_killing_a_process_mid_stream_loses_nothing_and_fires_each_sample_once(cluster: Cluster) -> None:
    total = 200
    samples = [f"S{i:03d}" for i in range(total)]
    sender = Sender(cluster.replicas)
    killed = threading.Event()
    failure: list[BaseException] = []

    def stream(batch: range) -> None:
        # Interleaved: R1 of sample i, then R2 of sample i-3, alternating webhooks; every 10th R1
        # is delivered twice, to both webhooks (a sender's retry).
        for i in batch:
            sender.send(fastq(samples[i], 1), i)
            if i % 10 == 0:
                sender.send(fastq(samples[i], 1), i + 1)
            if i >= 3:
                sender.send(fastq(samples[i - 3], 2), i + 1)

    def producer() -> None:
        try:
            stream(range(0, total // 2))
            killed.wait(30)
            stream(range(total // 2, total))
            for i in range(total - 3, total):
                sender.send(fastq(samples[i], 2), i)
        except BaseException as exc:  # reported by the test
            failure.append(exc)

    started = time.monotonic()
    try:
        start_both(cluster, sender)
        thread = threading.Thread(target=producer, name="uploads")
        thread.start()
        try:

            def a_third() -> bool:
                return (
                    bool(failure)
                    or len(samples_fired(cluster.receiver.snapshot()) - {"warmup"}) >= total // 3
                )

            wait_for(a_third, "a third of the samples to fire", 30)
            # kill -9 the process that has carried out more of the work so far
            victim = max(cluster.replicas, key=lambda r: len(r.fired()))
            survivor = next(r for r in cluster.replicas if r is not victim)
            sender.down.add(victim.name)
            assert victim.process is not None
            victim.process.kill()
            time.sleep(0.2)  # a request the victim finished sending is recorded by now
            fired_by_victim = len(victim.fired())
            at_kill = len(cluster.receiver.snapshot())
        finally:
            killed.set()
            thread.join(60)
        if failure:
            raise AssertionError(f"sending failed: {failure[0]!r}") from failure[0]
        wait_for(
            lambda: samples_fired(cluster.receiver.snapshot()) >= set(samples),
            "every sample to fire on the survivor",
            40,
        )
        time.sleep(1.0)  # room for a repeat that should not happen
        assert survivor.rebalances() >= 1, survivor.logs()[-3000:]  # it took over the victim's partitions
        # The killed process comes back on the same state directory: it takes partitions back,
        # and everything on them is acknowledged, so nothing fires again.
        settled = len(cluster.receiver.snapshot())
        handovers = survivor.rebalances()
        victim.start()
        wait_for(lambda: survivor.rebalances() > handovers, "the survivor to hand partitions back", 30)
        time.sleep(1.5)
        assert len(cluster.receiver.snapshot()) == settled
        for replica in cluster.replicas:
            assert replica.process is not None and replica.process.terminate() == 0, replica.logs()[-3000:]
    finally:
        sender.close()
    elapsed = time.monotonic() - started

    received = [r for r in cluster.receiver.snapshot() if r.json()["sample"] != "warmup"]
    sample_of: dict[str, set[str]] = {}
    for r in received:
        sample_of.setdefault(r.headers["idempotency-key"], set()).add(r.json()["sample"])
    assert all(len(s) == 1 for s in sample_of.values()), "one key fired for two samples"
    assert {next(iter(s)) for s in sample_of.values()} == set(samples)  # every sample, none lost
    assert len(sample_of) == total  # one firing (one idempotency key) per sample
    # A key seen twice is a firing the killed process had carried out (or had in flight) without
    # its events acknowledged on the bus: the survivor replayed them. Never twice on one side.
    index = {id(r): i for i, r in enumerate(cluster.receiver.snapshot())}
    before = Counter(r.headers["idempotency-key"] for r in received if index[id(r)] < at_kill)
    after = Counter(r.headers["idempotency-key"] for r in received if index[id(r)] >= at_kill)
    assert max(before.values()) == 1 and max(after.values()) == 1
    repeated = set(before) & set(after)
    assert len(repeated) <= fired_by_victim + 10
    print(
        f"{total} samples, {sender.sent} uploads accepted; fired before the kill: {len(before)} "
        f"({fired_by_victim} by the killed process); repeated after it (same key): {len(repeated)}; "
        f"{elapsed:.1f} s"
    )


async def test_two_replicas_running_the_same_workflow_firing_at_once_create_one_workflow(
    tmp_path: Path,
) -> None:
    """A rebalance can leave a firing in flight in one replica while another replays it: each has its
    own firing store, so both call the API; the Workflow's name comes from the idempotency key, and
    the second create's 409 finds the first one's Workflow (same firing label): one run, two successes."""
    with FakeKubeAPI().start() as k8s:
        k8s.put(workflow_template())
        cluster = find_cluster(k8s.write_kubeconfig(tmp_path / "kubeconfig"))
        assert cluster is not None
        fire = make_fire({"run": "R42", "bucket": "lab-runs"})
        stores = [SqliteStore(tmp_path / f"state-{name}.db") for name in ("p1", "p2")]
        kubes = [KubeClient(cluster, request_timeout=5.0) for _ in stores]
        async with httpx.AsyncClient() as http:
            try:
                for store in stores:
                    await store.start()
                runners = [
                    make_runner(submit_trigger(), kube, store, http, tmp_path)
                    for kube, store in zip(kubes, stores, strict=True)
                ]
                outcomes = await asyncio.gather(*(runner.run(fire) for runner in runners))
            finally:
                for kube in kubes:
                    await kube.close()
                for store in stores:
                    await store.close()
        assert [o.status for o in outcomes] == ["succeeded", "succeeded"], outcomes
        assert sum("already exists (created by this firing before)" in o.result for o in outcomes) == 1
        assert len(k8s.objects(*ARGO, "workflows", NAMESPACE)) == 1
