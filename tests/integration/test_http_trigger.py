"""The http trigger and the firing runner against a real HTTP receiver and a real state store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.firing import FiringRunner, backoff_delays
from gateway.secrets import SecretStore
from gateway.store import SqliteStore
from gateway.triggers import build_executor
from gateway.triggers.base import TriggerContext
from gateway.triggers.http import retry_after_seconds
from sensors.engine import Fire, idempotency_key
from sensors.spec import Backoff, Trigger
from tests.integration.receiver import Receiver
from tests.unit.sensor_factory import event

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver().start()
    yield rec
    rec.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    st = SqliteStore(tmp_path / "state.db")
    await st.start()
    yield st
    await st.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def make_trigger(url: str, **extra: Any) -> Trigger:
    http = {"url": url, "payload": [{"src": {"dependencyName": "d", "dataKey": "body.x"}, "dest": "x"}]}
    http.update(extra.pop("http", {}))
    return Trigger.model_validate({"template": {"name": "t", "http": http}, **extra})


def make_fire(data: Any = None) -> Fire:
    ev = event(data=data or {"body": {"x": "hello", "url": "/other"}})
    return Fire("s", "t", {"d": ev}, idempotency_key("s", "t", {"d": ev}))


def runner_for(
    trigger: Trigger,
    store: SqliteStore,
    client: httpx.AsyncClient,
    tmp_path: Path,
    sleeps: list[float] | None = None,
) -> FiringRunner:
    context = TriggerContext("s", "default", SecretStore(tmp_path / "secrets"), client)

    async def fake_sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return FiringRunner(build_executor(trigger, context), store, sleep=fake_sleep)


async def test_payload_headers_and_record(
    receiver: Receiver, store: SqliteStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    runner = runner_for(
        make_trigger(receiver.url + "/hook", http={"headers": {"X-Lab": "north"}}), store, client, tmp_path
    )
    fire = make_fire()
    outcome = await runner.run(fire)
    assert outcome.status == "succeeded" and outcome.attempts == 1
    (req,) = receiver.snapshot()
    assert req.method == "POST" and req.path == "/hook"
    assert req.json() == {"x": "hello"}
    assert req.headers["idempotency-key"] == fire.key
    assert req.headers["x-lab"] == "north"
    assert req.headers["content-type"] == "application/json"
    assert await store.firing_done(fire.key)
    # The same firing again (a replay): nothing is sent.
    again = await runner.run(fire)
    assert again.status == "already-done" and len(receiver.snapshot()) == 1


async def test_retries_with_backoff_then_succeeds(
    receiver: Receiver, store: SqliteStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    receiver.statuses.extend([503, 500])
    sleeps: list[float] = []
    trig = make_trigger(receiver.url, retryStrategy={"steps": 4, "duration": "1s", "factor": 2})
    outcome = await runner_for(trig, store, client, tmp_path, sleeps).run(make_fire())
    assert outcome.status == "succeeded" and outcome.attempts == 3
    assert sleeps == [1.0, 2.0]


async def test_non_retriable_status_goes_to_dead_letters(
    receiver: Receiver, store: SqliteStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    receiver.statuses.extend([404])
    trig = make_trigger(receiver.url, retryStrategy={"steps": 5, "duration": "10ms"})
    fire = make_fire()
    outcome = await runner_for(trig, store, client, tmp_path, []).run(fire)
    assert outcome.status == "dead-lettered" and outcome.attempts == 1
    assert "HTTP 404" in outcome.result
    letters = await store.list_dead_letters()
    assert len(letters) == 1 and letters[0].key == fire.key and letters[0].attempts == 1
    assert await store.firing_done(fire.key)


async def test_attempts_run_out(
    receiver: Receiver, store: SqliteStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    receiver.statuses.extend([500, 500, 500])
    trig = make_trigger(receiver.url, retryStrategy={"steps": 3, "duration": "10ms"})
    outcome = await runner_for(trig, store, client, tmp_path, []).run(make_fire())
    assert outcome.status == "dead-lettered" and outcome.attempts == 3
    assert len(receiver.snapshot()) == 3


async def test_no_retry_strategy_means_one_attempt(
    receiver: Receiver, store: SqliteStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    receiver.statuses.extend([500])
    outcome = await runner_for(make_trigger(receiver.url), store, client, tmp_path, []).run(make_fire())
    assert outcome.status == "dead-lettered" and outcome.attempts == 1


async def test_status_policy_allow_list(
    receiver: Receiver, store: SqliteStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    receiver.statuses.extend([202])
    trig = make_trigger(receiver.url, policy={"status": {"allow": [200]}})
    outcome = await runner_for(trig, store, client, tmp_path, []).run(make_fire())
    assert outcome.status == "dead-lettered" and "policy.status.allow" in outcome.result
    receiver.statuses.extend([404])
    trig = make_trigger(receiver.url, policy={"status": {"allow": [404]}})
    outcome = await runner_for(trig, store, client, tmp_path, []).run(make_fire())
    assert outcome.status == "succeeded"


async def test_connection_refused_is_retried(
    store: SqliteStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    from tests.integration.gatewayproc import free_port

    sleeps: list[float] = []
    trig = make_trigger(f"http://127.0.0.1:{free_port()}/", retryStrategy={"steps": 2, "duration": "5ms"})
    outcome = await runner_for(trig, store, client, tmp_path, sleeps).run(make_fire())
    assert outcome.status == "dead-lettered" and outcome.attempts == 2 and sleeps == [0.005]


async def test_template_and_resource_parameters(
    receiver: Receiver, store: SqliteStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # Template-level parameters rewrite the trigger template (here http.url := the receiver),
    # then resource-level parameters rewrite the HTTP spec (url := url + body.url).
    trig = make_trigger(
        receiver.url + "/wrong",
        http={
            "parameters": [
                {"src": {"dependencyName": "d", "dataKey": "body.url"}, "dest": "url", "operation": "append"}
            ]
        },
        parameters=[{"src": {"dependencyName": "d", "value": receiver.url}, "dest": "http.url"}],
    )
    outcome = await runner_for(trig, store, client, tmp_path, []).run(
        make_fire({"body": {"x": "v", "url": "/other"}})
    )
    assert outcome.status == "succeeded", outcome.result
    assert receiver.snapshot()[-1].path == "/other"


async def test_unusable_url_is_not_retried(
    store: SqliteStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    sleeps: list[float] = []
    trig = make_trigger("ftp://example.invalid/x", retryStrategy={"steps": 3, "duration": "5ms"})
    outcome = await runner_for(trig, store, client, tmp_path, sleeps).run(make_fire())
    assert outcome.status == "dead-lettered" and outcome.attempts == 1 and sleeps == []


def test_backoff_delays() -> None:
    assert backoff_delays(None) == []
    assert backoff_delays(Backoff(steps=3, duration="1s", factor=2)) == [1.0, 2.0]
    assert backoff_delays(Backoff(steps=0)) == [1.0] * 4  # steps 0 means 5 attempts
    jittered = backoff_delays(Backoff(steps=2, duration=1_000_000_000, jitter=0.5), rand=lambda: 1.0)
    assert jittered == [1.5]


def test_retry_after_parsing() -> None:
    from datetime import UTC, datetime

    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    now = datetime(2026, 11, 22, 0, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Sun, 22 Nov 2026 00:00:10 GMT", now) == 10.0


async def test_dlq_trigger_gets_the_events_after_attempts_run_out(
    receiver: Receiver, store: SqliteStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    receiver.statuses.extend([500, 500])
    trig = make_trigger(
        receiver.url + "/main",
        retryStrategy={"steps": 2, "duration": "1ms"},
        dlqTrigger={
            "template": {
                "name": "tell-the-lab",
                "http": {
                    "url": receiver.url + "/dlq",
                    "payload": [{"src": {"dependencyName": "d", "dataKey": "body.x"}, "dest": "failed"}],
                },
            }
        },
    )
    context = TriggerContext("s", "default", SecretStore(tmp_path / "secrets"), client)
    dlq = FiringRunner(build_executor(trig.dlq_trigger, context), store)  # type: ignore[arg-type]
    runner = FiringRunner(build_executor(trig, context), store, dlq=dlq)
    fire = make_fire()
    outcome = await runner.run(fire)
    assert outcome.status == "dead-lettered"
    paths = [r.path for r in receiver.snapshot()]
    assert paths == ["/main", "/main", "/dlq"]
    assert receiver.snapshot()[-1].json() == {"failed": "hello"}
    assert await store.firing_done(idempotency_key("s", "tell-the-lab", fire.events))


def test_dlq_trigger_cannot_nest() -> None:
    from pydantic import ValidationError

    inner = {"template": {"name": "x", "log": {}}}
    with pytest.raises(ValidationError, match="not recursive"):
        Trigger.model_validate(
            {"template": {"name": "t", "log": {}}, "dlqTrigger": {**inner, "dlqTrigger": inner}}
        )


async def test_rate_limit_spaces_requests() -> None:
    from gateway.ratelimit import RateLimiter
    from sensors.spec import RateLimit

    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(RateLimit(unit="Minute", requests_per_unit=120), clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await limiter.acquire()
    assert slept == [0.5, 0.5]
    unlimited = RateLimiter(None, clock=lambda: now[0], sleep=sleep)
    await unlimited.acquire()
    assert slept == [0.5, 0.5]
