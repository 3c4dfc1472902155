"""The webhook source end to end: real uvicorn servers on loopback, real HTTP, the SQLite bus."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import ssl
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.bus.memory import MemoryBus
from gateway.bus.sqlite import SqliteBus
from gateway.errors import BusError, ConfigError
from gateway.secrets import SecretStore
from gateway.sources import build_sources
from gateway.sources.base import Publisher
from gateway.sources.webhook import MASKED_AUTHORIZATION, WebhookServer
from sensors.event import Event, deterministic_event_id
from sensors.spec import EventSource

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HOST = "127.0.0.1"
AUTH_SECRET = {"name": "webhook-auth", "key": "token"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def event_source(name: str, webhook: dict[str, dict[str, Any]]) -> EventSource:
    return EventSource.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": name},
            "spec": {"webhook": webhook},
        }
    )


@asynccontextmanager
async def serving(
    event_sources: Sequence[EventSource], publisher: Publisher, secrets: SecretStore | None = None
) -> AsyncIterator[list[WebhookServer]]:
    sources = build_sources(event_sources, publisher, secrets, host=HOST, graceful_timeout=10)
    servers = [s for s in sources if isinstance(s, WebhookServer)]
    assert len(servers) == len(sources)
    started: list[WebhookServer] = []
    try:
        for server in servers:
            await server.start()
            started.append(server)
        yield servers
    finally:
        for server in started:
            await server.stop()


async def stored_events(bus: SqliteBus, expect: int) -> list[Event]:
    """Everything on the bus, read by a fresh group; checks that exactly ``expect`` are there."""
    stats = await bus.stats()
    assert stats["events"] == expect
    if expect == 0:
        return []
    iterator = bus.subscribe(f"test-{uuid.uuid4().hex}").__aiter__()
    events: list[Event] = []
    try:
        while len(events) < expect:
            batch = await asyncio.wait_for(iterator.__anext__(), 5)
            events.extend(delivery.event for delivery in batch)
    finally:
        await iterator.aclose()  # type: ignore[attr-defined]
    return events


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[SqliteBus]:
    the_bus = SqliteBus(tmp_path / "bus.db")
    await the_bus.start()
    yield the_bus
    await the_bus.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def secrets(tmp_path: Path) -> SecretStore:
    (tmp_path / "secrets" / "webhook-auth").mkdir(parents=True)
    (tmp_path / "secrets" / "webhook-auth" / "token").write_text("s3cr3t-token\n")
    return SecretStore(tmp_path / "secrets")


class FailingBus(SqliteBus):
    """A real bus whose publish fails as a full disk would make it fail."""

    async def publish(self, events: Sequence[Event]) -> list[bool]:
        raise BusError("database or disk is full")


class UnhealthyBus(SqliteBus):
    async def healthy(self) -> bool:
        return False


class GatedBus(SqliteBus):
    """Publishes only once ``release`` is set; ``entered`` says a publish is waiting."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def publish(self, events: Sequence[Event]) -> list[bool]:
        self.entered.set()
        await self.release.wait()
        return await super().publish(events)


# --------------------------------------------------------------------------- bodies


async def test_get_puts_the_query_as_arrays_into_the_body(
    bus: SqliteBus, client: httpx.AsyncClient, port: int
) -> None:
    es = event_source("github", {"ping": {"endpoint": "/ping", "port": str(port), "method": "GET"}})
    async with serving([es], bus):
        first = await client.get(f"http://{HOST}:{port}/ping?x=1&x=2&name=b%20b")
        second = await client.get(f"http://{HOST}:{port}/ping")
    assert (first.status_code, first.text) == (200, "success")
    assert (second.status_code, second.text) == (200, "success")
    events = await stored_events(bus, 2)
    assert [e.data["body"] for e in events] == [{"x": ["1", "2"], "name": ["b b"]}, {}]
    for event in events:
        assert (event.source, event.subject, event.type) == ("github", "ping", "webhook")
        assert len(event.id) == 32
        assert "metadata" not in event.data


async def test_json_post_is_recorded_with_canonical_headers_and_metadata(
    bus: SqliteBus, client: httpx.AsyncClient, port: int
) -> None:
    es = event_source(
        "s3-uploads",
        {"upload": {"endpoint": "/upload", "port": str(port), "metadata": {"team": "genomics"}}},
    )
    body = {"bucket": "reads", "key": "S1/R1.fastq.gz", "size": 12, "tags": ["a", None, 1.5]}
    async with serving([es], bus):
        response = await client.post(
            f"http://{HOST}:{port}/upload", content=orjson.dumps(body),
            headers={"Content-Type": "application/json", "x-request-id": "r-1", "X-MULTI": "a"},
        )
    assert (response.status_code, response.text) == (200, "success")
    [event] = await stored_events(bus, 1)
    assert event.data["body"] == body
    assert event.data["metadata"] == {"team": "genomics"}
    header = event.data["header"]
    assert header["Content-Type"] == ["application/json"]
    assert header["X-Request-Id"] == ["r-1"]
    assert header["X-Multi"] == ["a"]
    assert header["Content-Length"] == [str(len(orjson.dumps(body)))]
    assert "Host" not in header
    assert (event.source, event.subject, event.type, event.datacontenttype) == (
        "s3-uploads", "upload", "webhook", "application/json",
    )


async def test_form_post_becomes_arrays(bus: SqliteBus, client: httpx.AsyncClient, port: int) -> None:
    es = event_source("forms", {"submit": {"endpoint": "/submit", "port": str(port)}})
    async with serving([es], bus):
        response = await client.post(
            f"http://{HOST}:{port}/submit", content=b"a=1&a=2&b=x%20y",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200
    [event] = await stored_events(bus, 1)
    assert event.data["body"] == {"a": ["1", "2"], "b": ["x y"]}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "request body is not valid JSON: "),
        (b"", "request body is empty"),
    ],
)
async def test_bad_bodies_are_400_and_record_nothing(
    bus: SqliteBus, client: httpx.AsyncClient, port: int, content: bytes, reason: str
) -> None:
    es = event_source("es", {"hook": {"endpoint": "/hook", "port": str(port)}})
    async with serving([es], bus):
        response = await client.post(
            f"http://{HOST}:{port}/hook", content=content, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert response.text.startswith(reason)
    await stored_events(bus, 0)


async def test_bodies_over_max_payload_size_are_413_by_content_length_and_while_streaming(
    bus: SqliteBus, client: httpx.AsyncClient, port: int
) -> None:
    es = event_source("es", {"hook": {"endpoint": "/hook", "port": str(port), "maxPayloadSize": 100}})
    url = f"http://{HOST}:{port}/hook"
    big = orjson.dumps({"pad": "x" * 200})

    async def chunks() -> AsyncIterator[bytes]:
        # no Content-Length: chunked transfer, the limit is only visible while reading
        for _ in range(4):
            yield b" " * 40
        yield b"{}"

    async with serving([es], bus):
        by_length = await client.post(url, content=big, headers={"Content-Type": "application/json"})
        streamed = await client.post(url, content=chunks(), headers={"Content-Type": "application/json"})
        assert "content-length" not in {k.lower() for k in streamed.request.headers}
        at_limit = await client.post(url, content=b" " * 98 + b"{}")
    for response in (by_length, streamed):
        assert response.status_code == 413
        assert "100 bytes" in response.text
    assert at_limit.status_code == 200
    await stored_events(bus, 1)


# --------------------------------------------------------------------------- auth


async def test_auth_secret_requires_the_bearer_token_and_the_stored_header_is_masked(
    bus: SqliteBus, client: httpx.AsyncClient, port: int, secrets: SecretStore
) -> None:
    es = event_source(
        "secured",
        {"hook": {"endpoint": "/hook", "port": str(port), "authSecret": AUTH_SECRET}},
    )
    url = f"http://{HOST}:{port}/hook"
    async with serving([es], bus, secrets):
        missing = await client.post(url, json={"a": 1})
        basic = await client.post(url, json={"a": 1}, headers={"Authorization": "Basic czNjcjN0LXRva2Vu"})
        wrong = await client.post(url, json={"a": 1}, headers={"Authorization": "Bearer nope"})
        right = await client.post(url, json={"a": 1}, headers={"Authorization": "Bearer s3cr3t-token"})
    for response in (missing, basic):
        assert (response.status_code, response.text) == (401, "Invalid Authorization Header")
        assert response.headers["www-authenticate"] == "Bearer"
    assert (wrong.status_code, wrong.text) == (401, "Invalid Auth token")
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert (right.status_code, right.text) == (200, "success")
    [event] = await stored_events(bus, 1)
    assert event.data["header"]["Authorization"] == [MASKED_AUTHORIZATION]
    assert b"s3cr3t-token" not in event.to_json()


async def test_authorization_is_masked_without_auth_secret_too(
    bus: SqliteBus, client: httpx.AsyncClient, port: int
) -> None:
    es = event_source("open", {"hook": {"endpoint": "/hook", "port": str(port)}})
    async with serving([es], bus):
        response = await client.post(
            f"http://{HOST}:{port}/hook", json={}, headers={"Authorization": "Bearer personal-token"}
        )
    assert response.status_code == 200
    [event] = await stored_events(bus, 1)
    assert event.data["header"]["Authorization"] == [MASKED_AUTHORIZATION]
    assert b"personal-token" not in event.to_json()


async def test_a_missing_auth_secret_file_fails_start(bus: SqliteBus, port: int, tmp_path: Path) -> None:
    es = event_source(
        "secured",
        {"hook": {"endpoint": "/hook", "port": str(port), "authSecret": {"name": "absent", "key": "token"}}},
    )
    [server] = build_sources([es], bus, SecretStore(tmp_path / "secrets"), host=HOST)
    with pytest.raises(ConfigError, match="secret 'absent' key 'token' not found"):
        await server.start()
    await server.stop()


async def test_wrong_method_is_405_with_allow_but_a_secured_path_wants_the_token_first(
    bus: SqliteBus, client: httpx.AsyncClient, port: int, secrets: SecretStore
) -> None:
    auth = {"authSecret": AUTH_SECRET}
    es = event_source(
        "es",
        {
            "open": {"endpoint": "/open", "port": str(port)},
            "secured": {"endpoint": "/secured", "port": str(port), "method": "PUT", **auth},
        },
    )
    async with serving([es], bus, secrets):
        open_get = await client.get(f"http://{HOST}:{port}/open")
        secured_anonymous = await client.post(f"http://{HOST}:{port}/secured", json={})
        secured_get = await client.get(
            f"http://{HOST}:{port}/secured", headers={"Authorization": "Bearer s3cr3t-token"}
        )
    assert open_get.status_code == 405
    assert open_get.headers["allow"] == "POST"
    assert open_get.text == "method GET is not allowed on /open; allowed: POST"
    # the methods of a secured endpoint are not told to callers without the token
    assert (secured_anonymous.status_code, secured_anonymous.text) == (401, "Invalid Authorization Header")
    assert secured_get.status_code == 405
    assert secured_get.headers["allow"] == "PUT"
    await stored_events(bus, 0)


# --------------------------------------------------------------------------- routing and health


async def test_unknown_path_is_404_and_health_answers_on_every_port(
    bus: SqliteBus, client: httpx.AsyncClient
) -> None:
    first, second = free_port(), free_port()
    one = event_source("one", {"a": {"endpoint": "/a", "port": str(first)}})
    two = event_source("two", {"b": {"endpoint": "/b", "port": str(second)}})
    async with serving([one, two], bus):
        unknown = await client.post(f"http://{HOST}:{first}/b", json={})
        slash = await client.post(f"http://{HOST}:{first}/a/", json={})
        health = [await client.get(f"http://{HOST}:{p}/health") for p in (first, second)]
    assert unknown.status_code == 404
    assert slash.status_code == 404  # no redirect: Argo's mux does not add slashes either
    assert [(h.status_code, h.text) for h in health] == [(200, "OK"), (200, "OK")]
    await stored_events(bus, 0)


async def test_health_is_503_when_the_bus_is_unhealthy(
    tmp_path: Path, client: httpx.AsyncClient, port: int
) -> None:
    bus = UnhealthyBus(tmp_path / "bus.db")
    await bus.start()
    try:
        es = event_source("es", {"a": {"endpoint": "/a", "port": str(port)}})
        async with serving([es], bus):
            response = await client.get(f"http://{HOST}:{port}/health")
        assert response.status_code == 503
    finally:
        await bus.close()


async def test_events_share_a_port_across_event_sources_and_use_several_ports(
    bus: SqliteBus, client: httpx.AsyncClient
) -> None:
    shared, other = free_port(), free_port()
    first = event_source(
        "first",
        {
            "r1": {"endpoint": "/r1", "port": str(shared)},
            "r1-get": {"endpoint": "/r1", "port": str(shared), "method": "GET"},
            "elsewhere": {"endpoint": "/x", "port": str(other)},
        },
    )
    second = event_source("second", {"r2": {"endpoint": "/r2", "port": str(shared)}})
    async with serving([first, second], bus) as servers:
        assert sorted(s.port for s in servers) == sorted([shared, other])
        responses = [
            await client.post(f"http://{HOST}:{shared}/r1", json={"n": 1}),
            await client.get(f"http://{HOST}:{shared}/r1?n=2"),
            await client.post(f"http://{HOST}:{shared}/r2", json={"n": 3}),
            await client.post(f"http://{HOST}:{other}/x", json={"n": 4}),
        ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200]
    events = await stored_events(bus, 4)
    assert [(e.source, e.subject, e.data["body"]) for e in events] == [
        ("first", "r1", {"n": 1}),
        ("first", "r1-get", {"n": ["2"]}),
        ("second", "r2", {"n": 3}),
        ("first", "elsewhere", {"n": 4}),
    ]


async def test_a_port_in_use_is_a_config_error_naming_it(bus: SqliteBus) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        es = event_source("es", {"a": {"endpoint": "/a", "port": str(port)}})
        [server] = build_sources([es], bus, None, host=HOST)
        with pytest.raises(ConfigError, match=f"cannot listen on {HOST}:{port}"):
            await server.start()
        await server.stop()


# --------------------------------------------------------------------------- CloudEvents


async def test_binary_cloudevent_is_deduplicated_by_source_and_id(
    bus: SqliteBus, client: httpx.AsyncClient, port: int
) -> None:
    es = event_source("ce", {"in": {"endpoint": "/in", "port": str(port)}})
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "evt-42",
        "ce-source": "/sequencer/run%201",
        "ce-type": "org.lab.run.finished",
        "ce-lab": "north",
        "Content-Type": "application/json",
    }
    async with serving([es], bus):
        responses = [await client.post(f"http://{HOST}:{port}/in", json={"run": 1}, headers=headers)
                     for _ in range(2)]
    assert [(r.status_code, r.text) for r in responses] == [(200, "success"), (200, "success")]
    [event] = await stored_events(bus, 1)
    assert event.id == deterministic_event_id("webhook", "ce", "in", "/sequencer/run 1", "evt-42")
    assert (event.source, event.subject, event.type) == ("ce", "in", "webhook")
    assert event.extensions == {
        "lab": "north", "ceid": "evt-42", "cesource": "/sequencer/run 1", "cetype": "org.lab.run.finished",
    }
    assert event.data["body"] == {"run": 1}
    assert event.data["header"]["Ce-Id"] == ["evt-42"]


async def test_structured_cloudevent_twice_is_stored_once_and_a_batch_is_many(
    bus: SqliteBus, client: httpx.AsyncClient, port: int
) -> None:
    es = event_source("ce", {"in": {"endpoint": "/in", "port": str(port)}})
    url = f"http://{HOST}:{port}/in"
    one = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": {"n": 1}}
    two = {"specversion": "1.0", "id": "2", "source": "/s", "type": "t", "data": {"n": 2}}
    structured = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
    batch = {"Content-Type": "application/cloudevents-batch+json"}
    async with serving([es], bus):
        first = await client.post(url, content=orjson.dumps(one), headers=structured)
        retry = await client.post(url, content=orjson.dumps(one), headers=structured)
        batched = await client.post(url, content=orjson.dumps([one, two]), headers=batch)
        empty_batch = await client.post(url, content=b"[]", headers=batch)
    assert [r.status_code for r in (first, retry, batched, empty_batch)] == [200, 200, 200, 200]
    events = await stored_events(bus, 2)  # "1" once (the batch repeats it), "2" once
    assert [e.extensions["ceid"] for e in events] == ["1", "2"]
    assert [e.data["body"] for e in events] == [one, two]
    assert events[0].id == deterministic_event_id("webhook", "ce", "in", "/s", "1")


async def test_invalid_cloudevents_are_400_naming_the_attribute(
    bus: SqliteBus, client: httpx.AsyncClient, port: int
) -> None:
    es = event_source("ce", {"in": {"endpoint": "/in", "port": str(port)}})
    url = f"http://{HOST}:{port}/in"
    async with serving([es], bus):
        structured = await client.post(
            url, content=orjson.dumps({"specversion": "1.0", "source": "/s", "type": "t"}),
            headers={"Content-Type": "application/cloudevents+json"},
        )
        binary = await client.post(url, json={}, headers={"ce-specversion": "1.0", "ce-id": "1"})
    assert structured.status_code == 400
    assert structured.text == "structured CloudEvent is missing the required attribute 'id'"
    assert binary.status_code == 400
    assert "missing the header ce-source, ce-type" in binary.text
    await stored_events(bus, 0)


# --------------------------------------------------------------------------- bus failures, shutdown


async def test_a_failing_bus_is_503_with_retry_after(
    tmp_path: Path, client: httpx.AsyncClient, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    bus = FailingBus(tmp_path / "bus.db")
    await bus.start()
    try:
        es = event_source("es", {"a": {"endpoint": "/a", "port": str(port)}})
        async with serving([es], bus):
            response = await client.post(
                f"http://{HOST}:{port}/a", json={"a": 1}, headers={"Authorization": "Bearer hidden-value"}
            )
    finally:
        await bus.close()
    assert (response.status_code, response.text) == (503, "failed to record event")
    assert response.headers["retry-after"] == "1"
    warnings = [r for r in caplog.records if r.name == "triggergate.webhook" and r.levelname == "WARNING"]
    assert warnings and "database or disk is full" in warnings[0].getMessage()
    assert all("hidden-value" not in r.getMessage() for r in caplog.records)


async def test_stop_refuses_new_connections_and_finishes_the_request_in_flight(
    tmp_path: Path, client: httpx.AsyncClient, port: int
) -> None:
    bus = GatedBus(tmp_path / "bus.db")
    await bus.start()
    try:
        es = event_source("es", {"a": {"endpoint": "/a", "port": str(port)}})
        [server] = build_sources([es], bus, None, host=HOST, graceful_timeout=10)
        await server.start()
        in_flight = asyncio.create_task(client.post(f"http://{HOST}:{port}/a", json={"n": 1}))
        await asyncio.wait_for(bus.entered.wait(), 5)
        assert isinstance(server, WebhookServer)
        assert server.accepting
        stopping = asyncio.create_task(server.stop())
        for _ in range(200):
            if not server.accepting:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the listener is still open 4 s after stop() began")
        # the listener is closed: a new connection is refused, the request in flight goes on
        async with httpx.AsyncClient(timeout=2) as fresh:
            with pytest.raises(httpx.ConnectError):
                await fresh.get(f"http://{HOST}:{port}/health")
        assert not stopping.done()
        assert not in_flight.done()
        bus.release.set()
        response = await asyncio.wait_for(in_flight, 5)
        await asyncio.wait_for(stopping, 5)
        assert (response.status_code, response.text) == (200, "success")
        [event] = await stored_events(bus, 1)
        assert event.data["body"] == {"n": 1}
    finally:
        bus.release.set()
        await bus.close()


async def test_servers_leave_signal_handling_to_the_runtime(
    bus: SqliteBus, client: httpx.AsyncClient
) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    ports = [free_port(), free_port()]
    sources = [event_source(f"es{i}", {"a": {"endpoint": "/a", "port": str(p)}}) for i, p in enumerate(ports)]
    async with serving(sources, bus):
        for p in ports:
            assert (await client.get(f"http://{HOST}:{p}/health")).status_code == 200
        assert {sig: signal.getsignal(sig) for sig in before} == before
    assert {sig: signal.getsignal(sig) for sig in before} == before


async def test_keep_alive_responses_are_not_held_back_by_nagle(port: int) -> None:
    """Accepted connections must have TCP_NODELAY: without it every response waits ~40 ms."""
    bus = MemoryBus()
    await bus.start()
    es = event_source("es", {"a": {"endpoint": "/a", "port": str(port)}})
    durations: list[float] = []
    try:
        async with serving([es], bus), httpx.AsyncClient(timeout=5) as one_connection:
            for n in range(21):
                started = time.perf_counter()
                response = await one_connection.post(f"http://{HOST}:{port}/a", json={"n": n})
                durations.append(time.perf_counter() - started)
                assert response.status_code == 200
    finally:
        await bus.close()
    assert statistics.median(durations) < 0.03, f"median {statistics.median(durations) * 1000:.1f} ms"


# --------------------------------------------------------------------------- TLS


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
async def test_server_cert_and_key_secrets_serve_https(bus: SqliteBus, port: int, tmp_path: Path) -> None:
    tls_dir = tmp_path / "secrets" / "webhook-tls"
    tls_dir.mkdir(parents=True)
    openssl = await asyncio.create_subprocess_exec(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
        "-addext", f"subjectAltName=IP:{HOST}",
        "-keyout", str(tls_dir / "tls.key"), "-out", str(tls_dir / "tls.crt"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await openssl.communicate()
    assert openssl.returncode == 0, stderr.decode()
    es = event_source(
        "tls",
        {"hook": {
            "endpoint": "/hook", "port": str(port),
            "serverCertSecret": {"name": "webhook-tls", "key": "tls.crt"},
            "serverKeySecret": {"name": "webhook-tls", "key": "tls.key"},
        }},
    )
    context = ssl.create_default_context(cafile=str(tls_dir / "tls.crt"))
    secrets = SecretStore(tmp_path / "secrets")
    async with serving([es], bus, secrets), httpx.AsyncClient(verify=context) as tls:
        response = await tls.post(f"https://{HOST}:{port}/hook", json={"secure": True})
    assert (response.status_code, response.text) == (200, "success")
    [event] = await stored_events(bus, 1)
    assert event.data["body"] == {"secure": True}


async def test_missing_tls_files_fail_start_naming_the_file(
    bus: SqliteBus, port: int, tmp_path: Path
) -> None:
    es = event_source(
        "tls",
        {"hook": {
            "endpoint": "/hook", "port": str(port),
            "serverCertSecret": {"name": "webhook-tls", "key": "tls.crt"},
            "serverKeySecret": {"name": "webhook-tls", "key": "tls.key"},
        }},
    )
    [server] = build_sources([es], bus, SecretStore(tmp_path / "secrets"), host=HOST)
    expected = r"secret 'webhook-tls' key 'tls\.crt' not found: no file .*tls\.crt"
    with pytest.raises(ConfigError, match=expected):
        await server.start()
    await server.stop()


async def test_a_missing_optional_auth_secret_answers_500_until_the_file_exists(
    bus: SqliteBus, client: httpx.AsyncClient, port: int, tmp_path: Path
) -> None:
    selector = {"name": "late", "key": "token", "optional": True}
    es = event_source("es", {"hook": {"endpoint": "/hook", "port": str(port), "authSecret": selector}})
    url = f"http://{HOST}:{port}/hook"
    headers = {"Authorization": "Bearer arrives-later"}
    async with serving([es], bus, SecretStore(tmp_path / "secrets")):
        before = await client.post(url, json={}, headers=headers)
        (tmp_path / "secrets" / "late").mkdir(parents=True)
        (tmp_path / "secrets" / "late" / "token").write_text("arrives-later")
        after = await client.post(url, json={}, headers=headers)
    assert (before.status_code, before.text) == (500, "Error loading auth token")
    assert (after.status_code, after.text) == (200, "success")
    await stored_events(bus, 1)
