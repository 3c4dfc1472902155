"""The trigger executor contract.

An executor carries out one attempt of a firing and either returns a short result summary (no
secrets: it is stored for lineage) or raises ``TriggerError`` whose ``retriable`` flag tells the
firing runner whether another attempt can help.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gateway.errors import GatewayError
from sensors.engine import Fire
from sensors.spec import Trigger

if TYPE_CHECKING:
    import httpx

    from gateway.k8s import KubeAPI
    from gateway.secrets import SecretStore


# --------------------------------------------------------------------------- the http trigger's client
#
#     HttpRequestError            no HTTP response: connection refused or broken, DNS, TLS (retriable)
#      +-- HttpTimeoutError       no complete response within the timeout (retriable)
#      +-- HttpInvalidRequest     the request cannot be sent as built, e.g. CR/LF in a header (not retriable)
#           +-- HttpURLError      the URL cannot be requested: no host, bad port
#                +-- HttpSchemeError   no scheme, or not http/https
#
# Implementations (``gateway.triggers.http``: ``AiohttpClient``, ``HttpxClient``) translate their
# library's exceptions into these, with the cause chained. A response of any status is not an error.


class HttpRequestError(GatewayError):
    """The request got no HTTP response; the message says why (the library's words)."""

    retriable = True


class HttpTimeoutError(HttpRequestError):
    """No complete response within the request's timeout."""


class HttpInvalidRequest(HttpRequestError):
    """The request cannot be sent as it was built; another attempt cannot help."""

    retriable = False


class HttpURLError(HttpInvalidRequest):
    """The URL cannot be requested as it is."""


class HttpSchemeError(HttpURLError):
    """The URL has no scheme, or one other than ``http``/``https``."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete response. ``headers`` is looked up without regard to case (``headers["retry-after"]``)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body as text: in the ``charset`` of ``Content-Type`` when it names one, else UTF-8."""
        charset = "utf-8"
        for param in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip(' "'):
                charset = value.strip(' "')
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")


class HttpClient(Protocol):
    """What the ``http`` trigger needs of an HTTP client: one request, complete response, no redirects
    followed. Raises only ``HttpRequestError`` (and its subclasses) when no response arrives."""

    async def request(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,  # noqa: ASYNC109 - the client enforces it (aiohttp/httpx); it is the spec's timeout
    ) -> HttpResponse:
        """Send ``body`` (nothing when empty) with ``headers``; ``timeout`` seconds for the whole
        exchange, connecting and waiting for a pooled connection included."""
        ...

    async def close(self) -> None:
        """Close the pooled connections; the client is not used afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class TriggerContext:
    """What executors may use: the sensor's namespace, secrets, a shared HTTP client and, for the
    Kubernetes triggers, the Kubernetes API (a cluster, or the outbox without one).

    ``http_client`` is the ``http`` trigger's client (the runtime's ``AiohttpClient``); without one
    the trigger sends through ``http`` (an ``HttpxClient`` around it), as it did before.
    """

    sensor: str
    namespace: str
    secrets: SecretStore
    http: httpx.AsyncClient
    kube: KubeAPI | None = None
    http_client: HttpClient | None = None


class TriggerExecutor(ABC):
    kind: str = ""

    def __init__(self, trigger: Trigger, context: TriggerContext) -> None:
        self.trigger = trigger
        self.context = context

    @abstractmethod
    async def execute(self, fire: Fire) -> str:
        """Carry out one attempt. Return a short summary; raise ``TriggerError`` on failure."""

    async def preflight(self) -> list[str]:
        """Load-time checks against the systems the trigger talks to; returns warnings to log.

        Called once at start when those systems are reachable. Most executors check nothing.
        """
        return []

    async def close(self) -> None:  # noqa: B027 - optional hook, most executors hold nothing
        """Release resources held by this executor."""
