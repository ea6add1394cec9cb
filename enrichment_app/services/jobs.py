"""Enrichment jobs: creating them from a cell selection, reading and cancelling them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.bus import CELLS, JOB, TableChange, note_change
from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask, TableColumn, TableRow
from enrichment_app.domain import (
    ACTIVE_TASK_STATUSES,
    CellRef,
    CellStatus,
    ColumnKind,
    JobBackend,
    JobStatus,
    TaskStatus,
    utcnow,
)
from enrichment_app.enrichers import get_enricher
from enrichment_app.errors import CellsBusyError, InvalidInputError, NotFoundError
from enrichment_app.services import usage
from enrichment_app.services.credentials import masked_config
from enrichment_app.services.tables import get_table
from enrichment_app.services.values import strip_nul


@dataclass(frozen=True, slots=True)
class JobCreated:
    job: EnrichmentJob
    task_ids: list[int]
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
) -> JobCreated:
    """Create a job with one task per selected enrichment cell.

    Input cells in the selection are ignored; cells that already have an active task are
    skipped rather than queued twice. Raises ``InvalidInputError`` when nothing is left to run.
    ``on_created(session, job, skipped_active)`` writes in the same unit of work, so whatever it
    writes (an API idempotency key bound to the job) commits with the job or not at all.
    With ``max_cells_per_day``, the cells are counted against the daily cap in the same unit
    of work (``services/usage.py``), and a job over it is refused with ``QuotaExceededError``.
    """
    get_table(session=session, table_id=table_id)
    wanted = sorted(set(cells))
    if not wanted:
        raise InvalidInputError("Select one or more cells in an enrichment column to run.")
    columns = {
        c.id: c
        for c in session.exec(select(TableColumn).where(TableColumn.table_id == table_id)).all()
    }
    row_ids = {r.row_id for r in wanted}
    known_rows = set(
        session.exec(
            select(TableRow.id).where(TableRow.table_id == table_id, col(TableRow.id).in_(row_ids))
        ).all()
    )
    unknown = [r for r in wanted if r.column_id not in columns or r.row_id not in known_rows]
    if unknown:
        raise NotFoundError(
            f"{len(unknown)} selected cell(s) are not in table {table_id} "
            f"(first: row {unknown[0].row_id}, column {unknown[0].column_id})."
        )
    runnable = [r for r in wanted if columns[r.column_id].kind == ColumnKind.ENRICHMENT]
    if not runnable:
        raise InvalidInputError(
            "The selection has no cells in an enrichment column; select cells in one to run."
        )
    if len(runnable) > max_cells:
        raise InvalidInputError(
            f"{len(runnable)} cells selected; one job can run at most {max_cells}. Select fewer cells."
        )
    for column_id in {r.column_id for r in runnable}:
        column = columns[column_id]
        get_enricher(column.enricher or "").validate_config(masked_config(column.config))

    active = set(
        session.exec(
            select(EnrichmentTask.row_id, EnrichmentTask.column_id).where(
                col(EnrichmentTask.status).in_(ACTIVE_TASK_STATUSES),
                col(EnrichmentTask.column_id).in_({r.column_id for r in runnable}),
            )
        ).all()
    )
    todo = [r for r in runnable if (r.row_id, r.column_id) not in active]
    if not todo:
        raise CellsBusyError("Every selected cell is already queued or running.")
    if max_cells_per_day is not None:  # per workspace, under the admin's own cap if lower
        scope, cap = usage.workspace_cap(session, table_id=table_id, app_cap=max_cells_per_day)
        usage.spend(session, cells=len(todo), cap=cap, now=utcnow(), scope=scope)

    job = EnrichmentJob(table_id=table_id, backend=backend.value, total=len(todo))
    session.add(job)
    try:
        session.flush()
        result = session.execute(
            sa.insert(EnrichmentTask).returning(
                col(EnrichmentTask.id), sort_by_parameter_order=True
            ),
            [
                {
                    "job_id": job.id,
                    "row_id": r.row_id,
                    "column_id": r.column_id,
                    "status": TaskStatus.QUEUED.value,
                }
                for r in todo
            ],
        )
        task_ids = [tid for (tid,) in result.all()]
        _set_cells(session, todo, status=CellStatus.QUEUED)
    except sa.exc.IntegrityError as exc:
        raise CellsBusyError(
            "Some selected cells were queued by another run a moment ago; try again."
        ) from exc
    if on_created is not None:
        on_created(session, job, len(runnable) - len(todo))
    session.flush()
    session.refresh(job)
    note_change(session, table_id, TableChange.of(JOB, CELLS, rows=(r.row_id for r in todo)))
    return JobCreated(job=job, task_ids=task_ids, skipped_active=len(runnable) - len(todo))


def _set_cells(
    session: Session, refs: Iterable[CellRef], *, status: CellStatus, error: str | None = None
) -> None:
    now = utcnow()
    by_column: dict[int, list[int]] = {}
    for ref in refs:
        by_column.setdefault(ref.column_id, []).append(ref.row_id)
    for column_id, rows in by_column.items():
        session.execute(
            sa.update(Cell)
            .where(col(Cell.column_id) == column_id, col(Cell.row_id).in_(rows))
            .values(status=status.value, error=error, updated_at=now)
        )


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


def task_ids(session: Session, *, job_id: int) -> list[int]:
    """The job's task ids in creation order, as the response that created it listed them."""
    query = (
        select(EnrichmentTask.id)
        .where(EnrichmentTask.job_id == job_id)
        .order_by(col(EnrichmentTask.id))
    )
    return [task_id for task_id in session.exec(query).all() if task_id is not None]


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
    active = [
        CellRef(row_id, column_id)
        for row_id, column_id in session.exec(
            select(EnrichmentTask.row_id, EnrichmentTask.column_id).where(
                EnrichmentTask.job_id == job.id,
                col(EnrichmentTask.status).in_(ACTIVE_TASK_STATUSES),
            )
        ).all()
    ]
    failing = status == JobStatus.FAILED
    session.execute(
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
    )
    _set_cells(
        session, active, status=CellStatus.ERROR if failing else CellStatus.CANCELED, error=error
    )
    job.status = status.value
    job.error = error if failing else job.error
    job.failed += len(active) if failing else 0
    job.finished_at = now
    session.add(job)
    session.flush()
    session.refresh(job)  # as the database hands it back (SQLite's datetimes are naive)
    note_change(session, job.table_id, TableChange.of(JOB, CELLS, rows=(r.row_id for r in active)))
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
