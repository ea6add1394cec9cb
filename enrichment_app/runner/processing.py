"""Processing one job: the same code runs in the local runner and in the Trigger.dev worker.

``process_job`` loads the job's queued tasks, runs each cell's enricher with that enricher's
concurrency limit and timeout, and writes every result as it lands. It is resumable: tasks
already finished are never redone, and a task left ``running`` by a crashed process is picked up
again. Database calls run in worker threads so the event loop stays responsive.

Claims and results are written in batches: every claim or result waits for the next flush,
which writes everything pending in one transaction (a few set-based statements) and starts as
soon as the previous one ends, ``FLUSH_DELAY_SECONDS`` after the first request at most. One
transaction per cell capped the runner at about 130 cells/s on SQLite (issue 5, item 3).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask, TableColumn
from enrichment_app.domain import CellStatus, JobStatus, TaskStatus, utcnow
from enrichment_app.enrichers import EnrichContext, Enricher, get_enricher
from enrichment_app.errors import EnrichError, EnrichmentAppError
from enrichment_app.services.credentials import ConfigOpener
from enrichment_app.services.values import cap_value, strip_nul
from enrichment_app.settings import Settings

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class _Claim:
    task: _Task


@dataclass(frozen=True, slots=True)
class _Finish:
    task: _Task
    value: str | None
    error: str | None


_Request = _Claim | _Finish
_Outcome = dict[str, str | None] | CellResult | None


class _BatchWriter:
    """Collects claims and results from many cells and writes them together, one flush at a time."""

    def __init__(self, write: Callable[[list[_Request]], list[_Outcome]]) -> None:
        self._write = write
        self._pending: list[tuple[_Request, asyncio.Future[_Outcome]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, request: _Request) -> _Outcome:
        future: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        return await future

    async def _flush_all(self) -> None:
        await asyncio.sleep(FLUSH_DELAY_SECONDS)
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                outcomes = await asyncio.to_thread(self._write, [r for r, _ in batch])
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
        provider_http: httpx.AsyncClient | None = None,
    ) -> None:
        self.job_id = job_id
        self.open_session = session_factory
        self.http = http
        self.provider_http = provider_http
        self.configs = ConfigOpener(settings)
        self.settings = settings
        self.limits = limits
        self.on_result = on_result
        self.writer = _BatchWriter(self.write_batch)

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

    def write_batch(self, requests: list[_Request]) -> list[_Outcome]:
        """Store results, then claim tasks, in one transaction; one outcome per request.

        A claim's outcome is the row's values, or None if the task is no longer queued (it
        was cancelled); a result's is its ``CellResult``, or None if the task was cancelled
        while it ran (nothing is written for it then).
        """
        finishes = [r for r in requests if isinstance(r, _Finish)]
        claims = [r for r in requests if isinstance(r, _Claim)]
        with self.open_session() as session:
            now = utcnow()
            results = self._finish(session, finishes, now) if finishes else {}
            values = self._claim(session, claims, now) if claims else {}
            session.commit()
        return [
            values.get(r.task.id) if isinstance(r, _Claim) else results.get(r.task.id)
            for r in requests
        ]

    def _claim(
        self, session: Session, claims: list[_Claim], now: datetime
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
        self, session: Session, finishes: list[_Finish], now: datetime
    ) -> dict[int, CellResult]:
        max_chars = self.settings.max_cell_chars
        done = [f for f in finishes if f.error is None]
        failed = [f for f in finishes if f.error is not None]
        stored: list[_Finish] = []
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
                _Finish(f.task, cap_value(f.value, max_chars), None)
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
            row = await self.writer.submit(_Claim(task))
            if not isinstance(row, dict):
                return
            value: str | None = None
            opened = self.configs.open(column)
            error: str | None = config_error or opened.error
            if enricher is not None and opened.config is not None:
                try:
                    async with asyncio.timeout(enricher.timeout_seconds):
                        ctx = EnrichContext(
                            row=row,
                            config=opened.config,
                            http=self.http,
                            settings=self.settings,
                            provider_http=self.provider_http,
                        )
                        value = await enricher.enrich(ctx)
                except EnrichError as exc:
                    error = str(exc) or type(exc).__name__
                except TimeoutError:
                    error = f"Timed out after {enricher.timeout_seconds:g} s."
                except Exception as exc:
                    logger.exception("enricher %s crashed on task %s", enricher.name, task.id)
                    error = f"Unexpected error in {enricher.name}: {type(exc).__name__}: {exc}"
        if error is not None:
            error = opened.scrub(error)
        result = await self.writer.submit(_Finish(task, strip_nul(value), strip_nul(error)))
        if isinstance(result, CellResult) and self.on_result is not None:
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
    provider_http: httpx.AsyncClient | None = None,
) -> JobSummary:
    """Run every unfinished task of the job and return the job's final summary.

    ``http`` is the enrichers' client (the app passes one behind the egress guard);
    ``provider_http`` the unguarded one for base URLs from settings (see ``EnrichContext``).
    """
    processor = _JobProcessor(
        job_id,
        session_factory=session_factory,
        http=http,
        provider_http=provider_http,
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
