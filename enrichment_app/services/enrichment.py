"""Starting and cancelling enrichment: the one path the page and the REST API both take.

``JobRunner`` is what this needs of a runner; the runners (``enrichment_app.runner``)
implement it, and the runtime hands the configured one in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import Session

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import EnrichmentJob
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import CellRef, DispatchResult, JobBackend
from enrichment_app.services import jobs as job_service
from enrichment_app.services.jobs import JobView
from enrichment_app.services.task_ranges import RowRanges


class JobRunner(Protocol):
    async def dispatch(self, job_id: int) -> DispatchResult:
        """Start running the job; returns at once."""
        ...

    async def cancel(self, job_id: int) -> None:
        """Cancel the job (the database state is already updated by the caller)."""
        ...


@dataclass(frozen=True, slots=True)
class EnrichmentStarted:
    """The seed's ``EnrichTableResponse``: the job, its task ids, and how to follow it live.

    ``taskIds`` lists the first ``TASK_IDS_SHOWN`` (1,000) task ids, so that a whole column of
    100,000 cells does not make a megabyte answer; ``taskCount`` says how many there are.
    """

    job: JobView
    task_ids: list[int]
    task_count: int
    dispatch: DispatchResult
    skipped_active: int

    def to_json(self) -> dict[str, object]:
        return {
            "job": self.job.to_json(),
            "taskIds": self.task_ids,
            "taskCount": self.task_count,
            "runId": self.dispatch.run_id,
            "publicAccessToken": self.dispatch.public_access_token,
            "fallbackReason": self.dispatch.fallback_reason,
            "skippedActive": self.skipped_active,
        }


@dataclass(frozen=True, slots=True)
class EnrichmentCreated:
    """A job created and not yet handed to a runner."""

    job: JobView
    task_ids: list[int]
    task_count: int
    skipped_active: int


async def create_enrichment(
    *,
    open_session: SessionFactory,
    backend: JobBackend,
    table_id: int,
    cells: Iterable[CellRef],
    max_cells: int,
    on_created: Callable[[Session, EnrichmentJob, int], None] | None = None,
    max_cells_per_day: int | None = None,
    columns: Sequence[int] = (),
    ranges: Sequence[RowRanges] = (),
) -> EnrichmentCreated:
    """Create the job and its tasks in one unit of work.

    ``columns`` are column ids run for every row of the table, besides ``cells``; ``ranges``
    choose cells by row position in a view instead of ``cells`` (``services/task_ranges.py``).
    ``on_created`` writes in the job's own unit of work (see ``create_job``).
    """
    created = await in_transaction(
        open_session,
        job_service.create_job,
        table_id=table_id,
        cells=list(cells),
        columns=columns,
        ranges=ranges,
        max_cells=max_cells,
        backend=backend,
        on_created=on_created,
        max_cells_per_day=max_cells_per_day,
    )
    return EnrichmentCreated(
        job=JobView.of(created.job),
        task_ids=created.task_ids,
        task_count=created.task_count,
        skipped_active=created.skipped_active,
    )


async def dispatch_enrichment(
    *, open_session: SessionFactory, runner: JobRunner, created: EnrichmentCreated
) -> EnrichmentStarted:
    """Hand a created job to the runner (Trigger.dev may take a while) and read it back."""
    dispatch = await runner.dispatch(created.job.id)
    view = await read_job(open_session=open_session, job_id=created.job.id)
    return EnrichmentStarted(
        job=view,
        task_ids=created.task_ids,
        task_count=created.task_count,
        dispatch=dispatch,
        skipped_active=created.skipped_active,
    )


async def start_enrichment(
    *,
    open_session: SessionFactory,
    runner: JobRunner,
    backend: JobBackend,
    table_id: int,
    cells: Iterable[CellRef],
    max_cells: int,
    on_created: Callable[[Session, EnrichmentJob, int], None] | None = None,
    max_cells_per_day: int | None = None,
    columns: Sequence[int] = (),
    ranges: Sequence[RowRanges] = (),
) -> EnrichmentStarted:
    """Create the job and its tasks in one unit of work, then hand it to the runner
    (``columns``, ``ranges``: see ``create_enrichment``)."""
    created = await create_enrichment(
        open_session=open_session,
        backend=backend,
        table_id=table_id,
        cells=cells,
        columns=columns,
        ranges=ranges,
        max_cells=max_cells,
        on_created=on_created,
        max_cells_per_day=max_cells_per_day,
    )
    return await dispatch_enrichment(open_session=open_session, runner=runner, created=created)


async def cancel_enrichment(
    *,
    open_session: SessionFactory,
    runner: JobRunner,
    job_id: int,
    on_canceled: Callable[[Session, JobView], None] | None = None,
) -> JobView:
    """Cancel the job: unfinished tasks and cells become canceled, and the runner stops.

    ``on_canceled`` writes in the same unit of work (the audit log's entry)."""
    view = await in_transaction(open_session, _cancel, job_id=job_id, on_canceled=on_canceled)
    await runner.cancel(job_id)
    return view


async def read_job(*, open_session: SessionFactory, job_id: int) -> JobView:
    return await in_session(open_session, job_service.job_view, job_id=job_id)


def _cancel(
    session: Session, *, job_id: int, on_canceled: Callable[[Session, JobView], None] | None
) -> JobView:
    view = JobView.of(job_service.cancel_job(session, job_id=job_id))
    if on_canceled is not None:
        on_canceled(session, view)
    return view
