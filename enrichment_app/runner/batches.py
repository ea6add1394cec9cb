"""The database side of processing a job: its start, its claims and results, and its end.

Claims and results are written in batches: every claim or result waits for the next flush,
which writes everything pending in one transaction (a few set-based statements) and starts as
soon as the previous one ends, ``FLUSH_DELAY_SECONDS`` after the first request at most. One
transaction per cell capped the runner at about 130 cells/s on SQLite (issue 5, item 3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.bus import CELLS, JOB, TableChange, note_change
from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask, TableColumn
from enrichment_app.domain import ACTIVE_TASK_STATUSES, CellStatus, JobStatus, TaskStatus, utcnow
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.services.values import cap_value

FLUSH_DELAY_SECONDS = 0.002
"""How long the first claim or result of a batch waits for others to join it."""
MAX_BATCH = 500
"""At most this many claims plus results per transaction."""


@dataclass(frozen=True, slots=True)
class CellResult:
    """One finished cell, as the worker reports it."""

    job_id: int
    task_id: int
    row_id: int
    column_id: int
    status: str
    value: str | None
    error: str | None
    done: int
    failed: int
    total: int


@dataclass(frozen=True, slots=True)
class JobSummary:
    job_id: int
    status: str
    total: int
    done: int
    failed: int
    error: str | None


@dataclass(frozen=True, slots=True)
class Task:
    """A queued task: the cell it fills."""

    id: int
    row_id: int
    column_id: int


@dataclass(frozen=True, slots=True)
class Claim:
    """Mark a task running before its enricher runs; the outcome is the row's values."""

    task: Task


@dataclass(frozen=True, slots=True)
class Finish:
    """Store a task's value or error; the outcome is its ``CellResult``."""

    task: Task
    value: str | None
    error: str | None


Request = Claim | Finish
Outcome = dict[str, str | None] | CellResult | None


class BatchWriter:
    """Collects claims and results from many cells and writes them together, one flush at a time.

    Use it as ``async with``, around the tasks that submit to it: the flusher task it starts
    ends with the block (cancelled if the block is), so a cancelled job leaves no writer behind.
    """

    def __init__(self, write: Callable[[list[Request]], Awaitable[list[Outcome]]]) -> None:
        self._write = write
        self._pending: list[tuple[Request, asyncio.Future[Outcome]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._open = False

    async def __aenter__(self) -> Self:
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._open = False
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            if exc_type is not None:
                flusher.cancel()
            await asyncio.wait([flusher])  # never takes the flusher's CancelledError for ours
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()

    async def submit(self, request: Request) -> Outcome:
        if not self._open:
            raise RuntimeError("BatchWriter.submit outside its async with block")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="job-batch-writer")
        return await future

    async def _flush_all(self) -> None:
        await asyncio.sleep(FLUSH_DELAY_SECONDS)
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                outcomes = await self._write([r for r, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)


def _summary(job: EnrichmentJob) -> JobSummary:
    assert job.id is not None
    return JobSummary(job.id, job.status, job.total, job.done, job.failed, job.error)


class JobStore:
    """Reads and writes one job's state; each method is one unit of work's worth (the caller
    commits)."""

    def __init__(self, job_id: int, *, max_cell_chars: int) -> None:
        self.job_id = job_id
        self.max_cell_chars = max_cell_chars
        self.table_id = 0
        """The job's table, once ``start`` read it: its pages hear of every write."""

    def start(self, session: Session) -> tuple[JobSummary, dict[int, TableColumn], int]:
        """Mark the job running; its summary, its table's columns and its last task's id (its
        tasks are read a batch at a time: ``queued``)."""
        # Mark the job running in one statement that skips a final job: read first and write
        # after, and a cancel committed in between would be undone (the job left "running").
        session.execute(
            sa.update(EnrichmentJob)
            .where(
                col(EnrichmentJob.id) == self.job_id,
                col(EnrichmentJob.status).in_((JobStatus.QUEUED.value, JobStatus.RUNNING.value)),
            )
            .values(status=JobStatus.RUNNING.value)
        )
        job = session.get(EnrichmentJob, self.job_id)
        if job is None:
            raise EnrichmentAppError(f"Job {self.job_id} does not exist.")
        self.table_id = job.table_id
        if JobStatus(job.status).is_final:
            return _summary(job), {}, 0
        note_change(session, self.table_id, TableChange.of(JOB))
        now = utcnow()
        # A task still "running" here was interrupted (a crash or restart): run it again.
        session.execute(
            sa.update(EnrichmentTask)
            .where(
                col(EnrichmentTask.job_id) == self.job_id,
                col(EnrichmentTask.status) == TaskStatus.RUNNING.value,
            )
            .values(status=TaskStatus.QUEUED.value)
        )
        job.started_at = job.started_at or now
        session.add(job)
        last = session.exec(
            select(sa.func.max(EnrichmentTask.id)).where(EnrichmentTask.job_id == self.job_id)
        ).one()
        # Every column of the table, so that chained columns can be resolved by name.
        columns = {
            c.id: c
            for c in session.exec(
                select(TableColumn).where(TableColumn.table_id == job.table_id)
            ).all()
            if c.id is not None
        }
        return _summary(job), columns, int(last or 0)

    def queued(self, session: Session, *, after: int, last: int, limit: int) -> list[Task]:
        """Up to ``limit`` of the job's queued tasks with ids in ``(after, last]``, in id order
        (a row's cells left to right). A range of the primary key: its cost does not grow
        with the job."""
        query = (
            select(EnrichmentTask.id, EnrichmentTask.row_id, EnrichmentTask.column_id)
            .where(
                col(EnrichmentTask.id) > after,
                col(EnrichmentTask.id) <= last,
                EnrichmentTask.job_id == self.job_id,
                EnrichmentTask.status == TaskStatus.QUEUED.value,
            )
            .order_by(col(EnrichmentTask.id))
            .limit(limit)
        )
        return [
            Task(task_id, row, column)
            for task_id, row, column in session.exec(query).all()
            if task_id is not None
        ]

    def write(self, session: Session, requests: list[Request]) -> list[Outcome]:
        """Store results, then claim tasks, in one unit of work; one outcome per request.

        A claim's outcome is the row's values, or None if the task is no longer queued (it
        was cancelled); a result's is its ``CellResult``, or None if the task was cancelled
        while it ran (nothing is written for it then).
        """
        finishes = [r for r in requests if isinstance(r, Finish)]
        claims = [r for r in requests if isinstance(r, Claim)]
        now = utcnow()
        results = self._finish(session, finishes, now) if finishes else {}
        values = self._claim(session, claims, now) if claims else {}
        if self.table_id and (results or values):
            rows = [r.row_id for r in results.values()]
            rows += [c.task.row_id for c in claims if c.task.id in values]
            kinds = (CELLS, JOB) if results else (CELLS,)
            note_change(session, self.table_id, TableChange.of(*kinds, rows=rows))
        return [
            values.get(r.task.id) if isinstance(r, Claim) else results.get(r.task.id)
            for r in requests
        ]

    def _claim(
        self, session: Session, claims: list[Claim], now: datetime
    ) -> dict[int, dict[str, str | None]]:
        claimed = set(
            session.execute(
                sa.update(EnrichmentTask)
                .where(
                    col(EnrichmentTask.id).in_([c.task.id for c in claims]),
                    col(EnrichmentTask.status) == TaskStatus.QUEUED.value,
                )
                .values(
                    status=TaskStatus.RUNNING.value,
                    attempts=EnrichmentTask.attempts + 1,
                    started_at=now,
                )
                .returning(col(EnrichmentTask.id))
            ).scalars()
        )
        tasks = [c.task for c in claims if c.task.id in claimed]
        if not tasks:
            return {}
        session.connection().execute(
            sa.update(Cell)
            .where(
                col(Cell.row_id) == sa.bindparam("r_id"),
                col(Cell.column_id) == sa.bindparam("c_id"),
            )
            .values(status=CellStatus.RUNNING.value, updated_at=now),
            [{"r_id": t.row_id, "c_id": t.column_id} for t in tasks],
        )
        rows = _rows_values(session, {t.row_id for t in tasks})
        return {t.id: dict(rows.get(t.row_id, {})) for t in tasks}

    def _finish(
        self, session: Session, finishes: list[Finish], now: datetime
    ) -> dict[int, CellResult]:
        max_chars = self.max_cell_chars
        done = [f for f in finishes if f.error is None]
        failed = [f for f in finishes if f.error is not None]
        stored: list[Finish] = []
        if done:
            ids = set(
                session.execute(
                    sa.update(EnrichmentTask)
                    .where(
                        col(EnrichmentTask.id).in_([f.task.id for f in done]),
                        col(EnrichmentTask.status) == TaskStatus.RUNNING.value,
                    )
                    .values(status=TaskStatus.DONE.value, error=None, finished_at=now)
                    .returning(col(EnrichmentTask.id))
                ).scalars()
            )
            stored += [
                Finish(f.task, cap_value(f.value, max_chars), None)
                for f in done
                if f.task.id in ids
            ]
        for f in failed:  # each error message differs; errors are the rare case
            updated = session.execute(
                sa.update(EnrichmentTask)
                .where(
                    col(EnrichmentTask.id) == f.task.id,
                    col(EnrichmentTask.status) == TaskStatus.RUNNING.value,
                )
                .values(status=TaskStatus.ERROR.value, error=f.error, finished_at=now)
            )
            if updated.rowcount == 1:  # type: ignore[attr-defined]
                stored.append(f)
        if not stored:
            return {}
        ok = [f for f in stored if f.error is None]
        errors = [f for f in stored if f.error is not None]
        connection = session.connection()
        cell_where = (
            col(Cell.row_id) == sa.bindparam("r_id"),
            col(Cell.column_id) == sa.bindparam("c_id"),
        )
        if ok:
            connection.execute(
                sa.update(Cell)
                .where(*cell_where)
                .values(
                    value=sa.bindparam("v"),
                    status=CellStatus.DONE.value,
                    error=None,
                    updated_at=now,
                ),
                [{"r_id": f.task.row_id, "c_id": f.task.column_id, "v": f.value} for f in ok],
            )
        if errors:
            connection.execute(
                sa.update(Cell)
                .where(*cell_where)
                .values(status=CellStatus.ERROR.value, error=sa.bindparam("e"), updated_at=now),
                [{"r_id": f.task.row_id, "c_id": f.task.column_id, "e": f.error} for f in errors],
            )
        done_before, failed_before, total = session.execute(
            sa.select(
                col(EnrichmentJob.done), col(EnrichmentJob.failed), col(EnrichmentJob.total)
            ).where(col(EnrichmentJob.id) == self.job_id)
        ).one()
        session.execute(
            sa.update(EnrichmentJob)
            .where(col(EnrichmentJob.id) == self.job_id)
            .values(
                done=EnrichmentJob.done + len(ok),
                failed=EnrichmentJob.failed + len(errors),
            )
        )
        # Each report carries the counters as they stood right after its own cell.
        results: dict[int, CellResult] = {}
        n_done, n_failed = done_before, failed_before
        for f in stored:
            if f.error is None:
                n_done += 1
            else:
                n_failed += 1
            results[f.task.id] = CellResult(
                job_id=self.job_id,
                task_id=f.task.id,
                row_id=f.task.row_id,
                column_id=f.task.column_id,
                status=(TaskStatus.ERROR if f.error is not None else TaskStatus.DONE).value,
                value=f.value if f.error is None else None,
                error=f.error,
                done=n_done,
                failed=n_failed,
                total=total,
            )
        return results

    def complete(self, session: Session) -> JobSummary:
        job = session.get(EnrichmentJob, self.job_id)
        assert job is not None
        remaining = session.exec(
            select(sa.func.count())
            .select_from(EnrichmentTask)
            .where(
                EnrichmentTask.job_id == self.job_id,
                col(EnrichmentTask.status).in_(ACTIVE_TASK_STATUSES),
            )
        ).one()
        if job.status == JobStatus.RUNNING.value and remaining == 0:
            job.status = JobStatus.COMPLETED.value
            job.finished_at = utcnow()
            session.add(job)
            note_change(session, job.table_id, TableChange.of(JOB))
        return _summary(job)


def _rows_values(session: Session, row_ids: set[int]) -> dict[int, dict[str, str | None]]:
    """Each row's values keyed by column name, as enrichers see them."""
    query = (
        select(Cell.row_id, TableColumn.name, Cell.value)
        .join(TableColumn, col(Cell.column_id) == TableColumn.id)
        .where(col(Cell.row_id).in_(row_ids))
    )
    rows: dict[int, dict[str, str | None]] = {}
    for row_id, name, value in session.exec(query).all():
        rows.setdefault(row_id, {})[name] = value
    return rows
