"""The ``http`` trigger: an HTTP request whose payload is built from the firing's events.

Semantics follow Argo Events (payload parameters, ``parameters`` applied to the HTTP spec, headers,
``secureHeaders``, ``basicAuth``, ``timeout``, ``policy.status.allow``) with one deliberate
difference: without ``policy.status.allow`` a response of 400 or more is a failure (Argo counts it
as success and the firing is lost). Every request carries ``Idempotency-Key`` with the firing's
key so that a receiver can drop a repeated delivery after a crash or a replay.

The request goes through ``TriggerContext.http_client`` (an ``HttpClient``, see
``gateway.triggers.base``). Two implementations live here: ``AiohttpClient``, the one the runtime
gives the trigger (httpx's connection pool costs ~1 ms of CPU per request at 32 in flight, aiohttp's
~0.05 ms: ``bench/http_client.py``), and ``HttpxClient``, used when the context has no
``http_client`` (it wraps ``TriggerContext.http``).
"""

from __future__ import annotations

import asyncio
import base64
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import aiohttp
import httpx

from gateway.errors import TriggerError
from gateway.triggers.base import (
    HttpClient,
    HttpInvalidRequest,
    HttpRequestError,
    HttpResponse,
    HttpSchemeError,
    HttpTimeoutError,
    HttpURLError,
    TriggerContext,
    TriggerExecutor,
)
from sensors.engine import Fire
from sensors.params import ParameterError, apply_parameters, construct_payload
from sensors.spec import HTTPTrigger, Trigger, TriggerTemplate

RETRIABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@lru_cache(maxsize=1024)
def url_problem(url: str) -> tuple[bool, str] | None:
    """Why ``url`` cannot be requested, as ``(is a scheme problem, reason)``; None when it can.

    The same check whichever client sends: no scheme or one other than http/https, no host, a port
    that is not a number in 0-65535, broken IPv6 brackets.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        return False, str(exc)
    scheme = parts.scheme.lower()
    if not scheme:
        return True, "Request URL is missing an 'http://' or 'https://' protocol."
    if scheme not in ("http", "https"):
        return True, f"Request URL has an unsupported protocol '{scheme}://'."
    if not parts.hostname:
        return False, "Request URL has no host."
    return None


def _proxy_and_auth(value: str) -> tuple[str, dict[str, str] | None]:
    """A proxy URL from the environment (``http://`` when bare) without its credentials, and the
    ``Proxy-Authorization`` header they make."""
    parts = urlsplit(value if "://" in value else f"http://{value}")
    headers = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers = {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc).geturl(), headers


class AiohttpClient:
    """``HttpClient`` over one ``aiohttp.ClientSession``, opened on first use (on the running loop).

    At most ``max_connections`` connections (all hosts together), kept alive ``keepalive_expiry``
    seconds. Like the httpx client it replaces: proxies from ``HTTP_PROXY``/``HTTPS_PROXY``/
    ``ALL_PROXY``/``NO_PROXY`` (read once) and CA certificates from ``SSL_CERT_FILE``/
    ``SSL_CERT_DIR`` or certifi when ``trust_env``; redirects are not followed. Unlike it, and like
    Argo Events, cookies a receiver sets are not sent back.
    """

    def __init__(self, *, max_connections: int = 32, keepalive_expiry: float = 30.0, trust_env: bool = True):
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        env = urllib.request.getproxies_environment() if trust_env else {}
        self._no_proxy = {"no": env["no"]} if env.get("no") else {}
        self._proxies = {
            scheme: _proxy_and_auth(env[scheme]) for scheme in ("http", "https", "all") if env.get(scheme)
        }
        self._proxy_for: dict[tuple[str, str], tuple[str | None, dict[str, str] | None]] = {}

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise HttpRequestError("the HTTP client is closed (triggergate is stopping)")
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            keepalive_timeout=self.keepalive_expiry,
            ssl=httpx.create_ssl_context(trust_env=self.trust_env),  # the trust store httpx used
            resolver=aiohttp.ThreadedResolver(),  # getaddrinfo, as httpx (not aiodns when installed)
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Content-Type",),  # no application/octet-stream the caller did not ask for
        )
        return self._session

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    def _proxy(self, url: str) -> tuple[str | None, dict[str, str] | None]:
        """The proxy for ``url`` from the environment (``NO_PROXY`` honoured), with its credentials."""
        parts = urlsplit(url)
        key = (parts.scheme.lower(), parts.hostname or "")
        found = self._proxy_for.get(key)
        if found is None:
            found = (None, None)
            bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
            if not (key[1] and bypass(key[1], self._no_proxy)):
                found = self._proxies.get(key[0]) or self._proxies.get("all") or found
            if len(self._proxy_for) < 1024:
                self._proxy_for[key] = found
        return found

    async def request(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,  # noqa: ASYNC109 - the client enforces it (aiohttp/httpx); it is the spec's timeout
    ) -> HttpResponse:
        session = self._session or self._open()
        proxy, proxy_headers = self._proxy(url) if self._proxies else (None, None)
        if proxy_headers and not url[:6].lower().startswith("https:"):
            # Plain HTTP goes to the proxy as it is (aiohttp sends proxy_headers only with CONNECT).
            headers, proxy_headers = {**headers, **proxy_headers}, None
        try:
            async with session.request(
                method,
                url,
                data=body or None,
                headers=headers,
                timeout=self._timeout(timeout),
                allow_redirects=False,
                proxy=proxy,
                proxy_headers=proxy_headers,
            ) as response:
                content = await response.read()
                return HttpResponse(response.status, response.headers, content)
        except TimeoutError as exc:  # aiohttp's ServerTimeoutError is one too
            raise HttpTimeoutError(f"no response within {timeout:g}s") from exc
        except aiohttp.NonHttpUrlClientError as exc:
            raise HttpSchemeError(f"Request URL has an unsupported protocol: {exc}") from exc
        except aiohttp.InvalidURL as exc:
            raise HttpURLError(f"{type(exc).__name__}: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise HttpRequestError(f"{type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # a header value aiohttp refuses to send (CR/LF in it)
            raise HttpInvalidRequest(str(exc)) from exc

    async def close(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class HttpxClient:
    """``HttpClient`` over an ``httpx.AsyncClient`` (the trigger's client before ``AiohttpClient``)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,  # noqa: ASYNC109 - the client enforces it (aiohttp/httpx); it is the spec's timeout
    ) -> HttpResponse:
        try:
            response = await self.client.request(method, url, content=body, headers=headers, timeout=timeout)
        except httpx.UnsupportedProtocol as exc:
            raise HttpSchemeError(str(exc)) from exc
        except httpx.InvalidURL as exc:
            raise HttpURLError(str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise HttpTimeoutError(f"no response within {timeout:g}s") from exc
        except httpx.LocalProtocolError as exc:  # e.g. CR/LF in a header value
            raise HttpInvalidRequest(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise HttpRequestError(f"{type(exc).__name__}: {exc}") from exc
        return HttpResponse(response.status_code, response.headers, response.content)

    async def close(self) -> None:
        await self.client.aclose()


class HttpTrigger(TriggerExecutor):
    kind = "http"

    def __init__(self, trigger: Trigger, context: TriggerContext) -> None:
        super().__init__(trigger, context)
        assert trigger.template.http is not None
        self.spec = trigger.template.http
        self.client: HttpClient = context.http_client or HttpxClient(context.http)
        # At most this many requests of this trigger at once, whatever the shared pool allows.
        self._concurrency = asyncio.Semaphore(32)
        policy = trigger.policy.status if trigger.policy else None
        self.allow: frozenset[int] | None = frozenset(policy.allow) if policy else None

    def _resolve_spec(self, fire: Fire) -> HTTPTrigger:
        spec = self.spec
        if self.trigger.parameters:
            doc = self.trigger.template.model_dump(by_alias=True, exclude_none=True)
            doc = apply_parameters(doc, self.trigger.parameters, fire.events)
            template = TriggerTemplate.model_validate(doc)
            assert template.http is not None
            spec = template.http
        if spec.parameters:
            doc = spec.model_dump(by_alias=True, exclude_none=True)
            doc = apply_parameters(doc, spec.parameters, fire.events)
            spec = HTTPTrigger.model_validate(doc)
        return spec

    def _headers(self, spec: HTTPTrigger, fire: Fire, body: bytes) -> dict[str, str]:
        headers = dict(spec.headers)
        for secure in spec.secure_headers:
            ref = secure.value_from.secret_key_ref
            if ref is not None:
                headers[secure.name] = self.context.secrets.get(ref).reveal()
        if spec.basic_auth is not None:
            user = (
                self.context.secrets.get(spec.basic_auth.username).reveal()
                if spec.basic_auth.username
                else ""
            )
            password = (
                self.context.secrets.get(spec.basic_auth.password).reveal()
                if spec.basic_auth.password
                else ""
            )
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        if body and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = fire.key
        headers["X-Triggergate-Sensor"] = fire.sensor
        headers["X-Triggergate-Trigger"] = fire.trigger
        return headers

    async def execute(self, fire: Fire) -> str:
        try:
            spec = self._resolve_spec(fire)
            body = construct_payload(spec.payload, fire.events) if spec.payload else b""
        except (ParameterError, ValueError) as exc:
            raise TriggerError(f"cannot build the HTTP request: {exc}", retriable=False) from exc
        if body == b"null":
            body = b""
        problem = url_problem(spec.url)
        if problem is not None:
            scheme, reason = problem
            kind = "unsupported" if scheme else "invalid"
            raise TriggerError(f"{kind} url {spec.url!r}: {reason}", retriable=False)
        headers = self._headers(spec, fire, body)
        try:
            async with self._concurrency:
                response = await self.client.request(
                    spec.method, spec.url, body, headers, float(spec.timeout)
                )
        except HttpSchemeError as exc:
            raise TriggerError(f"unsupported url {spec.url!r}: {exc}", retriable=False) from exc
        except HttpURLError as exc:
            raise TriggerError(f"invalid url {spec.url!r}: {exc}", retriable=False) from exc
        except HttpInvalidRequest as exc:
            raise TriggerError(f"cannot send {spec.method} {spec.url}: {exc}", retriable=False) from exc
        except HttpTimeoutError as exc:
            raise TriggerError(
                f"{spec.method} {spec.url} timed out after {spec.timeout}s", retriable=True
            ) from exc
        except HttpRequestError as exc:
            raise TriggerError(f"{spec.method} {spec.url} failed: {exc}", retriable=True) from exc
        status = response.status
        summary = f"{spec.method} {spec.url} -> HTTP {status}"
        ok = status in self.allow if self.allow is not None else status < 400
        if ok:
            return summary
        reason = response.text[:300].strip()
        raise TriggerError(
            f"{summary}"
            + (f": {reason}" if reason else "")
            + ("" if self.allow is None else f" (policy.status.allow: {sorted(self.allow)})"),
            retriable=status in RETRIABLE_STATUS or status >= 500,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )
