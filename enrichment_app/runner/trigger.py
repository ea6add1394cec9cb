"""The Trigger.dev runner: jobs run as ``process-enrichment-job`` runs, followed over Realtime.

If Trigger.dev cannot take the job (unreachable, a bad key, 5xx after the client's retries),
the job is not lost: it runs on the local runner and the reason is stored on the job, so the
page can say that live updates fell back to polling (the seed's "Fallback Behavior").
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlmodel import Session

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import DispatchResult, JobBackend, JobStatus
from enrichment_app.runner.local import LocalRunner
from enrichment_app.services import jobs as job_service
from enrichment_app.trigger import RealtimeRun, TriggerApiError, TriggerClient

logger = logging.getLogger(__name__)

TASK_ID = "process-enrichment-job"
TOKEN_EXPIRATION = "1h"


def idempotency_key(job_id: int) -> str:
    """One run per job, however often dispatch is retried."""
    return f"enrichment-job-{job_id}"


def run_scopes(run_id: str) -> dict[str, dict[str, list[str]]]:
    """Read access to this one run and nothing else (``read:runs:<runId>``)."""
    return {"read": {"runs": [run_id]}}


class TriggerRunner:
    def __init__(
        self, *, client: TriggerClient, local: LocalRunner, session_factory: SessionFactory
    ) -> None:
        self._client = client
        self._local = local
        self._open_session = session_factory

    async def dispatch(self, job_id: int) -> DispatchResult:
        payload = await in_session(self._open_session, _payload, job_id=job_id)
        try:
            handle = await self._client.trigger(
                TASK_ID,
                payload,
                idempotency_key=idempotency_key(job_id),
                tags=[f"job:{job_id}", f"table:{payload['tableId']}"],
            )
            token = await self.public_token(handle.id)
        except TriggerApiError as exc:
            reason = (
                f"Trigger.dev could not start the job ({exc.message}); it runs locally instead."
            )
            logger.warning(
                "job %s: trigger failed (%s); falling back to the local runner", job_id, exc.message
            )
            await in_transaction(
                self._open_session, job_service.record_dispatch, job_id=job_id, error=reason
            )
            await self._local.dispatch(job_id)
            return DispatchResult(backend=JobBackend.LOCAL, fallback_reason=reason)
        final = await in_transaction(
            self._open_session, _record_run, job_id=job_id, run_id=handle.id
        )
        logger.info("job %s: triggered run %s", job_id, handle.id)
        if final:  # canceled while Trigger.dev took the run: it has nothing to do
            try:
                await self._client.cancel_run(handle.id)
            except TriggerApiError as exc:
                logger.warning("job %s: cancelling run %s failed: %s", job_id, handle.id, exc)
        return DispatchResult(
            backend=JobBackend.TRIGGER, run_id=handle.id, public_access_token=token
        )

    async def public_token(self, run_id: str) -> str:
        """A fresh token that can read this run only, valid for an hour."""
        return await self._client.create_public_token(
            scopes=run_scopes(run_id), expiration_time=TOKEN_EXPIRATION
        )

    async def table_token(self, table_id: int) -> str:
        """A fresh token that can read the runs of this table only (``read:tags:table:<id>``),
        valid for an hour: what the table's live view follows them with."""
        return await self._client.create_public_token(
            scopes={"read": {"tags": [f"table:{table_id}"]}}, expiration_time=TOKEN_EXPIRATION
        )

    async def cancel(self, job_id: int) -> None:
        run_id = (await in_session(self._open_session, job_service.job_view, job_id=job_id)).run_id
        if run_id:
            try:
                await self._client.cancel_run(run_id)
            except TriggerApiError as exc:
                logger.warning("job %s: cancelling run %s failed: %s", job_id, run_id, exc.message)
        await self._local.cancel(job_id)

    async def settle_run(self, run: RealtimeRun) -> None:
        """Bring the job in line with a run that ended without the worker finishing it.

        The worker marks a job completed itself; a run that was canceled, crashed, timed out
        or expired leaves the job unfinished, so its open tasks are closed here.
        """
        if run.is_final and not run.is_success:
            await in_transaction(self._open_session, _settle, run=run)

    async def recover_unfinished(self, *, created_before: datetime | None = None) -> list[int]:
        """At start-up: trigger the jobs a dead process never triggered, then settle ended runs.

        A job with the Trigger.dev backend and no run id was created, but its process died
        before Trigger.dev took it (a crash, a restart during the trigger's retries), so
        nothing would ever run it. Triggering again is safe: the idempotency key is derived
        from the job id, so a trigger that did reach Trigger.dev gives back the same run, and
        if Trigger.dev cannot be reached the job runs locally, as a new job would. Returns the
        ids of the jobs triggered again or settled.

        Only jobs created before ``created_before`` (the process's start) are triggered again:
        one created since is being triggered by the request that created it, and if its run
        had already crashed, a second trigger would make a second run for the job to follow.
        """
        recovered: list[int] = []
        untriggered = await in_session(
            self._open_session, _unfinished_runs, triggered=False, created_before=created_before
        )
        for job_id, _ in untriggered:
            logger.warning("job %s: created but never triggered; triggering it now", job_id)
            try:
                await self.dispatch(job_id)
            except Exception:
                logger.exception("job %s: triggering it again failed", job_id)
                continue
            recovered.append(job_id)
        return recovered + await self.settle_unfinished()

    async def settle_unfinished(self) -> list[int]:
        """Close the jobs whose run ended (canceled, crashed…) while no one watched.

        Returns the ids of the jobs that were settled. Runs Trigger.dev cannot tell us about
        are left as they are and logged.
        """
        settled: list[int] = []
        for job_id, run_id in await in_session(
            self._open_session, _unfinished_runs, triggered=True
        ):
            try:
                run = await self._client.retrieve_run(run_id)
            except TriggerApiError as exc:
                logger.warning("job %s: cannot check run %s (%s)", job_id, run_id, exc.message)
                continue
            if run.is_final and not run.is_success:
                await self.settle_run(run)
                settled.append(job_id)
        return settled

    async def keep_settling(self, *, every: float) -> None:
        """Settle ended runs every ``every`` seconds, until cancelled.

        Start-up and an open tab settle a job whose run ended without its worker; this covers
        the jobs nobody opens, such as those started through the REST API.
        """
        while True:
            await asyncio.sleep(every)
            try:
                settled = await self.settle_unfinished()
            except Exception:
                logger.exception("settling ended runs failed; trying again in %g s", every)
                continue
            if settled:
                logger.info("settled %d job(s) whose run ended: %s", len(settled), settled)

    @property
    def client(self) -> TriggerClient:
        return self._client


def _payload(session: Session, *, job_id: int) -> dict[str, object]:
    """What the run needs: the job id (the worker reads the job's tasks from the database),
    so the payload stays a few bytes for a job of any size."""
    job = job_service.get_job(session, job_id=job_id)
    return {"jobId": job_id, "tableId": job.table_id, "taskCount": job.total}


def _record_run(session: Session, *, job_id: int, run_id: str) -> bool:
    """Record the job's run; whether the job already ended (canceled while it was triggered)."""
    job_service.record_dispatch(session, job_id=job_id, run_id=run_id)
    return JobStatus(job_service.get_job(session, job_id=job_id).status).is_final


def _unfinished_runs(
    session: Session, *, triggered: bool, created_before: datetime | None = None
) -> list[tuple[int, str]]:
    """(job id, run id) of the unfinished Trigger.dev jobs with a run (or, if not ``triggered``,
    without one; their run id is then ""), created before ``created_before`` if given."""
    jobs = job_service.unfinished_jobs(
        session, backend=JobBackend.TRIGGER, created_before=created_before
    )
    return [
        (j.id, j.run_id or "") for j in jobs if j.id is not None and bool(j.run_id) == triggered
    ]


def _settle(session: Session, *, run: RealtimeRun) -> None:
    job = job_service.job_of_run(session, run_id=run.id)
    if job is None or job.id is None:
        return
    if run.status == "CANCELED":
        job_service.cancel_job(session, job_id=job.id)
    else:
        reason = (run.error.message if run.error else None) or (
            f"the Trigger.dev run ended as {run.status}"
        )
        job_service.fail_job(session, job_id=job.id, error=reason)
