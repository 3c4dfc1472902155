"""``kind: Status`` error bodies, shaped the way kube-apiserver writes them.

Every failure the fake answers is an :class:`ApiError` carrying a ``Status`` dict; the HTTP layer turns it
into a JSON response with ``code`` as the HTTP status. The constructors below copy the message formats of
``k8s.io/apimachinery/pkg/api/errors`` (``NewNotFound``, ``NewAlreadyExists``, ``NewConflict``,
``NewInvalid``, ``NewForbidden``, ...), including the ``details.kind`` quirk: it holds the *resource*
(``workflows``) for most errors but the *Kind* (``Workflow``) for ``Invalid``.
"""

from __future__ import annotations

from typing import Any

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None, *, success: bool = False
) -> dict[str, Any]:
    """A ``v1.Status`` object. ``details`` keys with empty values are left out, as Go's omitempty does."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if success else "Failure",
    }
    if not success:
        body["message"] = message
        body["reason"] = reason
    if details:
        cleaned = {k: v for k, v in details.items() if v not in (None, "", [], {})}
        if cleaned:
            body["details"] = cleaned
    if not success:  # a Success Status from a delete carries no code
        body["code"] = code
    return body


class ApiError(Exception):
    """A request failed; ``status`` is the ``kind: Status`` body, ``headers`` extra response headers."""

    def __init__(self, status: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.headers = dict(headers or {})

    @property
    def code(self) -> int:
        return int(self.status["code"])


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        status_body(
            404,
            "NotFound",
            f'{_qualified(group, plural)} "{name}" not found',
            {"name": name, "group": group, "kind": plural},
        )
    )


def no_such_resource() -> ApiError:
    """What the server answers for a known group/version but an unknown resource or subresource."""
    return ApiError(status_body(404, "NotFound", "the server could not find the requested resource", {}))


def already_exists(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        status_body(
            409,
            "AlreadyExists",
            f'{_qualified(group, plural)} "{name}" already exists',
            {"name": name, "group": group, "kind": plural},
        )
    )


def conflict(group: str, plural: str, name: str, why: str) -> ApiError:
    return ApiError(
        status_body(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": {why}',
            {"name": name, "group": group, "kind": plural},
        )
    )


STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(group: str, kind: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid. ``causes`` are (field, cause reason, detail) triples, e.g.
    ``("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")``."""
    qualified_kind = f"{kind}.{group}" if group else kind
    details = "; ".join(f"{field}: {detail}" for field, _, detail in causes)
    if len(causes) > 1:
        details = "[" + ", ".join(f"{field}: {detail}" for field, _, detail in causes) + "]"
    return ApiError(
        status_body(
            422,
            "Invalid",
            f'{qualified_kind} "{name}" is invalid: {details}',
            {
                "name": name,
                "group": group,
                "kind": kind,
                "causes": [{"reason": r, "message": d, "field": f} for f, r, d in causes],
            },
        )
    )


def unprocessable(message: str) -> ApiError:
    """422 as ``NewGenericServerResponse`` builds it (e.g. a JSON patch that does not apply)."""
    return ApiError(
        status_body(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]},
        )
    )


def bad_request(message: str) -> ApiError:
    return ApiError(status_body(400, "BadRequest", message))


def forbidden(user: str, verb: str, group: str, plural: str, name: str, namespace: str | None) -> ApiError:
    who = f"{_qualified(group, plural.split('/')[0])}" + (f' "{name}"' if name else "")
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{who} is forbidden: User "{user}" cannot {verb} resource "{plural}" in API group "{group}" {where}'
    )
    return ApiError(
        status_body(403, "Forbidden", message, {"name": name, "group": group, "kind": plural.split("/")[0]})
    )


def unauthorized() -> ApiError:
    return ApiError(status_body(401, "Unauthorized", "Unauthorized"))


def method_not_allowed() -> ApiError:
    return ApiError(
        status_body(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
        )
    )


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        status_body(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(accepted)}",
            {},
        )
    )


def gone(message: str) -> ApiError:
    return ApiError(status_body(410, "Expired", message))


def injected(code: int, retry_after: int | None = None) -> dict[str, Any]:
    """The default body of a failure injected with ``FakeKubeAPI.fail_next`` (no ``body`` given)."""
    reason = REASONS.get(code, "Unknown" if code >= 400 else "")
    if code == 429:
        return status_body(
            429,
            reason,
            "Too many requests, please try again later.",
            {"retryAfterSeconds": retry_after},
        )
    if code == 500:
        return status_body(
            500,
            reason,
            "Internal error occurred: fake-k8s: injected failure",
            {"causes": [{"message": "fake-k8s: injected failure"}]},
        )
    return status_body(code, reason, f"fake-k8s: injected failure ({code} {reason})")
