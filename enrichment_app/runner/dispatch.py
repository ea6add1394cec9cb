"""Starting and cancelling enrichment: the one path the page and the REST API both take."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlmodel import Session

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import EnrichmentJob
from enrichment_app.domain import CellRef, JobBackend
from enrichment_app.runner.base import DispatchResult, JobRunner
from enrichment_app.services import jobs as job_service
from enrichment_app.services.jobs import JobView


@dataclass(frozen=True, slots=True)
class EnrichmentStarted:
    """The seed's ``EnrichTableResponse``: the job, its task ids, and how to follow it live."""

    job: JobView
    task_ids: list[int]
    dispatch: DispatchResult
    skipped_active: int

    def to_json(self) -> dict[str, object]:
        return {
            "job": self.job.to_json(),
            "taskIds": self.task_ids,
            "runId": self.dispatch.run_id,
            "publicAccessToken": self.dispatch.public_access_token,
            "fallbackReason": self.dispatch.fallback_reason,
            "skippedActive": self.skipped_active,
        }


async def start_enrichment(
    *,
    open_session: SessionFactory,
    runner: JobRunner,
    backend: JobBackend,
    table_id: int,
    cells: Iterable[CellRef],
    max_cells: int,
    on_created: Callable[[Session, EnrichmentJob, int], None] | None = None,
) -> EnrichmentStarted:
    """Create the job and its tasks in one transaction, then hand it to the runner.

    ``on_created`` writes in the job's own transaction (see ``create_job``).
    """
    refs = list(cells)

    def create() -> job_service.JobCreated:
        with open_session() as session:
            return job_service.create_job(
                session=session,
                table_id=table_id,
                cells=refs,
                max_cells=max_cells,
                backend=backend,
                on_created=on_created,
            )

    created = await asyncio.to_thread(create)
    assert created.job.id is not None
    dispatch = await runner.dispatch(created.job.id)

    def reread() -> JobView:
        with open_session() as session:
            return JobView.of(job_service.get_job(session=session, job_id=created.job.id or 0))

    view = await asyncio.to_thread(reread)
    return EnrichmentStarted(
        job=view,
        task_ids=created.task_ids,
        dispatch=dispatch,
        skipped_active=created.skipped_active,
    )


async def cancel_enrichment(
    *, open_session: SessionFactory, runner: JobRunner, job_id: int
) -> JobView:
    """Cancel the job: unfinished tasks and cells become canceled, and the runner stops."""

    def cancel() -> JobView:
        with open_session() as session:
            return JobView.of(job_service.cancel_job(session=session, job_id=job_id))

    view = await asyncio.to_thread(cancel)
    await runner.cancel(job_id)
    return view


async def read_job(*, open_session: SessionFactory, job_id: int) -> JobView:
    def read() -> JobView:
        with open_session() as session:
            return JobView.of(job_service.get_job(session=session, job_id=job_id))

    return await asyncio.to_thread(read)
