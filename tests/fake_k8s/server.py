"""A faithful in-process fake of kube-apiserver, served over real HTTP on 127.0.0.1.

Start it in a background thread (its own event loop, so synchronous client code in tests works)::

    k8s = FakeKubeAPI().start()                  # or: with FakeKubeAPI().start() as k8s: ...
    kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig", namespace="argo")
    k8s.put({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", ...})   # seed, no HTTP
    k8s.fail_next("POST", r"/workflows$", 500)   # the next create of a Workflow fails once
    ...
    k8s.stop()

or standalone: ``python -m tests.fake_k8s.server --port 18081 [--token T] [--kubeconfig PATH]``.

The HTTP layer here parses the request (path, query, body, content type), applies injected delays and
failures, authenticates, authorizes (``forbid``), and hands the operation to :class:`~.store.Store`. Errors
are ``kind: Status`` bodies (:mod:`.status`). Watches are chunked streams of JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn
import yaml
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .paths import Target, parse_path
from .resources import Registry, ResourceType
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .status import (
    ApiError,
    bad_request,
    forbidden,
    injected,
    method_not_allowed,
    no_such_resource,
    unauthorized,
    unsupported_media_type,
)
from .store import APPLY_PATCH, STOP, Store, Watcher

TRUE_VALUES = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool
FALSE_VALUES = ("0", "f", "F", "FALSE", "false", "False")
PUBLIC_INFO = ("version", "health")  # readable anonymously (system:public-info-viewer)


# --- request log and injected faults ------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it. Unpacks as ``(method, path, query, body)``; ``body`` is the
    decoded JSON/YAML (or raw bytes when it did not decode, None when empty); ``headers`` are lower-cased."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str] = field(default_factory=dict, compare=False)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.method, self.path, self.query, self.body))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> Any:
        return (self.method, self.path, self.query, self.body)[index]


@dataclass
class _Rule:
    method: str | None
    pattern: re.Pattern[str]
    times: int | None
    status: int = 0
    body: Any = None
    headers: dict[str, str] | None = None
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, "*") or self.method.upper() == method) and bool(
            self.pattern.search(path)
        )


class _Faults:
    """FIFO rules; the first rule matching a request is used and its ``times`` decremented."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Rule] = []
        self._delays: list[_Rule] = []

    def add_failure(self, rule: _Rule) -> None:
        with self._lock:
            self._failures.append(rule)

    def add_delay(self, rule: _Rule) -> None:
        with self._lock:
            self._delays.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    @staticmethod
    def _take(rules: list[_Rule], method: str, path: str) -> _Rule | None:
        for rule in rules:
            if rule.matches(method, path):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        rules.remove(rule)
                return rule
        return None

    def take_failure(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            return self._take(self._failures, method, path)

    def take_delay(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            return self._take(self._delays, method, path)


def _failure_response(rule: _Rule) -> Response:
    headers = dict(rule.headers or {})
    if rule.status == 429 and not any(k.lower() == "retry-after" for k in headers):
        headers["Retry-After"] = "1"
    retry_after = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    body = rule.body
    if body is None:
        seconds = int(retry_after) if retry_after and retry_after.isdigit() else None
        return _json(rule.status, injected(rule.status, seconds), headers)
    if isinstance(body, (dict, list)):
        return _json(rule.status, body, headers)
    if isinstance(body, str):
        return PlainTextResponse(body, status_code=rule.status, headers=headers)
    return Response(
        bytes(body), status_code=rule.status, headers=headers, media_type="application/octet-stream"
    )


# --- small HTTP helpers --------------------------------------------------------------------------------


def _json(code: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=code, headers=headers, media_type="application/json")


def _page_not_found() -> Response:
    return PlainTextResponse("404 page not found\n", status_code=404)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _decode(raw: bytes, content_type: str) -> Any:
    """Decode a request body by media type; 415 for anything but JSON/YAML, 400 when it does not parse."""
    if not raw:
        return None
    media = _media_type(content_type)
    try:
        if "yaml" in media:
            return yaml.safe_load(raw)
        if media in ("", "application/json", "*/*") or media.endswith("+json"):
            return json.loads(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise bad_request(f"couldn't get version/kind; json parse error: {e}") from None
    raise unsupported_media_type(media, ["application/json", "application/yaml"])


def _lenient(raw: bytes, content_type: str) -> Any:
    try:
        return _decode(raw, content_type)
    except ApiError:
        return raw


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name)
    if value is None or value in FALSE_VALUES or value == "":
        return False
    if value in TRUE_VALUES:
        return True
    raise bad_request(f'{name}: Invalid value: "{value}": must be a boolean (true or false)')


def _int(query: dict[str, str], name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    assert value is not None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f'{name}: Invalid value: "{value}": must be an integer') from None


def _dry_run(query: dict[str, str]) -> bool:
    value = query.get("dryRun")
    if value is None:
        return False
    if value != "All":
        raise bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return True


# --- the ASGI application -------------------------------------------------------------------------------


class KubeApp:
    """The ASGI app: one instance per fake, sharing the store with the test-side helpers."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        *,
        token: str | None,
        user: str,
        git_version: str,
    ) -> None:
        self.registry = registry
        self.store = store
        self.token = token
        self.user = user
        self.git_version = git_version
        self.server_address = "127.0.0.1:0"
        self.faults = _Faults()
        self._forbidden: list[tuple[str, str, str, str | None]] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self.stopping = asyncio.Event()

    # --- test-side state ---

    def forbid(self, verb: str, group: str, plural: str, namespace: str | None) -> None:
        with self._lock:
            self._forbidden.append((verb, group, plural, namespace))

    def allow_all(self) -> None:
        with self._lock:
            self._forbidden.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- ASGI ---

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        method = request.method.upper()
        path = request.url.path
        query = dict(request.query_params)
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        with self._lock:
            self._requests.append(
                RecordedRequest(method, path, query, _lenient(raw, content_type), dict(request.headers))
            )
        try:
            delay = self.faults.take_delay(method, path)
            if delay is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay.seconds)
            failure = self.faults.take_failure(method, path)
            if failure is not None:
                return _failure_response(failure)
            target = parse_path(path)
            self._authenticate(request, target)
            return await self._dispatch(method, target, query, raw, content_type)
        except ApiError as e:
            return _json(e.code, e.status, e.headers)

    def _authenticate(self, request: Request, target: Target) -> None:
        if self.token is None:
            return
        header = request.headers.get("authorization")
        if header is None and target.kind in PUBLIC_INFO:
            return
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            raise unauthorized()

    def _authorize(self, verb: str, rt: ResourceType, target: Target) -> None:
        plural = rt.plural + (f"/{target.subresource}" if target.subresource else "")
        with self._lock:
            rules = list(self._forbidden)
        for r_verb, r_group, r_plural, r_ns in rules:
            if (
                r_verb in ("*", verb)
                and r_group in ("*", rt.group)
                and r_plural in ("*", plural)
                and (r_ns is None or r_ns == target.namespace)
            ):
                raise forbidden(self.user, verb, rt.group, plural, target.name or "", target.namespace)

    # --- routing ---

    async def _dispatch(
        self, method: str, target: Target, query: dict[str, str], raw: bytes, content_type: str
    ) -> Response:
        kind = target.kind
        if kind == "resource":
            return await self._resource(method, target, query, raw, content_type)
        if kind == "unknown":
            return _page_not_found()
        if method not in ("GET", "HEAD"):
            raise method_not_allowed()
        if kind == "root":
            return _json(200, {"paths": self._paths()})
        if kind == "version":
            return _json(200, self._version())
        if kind == "health":
            return PlainTextResponse("ok")
        if kind == "api":
            return _json(200, self.registry.api_versions(self.server_address))
        if kind == "apis":
            return _json(200, self.registry.api_group_list())
        if kind == "group":
            if not self.registry.has_group(target.group):
                return _page_not_found()
            return _json(200, self.registry.api_group(target.group))
        # kind == "resources"
        if not self.registry.has_group_version(target.group, target.version):
            return _page_not_found()
        return _json(200, self.registry.api_resource_list(target.group, target.version))

    def _paths(self) -> list[str]:
        paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz"}
        for rt in self.registry.all():
            if rt.group:
                paths.update({f"/apis/{rt.group}", f"/apis/{rt.group}/{rt.version}"})
        return sorted(paths)

    def _version(self) -> dict[str, str]:
        m = re.match(r"v(\d+)\.(\d+)", self.git_version)
        major, minor = (m.group(1), m.group(2)) if m else ("1", "37")
        return {
            "major": major,
            "minor": minor,
            "emulationMajor": major,
            "emulationMinor": minor,
            "minCompatibilityMajor": major,
            "minCompatibilityMinor": str(max(int(minor) - 1, 0)),
            "gitVersion": self.git_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.25.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    async def _resource(
        self, method: str, t: Target, query: dict[str, str], raw: bytes, content_type: str
    ) -> Response:
        rt = self.registry.lookup(t.group, t.version, t.plural)
        if rt is None:
            if self.registry.has_group_version(t.group, t.version):
                raise no_such_resource()
            return _page_not_found()
        if rt.namespaced and t.namespace is None and t.name is not None:
            return _page_not_found()  # namespaced objects are only addressed under /namespaces/{ns}/
        if not rt.namespaced and t.namespace is not None:
            return _page_not_found()
        if t.subresource is not None and not (t.subresource == "status" and rt.status_subresource):
            raise no_such_resource()
        ns = t.namespace if rt.namespaced else None
        watch = method == "GET" and _flag(query, "watch")
        collection = t.name is None
        verb = {
            ("GET", True): "watch" if watch else "list",
            ("GET", False): "watch" if watch else "get",
            ("POST", True): "create",
            ("PUT", False): "update",
            ("PATCH", False): "patch",
            ("DELETE", False): "delete",
            ("DELETE", True): "deletecollection",
        }.get((method, collection))
        if verb is None or (t.subresource and verb not in ("get", "update", "patch")):
            raise method_not_allowed()
        if rt.namespaced and ns is None and verb not in ("list", "watch"):
            raise method_not_allowed()
        self._authorize(verb, rt, t)
        store = self.store
        if verb == "watch":
            return await self._watch(rt, ns, t.name, query)
        if verb == "list":
            labels, fields = self._selectors(query)
            return _json(
                200,
                store.list_objects(
                    rt, ns, labels, fields, limit=_int(query, "limit"), continue_token=query.get("continue")
                ),
            )
        assert t.name is not None or verb in ("create", "deletecollection")
        if verb == "get":
            return _json(200, store.get(rt, ns, t.name or ""))
        if verb == "create":
            body = _decode(raw, content_type)
            return _json(201, store.create(rt, ns, body, dry_run=_dry_run(query)))
        if verb == "update":
            body = _decode(raw, content_type)
            obj = store.update(rt, ns, t.name or "", body, subresource=t.subresource, dry_run=_dry_run(query))
            return _json(200, obj)
        if verb == "patch":
            media = _media_type(content_type)
            if media == APPLY_PATCH:
                try:
                    patch = yaml.safe_load(raw) if raw else None
                except yaml.YAMLError as e:
                    raise bad_request(f"error decoding YAML: {e}") from None
            else:
                patch = _decode(raw, "application/json")
            obj, created = store.patch(
                rt,
                ns,
                t.name or "",
                media,
                patch,
                subresource=t.subresource,
                dry_run=_dry_run(query),
                field_manager=query.get("fieldManager"),
            )
            return _json(201 if created else 200, obj)
        options = _decode(raw, content_type) if raw else None
        if options is not None and not isinstance(options, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        if verb == "delete":
            return _json(200, store.delete(rt, ns, t.name or "", options, dry_run=_dry_run(query)))
        labels, fields = self._selectors(query)
        return _json(200, store.delete_collection(rt, ns, labels, fields, options, dry_run=_dry_run(query)))

    @staticmethod
    def _selectors(query: dict[str, str]) -> tuple[Any, Any]:
        try:
            return (
                parse_label_selector(query.get("labelSelector") or ""),
                parse_field_selector(query.get("fieldSelector") or ""),
            )
        except SelectorError as e:
            raise bad_request(str(e)) from None

    async def _watch(
        self, rt: ResourceType, ns: str | None, name: str | None, query: dict[str, str]
    ) -> Response:
        labels, fields = self._selectors(query)
        if name is not None:  # GET .../{name}?watch=true: a watch of one object
            fields = [*fields, *parse_field_selector(f"metadata.name={name}")]
        rv_text = query.get("resourceVersion") or ""
        if rv_text and not rv_text.isdigit():
            raise bad_request(f'resourceVersion: Invalid value: "{rv_text}": must be a numeric string')
        timeout = _int(query, "timeoutSeconds") or None
        bookmarks = _flag(query, "allowWatchBookmarks")
        loop = asyncio.get_running_loop()
        watcher = Watcher(loop, asyncio.Queue(), rt, ns, labels, fields)
        try:
            backlog = self.store.watch(
                watcher,
                int(rv_text) if rv_text else None,
                send_initial_events=_flag(query, "sendInitialEvents"),
            )
        except ApiError as e:
            # the real server answers 200 and reports an expired resourceVersion as an ERROR event
            return Response(
                orjson.dumps({"type": "ERROR", "object": e.status}) + b"\n", media_type="application/json"
            )
        deadline = loop.time() + timeout if timeout else None
        store = self.store

        async def events() -> AsyncIterator[bytes]:
            try:
                for kind, obj in backlog:
                    yield orjson.dumps({"type": kind, "object": obj}) + b"\n"
                while True:
                    remaining = None if deadline is None else deadline - loop.time()
                    if remaining is not None and remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(watcher.queue.get(), remaining)
                    except TimeoutError:
                        break
                    if item is STOP:
                        return
                    kind, obj = item
                    yield orjson.dumps({"type": kind, "object": obj}) + b"\n"
                if bookmarks:
                    yield orjson.dumps({"type": "BOOKMARK", "object": store.bookmark(rt)}) + b"\n"
            finally:
                store.unwatch(watcher)

        return StreamingResponse(events(), media_type="application/json")


# --- the server thread and the public facade -------------------------------------------------------------


class FakeKubeAPI:
    """A fake kube-apiserver on 127.0.0.1, in a background thread. See the module docstring and README.

    ``token``: when set, requests need ``Authorization: Bearer <token>`` (401 otherwise; ``/version`` and
    health checks stay readable anonymously). ``user`` appears in 403 messages. ``namespaces`` exist at
    start. ``history_size`` bounds the per-resource watch history (older resourceVersions get 410).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        user: str = "system:serviceaccount:default:triggergate",
        namespaces: tuple[str, ...] = ("default", "argo"),
        history_size: int = 1000,
        port: int = 0,
        git_version: str = "v1.37.0",
    ) -> None:
        self.registry = Registry()
        self.store = Store(self.registry, history_size=history_size)
        self.app = KubeApp(self.registry, self.store, token=token, user=user, git_version=git_version)
        self.token = token
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        ns_rt = self.registry.lookup("", "v1", "namespaces")
        assert ns_rt is not None
        for name in namespaces:
            self.store.create(
                ns_rt, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )

    # --- lifecycle ---

    def start(self, timeout: float = 10.0) -> FakeKubeAPI:
        """Bind 127.0.0.1 (a free port unless one was given), serve in a thread; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("this FakeKubeAPI is already started; create a new one")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self._port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        self._port = sock.getsockname()[1]
        self.app.server_address = f"127.0.0.1:{self._port}"
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            ready.set()
            try:
                assert self._server is not None
                loop.run_until_complete(self._server.serve(sockets=[sock]))
            except BaseException as e:  # reported by start()/stop()
                self._error = e
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
                sock.close()

        self._thread = threading.Thread(target=run, name=f"fake-k8s:{self._port}", daemon=True)
        self._thread.start()
        ready.wait(timeout)
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"fake-k8s failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fake-k8s did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """End open watches, shut the server down and join its thread. Safe to call twice."""
        if self._thread is None or self._server is None:
            return
        loop = self._loop
        self.store.close_watchers()
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.app.stopping.set)
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> FakeKubeAPI:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def write_kubeconfig(self, path: str | Path, namespace: str = "default", context: str = "fake") -> Path:
        """Write a kubeconfig whose current context points at this server; returns the path."""
        path = Path(path)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": self.token or "fake-token"}}],
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}
            ],
            "current-context": context,
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # --- resource types ---

    def register(
        self,
        group: str,
        version: str,
        plural: str,
        kind: str,
        namespaced: bool = True,
        *,
        singular: str = "",
        short_names: tuple[str, ...] = (),
        status_subresource: bool = False,
    ) -> ResourceType:
        """Serve another resource, as installing a CRD would (custom-resource semantics)."""
        return self.registry.add(
            ResourceType(
                group,
                version,
                plural,
                kind,
                namespaced=namespaced,
                singular=singular,
                short_names=short_names,
                status_subresource=status_subresource,
            )
        )

    def _rt(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.lookup(group, version, plural)
        if rt is None:
            known = ", ".join(sorted(f"{r.api_version}/{r.plural}" for r in self.registry.all()))
            raise KeyError(
                f"fake-k8s does not serve {group or 'core'}/{version}/{plural}; known: {known}. "
                f"Add it with FakeKubeAPI.register(group, version, plural, kind)"
            )
        return rt

    # --- direct inspection and seeding (no HTTP) ---

    def objects(
        self, group: str, version: str, plural: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Copies of the stored objects (all namespaces when ``namespace`` is None), sorted by key."""
        return self.store.objects(self._rt(group, version, plural), namespace)

    def get(
        self, group: str, version: str, plural: str, name: str, namespace: str | None = "default"
    ) -> dict[str, Any] | None:
        """A copy of one stored object, or None. ``namespace`` is ignored for cluster-scoped kinds."""
        rt = self._rt(group, version, plural)
        try:
            return self.store.get(rt, namespace if rt.namespaced else None, name)
        except ApiError:
            return None

    def put(self, obj: dict[str, Any], plural: str | None = None) -> dict[str, Any]:
        """Create or replace ``obj`` (a manifest dict; its apiVersion and kind pick the resource, ``plural``
        disambiguates) without HTTP, with the same validation and watch events as the API. Returns the
        stored object. Namespaced objects without ``metadata.namespace`` go to ``default``."""
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        if plural is not None:
            group, _, version = api_version.rpartition("/")
            rt = self._rt(group, version, plural)
        else:
            found = self.registry.by_kind(api_version, kind)
            if found is None:
                raise KeyError(
                    f"fake-k8s does not serve kind {kind!r} in {api_version!r}; register it first "
                    f"(FakeKubeAPI.register) or check the manifest's apiVersion/kind"
                )
            rt = found
        try:
            return self.store.upsert(rt, obj)
        except ApiError as e:
            raise ValueError(f"fake-k8s rejected {kind} {obj.get('metadata', {}).get('name')!r}: {e}") from e

    def delete(
        self, group: str, version: str, plural: str, name: str, namespace: str | None = "default"
    ) -> dict[str, Any] | None:
        """Delete immediately (finalizers ignored), emitting DELETED; returns the last state or None."""
        return self.store.remove(self._rt(group, version, plural), namespace, name)

    @property
    def watch_count(self) -> int:
        """How many watch streams are open (wait for it to rise before writing, to test live events)."""
        return self.store.watch_count

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion."""
        return self.store.resource_version

    def compact(self) -> int:
        """Forget the watch history (etcd compaction): watches from older resourceVersions get 410."""
        return self.store.compact()

    # --- fault injection, authorization, request log ---

    def fail_next(
        self,
        method: str | None,
        path_regex: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next ``times`` requests whose method matches (``None``/``"*"`` = any) and whose path
        matches ``path_regex`` (``re.search``) with ``status``. ``body`` None means the Status the real server
        sends for that code; 429 gets ``Retry-After: 1`` unless ``headers`` set one. ``times=None``: until
        :meth:`clear_faults`."""
        self.app.faults.add_failure(
            _Rule(method, re.compile(path_regex), times, status=status, body=body, headers=headers)
        )

    def delay_next(self, method: str | None, path_regex: str, seconds: float, times: int | None = 1) -> None:
        """Hold the next matching requests for ``seconds`` before handling them (client timeouts)."""
        self.app.faults.add_delay(_Rule(method, re.compile(path_regex), times, seconds=seconds))

    def clear_faults(self) -> None:
        self.app.faults.clear()

    def forbid(self, verb: str, group: str, plural: str, namespace: str | None = None) -> None:
        """Answer 403 Forbidden for ``verb`` (get, list, watch, create, update, patch, delete,
        deletecollection or ``*``) on ``group``/``plural`` (``workflows/status`` for a subresource, ``*``
        for any), in ``namespace`` or everywhere."""
        self.app.forbid(verb, group, plural, namespace)

    def allow_all(self) -> None:
        """Drop every ``forbid`` rule."""
        self.app.allow_all()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        return self.app.requests

    def clear_requests(self) -> None:
        self.app.clear_requests()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="fake kube-apiserver on 127.0.0.1 (tests/fake_k8s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0: a free one)")
    parser.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN")
    parser.add_argument("--kubeconfig", default=None, help="write a kubeconfig for this server to this path")
    parser.add_argument("--namespace", default="default", help="namespace of the kubeconfig context")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with FakeKubeAPI(token=args.token, port=args.port).start() as k8s:
        if args.kubeconfig:
            k8s.write_kubeconfig(args.kubeconfig, namespace=args.namespace)
        print(f"fake-k8s listening on {k8s.url}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
