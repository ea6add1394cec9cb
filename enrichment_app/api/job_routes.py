"""The REST routes that start, read and cancel jobs (``POST /tables/{id}/enrich``, ``POST
/tables/{id}/enrich-view``, ``GET /jobs/{id}``, ``POST /jobs/{id}/cancel``), and the OpenAPI
document. Starting honours ``Idempotency-Key`` (``services/idempotency.py``) and counts
against ``JOB_START_RATE_LIMIT``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from enrichment_app.api import view_routes
from enrichment_app.api.callers import Caller, Gate, json_response
from enrichment_app.api.errors import ApiError
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
from enrichment_app.errors import IdempotencyClaimLostError
from enrichment_app.runtime import Runtime
from enrichment_app.services import audit, idempotency
from enrichment_app.services.access import Grant
from enrichment_app.services.enrichment import cancel_enrichment, read_job, start_enrichment
from enrichment_app.services.jobs import JobView
from enrichment_app.services.view_runs import view_cells
from enrichment_app.trigger import TriggerApiError

logger = logging.getLogger(__name__)


@dataclass
class JobRoutes:
    """The job routes' handlers; ``gate`` counts job starts against the caller's limit."""

    gate: Gate

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
        self.gate.job_start(caller)
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
        return json_response(started.to_json(), 202)

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
        return json_response(body, 202, **{"Idempotent-Replayed": "true"})

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
        return json_response({"job": view.to_json()})

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
        return json_response({"job": view.to_json()})

    async def openapi(self, _request: Request, caller: Caller) -> Response:
        await caller.authorize_any()
        return json_response(openapi_document())
