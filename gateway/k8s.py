"""The Kubernetes API edge: the only module that imports the official ``kubernetes`` client.

:class:`KubeClient` is an async facade over the client's ``DynamicClient``: any ``apiVersion`` and
``kind`` (resolved through API discovery, cached), every call run off the event loop in a bounded
thread pool. :class:`KubeAPI` is the interface the trigger executors use; ``gateway.outbox.Outbox``
is its other implementation (no cluster, or ``--dry-run``).

Cluster configuration is found as Kubernetes users expect (:func:`find_cluster`): the pod's service
account when running in a cluster, else ``--kubeconfig`` / ``$KUBECONFIG`` / ``~/.kube/config``
(with ``--kube-context`` to pick a context), else no cluster.

Errors: every library exception is translated here into :class:`KubeError` with the API's
``status``, ``reason`` and ``message``, the cause chained, and ``retriable`` set: 5xx, 429 (with
``retry_after`` from ``Retry-After``), 408, timeouts and connection errors can be retried; 400,
401, 403, 404, 409, 422 and other 4xx cannot.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from gateway.errors import GatewayError

__all__ = [
    "ClusterConfig",
    "KubeAPI",
    "KubeClient",
    "KubeError",
    "KubeObject",
    "find_cluster",
]

KubeObject = dict[str, Any]
T = TypeVar("T")

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "triggergate"


class KubeError(GatewayError):
    """A Kubernetes API call failed.

    ``status`` is the HTTP status (0 when no response came), ``reason`` the API's ``Status.reason``
    (``NotFound``, ``AlreadyExists``, ``Conflict``, ``Forbidden``, ``Invalid``, ...) or the kind of
    transport failure, ``message`` the API's message. ``retry_after`` is in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        reason: str = "",
        retriable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.retriable = retriable
        self.retry_after = retry_after

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason != "Conflict"

    @property
    def conflict(self) -> bool:
        """A stale ``resourceVersion`` (409 Conflict): read the object again and retry the change."""
        return self.status == 409 and self.reason == "Conflict"

    def __str__(self) -> str:
        head = f"{self.status} {self.reason}".strip() if self.status else self.reason
        return f"{head}: {self.message}" if head else self.message


class KubeAPI(Protocol):
    """What trigger executors need from Kubernetes. ``namespace`` is ignored for cluster-scoped kinds."""

    description: str
    dry_run: bool

    async def is_namespaced(self, api_version: str, kind: str) -> bool: ...

    async def get(self, api_version: str, kind: str, name: str, namespace: str) -> KubeObject: ...

    async def list(
        self, api_version: str, kind: str, namespace: str, *, label_selector: str | None = None
    ) -> list[KubeObject]: ...

    async def create(self, obj: Mapping[str, Any], namespace: str) -> KubeObject: ...

    async def replace(self, obj: Mapping[str, Any], namespace: str) -> KubeObject: ...

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str,
        body: Any,
        content_type: str = MERGE_PATCH,
    ) -> KubeObject: ...

    async def delete(self, api_version: str, kind: str, name: str, namespace: str) -> None: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Where the cluster is: ``in-cluster`` (service account) or a kubeconfig (``path`` may list
    several files separated by ``:``, as ``$KUBECONFIG`` does) with an optional ``context``."""

    source: str  # "in-cluster" | "kubeconfig"
    path: str | None = None
    context: str | None = None

    def describe(self) -> str:
        if self.source == "in-cluster":
            return "in-cluster service account"
        return f"kubeconfig {self.path}" + (f" (context {self.context})" if self.context else "")


def find_cluster(
    kubeconfig: Path | None = None,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> ClusterConfig | None:
    """The cluster to use, or None when none is configured.

    Order: an explicit ``kubeconfig``; the pod's service account (``KUBERNETES_SERVICE_HOST`` and a
    token file) unless a ``context`` was asked for; ``$KUBECONFIG``; ``~/.kube/config``. Raises
    :class:`KubeError` when ``kubeconfig`` or ``context`` is given and no kubeconfig file exists.
    """
    env = os.environ if environ is None else environ
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise KubeError(f"--kubeconfig {kubeconfig}: no such file", reason="ConfigError")
        return ClusterConfig("kubeconfig", str(kubeconfig), context)
    if context is None and env.get("KUBERNETES_SERVICE_HOST") and (service_account_dir / "token").is_file():
        return ClusterConfig("in-cluster")
    paths = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    existing = [p for p in paths if Path(p).expanduser().is_file()]
    if existing:
        return ClusterConfig("kubeconfig", os.pathsep.join(existing), context)
    home = env.get("HOME")
    default = Path(home) / ".kube" / "config" if home else Path.home() / ".kube" / "config"
    if not paths and default.is_file():
        return ClusterConfig("kubeconfig", str(default), context)
    if context is not None:
        raise KubeError(
            f"--kube-context {context} was given but there is no kubeconfig "
            "(set KUBECONFIG, pass --kubeconfig or create ~/.kube/config)",
            reason="ConfigError",
        )
    return None


def _load_configuration(cluster: ClusterConfig) -> Any:
    from kubernetes import client
    from kubernetes import config as kube_config

    config: Any = kube_config  # the loaders are untyped
    configuration = client.Configuration()
    try:
        if cluster.source == "in-cluster":
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=cluster.path,
                context=cluster.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (config.ConfigException, OSError, ValueError) as exc:
        raise KubeError(f"cannot use {cluster.describe()}: {exc}", reason="ConfigError") from exc
    return configuration


# --------------------------------------------------------------------------- error translation


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), None if absent/invalid."""
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
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _status_body(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.strip().startswith("{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def translate(exc: BaseException, what: str) -> KubeError:
    """The :class:`KubeError` for a library exception raised while doing ``what``."""
    import urllib3
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException
    from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError

    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        body = _status_body(exc.body)
        reason = str(body.get("reason") or exc.reason or "")
        message = str(body.get("message") or (exc.body if isinstance(exc.body, str) else "") or exc.reason)
        headers = exc.headers or {}
        retry_after = retry_after_seconds(headers.get("Retry-After") or headers.get("retry-after"))
        retriable = status in RETRIABLE_STATUS or status >= 500
        return KubeError(
            f"{what}: {message}".strip(),
            status=status,
            reason=reason.replace(" ", "") if status else reason,
            retriable=retriable,
            retry_after=retry_after,
        )
    if isinstance(exc, ResourceNotFoundError | ResourceNotUniqueError):
        return KubeError(
            f"{what}: the cluster does not serve this apiVersion and kind; is its "
            "CustomResourceDefinition installed, and are apiVersion and kind spelled right?",
            reason="UnknownKind",
        )
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3.exceptions.TimeoutError) and not isinstance(
        exc, urllib3.exceptions.NewConnectionError
    ):
        return KubeError(f"{what}: timed out ({exc})", reason="Timeout", retriable=True)
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return KubeError(
            f"{what}: cannot reach the API server ({exc})", reason="ConnectionError", retriable=True
        )
    if isinstance(exc, ConfigException):
        return KubeError(f"{what}: {exc}", reason="ConfigError")
    if isinstance(exc, OSError):
        return KubeError(f"{what}: {exc}", reason="OSError", retriable=True)
    return KubeError(f"{what}: {exc!r}", reason=type(exc).__name__)


# --------------------------------------------------------------------------- the client


class KubeClient:
    """:class:`KubeAPI` over a real API server, through the official client's ``DynamicClient``.

    The connection (and API discovery) is made on first use, so a cluster that is down at start
    delays the firings (retriable errors) instead of stopping the gateway. ``workers`` bounds the
    concurrent API calls; ``request_timeout`` (seconds) bounds each.
    """

    dry_run = False

    def __init__(self, cluster: ClusterConfig, *, workers: int = 8, request_timeout: float = 30.0) -> None:
        self.cluster = cluster
        self.description = f"Kubernetes API via {cluster.describe()}"
        self.request_timeout = request_timeout
        self._configuration = _load_configuration(cluster)
        self._configuration.retries = False  # the firing runner owns retries
        self._configuration.connection_pool_maxsize = workers
        self.description = f"Kubernetes API at {self._configuration.host} ({cluster.describe()})"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube")
        self._lock = threading.Lock()
        self._cache_dir = tempfile.mkdtemp(prefix="triggergate-kube-")
        self._api_client: Any = None
        self._dynamic: Any = None
        self._resources: dict[tuple[str, str], Any] = {}
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------------

    def _client(self) -> Any:
        with self._lock:
            if self._dynamic is None:
                from kubernetes import client
                from kubernetes import dynamic as kube_dynamic

                dynamic_module: Any = kube_dynamic  # untyped
                DynamicClient = dynamic_module.DynamicClient
                api_client: Any = client.ApiClient(self._configuration)
                try:
                    self._dynamic = DynamicClient(
                        api_client, cache_file=os.path.join(self._cache_dir, "discovery.json")
                    )
                except BaseException:
                    api_client.close()
                    raise
                self._api_client = api_client
            return self._dynamic

    def _resource(self, api_version: str, kind: str) -> Any:
        dynamic = self._client()
        with self._lock:
            found = self._resources.get((api_version, kind))
            if found is None:
                from kubernetes.dynamic.exceptions import ResourceNotFoundError

                try:
                    found = dynamic.resources.get(api_version=api_version, kind=kind)
                except ResourceNotFoundError as exc:
                    raise KubeError(
                        f"the cluster does not serve kind {kind} in apiVersion {api_version}; is its "
                        "CustomResourceDefinition installed, and are apiVersion and kind spelled right?",
                        reason="UnknownKind",
                    ) from exc
                self._resources[(api_version, kind)] = found
            return found

    async def _run(self, what: str, fn: Callable[[], T]) -> T:
        if self._closed:
            raise KubeError(f"{what}: the Kubernetes client is closed", reason="Closed")

        def call() -> T:
            try:
                return fn()
            except BaseException as exc:
                error = translate(exc, what)
                if error is exc:
                    raise
                raise error from exc

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def _request(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> KubeObject:
        response = method(*args, serialize=False, _request_timeout=self.request_timeout, **kwargs)
        data = response.data
        result: KubeObject = json.loads(data) if data else {}
        return result

    def _namespace(self, resource: Any, namespace: str) -> str | None:
        return namespace if resource.namespaced else None

    # -- KubeAPI -------------------------------------------------------------------------------

    async def is_namespaced(self, api_version: str, kind: str) -> bool:
        return bool(
            await self._run(
                f"discover {kind} {api_version}", lambda: self._resource(api_version, kind).namespaced
            )
        )

    async def get(self, api_version: str, kind: str, name: str, namespace: str) -> KubeObject:
        def call() -> KubeObject:
            resource = self._resource(api_version, kind)
            dynamic = self._client()
            return self._request(
                dynamic.get, resource, name=name, namespace=self._namespace(resource, namespace)
            )

        return await self._run(f"get {kind} {_where(namespace, name)}", call)

    async def list(
        self, api_version: str, kind: str, namespace: str, *, label_selector: str | None = None
    ) -> list[KubeObject]:
        def call() -> list[KubeObject]:
            resource = self._resource(api_version, kind)
            result = self._request(
                self._client().get,
                resource,
                namespace=self._namespace(resource, namespace),
                label_selector=label_selector,
            )
            return list(result.get("items") or [])

        return await self._run(f"list {kind} in {namespace or 'the cluster'}", call)

    async def create(self, obj: Mapping[str, Any], namespace: str) -> KubeObject:
        api_version, kind, name = _identity(obj)

        def call() -> KubeObject:
            resource = self._resource(api_version, kind)
            return self._request(
                self._client().create,
                resource,
                body=dict(obj),
                namespace=self._namespace(resource, namespace),
            )

        return await self._run(f"create {kind} {_where(namespace, name)}", call)

    async def replace(self, obj: Mapping[str, Any], namespace: str) -> KubeObject:
        api_version, kind, name = _identity(obj)

        def call() -> KubeObject:
            resource = self._resource(api_version, kind)
            return self._request(
                self._client().replace,
                resource,
                body=dict(obj),
                name=name,
                namespace=self._namespace(resource, namespace),
            )

        return await self._run(f"update {kind} {_where(namespace, name)}", call)

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str,
        body: Any,
        content_type: str = MERGE_PATCH,
    ) -> KubeObject:
        def call() -> KubeObject:
            resource = self._resource(api_version, kind)
            extra = {"field_manager": FIELD_MANAGER} if content_type == APPLY_PATCH else {}
            return self._request(
                self._client().patch,
                resource,
                body=body,
                name=name,
                namespace=self._namespace(resource, namespace),
                content_type=content_type,
                **extra,
            )

        return await self._run(f"patch {kind} {_where(namespace, name)}", call)

    async def delete(self, api_version: str, kind: str, name: str, namespace: str) -> None:
        def call() -> None:
            resource = self._resource(api_version, kind)
            self._request(
                self._client().delete, resource, name=name, namespace=self._namespace(resource, namespace)
            )

        await self._run(f"delete {kind} {_where(namespace, name)}", call)

    async def close(self) -> None:
        """Wait for running calls, then release connections and the discovery cache."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, partial(self._pool.shutdown, wait=True))
        if self._api_client is not None:
            self._api_client.close()
        shutil.rmtree(self._cache_dir, ignore_errors=True)


def _where(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        raise KubeError("the object needs apiVersion and kind", status=400, reason="BadRequest")
    name = (obj.get("metadata") or {}).get("name") or ""
    return api_version, kind, str(name)
