"""The dispatch interface every runner implements, so the page never knows which one runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from enrichment_app.domain import JobBackend


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """What the caller learns when a job is handed to a runner.

    ``run_id`` and ``public_access_token`` are set only when Trigger.dev runs the job; the
    page then follows it over Realtime. Otherwise it polls the database.
    """

    backend: JobBackend
    run_id: str | None = None
    public_access_token: str | None = None
    fallback_reason: str | None = None
    """Why the job runs locally although Trigger.dev is configured (trigger failed)."""


class JobRunner(Protocol):
    async def dispatch(self, job_id: int) -> DispatchResult:
        """Start running the job; returns at once."""
        ...

    async def cancel(self, job_id: int) -> None:
        """Cancel the job (the database state is already updated by the caller)."""
        ...
