"""Enrichment jobs: creating them from a cell selection, reading and cancelling them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.bus import CELLS, JOB, TableChange, note_change
from enrichment_app.bus.changes import MAX_ROW_IDS
from enrichment_app.db.models import EnrichmentJob, EnrichmentTask
from enrichment_app.domain import (
    ACTIVE_TASK_STATUSES,
    CellRef,
    CellStatus,
    JobBackend,
    JobStatus,
    TaskStatus,
    utcnow,
)
from enrichment_app.enrichers import get_enricher
from enrichment_app.errors import CellsBusyError, InvalidInputError, NotFoundError
from enrichment_app.services import job_tasks, task_ranges, usage
from enrichment_app.services.credentials import masked_config
from enrichment_app.services.tables import get_table
from enrichment_app.services.task_ranges import RowRanges
from enrichment_app.services.values import strip_nul

TASK_IDS_SHOWN = 1000
"""How many task ids a job's creation lists (``taskIds``); ``taskCount`` says how many in all."""


@dataclass(frozen=True, slots=True)
class JobCreated:
    job: EnrichmentJob
    task_ids: list[int]
    """The first ``TASK_IDS_SHOWN`` tasks' ids."""
    task_count: int
    skipped_active: int
    """Selected cells left out because they already have a queued or running task."""


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as clients see it (the API and the page). Field names follow the seed's API."""

    id: int
    table_id: int
    status: str
    backend: str
    run_id: str | None
    total: int
    done: int
    failed: int
    error: str | None
    dispatch_error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: EnrichmentJob) -> JobView:
        assert job.id is not None
        return cls(
            id=job.id,
            table_id=job.table_id,
            status=job.status,
            backend=job.backend,
            run_id=job.run_id,
            total=job.total,
            done=job.done,
            failed=job.failed,
            error=job.error,
            dispatch_error=job.dispatch_error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )

    @property
    def is_final(self) -> bool:
        return JobStatus(self.status).is_final

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            if value is None:
                return None
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()

        return {
            "id": self.id,
            "tableId": self.table_id,
            "status": self.status,
            "backend": self.backend,
            "runId": self.run_id,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "error": self.error,
            "dispatchError": self.dispatch_error,
            "createdAt": iso(self.created_at),
            "startedAt": iso(self.started_at),
            "finishedAt": iso(self.finished_at),
        }


def create_job(
    session: Session,
    *,
    table_id: int,
    cells: Iterable[CellRef],
    max_cells: int,
    backend: JobBackend = JobBackend.LOCAL,
    on_created: Callable[[Session, EnrichmentJob, int], None] | None = None,
    max_cells_per_day: int | None = None,
    columns: Sequence[int] = (),
    ranges: Sequence[RowRanges] = (),
) -> JobCreated:
    """Create a job with one task per selected enrichment cell.

    Input cells in the selection are ignored; cells that already have an active task are
    skipped rather than queued twice. Raises ``InvalidInputError`` when nothing is left to run.
    ``on_created(session, job, skipped_active)`` writes in the same unit of work, so whatever it
    writes (an API idempotency key bound to the job) commits with the job or not at all.
    With ``max_cells_per_day``, the cells are counted against the daily cap in the same unit
    of work (``services/usage.py``), and a job over it is refused with ``QuotaExceededError``.

    ``cells`` are given one by one; ``columns`` (column ids run for every row of the table) and
    ``ranges`` (row spans of a view, as a page selects them) are resolved by the database:
    their tasks are written by one ``INSERT … SELECT`` (``services/task_ranges.py``), so a
    whole column of 100,000 rows is one job, created in well under a second, with no Python
    object per cell.
    """
    get_table(session=session, table_id=table_id)
    known = job_tasks.table_columns(session, table_id=table_id)
    chosen = list(ranges)
    if columns:
        chosen.append(RowRanges.whole_columns(columns))
    ranged = task_ranges.resolve(session, table_id=table_id, ranges=chosen, columns=known)
    whole = {c for c in columns if c in known}  # their every row is in ``ranged`` already
    pairs = [(r.row_id, r.column_id) for r in cells if r.column_id not in whole]
    if ranges and pairs:  # their overlap would be counted twice
        raise ValueError("create_job takes cells one by one or by row ranges, not both")
    if not pairs and not ranged.parts and not any(r.spans_by_column for r in chosen):
        raise InvalidInputError("Select one or more cells in an enrichment column to run.")
    listed = job_tasks.runnable_cells(session, table_id=table_id, cells=pairs, columns=known)
    selected = len(listed) + task_ranges.cell_count(ranged)
    if selected == 0:
        raise InvalidInputError(
            "The selection has no cells in an enrichment column; select cells in one to run."
        )
    if selected > max_cells:
        raise InvalidInputError(
            f"{selected} cells selected; one job can run at most {max_cells}. Select fewer cells."
        )
    column_ids = {c for _, c in listed} | ranged.column_ids
    for column in job_tasks.columns_of(column_ids, known):
        get_enricher(column.enricher or "").validate_config(masked_config(column.config))

    todo = job_tasks.without_active(session, listed)
    count = len(todo) + task_ranges.cell_count(ranged) - task_ranges.busy_count(session, ranged)
    if count == 0:
        raise CellsBusyError("Every selected cell is already queued or running.")
    skipped = selected - count
    if max_cells_per_day is not None:  # per workspace, under the admin's own cap if lower
        scope, cap = usage.workspace_cap(session, table_id=table_id, app_cap=max_cells_per_day)
        usage.spend(session, cells=count, cap=cap, now=utcnow(), scope=scope)
    job = EnrichmentJob(table_id=table_id, backend=backend.value, total=count)
    session.add(job)
    session.flush()
    assert job.id is not None
    now = utcnow()
    job_tasks.add_tasks(session, job_id=job.id, cells=todo, now=now)
    task_ranges.add_tasks(session, ranged, job_id=job.id, now=now)
    if job_tasks.task_count(session, job_id=job.id) != count:
        raise CellsBusyError(job_tasks.RACED)  # another run queued some since they were counted
    job_tasks.mark_cells(session, job_id=job.id, status=CellStatus.QUEUED, now=now)
    if on_created is not None:
        on_created(session, job, skipped)
    session.flush()
    session.refresh(job)
    # The rows, if few; a whole column's change says "any row" (see ``TableChange.of``).
    rows = job_tasks.active_rows(session, job_id=job.id, limit=MAX_ROW_IDS + 1)
    note_change(session, table_id, TableChange.of(JOB, CELLS, rows=rows))
    shown = job_tasks.first_task_ids(session, job_id=job.id, limit=TASK_IDS_SHOWN)
    return JobCreated(job=job, task_ids=shown, task_count=count, skipped_active=skipped)


def get_job(session: Session, *, job_id: int) -> EnrichmentJob:
    job = session.get(EnrichmentJob, job_id)
    if job is None:
        raise NotFoundError(f"Job {job_id} does not exist.")
    return job


def job_view(session: Session, *, job_id: int) -> JobView:
    """The job as clients see it (``NotFoundError`` if there is no such job)."""
    return JobView.of(get_job(session, job_id=job_id))


def latest_job(session: Session, *, table_id: int) -> EnrichmentJob | None:
    """The table's newest job, so a reloaded page can re-attach to it."""
    query = (
        select(EnrichmentJob)
        .where(EnrichmentJob.table_id == table_id)
        .order_by(col(EnrichmentJob.id).desc())
    )
    return session.exec(query.limit(1)).first()


def task_ids(session: Session, *, job_id: int) -> tuple[list[int], int]:
    """The job's first ``TASK_IDS_SHOWN`` task ids in creation order, as the response that
    created it listed them, and how many tasks it has."""
    shown = job_tasks.first_task_ids(session, job_id=job_id, limit=TASK_IDS_SHOWN)
    return shown, job_tasks.task_count(session, job_id=job_id)


def job_of_run(session: Session, *, run_id: str) -> EnrichmentJob | None:
    """The job a Trigger.dev run runs, if any."""
    return session.exec(select(EnrichmentJob).where(EnrichmentJob.run_id == run_id)).first()


def record_dispatch(
    session: Session, *, job_id: int, run_id: str | None = None, error: str | None = None
) -> None:
    """Record where the job runs: the Trigger.dev run, or the local runner and why."""
    job = get_job(session, job_id=job_id)
    job.backend = (JobBackend.TRIGGER if run_id else JobBackend.LOCAL).value
    job.run_id = run_id
    job.dispatch_error = error
    session.add(job)
    note_change(session, job.table_id, TableChange.of(JOB))


def unfinished_jobs(
    session: Session, *, backend: JobBackend, created_before: datetime | None = None
) -> list[EnrichmentJob]:
    query = select(EnrichmentJob).where(
        EnrichmentJob.backend == backend.value,
        col(EnrichmentJob.status).in_((JobStatus.QUEUED.value, JobStatus.RUNNING.value)),
    )
    if created_before is not None:
        query = query.where(col(EnrichmentJob.created_at) < created_before)
    return list(session.exec(query.order_by(col(EnrichmentJob.id))).all())


def _close_job(
    session: Session, job: EnrichmentJob, *, status: JobStatus, error: str | None = None
) -> EnrichmentJob:
    """End a job: its queued and running tasks and their cells end too.

    Cancelling leaves a cell's error empty; failing stores the job's error on every cell it
    did not finish. Cells that already finished keep their values.
    """
    assert job.id is not None
    now = utcnow()
    failing = status == JobStatus.FAILED
    cell_status = CellStatus.ERROR if failing else CellStatus.CANCELED
    rows = job_tasks.active_rows(session, job_id=job.id, limit=MAX_ROW_IDS + 1)
    job_tasks.mark_cells(session, job_id=job.id, status=cell_status, now=now, error=error)
    closed = session.execute(
        sa.update(EnrichmentTask)
        .where(
            col(EnrichmentTask.job_id) == job.id,
            col(EnrichmentTask.status).in_(ACTIVE_TASK_STATUSES),
        )
        .values(
            status=(TaskStatus.ERROR if failing else TaskStatus.CANCELED).value,
            error=error,
            finished_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    job.status = status.value
    job.error = error if failing else job.error
    job.failed += closed if failing else 0
    job.finished_at = now
    session.add(job)
    session.flush()
    session.refresh(job)  # as the database hands it back (SQLite's datetimes are naive)
    note_change(session, job.table_id, TableChange.of(JOB, CELLS, rows=rows))  # > 200: any row
    return job


def cancel_job(session: Session, *, job_id: int) -> EnrichmentJob:
    """Cancel a job: its unfinished tasks and their cells become canceled.

    Cells that already finished keep their values. Cancelling a finished job changes nothing.
    """
    job = get_job(session=session, job_id=job_id)
    if JobStatus(job.status).is_final:
        return job
    return _close_job(session, job, status=JobStatus.CANCELED)


def fail_job(session: Session, *, job_id: int, error: str) -> EnrichmentJob:
    """Mark a job failed with ``error``; its unfinished cells become errors saying why."""
    job = get_job(session=session, job_id=job_id)
    if JobStatus(job.status).is_final:
        return job
    return _close_job(session, job, status=JobStatus.FAILED, error=strip_nul(error))
