"""Processing one job: the same code runs in the local runner and in the Trigger.dev worker.

``process_job`` loads the job's queued tasks, runs each cell's enricher with that enricher's
concurrency limit and timeout, and writes every result as it lands. It is resumable: tasks
already finished are never redone, and a task left ``running`` by a crashed process is picked up
again. Database calls run in worker threads so the event loop stays responsive, and claims
and results are written in batches (``batches``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import httpx

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import TableColumn
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import JobStatus
from enrichment_app.enrichers import EnrichContext, Enricher, get_enricher
from enrichment_app.errors import EnrichError, EnrichmentAppError
from enrichment_app.runner.batches import (
    BatchWriter,
    CellResult,
    Claim,
    Finish,
    JobStore,
    JobSummary,
    Outcome,
    Request,
    Task,
)
from enrichment_app.services.credentials import ConfigOpener
from enrichment_app.services.values import strip_nul
from enrichment_app.settings import Settings

__all__ = ["CellResult", "EnricherLimits", "JobSummary", "ResultCallback", "process_job"]

logger = logging.getLogger(__name__)

ResultCallback = Callable[[CellResult], Awaitable[None] | None]

IN_FLIGHT = 1000
"""A job's tasks in memory at once: claimed, running, or waiting for an enricher's slot or
for a cell to their left. The rest wait in the database, so a job of 100,000 cells holds no
more than a job of 1,000."""
FETCH = 500
"""Queued tasks read per query."""


class EnricherLimits:
    """One semaphore per enricher, shared by every job this process runs."""

    def __init__(self) -> None:
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def for_enricher(self, enricher: Enricher) -> asyncio.Semaphore:
        if enricher.name not in self._semaphores:
            self._semaphores[enricher.name] = asyncio.Semaphore(enricher.concurrency)
        return self._semaphores[enricher.name]


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
        self.store = JobStore(job_id, max_cell_chars=settings.max_cell_chars)
        self.writer = BatchWriter(self.write_batch)

    async def write_batch(self, requests: list[Request]) -> list[Outcome]:
        return await in_transaction(self.open_session, self.store.write, requests)

    async def run_task(
        self,
        task: Task,
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

    async def _run_task(self, task: Task, column: TableColumn) -> None:
        enricher: Enricher | None = None
        config_error: str | None = None
        try:
            enricher = get_enricher(column.enricher or "")
        except EnrichmentAppError as exc:
            config_error = str(exc)
        semaphore = self.limits.for_enricher(enricher) if enricher else asyncio.Semaphore(1)
        async with semaphore:
            row = await self.writer.submit(Claim(task))
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
        result = await self.writer.submit(Finish(task, strip_nul(value), strip_nul(error)))
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
    summary, columns, last = await in_transaction(session_factory, processor.store.start)
    if JobStatus(summary.status).is_final:
        return summary
    logger.info(
        "job %s: processing %d task(s)", job_id, summary.total - summary.done - summary.failed
    )
    sources = {cid: _sources(column, columns) for cid, column in columns.items()}
    room = asyncio.Semaphore(IN_FLIGHT)
    running: dict[tuple[int, int], asyncio.Event] = {}

    async def run(task: Task, after: list[asyncio.Event], finished: asyncio.Event) -> None:
        try:
            await processor.run_task(task, columns[task.column_id], after=after, finished=finished)
        finally:
            running.pop((task.row_id, task.column_id), None)
            room.release()

    async with processor.writer, asyncio.TaskGroup() as group:
        after_id = 0
        while tasks := await in_session(
            session_factory, processor.store.queued, after=after_id, last=last, limit=FETCH
        ):
            for task in tasks:
                await room.acquire()
                # The cells to its left it reads: still running, or (not here) already done,
                # since a row's tasks are created, and so read, left to right.
                row = task.row_id
                after = [
                    running[(row, s)]
                    for s in sources.get(task.column_id, ())
                    if (row, s) in running
                ]
                running[(row, task.column_id)] = finished = asyncio.Event()
                group.create_task(run(task, after, finished))
            after_id = tasks[-1].id
    return await in_transaction(session_factory, processor.store.complete)


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
