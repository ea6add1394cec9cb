"""The REST API: a plain Starlette app the Reflex backend mounts itself under (``api_transformer``).

Routes (all under ``/api``, documented in ``openapi.py``):

* ``POST /api/tables/{table_id}/enrich``: start a job on cells, 202 with the seed's
  ``EnrichTableResponse``; honours ``Idempotency-Key`` (see ``services/idempotency.py``).
* ``GET /api/jobs/{job_id}``: the job, for polling clients.
* ``POST /api/jobs/{job_id}/cancel``: cancel it; harmless on a finished job.
* ``GET /api/openapi.json``: the OpenAPI document.

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
with a different request, 500 for anything unexpected (logged, never described), 503 before
set-up.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from enrichment_app.api import table_edits, tables, view_routes
from enrichment_app.api.auth_routes import auth_routes
from enrichment_app.api.errors import NO_STORE, ApiError, api_error_response, error_response
from enrichment_app.api.openapi import openapi_document
from enrichment_app.api.parsing import (
    EnrichRequest,
    idempotency_key,
    max_body_bytes,
    parse_enrich_request,
    path_id,
    read_json_body,
)
from enrichment_app.db.models import EnrichmentJob
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import utcnow
from enrichment_app.errors import (
    AccessDenied,
    CellsBusyError,
    CsvImportError,
    IdempotencyClaimLostError,
    InUseError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
    SignInRequired,
)
from enrichment_app.rate_limits import Limit, client_key
from enrichment_app.runtime import Runtime
from enrichment_app.services import accounts, api_tokens, audit, idempotency
from enrichment_app.services.access import (
    Action,
    Grant,
    Principal,
    ServicePrincipal,
    TokenPrincipal,
    authorize,
)
from enrichment_app.services.enrichment import cancel_enrichment, read_job, start_enrichment
from enrichment_app.services.jobs import JobView
from enrichment_app.services.view_runs import view_cells
from enrichment_app.trigger import TriggerApiError

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


def _json(body: dict[str, Any], status_code: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers={**NO_STORE, **headers})


@dataclass
class _Api:
    """The route handlers, sharing the runtime provider."""

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

    async def enrich_table(self, request: Request, caller: Caller) -> Response:
        runtime = caller.runtime
        table_id = path_id(request, "table_id", what="Table")
        grant = await caller.authorize(table_id=table_id)
        max_cells = runtime.settings.max_cells_per_job
        payload = await read_json_body(request, limit=max_body_bytes(max_cells))
        enrich = parse_enrich_request(payload, max_cells=max_cells)
        return await self._enrich(caller, request, grant, table_id=table_id, enrich=enrich)

    async def enrich_view(self, request: Request, caller: Caller) -> Response:
        """Run the view: one column for every row a view shows (``api/view_routes.py``)."""
        runtime = caller.runtime
        table_id = path_id(request, "table_id", what="Table")
        grant = await caller.authorize(table_id=table_id)
        payload = await read_json_body(request, limit=view_routes.VIEW_BODY_BYTES)
        column_id, view = view_routes.parse_view_run(payload)
        run = await in_session(
            runtime.open_session,
            view_cells,
            table_id=table_id,
            view=view,
            column_id=column_id,
            max_cells=runtime.settings.max_cells_per_job,
        )
        view_run = EnrichRequest(cells=(), ranges=(run.ranges,))
        return await self._enrich(caller, request, grant, table_id=table_id, enrich=view_run)

    async def _enrich(
        self,
        caller: Caller,
        request: Request,
        grant: Grant,
        *,
        table_id: int,
        enrich: EnrichRequest,
    ) -> Response:
        """Start a job on ``enrich``'s cells and columns, once per ``Idempotency-Key``."""
        runtime = caller.runtime
        key = idempotency_key(request)
        self.job_start(caller)
        if key is None:
            return await self._start(runtime, grant, table_id=table_id, enrich=enrich, claim=None)

        digest = idempotency.fingerprint(
            table_id=table_id, cells=enrich.cells, columns=enrich.columns, ranges=enrich.ranges
        )
        outcome = await idempotency.claim(
            runtime.open_session, key=key, fingerprint=digest, now=utcnow()
        )
        match outcome:
            case idempotency.Mismatch():
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was already used for a different request "
                    "(another table or other cells); use a new key.",
                )
            case idempotency.InProgress():
                raise ApiError(
                    409,
                    "idempotency_key_in_progress",
                    "A request with this Idempotency-Key is still in progress; retry shortly.",
                    headers={"Retry-After": "1"},
                )
            case idempotency.Replay(job_id=job_id, skipped_active=skipped):
                return await self._replay(runtime, job_id=job_id, skipped_active=skipped)
            case idempotency.Claimed(token=token):
                claim = (key, token)
                return await self._start(
                    runtime, grant, table_id=table_id, enrich=enrich, claim=claim
                )

    async def _start(
        self,
        runtime: Runtime,
        grant: Grant,
        *,
        table_id: int,
        enrich: EnrichRequest,
        claim: tuple[str, str] | None,
    ) -> Response:
        """Start the job; ``claim`` is the (key, token) of the request's Idempotency-Key claim.

        The audit log's entry and the key's binding are written in the job's own transaction."""
        log_run = audit.job_started(grant, table_id)

        def bind(session: Session, job: EnrichmentJob, skipped_active: int) -> None:
            log_run(session, job, skipped_active)
            if claim is None:
                return
            assert job.id is not None
            idempotency.bind(
                session=session,
                key=claim[0],
                token=claim[1],
                job_id=job.id,
                job_created_at=job.created_at,
                skipped_active=skipped_active,
            )

        try:
            started = await start_enrichment(
                open_session=runtime.open_session,
                runner=runtime.dispatcher,
                backend=runtime.backend,
                table_id=table_id,
                cells=enrich.cells,
                columns=enrich.columns,
                ranges=enrich.ranges,
                max_cells=runtime.settings.max_cells_per_job,
                on_created=bind,
                max_cells_per_day=runtime.settings.max_cells_per_day,
            )
        except IdempotencyClaimLostError as exc:  # a retry took the key over: it makes the job
            raise ApiError(
                409,
                "idempotency_key_in_progress",
                "A request with this Idempotency-Key is still in progress; retry shortly.",
                headers={"Retry-After": "1"},
            ) from exc
        except BaseException:
            if claim is not None:
                await in_transaction(
                    runtime.open_session, idempotency.release, key=claim[0], token=claim[1]
                )
            raise
        logger.info(
            "api: job %s on table %s: %d task(s), backend %s",
            started.job.id,
            table_id,
            started.task_count,
            started.dispatch.backend,
        )
        return _json(started.to_json(), 202)

    async def _replay(self, runtime: Runtime, *, job_id: int, skipped_active: int) -> Response:
        """The first response for this key again, with the job as it is now."""
        view, task_ids, task_count = await in_session(
            runtime.open_session, idempotency.replay, job_id=job_id
        )
        token = await self._fresh_token(runtime, view)
        body = {
            "job": view.to_json(),
            "taskIds": task_ids,
            "taskCount": task_count,
            "runId": view.run_id,
            "publicAccessToken": token,
            "fallbackReason": view.dispatch_error,
            "skippedActive": skipped_active,
        }
        return _json(body, 202, **{"Idempotent-Replayed": "true"})

    async def _fresh_token(self, runtime: Runtime, view: JobView) -> str | None:
        """A new run-scoped token for a replayed Trigger.dev job (tokens are never stored)."""
        trigger = runtime.trigger
        if trigger is None or view.run_id is None or view.is_final:
            return None
        try:
            return await trigger.public_token(view.run_id)
        except TriggerApiError as exc:
            logger.warning(
                "job %s: could not mint a token for run %s: %s", view.id, view.run_id, exc.message
            )
            return None

    async def get_job(self, request: Request, caller: Caller) -> Response:
        job_id = path_id(request, "job_id", what="Job")
        await caller.authorize(job_id=job_id)
        view = await read_job(open_session=caller.runtime.open_session, job_id=job_id)
        return _json({"job": view.to_json()})

    async def cancel_job(self, request: Request, caller: Caller) -> Response:
        runtime = caller.runtime
        job_id = path_id(request, "job_id", what="Job")
        grant = await caller.authorize(job_id=job_id)
        view = await read_job(open_session=runtime.open_session, job_id=job_id)
        if not view.is_final:
            view = await cancel_enrichment(
                open_session=runtime.open_session,
                runner=runtime.dispatcher,
                job_id=job_id,
                on_canceled=audit.job_canceled(grant, view.table_id),
            )
            logger.info("api: job %s canceled", job_id)
        return _json({"job": view.to_json()})

    async def openapi(self, _request: Request, caller: Caller) -> Response:
        await caller.authorize_any()
        return _json(openapi_document())


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (unknown path, wrong method) in the API's error shape."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {
        404: f"There is no API route at {request.url.path}; see /api/openapi.json.",
        405: f"{request.method} is not allowed on {request.url.path}; see /api/openapi.json.",
    }.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, code, message, headers=exc.headers)


def api_routes(api: _Api) -> list[BaseRoute]:
    def resource(path: str, **handlers: tuple[TableHandler, Action]) -> Route:
        """One route per path, whatever its methods, so that a 405 lists them all in Allow;
        each method is its own endpoint, declared with its action."""
        endpoints = {
            method.upper(): api.endpoint(api.bind(handler), action)
            for method, (handler, action) in handlers.items()
        }

        async def by_method(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await endpoints[method](request)

        by_method.actions = {m: e.action for m, e in endpoints.items()}  # type: ignore[attr-defined]
        return Route(path, by_method, methods=list(endpoints))

    return [
        resource(
            "/tables",
            get=(tables.list_tables, Action.VIEW),
            post=(tables.create_table, Action.CREATE_TABLE),
        ),
        resource("/tables/import", post=(tables.import_csv, Action.CREATE_TABLE)),
        resource("/tables/{table_id:int}", delete=(tables.delete_table, Action.DELETE_TABLE)),
        resource(
            "/tables/{table_id:int}/rows",
            get=(tables.list_rows, Action.VIEW),
            post=(tables.add_rows, Action.EDIT),
        ),
        resource(
            "/tables/{table_id:int}/rows/{row_id:int}",
            patch=(tables.edit_row, Action.EDIT),
            delete=(table_edits.delete_row, Action.EDIT),
        ),
        resource("/tables/{table_id:int}/columns", post=(tables.add_column, Action.EDIT_COLUMNS)),
        resource(
            "/tables/{table_id:int}/columns/{column_id:int}",
            delete=(tables.delete_column, Action.EDIT_COLUMNS),
            patch=(table_edits.change_column, Action.EDIT_COLUMNS),
        ),
        resource("/tables/{table_id:int}/export.csv", get=(tables.export_csv, Action.EXPORT)),
        Route(
            "/tables/{table_id:int}/enrich",
            api.endpoint(api.enrich_table, Action.RUN),
            methods=["POST"],
        ),
        Route(
            "/tables/{table_id:int}/enrich-view",
            api.endpoint(api.enrich_view, Action.RUN),
            methods=["POST"],
        ),
        Route("/jobs/{job_id:int}", api.endpoint(api.get_job, Action.VIEW), methods=["GET"]),
        Route(
            "/jobs/{job_id:int}/cancel",
            api.endpoint(api.cancel_job, Action.CANCEL),
            methods=["POST"],
        ),
        Route("/openapi.json", api.endpoint(api.openapi, Action.VIEW), methods=["GET"]),
    ]


def build_api(runtime_provider: RuntimeProvider) -> Starlette:
    """The API as a Starlette app; ``runtime_provider`` is called per request (lazily).

    Pass it to ``rx.App(api_transformer=...)``: Reflex mounts its own app under this one, so
    everything outside ``/api`` still reaches Reflex.
    """
    api = _Api(runtime_provider=runtime_provider)
    return Starlette(
        routes=[
            Mount("/api", routes=api_routes(api), name="api"),
            Mount("/auth", routes=auth_routes(runtime_provider), name="auth"),
        ],
        exception_handlers={HTTPException: _http_exception},
    )
