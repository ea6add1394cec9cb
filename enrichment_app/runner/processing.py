"""Processing one job: the same code runs in the local runner and in the Trigger.dev worker.

``process_job`` loads the job's queued tasks, runs each cell's enricher with that enricher's
concurrency limit and timeout, and writes every result the moment it lands. It is resumable:
tasks already finished are never redone, and a task left ``running`` by a crashed process is
picked up again. Database calls run in worker threads so the event loop stays responsive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from sqlmodel import col, select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask, TableColumn
from enrichment_app.domain import CellStatus, JobStatus, TaskStatus, utcnow
from enrichment_app.enrichers import EnrichContext, Enricher, get_enricher
from enrichment_app.errors import EnrichError, EnrichmentAppError
from enrichment_app.services.tables import row_values
from enrichment_app.services.values import cap_value
from enrichment_app.settings import Settings

logger = logging.getLogger(__name__)


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


ResultCallback = Callable[[CellResult], Awaitable[None] | None]


class EnricherLimits:
    """One semaphore per enricher, shared by every job this process runs."""

    def __init__(self) -> None:
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def for_enricher(self, enricher: Enricher) -> asyncio.Semaphore:
        if enricher.name not in self._semaphores:
            self._semaphores[enricher.name] = asyncio.Semaphore(enricher.concurrency)
        return self._semaphores[enricher.name]


@dataclass(frozen=True, slots=True)
class _Task:
    id: int
    row_id: int
    column_id: int


def _summary(job: EnrichmentJob) -> JobSummary:
    assert job.id is not None
    return JobSummary(job.id, job.status, job.total, job.done, job.failed, job.error)


class _JobProcessor:
    def __init__(
        self,
        job_id: int,
        *,
        session_factory: SessionFactory,
        http: httpx.AsyncClient,
        settings: Settings,
        limits: EnricherLimits,
        on_result: ResultCallback | None,
    ) -> None:
        self.job_id = job_id
        self.open_session = session_factory
        self.http = http
        self.settings = settings
        self.limits = limits
        self.on_result = on_result

    def start(self) -> tuple[JobSummary, list[_Task], dict[int, TableColumn]]:
        with self.open_session() as session:
            job = session.get(EnrichmentJob, self.job_id)
            if job is None:
                raise EnrichmentAppError(f"Job {self.job_id} does not exist.")
            if JobStatus(job.status).is_final:
                return _summary(job), [], {}
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
            job.status = JobStatus.RUNNING.value
            job.started_at = job.started_at or now
            session.add(job)
            tasks = [
                _Task(t.id, t.row_id, t.column_id)
                for t in session.exec(
                    select(EnrichmentTask)
                    .where(
                        EnrichmentTask.job_id == self.job_id,
                        EnrichmentTask.status == TaskStatus.QUEUED.value,
                    )
                    .order_by(col(EnrichmentTask.row_id), col(EnrichmentTask.column_id))
                ).all()
                if t.id is not None
            ]
            # Every column of the table, so that chained columns can be resolved by name.
            columns = {
                c.id: c
                for c in session.exec(
                    select(TableColumn).where(TableColumn.table_id == job.table_id)
                ).all()
                if c.id is not None
            }
            session.commit()
            return _summary(job), tasks, columns

    def claim(self, task: _Task) -> dict[str, str | None] | None:
        """Mark the task running and return its row's values, or None if it was cancelled."""
        with self.open_session() as session:
            now = utcnow()
            claimed = session.execute(
                sa.update(EnrichmentTask)
                .where(
                    col(EnrichmentTask.id) == task.id,
                    col(EnrichmentTask.status) == TaskStatus.QUEUED.value,
                )
                .values(
                    status=TaskStatus.RUNNING.value,
                    attempts=EnrichmentTask.attempts + 1,
                    started_at=now,
                )
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                return None
            session.execute(
                sa.update(Cell)
                .where(col(Cell.row_id) == task.row_id, col(Cell.column_id) == task.column_id)
                .values(status=CellStatus.RUNNING.value, updated_at=now)
            )
            values = row_values(session=session, row_id=task.row_id)
            session.commit()
            return values

    def finish(self, task: _Task, value: str | None, error: str | None) -> CellResult | None:
        """Store the task's outcome, unless it was cancelled while it ran."""
        status = TaskStatus.ERROR if error is not None else TaskStatus.DONE
        value = cap_value(value, self.settings.max_cell_chars)
        with self.open_session() as session:
            now = utcnow()
            updated = session.execute(
                sa.update(EnrichmentTask)
                .where(
                    col(EnrichmentTask.id) == task.id,
                    col(EnrichmentTask.status) == TaskStatus.RUNNING.value,
                )
                .values(status=status.value, error=error, finished_at=now)
            )
            if updated.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                return None
            cell_values: dict[str, object] = {
                "status": status.value,
                "error": error,
                "updated_at": now,
            }
            if error is None:
                cell_values["value"] = value
            session.execute(
                sa.update(Cell)
                .where(col(Cell.row_id) == task.row_id, col(Cell.column_id) == task.column_id)
                .values(**cell_values)
            )
            counter = EnrichmentJob.failed if error is not None else EnrichmentJob.done
            session.execute(
                sa.update(EnrichmentJob)
                .where(col(EnrichmentJob.id) == self.job_id)
                .values({counter: counter + 1})
            )
            job = session.get(EnrichmentJob, self.job_id)
            assert job is not None
            session.commit()
            return CellResult(
                job_id=self.job_id,
                task_id=task.id,
                row_id=task.row_id,
                column_id=task.column_id,
                status=status.value,
                value=value if error is None else None,
                error=error,
                done=job.done,
                failed=job.failed,
                total=job.total,
            )

    def complete(self) -> JobSummary:
        with self.open_session() as session:
            job = session.get(EnrichmentJob, self.job_id)
            assert job is not None
            remaining = session.exec(
                select(sa.func.count())
                .select_from(EnrichmentTask)
                .where(
                    EnrichmentTask.job_id == self.job_id,
                    col(EnrichmentTask.status).in_(
                        (TaskStatus.QUEUED.value, TaskStatus.RUNNING.value)
                    ),
                )
            ).one()
            if job.status == JobStatus.RUNNING.value and remaining == 0:
                job.status = JobStatus.COMPLETED.value
                job.finished_at = utcnow()
                session.add(job)
                session.commit()
            return _summary(job)

    async def run_task(
        self,
        task: _Task,
        column: TableColumn,
        *,
        after: Sequence[asyncio.Event] = (),
        finished: asyncio.Event | None = None,
    ) -> None:
        """Run one task once the tasks it reads from (``after``) have finished; then set ``finished``."""
        try:
            for event in after:
                await event.wait()
            await self._run_task(task, column)
        finally:
            if finished is not None:
                finished.set()

    async def _run_task(self, task: _Task, column: TableColumn) -> None:
        enricher: Enricher | None = None
        config_error: str | None = None
        try:
            enricher = get_enricher(column.enricher or "")
        except EnrichmentAppError as exc:
            config_error = str(exc)
        semaphore = self.limits.for_enricher(enricher) if enricher else asyncio.Semaphore(1)
        async with semaphore:
            row = await asyncio.to_thread(self.claim, task)
            if row is None:
                return
            value: str | None = None
            error: str | None = config_error
            if enricher is not None:
                try:
                    async with asyncio.timeout(enricher.timeout_seconds):
                        ctx = EnrichContext(
                            row=row, config=column.config, http=self.http, settings=self.settings
                        )
                        value = await enricher.enrich(ctx)
                except EnrichError as exc:
                    error = str(exc) or type(exc).__name__
                except TimeoutError:
                    error = f"Timed out after {enricher.timeout_seconds:g} s."
                except Exception as exc:
                    logger.exception("enricher %s crashed on task %s", enricher.name, task.id)
                    error = f"Unexpected error in {enricher.name}: {type(exc).__name__}: {exc}"
            result = await asyncio.to_thread(self.finish, task, value, error)
        if result is not None and self.on_result is not None:
            outcome = self.on_result(result)
            if outcome is not None:
                await outcome


async def process_job(
    job_id: int,
    *,
    session_factory: SessionFactory,
    http: httpx.AsyncClient,
    settings: Settings,
    limits: EnricherLimits | None = None,
    on_result: ResultCallback | None = None,
) -> JobSummary:
    """Run every unfinished task of the job and return the job's final summary."""
    processor = _JobProcessor(
        job_id,
        session_factory=session_factory,
        http=http,
        settings=settings,
        limits=limits or EnricherLimits(),
        on_result=on_result,
    )
    summary, tasks, columns = await asyncio.to_thread(processor.start)
    if JobStatus(summary.status).is_final:
        return summary
    logger.info("job %s: processing %d task(s)", job_id, len(tasks))
    finished = {(t.row_id, t.column_id): asyncio.Event() for t in tasks}
    async with asyncio.TaskGroup() as group:
        for task in tasks:
            column = columns[task.column_id]
            after = [
                finished[(task.row_id, source)]
                for source in _sources(column, columns)
                if (task.row_id, source) in finished
            ]
            group.create_task(
                processor.run_task(
                    task, column, after=after, finished=finished[(task.row_id, task.column_id)]
                )
            )
    return await asyncio.to_thread(processor.complete)


def _sources(column: TableColumn, columns: Mapping[int, TableColumn]) -> set[int]:
    """Ids of the columns ``column``'s enricher reads that sit to its left.

    A column can only refer to columns that existed when it was added, so looking left only
    keeps the dependencies acyclic even if a config was edited by hand.
    """
    try:
        names = get_enricher(column.enricher or "").referenced_columns(column.config)
    except Exception:  # an unknown enricher or a broken config fails in the task itself
        return set()
    return {
        cid
        for cid, other in columns.items()
        if other.name in names and other.position < column.position
    }
