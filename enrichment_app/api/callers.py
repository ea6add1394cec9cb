"""Who calls the REST API, and the wrapper every route goes through (``Gate.endpoint``).

Authentication and access: every route requires ``Authorization: Bearer <token>``, a personal
API token (``services/api_tokens.py``) or the service key ``ENRICHMENT_API_KEY`` (compared in
constant time), and asks the one access rule (``services/access.authorize``) before it does
anything: each route is declared with its action (``endpoint(handler, Action.…)``) and calls
``caller.authorize(table_id=…)``; a route that returns without having asked is answered 500
and logged, so a forgotten check fails closed. Before the owner account exists, a request
without credentials gets 503 ``setup_pending`` (unless the service key is configured: there
is a way in, so it is a 401).

Status codes: 400 for a request we refuse, 401 without a valid token, 403 for a role too low
for the action, 404 for an unknown table, cell or job (or one in another workspace), 409 when
every selected cell is already queued or running (``cells_busy``) or while another request
holds the same idempotency key (``idempotency_key_in_progress``), 413
for a body over the cap, 415 for a body that is not JSON, 422 for an idempotency key reused
with a different request or a column config the enricher refuses, 429 over a rate limit, 500
for anything unexpected (logged, never described), 503 before set-up.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from enrichment_app.api.errors import NO_STORE, ApiError, api_error_response, error_response
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import utcnow
from enrichment_app.errors import (
    AccessDenied,
    CellsBusyError,
    CsvImportError,
    InUseError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
    SignInRequired,
)
from enrichment_app.rate_limits import Limit, client_key
from enrichment_app.runtime import Runtime
from enrichment_app.services import accounts, api_tokens
from enrichment_app.services.access import (
    Action,
    Grant,
    Principal,
    ServicePrincipal,
    TokenPrincipal,
    authorize,
)

logger = logging.getLogger(__name__)

RuntimeProvider = Callable[[], Runtime]
Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, "Caller"], Awaitable[Response]]
TableHandler = Callable[["Caller", Request], Awaitable[Response]]

REALM = "enrichment_app"


UNAUTHORIZED_HINT = (
    "send Authorization: Bearer <token> with a personal API token (Settings → API tokens on"
    " the page) or the service key ENRICHMENT_API_KEY."
)


def _unauthorized(message: str, *, invalid: bool) -> ApiError:
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if invalid else "")
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def _bearer(request: Request) -> str | None:
    """The bearer token sent, None when no ``Authorization`` header; 401 for another scheme."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized(
            f"The Authorization header is not a bearer token: {UNAUTHORIZED_HINT}", invalid=True
        )
    return token.strip()


def _is_service_key(token: str, api_key: SecretStr | None) -> bool:
    """Whether ``token`` is ``ENRICHMENT_API_KEY``, compared in constant time (on bytes)."""
    if api_key is None:
        return False
    expected = api_key.get_secret_value().encode()
    given = token.encode()
    return secrets.compare_digest(given, expected)


@dataclass
class Caller:
    """Who sent a request, and the route's action: ``authorize`` asks the access rule."""

    runtime: Runtime
    principal: Principal
    action: Action
    asked: bool = False

    @property
    def client(self) -> str:
        """Whom the rate limits count: the person behind a token (all their tokens together),
        or the service key."""
        match self.principal:
            case TokenPrincipal(user_id=user_id):
                return client_key("user", str(user_id))
            case _:
                return client_key("service", "ENRICHMENT_API_KEY")

    async def authorize(
        self,
        *,
        table_id: int | None = None,
        job_id: int | None = None,
        workspace_id: int | None = None,
        action: Action | None = None,
    ) -> Grant:
        """The grant for the route's action (or ``action``) on the target; refuses otherwise."""
        self.asked = True  # even when it refuses: the route did ask
        return await in_session(
            self.runtime.open_session,
            authorize,
            self.principal,
            action or self.action,
            table_id=table_id,
            job_id=job_id,
            workspace_id=workspace_id,
        )

    async def authorize_any(self) -> None:
        """For a route about no workspace (the OpenAPI document): any valid token will do."""
        self.asked = True


def json_response(body: dict[str, Any], status_code: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers={**NO_STORE, **headers})


@dataclass
class Gate:
    """What every route goes through: the caller behind the token, the rate limits, and the
    errors sent in the API's JSON shape."""

    runtime_provider: RuntimeProvider

    async def _caller(self, request: Request, action: Action) -> Caller:
        """The principal behind the request's bearer token (401/503 before the route runs)."""
        runtime = self.runtime_provider()
        token = _bearer(request)
        if token is None:
            no_key = runtime.settings.enrichment_api_key is None
            if no_key and await in_session(runtime.open_session, accounts.setup_pending):
                raise ApiError(
                    503,
                    "setup_pending",
                    "The app is not set up yet: open it in a browser to create the owner"
                    " account. Until then only the service key (ENRICHMENT_API_KEY) is accepted.",
                    headers={"Retry-After": "60"},
                )
            raise _unauthorized(f"This API needs a token: {UNAUTHORIZED_HINT}", invalid=False)
        principal: Principal | None
        if _is_service_key(token, runtime.settings.enrichment_api_key):
            principal = ServicePrincipal()
        else:
            principal = await in_transaction(
                runtime.open_session,
                api_tokens.resolve_token,
                box=runtime.secret_box,
                token=token,
                now=utcnow(),
            )
        if principal is None:
            address = client_key("ip", request.client.host if request.client else "")
            self._limit(runtime, Limit.API, address)  # guessing tokens is rate-limited too
            raise _unauthorized(
                f"The token is not valid (revoked, or mistyped): {UNAUTHORIZED_HINT}", invalid=True
            )
        caller = Caller(runtime=runtime, principal=principal, action=action)
        self._limit(runtime, Limit.API, caller.client)
        return caller

    @staticmethod
    def _limit(runtime: Runtime, limit: Limit, client: str) -> None:
        refused = runtime.rate_limits.hit(limit, client)
        if refused is None:
            return
        what = "API calls" if limit is Limit.API else "job starts"
        setting = "API_RATE_LIMIT" if limit is Limit.API else "JOB_START_RATE_LIMIT"
        raise ApiError(
            429,
            "rate_limited",
            f"Too many {what} from this client (the limit is {refused.rate}, {setting}); "
            f"retry in {refused.retry_after} s.",
            headers={"Retry-After": str(refused.retry_after)},
        )

    def job_start(self, caller: Caller) -> None:
        """Count a job start against the caller's ``JOB_START_RATE_LIMIT``."""
        self._limit(caller.runtime, Limit.JOB_START, caller.client)

    def bind(self, handler: TableHandler) -> Handler:
        """A route handler of ``api/tables.py`` (it asks ``caller.authorize`` itself)."""

        async def bound(request: Request, caller: Caller) -> Response:
            return await handler(caller, request)

        bound.__name__ = handler.__name__
        bound.__doc__ = handler.__doc__
        return bound

    def endpoint(self, handler: Handler, action: Action) -> Endpoint:
        """Wrap a route: resolve the caller, run it, send every error as the JSON error shape.

        ``action`` is what the route does (``services/access.Action``); the handler must call
        ``caller.authorize(...)`` on its target before acting, or the request fails closed.
        """

        async def wrapped(request: Request) -> Response:
            try:
                caller = await self._caller(request, action)
                response = await handler(request, caller)
            except ApiError as exc:
                return api_error_response(exc)
            except SignInRequired as exc:
                return api_error_response(_unauthorized(exc.message, invalid=True))
            except AccessDenied as exc:
                return error_response(403, "forbidden", exc.message)
            except NotFoundError as exc:
                return error_response(404, "not_found", exc.message)
            except CellsBusyError as exc:
                return error_response(409, "cells_busy", exc.message)
            except InUseError as exc:
                return error_response(409, "in_use", exc.message)
            except QuotaExceededError as exc:
                return error_response(
                    429,
                    "daily_cap_reached",
                    exc.message,
                    headers={"Retry-After": str(exc.retry_after)},
                )
            except CsvImportError as exc:
                return error_response(400, "invalid_csv", exc.message)
            except InvalidInputError as exc:
                return error_response(400, "invalid_input", exc.message)
            except Exception:
                logger.exception("%s %s failed", request.method, request.url.path)
                return error_response(
                    500, "internal_error", "Something went wrong on the server; it has been logged."
                )
            if not caller.asked:
                logger.error("%s %s never asked the access rule", request.method, request.url.path)
                return error_response(
                    500, "internal_error", "Something went wrong on the server; it has been logged."
                )
            return response

        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        wrapped.action = action  # type: ignore[attr-defined]
        return wrapped
