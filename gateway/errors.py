"""The error tree of the gateway.

    GatewayError
     +-- ConfigError            manifests or settings are invalid (carries every problem found)
     +-- BusError               the bus could not make an event durable or deliver it (retriable)
     +-- TriggerError           a trigger attempt failed; ``retriable`` says whether to try again
     +-- StoreError             the state store (firings, dead letters) failed

Library exceptions (httpx, sqlite3, ...) are translated into these at the adapter that calls the
library, with the cause chained, so that callers decide on ``retriable`` alone.
"""

from __future__ import annotations


class GatewayError(Exception):
    retriable: bool = False


class ConfigError(GatewayError):
    """Invalid configuration. ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class BusError(GatewayError):
    retriable = True


class StoreError(GatewayError):
    retriable = True


class TriggerError(GatewayError):
    """A failed trigger attempt.

    ``retriable`` drives the retry loop; ``retry_after`` (seconds) overrides the backoff delay when
    the receiver asked for one (HTTP ``Retry-After``).
    """

    def __init__(self, message: str, *, retriable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.retry_after = retry_after
