"""The REST API: a plain Starlette app the Reflex backend mounts itself under (``api_transformer``).

Routes (all under ``/api``, documented in ``openapi.py``):

* ``POST /api/tables/{table_id}/enrich``: start a job on cells, 202 with the seed's
  ``EnrichTableResponse``; honours ``Idempotency-Key`` (see ``services/idempotency.py``).
* ``GET /api/jobs/{job_id}``: the job, for polling clients.
* ``POST /api/jobs/{job_id}/cancel``: cancel it; harmless on a finished job.
* ``GET /api/openapi.json``: the OpenAPI document.

Authentication: when ``ENRICHMENT_API_KEY`` is set, every route requires
``Authorization: Bearer <key>`` (compared in constant time). When it is unset the routes are
open, which is meant for local use; a warning is logged once.

Status codes: 400 for a request we refuse, 401, 404 for an unknown table, cell or job, 409 when
every selected cell is already queued or running (``cells_busy``) or while another request
holds the same idempotency key (``idempotency_key_in_progress``), 413
for a body over the cap, 415 for a body that is not JSON, 422 for an idempotency key reused
with a different request, 500 for anything unexpected (logged, never described).
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

from enrichment_app.api import tables
from enrichment_app.api.errors import NO_STORE, ApiError, api_error_response, error_response
from enrichment_app.api.openapi import openapi_document
from enrichment_app.api.parsing import (
    idempotency_key,
    max_body_bytes,
    parse_enrich_request,
    path_id,
    read_json_body,
)
from enrichment_app.db.models import EnrichmentJob
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import CellRef, utcnow
from enrichment_app.errors import (
    CellsBusyError,
    CsvImportError,
    IdempotencyClaimLostError,
    InUseError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
)
from enrichment_app.rate_limits import Limit, client_key
from enrichment_app.runtime import Runtime
from enrichment_app.services import idempotency
from enrichment_app.services.enrichment import cancel_enrichment, read_job, start_enrichment
from enrichment_app.services.jobs import JobView
from enrichment_app.trigger import TriggerApiError

logger = logging.getLogger(__name__)

RuntimeProvider = Callable[[], Runtime]
Endpoint = Callable[[Request], Awaitable[Response]]
TableHandler = Callable[[Runtime, Request], Awaitable[Response]]

REALM = "enrichment_app"


def _check_bearer(request: Request, api_key: SecretStr | None) -> None:
    """Refuse the request unless it carries the configured key (any request when none is set)."""
    if api_key is None:
        return
    header = request.headers.get("authorization")
    if header is None:
        raise ApiError(
            401,
            "unauthorized",
            "This API needs an API key: send Authorization: Bearer <ENRICHMENT_API_KEY>.",
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        )
    scheme, _, token = header.partition(" ")
    expected = api_key.get_secret_value().encode()
    given = token.strip().encode()
    if scheme.lower() != "bearer" or not given or not secrets.compare_digest(given, expected):
        raise ApiError(
            401,
            "unauthorized",
            "The API key is wrong: send Authorization: Bearer <ENRICHMENT_API_KEY>.",
            headers={
                "WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"',
            },
        )


def _bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header already checked by ``_check_bearer``."""
    return request.headers.get("authorization", "").partition(" ")[2].strip()


def _json(body: dict[str, Any], status_code: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers={**NO_STORE, **headers})


@dataclass
class _Api:
    """The route handlers, sharing the runtime provider."""

    runtime_provider: RuntimeProvider
    warned_open: bool = False

    def _runtime(self, request: Request) -> Runtime:
        runtime = self.runtime_provider()
        key = runtime.settings.enrichment_api_key
        if key is None and not self.warned_open:
            self.warned_open = True
            logger.warning(
                "ENRICHMENT_API_KEY is not set: the REST API under /api is open to anyone"
            )
        address = client_key("ip", request.client.host if request.client else "")
        try:
            _check_bearer(request, key)
        except ApiError:
            self._limit(runtime, Limit.API, address)  # guessing keys is rate-limited too
            raise
        client = address if key is None else client_key("key", _bearer_token(request))
        request.state.client = client
        self._limit(runtime, Limit.API, client)
        return runtime

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

    def job_start(self, request: Request, runtime: Runtime) -> None:
        """Count a job start against the client's ``JOB_START_RATE_LIMIT``."""
        self._limit(runtime, Limit.JOB_START, request.state.client)

    def bind(self, handler: TableHandler) -> Endpoint:
        """A route handler of ``api/tables.py``, given the runtime once the request passed the
        key and the rate limit."""

        async def bound(request: Request) -> Response:
            return await handler(self._runtime(request), request)

        bound.__name__ = handler.__name__
        bound.__doc__ = handler.__doc__
        return bound

    def endpoint(self, handler: Callable[[Request], Awaitable[Response]]) -> Endpoint:
        """Wrap a handler so that every error leaves as the JSON error shape."""

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return api_error_response(exc)
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

        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        return wrapped

    async def enrich_table(self, request: Request) -> Response:
        runtime = self._runtime(request)
        table_id = path_id(request, "table_id", what="Table")
        max_cells = runtime.settings.max_cells_per_job
        payload = await read_json_body(request, limit=max_body_bytes(max_cells))
        enrich = parse_enrich_request(payload, max_cells=max_cells)
        key = idempotency_key(request)
        self.job_start(request, runtime)
        if key is None:
            return await self._start(runtime, table_id=table_id, cells=enrich.cells, claim=None)

        digest = idempotency.fingerprint(table_id=table_id, cells=enrich.cells)
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
                    runtime, table_id=table_id, cells=enrich.cells, claim=claim
                )

    async def _start(
        self,
        runtime: Runtime,
        *,
        table_id: int,
        cells: tuple[CellRef, ...],
        claim: tuple[str, str] | None,
    ) -> Response:
        """Start the job; ``claim`` is the (key, token) of the request's Idempotency-Key claim."""

        def bind(session: Session, job: EnrichmentJob, skipped_active: int) -> None:
            assert claim is not None and job.id is not None
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
                cells=cells,
                max_cells=runtime.settings.max_cells_per_job,
                on_created=bind if claim is not None else None,
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
            len(started.task_ids),
            started.dispatch.backend,
        )
        return _json(started.to_json(), 202)

    async def _replay(self, runtime: Runtime, *, job_id: int, skipped_active: int) -> Response:
        """The first response for this key again, with the job as it is now."""
        view, task_ids = await in_session(runtime.open_session, idempotency.replay, job_id=job_id)
        token = await self._fresh_token(runtime, view)
        body = {
            "job": view.to_json(),
            "taskIds": task_ids,
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

    async def get_job(self, request: Request) -> Response:
        runtime = self._runtime(request)
        job_id = path_id(request, "job_id", what="Job")
        view = await read_job(open_session=runtime.open_session, job_id=job_id)
        return _json({"job": view.to_json()})

    async def cancel_job(self, request: Request) -> Response:
        runtime = self._runtime(request)
        job_id = path_id(request, "job_id", what="Job")
        view = await read_job(open_session=runtime.open_session, job_id=job_id)
        if not view.is_final:
            view = await cancel_enrichment(
                open_session=runtime.open_session, runner=runtime.dispatcher, job_id=job_id
            )
            logger.info("api: job %s canceled", job_id)
        return _json({"job": view.to_json()})

    async def openapi(self, request: Request) -> Response:
        self._runtime(request)
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
    def resource(path: str, **handlers: TableHandler) -> Route:
        """One route per path, whatever its methods, so that a 405 lists them all in Allow."""
        endpoints = {method.upper(): api.endpoint(api.bind(h)) for method, h in handlers.items()}

        async def by_method(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await endpoints[method](request)

        return Route(path, by_method, methods=list(endpoints))

    return [
        resource("/tables", get=tables.list_tables, post=tables.create_table),
        resource("/tables/import", post=tables.import_csv),
        resource("/tables/{table_id:int}", delete=tables.delete_table),
        resource("/tables/{table_id:int}/rows", get=tables.list_rows, post=tables.add_rows),
        resource("/tables/{table_id:int}/rows/{row_id:int}", patch=tables.edit_row),
        resource("/tables/{table_id:int}/columns", post=tables.add_column),
        resource("/tables/{table_id:int}/columns/{column_id:int}", delete=tables.delete_column),
        resource("/tables/{table_id:int}/export.csv", get=tables.export_csv),
        Route("/tables/{table_id:int}/enrich", api.endpoint(api.enrich_table), methods=["POST"]),
        Route("/jobs/{job_id:int}", api.endpoint(api.get_job), methods=["GET"]),
        Route("/jobs/{job_id:int}/cancel", api.endpoint(api.cancel_job), methods=["POST"]),
        Route("/openapi.json", api.endpoint(api.openapi), methods=["GET"]),
    ]


def build_api(runtime_provider: RuntimeProvider) -> Starlette:
    """The API as a Starlette app; ``runtime_provider`` is called per request (lazily).

    Pass it to ``rx.App(api_transformer=...)``: Reflex mounts its own app under this one, so
    everything outside ``/api`` still reaches Reflex.
    """
    api = _Api(runtime_provider=runtime_provider)
    return Starlette(
        routes=[Mount("/api", routes=api_routes(api), name="api")],
        exception_handlers={HTTPException: _http_exception},
    )
