"""The http trigger's client seam: ``AiohttpClient`` and ``HttpxClient`` behave alike against a real
HTTP server on loopback, and ``HttpTrigger`` keeps its semantics over either of them.

The server here is a raw asyncio HTTP/1.1 server, so that the test sees exactly what went over the
wire (which headers, how many connections) and can hold a response back or never send one.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.errors import TriggerError
from gateway.secrets import SecretStore
from gateway.triggers import build_executor
from gateway.triggers.base import (
    HttpClient,
    HttpInvalidRequest,
    HttpRequestError,
    HttpResponse,
    HttpSchemeError,
    HttpTimeoutError,
    TriggerContext,
)
from gateway.triggers.http import AiohttpClient, HttpTrigger, HttpxClient, url_problem
from sensors.engine import Fire, idempotency_key
from sensors.spec import Trigger
from tests.unit.sensor_factory import event

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to 127.0.0.1 must not go through a proxy the machine happens to have configured."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# --------------------------------------------------------------------------- a raw HTTP/1.1 server


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: bool = False  # never answer


@dataclass
class RawServer:
    """Records requests; answers from ``replies`` (one each, then 200 ``ok``) once ``gate`` is set."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0  # accepted so far
    open_connections: int = 0
    in_flight: int = 0  # requests read and not answered yet
    max_in_flight: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # set whenever a connection ends
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set whenever a count changes
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def start(self) -> RawServer:
        self.gate.set()
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def until(self, condition: Callable[[], bool]) -> None:
        """Returns once ``condition()`` holds (checked whenever a count changes), within 5 s."""
        async with asyncio.timeout(5):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    def _changed(self) -> None:
        self.changed.set()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        self.stopping.set()
        self.gate.set()
        for writer in list(self.writers):
            writer.close()
        await self.until(lambda: self.open_connections == 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        self.writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Seen(method, target, headers, body))
                reply = self.replies.pop(0) if self.replies else Reply()
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                self._changed()
                try:
                    if reply.hang:
                        await self.stopping.wait()  # no answer before the test ends
                        return
                    await self.gate.wait()
                finally:
                    self.in_flight -= 1
                    self._changed()
                out = [f"HTTP/1.1 {reply.status} X", f"Content-Length: {len(reply.body)}"]
                out += [f"{k}: {v}" for k, v in reply.headers.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + reply.body)
                await writer.drain()
        finally:
            self.writers.discard(writer)
            self.open_connections -= 1
            self.closed.set()
            self._changed()
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    srv = await RawServer().start()
    yield srv
    await srv.stop()


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there once the socket is closed


# --------------------------------------------------------------------------- the clients

CLIENTS = ("aiohttp", "httpx")


@dataclass
class Clients:
    """Builds clients of one kind and closes them all at the end of the test."""

    kind: str
    made: list[HttpClient] = field(default_factory=list)
    spare: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, max_connections: int = 32) -> HttpClient:
        made: HttpClient
        if self.kind == "aiohttp":
            made = AiohttpClient(max_connections=max_connections, keepalive_expiry=30.0)
        else:  # as gateway/runtime.py configures it
            made = HttpxClient(
                httpx.AsyncClient(
                    follow_redirects=False,
                    limits=httpx.Limits(
                        max_connections=max_connections,
                        max_keepalive_connections=max_connections,
                        keepalive_expiry=30.0,
                    ),
                )
            )
        self.made.append(made)
        return made

    def context(self, tmp_path: Path, max_connections: int = 32) -> TriggerContext:
        """A context as the runtime builds it: ``http_client`` for aiohttp; for httpx, the trigger
        falls back to ``http`` (no ``http_client``)."""
        if self.kind == "aiohttp":
            spare = httpx.AsyncClient()
            self.spare.append(spare)
            return TriggerContext(
                "s",
                "default",
                SecretStore(tmp_path / "secrets"),
                spare,
                http_client=self.client(max_connections),
            )
        made = self.client(max_connections)
        assert isinstance(made, HttpxClient)
        return TriggerContext("s", "default", SecretStore(tmp_path / "secrets"), made.client)

    async def close(self) -> None:
        for made in self.made:
            await made.close()
        for spare in self.spare:
            await spare.aclose()


@pytest.fixture(params=CLIENTS)
async def clients(request: pytest.FixtureRequest) -> AsyncIterator[Clients]:
    made = Clients(request.param)
    yield made
    await made.close()


async def test_round_trip(server: RawServer, clients: Clients) -> None:
    server.replies.append(
        Reply(201, {"X-Reply": "yes", "Content-Type": "text/plain; charset=latin-1"}, b"caf\xe9")
    )
    client = clients.client()
    body = orjson.dumps({"x": 1})
    response = await client.request(
        "PUT", server.url + "/hook?a=1", body, {"Content-Type": "application/json", "X-Lab": "north"}, 5.0
    )
    assert isinstance(response, HttpResponse)
    assert response.status == 201
    assert response.headers["x-reply"] == "yes" and response.headers.get("X-REPLY") == "yes"
    assert response.body == b"caf\xe9" and response.text == "café"
    (seen,) = server.requests
    assert (seen.method, seen.target, seen.body) == ("PUT", "/hook?a=1", body)
    assert seen.headers["content-type"] == "application/json" and seen.headers["x-lab"] == "north"


async def test_no_body_and_no_content_type_the_caller_did_not_ask_for(
    server: RawServer, clients: Clients
) -> None:
    client = clients.client()
    for method in ("POST", "GET"):
        assert (await client.request(method, server.url + "/", b"", {}, 5.0)).status == 200
    assert (await client.request("POST", server.url + "/", b"raw", {}, 5.0)).status == 200
    assert [seen.body for seen in server.requests] == [b"", b"", b"raw"]
    for seen in server.requests:
        assert "content-type" not in seen.headers, seen.headers
    assert [seen.headers.get("content-length", "0") for seen in server.requests] == ["0", "0", "3"]


async def test_redirects_are_not_followed(server: RawServer, clients: Clients) -> None:
    server.replies.append(Reply(302, {"Location": "/elsewhere"}))
    response = await clients.client().request("POST", server.url + "/hook", b"{}", {}, 5.0)
    assert response.status == 302 and response.headers["location"] == "/elsewhere"
    assert [r.target for r in server.requests] == ["/hook"]


async def test_connection_refused_is_a_retriable_request_error(clients: Clients) -> None:
    with pytest.raises(HttpRequestError) as caught:
        await clients.client().request("POST", refused_url(), b"{}", {}, 5.0)
    assert caught.value.retriable
    assert not isinstance(caught.value, HttpTimeoutError | HttpInvalidRequest)
    assert caught.value.__cause__ is not None  # the library's exception, chained


async def test_no_answer_within_the_timeout(server: RawServer, clients: Clients) -> None:
    server.replies.append(Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(HttpTimeoutError, match=r"no response within 0\.3s") as caught:
        await clients.client().request("POST", server.url + "/slow", b"{}", {}, 0.3)
    assert caught.value.retriable
    assert 0.25 <= time.monotonic() - started < 3


async def test_an_unsupported_scheme(clients: Clients) -> None:
    with pytest.raises(HttpSchemeError) as caught:
        await clients.client().request("POST", "ftp://example.invalid/x", b"", {}, 5.0)
    assert not caught.value.retriable


async def test_a_header_that_cannot_be_sent_is_not_retried(server: RawServer, clients: Clients) -> None:
    with pytest.raises(HttpInvalidRequest) as caught:
        await clients.client().request("POST", server.url + "/", b"{}", {"X-Bad": "a\r\nInjected: 1"}, 5.0)
    assert not caught.value.retriable
    assert all("injected" not in seen.headers for seen in server.requests)


async def test_the_pool_is_bounded_and_connections_are_kept_alive(
    server: RawServer, clients: Clients
) -> None:
    client = clients.client(max_connections=4)
    server.gate.clear()
    calls = [
        asyncio.create_task(client.request("POST", server.url + "/", b"{}", {}, 10.0)) for _ in range(20)
    ]
    await server.until(lambda: server.in_flight == 4)
    await asyncio.sleep(0.1)  # room for a fifth connection, were the pool not bounded
    assert server.in_flight == 4 and server.connections == 4
    server.gate.set()
    assert [r.status for r in await asyncio.gather(*calls)] == [200] * 20
    await asyncio.gather(*(client.request("POST", server.url + "/", b"{}", {}, 10.0) for _ in range(8)))
    assert server.connections == 4 and len(server.requests) == 28  # the same four connections


async def test_aiohttp_client_close_ends_its_connections(server: RawServer) -> None:
    client = AiohttpClient()
    assert (await client.request("POST", server.url + "/", b"{}", {}, 5.0)).status == 200
    assert server.open_connections == 1
    await client.close()
    await asyncio.wait_for(server.closed.wait(), 5)
    assert server.open_connections == 0
    with pytest.raises(HttpRequestError, match="closed"):
        await client.request("POST", server.url + "/", b"{}", {}, 5.0)


async def test_aiohttp_client_sends_no_cookies_back(server: RawServer) -> None:
    server.replies.append(Reply(headers={"Set-Cookie": "session=abc; Path=/"}))
    client = AiohttpClient()
    url = server.url.replace("127.0.0.1", "localhost") + "/"  # a host name: cookie jars skip IP addresses
    try:
        for _ in range(2):
            assert (await client.request("POST", url, b"{}", {}, 5.0)).status == 200
    finally:
        await client.close()
    assert all("cookie" not in seen.headers for seen in server.requests)  # as Argo Events: no cookie jar


async def test_aiohttp_client_takes_the_proxy_from_the_environment(
    server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = await RawServer().start()
    try:
        port = proxy.url.rsplit(":", 1)[1]
        monkeypatch.setenv("HTTP_PROXY", f"http://lab%20user:p%40ss@127.0.0.1:{port}")
        monkeypatch.setenv("NO_PROXY", "localhost")
        via_proxy = AiohttpClient()
        try:
            response = await via_proxy.request("POST", server.url + "/hook?a=1", b"{}", {}, 5.0)
        finally:
            await via_proxy.close()
        assert response.status == 200 and server.requests == []
        (seen,) = proxy.requests
        assert seen.target == server.url + "/hook?a=1"  # absolute form: a proxy request
        assert seen.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"lab user:p@ss").decode()

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = AiohttpClient()
        try:
            assert (await direct.request("POST", server.url + "/hook", b"{}", {}, 5.0)).status == 200
        finally:
            await direct.close()
        assert [r.target for r in server.requests] == ["/hook"] and len(proxy.requests) == 1
    finally:
        await proxy.stop()


def test_url_problems() -> None:
    assert url_problem("http://127.0.0.1:8080/x?y=1") is None
    assert url_problem("HTTPS://example.com") is None
    assert url_problem("ftp://example.com/x") == (True, "Request URL has an unsupported protocol 'ftp://'.")
    assert url_problem("example.com/x") == (
        True,
        "Request URL is missing an 'http://' or 'https://' protocol.",
    )
    assert url_problem("http:///path") == (False, "Request URL has no host.")
    assert url_problem("http://h:99999/") == (False, "Port out of range 0-65535")
    assert url_problem("http://[::1/") == (False, "Invalid IPv6 URL")


def test_response_text_follows_the_charset() -> None:
    assert HttpResponse(500, {}, "é".encode()).text == "é"
    assert HttpResponse(500, {"content-type": 'text/plain; charset="latin-1"'}, b"\xe9").text == "é"
    assert HttpResponse(500, {"content-type": "text/plain; charset=nonsense"}, b"ok").text == "ok"


# --------------------------------------------------------------------------- the trigger over either client


def http_trigger(url: str, **extra: Any) -> Trigger:
    http = {"url": url, "payload": [{"src": {"dependencyName": "d", "dataKey": "body.x"}, "dest": "x"}]}
    http.update(extra.pop("http", {}))
    return Trigger.model_validate({"template": {"name": "t", "http": http}, **extra})


def fire_of(data: Any = None) -> Fire:
    ev = event(data=data or {"body": {"x": "hello"}})
    return Fire("s", "t", {"d": ev}, idempotency_key("s", "t", {"d": ev}))


def executor(trigger: Trigger, context: TriggerContext) -> HttpTrigger:
    made = build_executor(trigger, context)
    assert isinstance(made, HttpTrigger)
    return made


async def test_trigger_sends_payload_and_headers(server: RawServer, clients: Clients, tmp_path: Path) -> None:
    for name, key, value in (("auth", "user", "lab"), ("auth", "pass", "s3cret"), ("tok", "t", "abc")):
        (tmp_path / "secrets" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "secrets" / name / key).write_text(value + "\n")
    trigger = http_trigger(
        server.url + "/hook",
        http={
            "method": "PUT",
            "headers": {"X-Lab": "north"},
            "secureHeaders": [
                {"name": "X-Token", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "t"}}}
            ],
            "basicAuth": {
                "username": {"name": "auth", "key": "user"},
                "password": {"name": "auth", "key": "pass"},
            },
        },
    )
    fire = fire_of()
    result = await executor(trigger, clients.context(tmp_path)).execute(fire)
    assert result == f"PUT {server.url}/hook -> HTTP 200"
    (seen,) = server.requests
    assert seen.method == "PUT" and seen.json() == {"x": "hello"}
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["idempotency-key"] == fire.key
    assert seen.headers["x-triggergate-sensor"] == "s" and seen.headers["x-triggergate-trigger"] == "t"
    assert seen.headers["x-lab"] == "north" and seen.headers["x-token"] == "abc"
    assert seen.headers["authorization"] == "Basic " + base64.b64encode(b"lab:s3cret").decode()


async def test_trigger_uses_the_context_http_client(server: RawServer, tmp_path: Path) -> None:
    closed_httpx = httpx.AsyncClient()
    await closed_httpx.aclose()  # the trigger must not touch it
    client = AiohttpClient()
    try:
        context = TriggerContext("s", "default", SecretStore(tmp_path), closed_httpx, http_client=client)
        assert (await executor(http_trigger(server.url), context).execute(fire_of())).endswith("HTTP 200")
    finally:
        await client.close()


async def test_trigger_status_handling(server: RawServer, clients: Clients, tmp_path: Path) -> None:
    run = executor(http_trigger(server.url), clients.context(tmp_path)).execute
    server.replies.append(Reply(503, {"Retry-After": "7"}, b"  busy, come back later  "))
    with pytest.raises(TriggerError) as caught:
        await run(fire_of())
    assert caught.value.retriable and caught.value.retry_after == 7.0
    assert str(caught.value) == f"POST {server.url} -> HTTP 503: busy, come back later"
    for status, retriable in ((404, False), (429, True), (408, True), (501, True)):
        server.replies.append(Reply(status, body=b""))
        with pytest.raises(TriggerError) as caught:
            await run(fire_of())
        assert caught.value.retriable is retriable and str(caught.value).endswith(f"HTTP {status}")
        assert caught.value.retry_after is None
    server.replies.append(Reply(302, {"Location": "/elsewhere"}))
    assert await run(fire_of()) == f"POST {server.url} -> HTTP 302"  # not followed; Argo counts it as success
    allow = executor(http_trigger(server.url, policy={"status": {"allow": [404]}}), clients.context(tmp_path))
    server.replies.extend([Reply(404), Reply(200)])
    assert await allow.execute(fire_of()) == f"POST {server.url} -> HTTP 404"
    with pytest.raises(TriggerError, match=r"HTTP 200: ok \(policy.status.allow: \[404\]\)") as caught:
        await allow.execute(fire_of())
    assert not caught.value.retriable


async def test_trigger_connection_refused_is_retriable_and_names_the_url(
    clients: Clients, tmp_path: Path
) -> None:
    url = refused_url()
    with pytest.raises(TriggerError) as caught:
        await executor(http_trigger(url), clients.context(tmp_path)).execute(fire_of())
    assert caught.value.retriable
    assert str(caught.value).startswith(f"POST {url} failed: ")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "ftp://example.invalid/x",
            "unsupported url 'ftp://example.invalid/x': Request URL has an unsupported protocol 'ftp://'.",
        ),
        (
            "example.com/x",
            "unsupported url 'example.com/x': Request URL is missing an 'http://' or 'https://' protocol.",
        ),
        ("http://h:99999/", "invalid url 'http://h:99999/': Port out of range 0-65535"),
        ("http://[::1/", "invalid url 'http://[::1/': Invalid IPv6 URL"),
        ("http:///x", "invalid url 'http:///x': Request URL has no host."),
    ],
)
async def test_trigger_invalid_url_is_not_retried(
    clients: Clients, tmp_path: Path, url: str, message: str
) -> None:
    with pytest.raises(TriggerError) as caught:
        await executor(http_trigger(url), clients.context(tmp_path)).execute(fire_of())
    assert not caught.value.retriable and str(caught.value) == message


async def test_trigger_timeout_is_retriable(server: RawServer, clients: Clients, tmp_path: Path) -> None:
    server.replies.append(Reply(hang=True))
    trigger = http_trigger(server.url + "/slow", http={"timeout": 1})
    started = time.monotonic()
    with pytest.raises(TriggerError) as caught:
        await executor(trigger, clients.context(tmp_path)).execute(fire_of())
    assert caught.value.retriable
    assert str(caught.value) == f"POST {server.url}/slow timed out after 1s"
    assert 0.9 <= time.monotonic() - started < 5


async def test_trigger_header_injection_is_not_retried(
    server: RawServer, clients: Clients, tmp_path: Path
) -> None:
    trigger = http_trigger(server.url, http={"headers": {"X-Bad": "a\r\nInjected: 1"}})
    with pytest.raises(TriggerError, match=f"^cannot send POST {server.url}: ") as caught:
        await executor(trigger, clients.context(tmp_path)).execute(fire_of())
    assert not caught.value.retriable


async def test_trigger_sends_at_most_32_requests_at_once(
    server: RawServer, clients: Clients, tmp_path: Path
) -> None:
    run: Callable[[Fire], Any] = executor(http_trigger(server.url), clients.context(tmp_path, 64)).execute
    server.gate.clear()
    calls = [asyncio.create_task(run(fire_of())) for _ in range(40)]
    await server.until(lambda: server.in_flight == 32)
    await asyncio.sleep(0.1)  # room for more, were the trigger not bounded (the pool allows 64)
    assert server.max_in_flight == 32
    server.gate.set()
    results = await asyncio.gather(*calls)
    assert len(results) == 40 and len(server.requests) == 40
