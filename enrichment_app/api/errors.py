"""API errors and the one JSON shape every error response has: ``{"error": {"message", "code"}}``.

Messages are written for the API client. They never carry a traceback, a setting or a secret:
unexpected exceptions become a generic 500 and are logged on the server only.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store"}


class ApiError(Exception):
    """A refusal with an HTTP status, a stable machine-readable code and a message for people."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        return f"{self.status_code} {self.code}: {self.message}"


def error_response(
    status_code: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "code": code}},
        status_code=status_code,
        headers={**NO_STORE, **(headers or {})},
    )


def api_error_response(exc: ApiError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, headers=exc.headers)
