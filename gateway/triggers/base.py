"""The trigger executor contract.

An executor carries out one attempt of a firing and either returns a short result summary (no
secrets: it is stored for lineage) or raises ``TriggerError`` whose ``retriable`` flag tells the
firing runner whether another attempt can help.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sensors.engine import Fire
from sensors.spec import Trigger

if TYPE_CHECKING:
    import httpx

    from gateway.k8s import KubeAPI
    from gateway.secrets import SecretStore


@dataclass(frozen=True, slots=True)
class TriggerContext:
    """What executors may use: the sensor's namespace, secrets, a shared HTTP client and, for the
    Kubernetes triggers, the Kubernetes API (a cluster, or the outbox without one)."""

    sensor: str
    namespace: str
    secrets: SecretStore
    http: httpx.AsyncClient
    kube: KubeAPI | None = None


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
