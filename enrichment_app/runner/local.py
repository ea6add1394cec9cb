"""The embedded runner: jobs run as asyncio tasks inside the web process."""

from __future__ import annotations

import asyncio
import logging

import httpx
from sqlmodel import Session

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import DispatchResult, JobBackend
from enrichment_app.runner.processing import EnricherLimits, JobSummary, process_job
from enrichment_app.services.jobs import fail_job, unfinished_jobs
from enrichment_app.settings import Settings

logger = logging.getLogger(__name__)


class LocalRunner:
    """Runs jobs in-process with bounded concurrency per enricher, and resumes them on start."""

    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        http: httpx.AsyncClient,
        settings: Settings,
        provider_http: httpx.AsyncClient | None = None,
    ) -> None:
        """``http`` is the enrichers' (guarded) client, ``provider_http`` the one for base URLs
        from settings; see ``process_job``."""
        self._open_session = session_factory
        self._http = http
        self._provider_http = provider_http
        self._settings = settings
        self._limits = EnricherLimits()
        self._tasks: dict[int, asyncio.Task[JobSummary | None]] = {}

    async def dispatch(self, job_id: int) -> DispatchResult:
        if job_id not in self._tasks:
            task = asyncio.create_task(self._run(job_id), name=f"enrichment-job-{job_id}")
            self._tasks[job_id] = task
            task.add_done_callback(lambda _task: self._forget(job_id))
        return DispatchResult(backend=JobBackend.LOCAL)

    def _forget(self, job_id: int) -> None:
        self._tasks.pop(job_id, None)

    async def _run(self, job_id: int) -> JobSummary | None:
        try:
            summary = await process_job(
                job_id,
                session_factory=self._open_session,
                http=self._http,
                provider_http=self._provider_http,
                settings=self._settings,
                limits=self._limits,
            )
        except asyncio.CancelledError:
            logger.info("job %s: stopped", job_id)
            raise
        except Exception as exc:
            logger.exception("job %s failed", job_id)
            error = f"The job crashed: {type(exc).__name__}: {exc}"
            await in_transaction(self._open_session, fail_job, job_id=job_id, error=error)
            return None
        logger.info(
            "job %s: %s (%d done, %d failed)", job_id, summary.status, summary.done, summary.failed
        )
        return summary

    async def cancel(self, job_id: int) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def resume_unfinished(self) -> list[int]:
        """Restart every local job a previous process left unfinished; tasks done stay done."""
        job_ids = await in_session(self._open_session, _unfinished_local_jobs)
        for job_id in job_ids:
            logger.info("job %s: resuming", job_id)
            await self.dispatch(job_id)
        return job_ids

    async def wait(self, job_id: int) -> JobSummary | None:
        """Wait for a dispatched job to finish (tests and the CLI use this)."""
        task = self._tasks.get(job_id)
        return await task if task is not None else None

    async def aclose(self) -> None:
        """Stop every running job; the database keeps them resumable."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def active_jobs(self) -> list[int]:
        """The jobs this process is running now: introspection for tests and operators."""
        return sorted(self._tasks)


def _unfinished_local_jobs(session: Session) -> list[int]:
    jobs = unfinished_jobs(session, backend=JobBackend.LOCAL)
    return [j.id for j in jobs if j.id is not None]
