"""Errors from the Trigger.dev API, shaped like the SDK's (``@trigger.dev/core`` ``apiClient/errors.js``).

TriggerApiError                 .status (int, or None when no response arrived) and .message
├── BadRequestError             400
├── AuthenticationError         401
├── PermissionDeniedError       403
├── TriggerNotFoundError        404 (the SDK's NotFoundError; renamed so it is not
│                               mistaken for ``enrichment_app.errors.NotFoundError``)
├── ConflictError               409
├── UnprocessableEntityError    422
├── RateLimitError              429
├── InternalServerError         5xx
├── ApiConnectionError          no response: network failure after the retries
├── RealtimeUnavailableError    a realtime feed or stream kept failing with errors the SDK
│                               retries forever, for longer than the caller allows
└── ProtocolError               a response we cannot decode (also a ValueError); the pure
    │                           decoders raise it, for a body, header, row or packet
    └── ShapeProtocolError      one that breaks the Electric shape protocol (``shapes``)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from enrichment_app.errors import EnrichmentAppError

if TYPE_CHECKING:
    import httpx


class TriggerApiError(EnrichmentAppError):
    """A Trigger.dev API call failed. ``status`` is None when no HTTP response arrived."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.headers: dict[str, str] = dict(headers or {})
        fields = body if isinstance(body, dict) else {}
        self.code: Any = fields.get("code")
        self.param: Any = fields.get("param")
        self.type: Any = fields.get("type")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"


class BadRequestError(TriggerApiError):
    """400: the request was malformed."""


class AuthenticationError(TriggerApiError):
    """401: the key or token is missing, invalid or expired."""


class PermissionDeniedError(TriggerApiError):
    """403: the token is valid but its scopes do not cover the resource."""


class TriggerNotFoundError(TriggerApiError):
    """404: the task, run or stream does not exist (for this environment)."""


class ConflictError(TriggerApiError):
    """409: a conflict the SDK retries (lock timeout)."""


class UnprocessableEntityError(TriggerApiError):
    """422: the server refused the request (e.g. invalid delay, completed run)."""


class RateLimitError(TriggerApiError):
    """429: rate limited; ``x-ratelimit-reset`` holds the reset time in Unix milliseconds."""


class InternalServerError(TriggerApiError):
    """5xx: the server failed."""


class ApiConnectionError(TriggerApiError):
    """No HTTP response: the connection failed (after the SDK's retries)."""

    def __init__(self, message: str = "Connection error.") -> None:
        super().__init__(message, status=None)


class RealtimeUnavailableError(TriggerApiError):
    """Realtime kept failing (429, 5xx, network) for longer than ``give_up_after`` seconds.

    ``status`` is the last HTTP status, or None if the last failure had no response.
    """


class ProtocolError(TriggerApiError, ValueError):
    """A response that breaks the wire protocol: a body, header, run row or packet we cannot decode.

    The pure decoders (``shapes``, ``runs``, ``packets``, ``tokens``) raise it without a status;
    whatever the input, they raise nothing else (``tests/fuzz`` holds them to that).
    """


_BY_STATUS: dict[int, type[TriggerApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: TriggerNotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_message(status: int, body: Any, text: str | None) -> str:
    """The SDK's ``ApiError.makeMessage``: ``body.error`` (stringified if not a string), else "<status> <text>"."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        inner = error["message"]
        return inner if isinstance(inner, str) else json.dumps(inner)
    if isinstance(error, str) and error:
        return error
    if error:
        return json.dumps(error)
    if text:
        return f"{status} {text}"
    return f"{status} status code (no body)"


def error_from_response(
    status: int, body: Any, text: str | None, headers: Mapping[str, str] | None = None
) -> TriggerApiError:
    """The SDK's ``ApiError.generate``: pick the subclass for the status."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else TriggerApiError
    return cls(error_message(status, body, text), status=status, body=body, headers=headers)


def json_or_none(response: httpx.Response) -> Any:
    """The response's JSON body, or None if it has none."""
    try:
        return response.json()
    except ValueError:
        return None


def error_for(response: httpx.Response, default_text: str | None = None) -> TriggerApiError:
    """The SDK's error for a failed response."""
    body = json_or_none(response)
    text = None if body is not None else (response.text or default_text)
    return error_from_response(response.status_code, body, text, response.headers)
