"""Plain value types shared by every layer: statuses, cell references, dispatch results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class ColumnKind(StrEnum):
    INPUT = "input"
    ENRICHMENT = "enrichment"


class CellStatus(StrEnum):
    EMPTY = "empty"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELED = "canceled"


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELED = "canceled"


ACTIVE_TASK_STATUSES = (TaskStatus.QUEUED.value, TaskStatus.RUNNING.value)


class JobStatus(StrEnum):
    QUEUED = "queued"
    """Created and dispatched; no cell has started yet."""
    RUNNING = "running"
    COMPLETED = "completed"
    """Every task finished; some cells may have failed (see ``failed``)."""
    FAILED = "failed"
    """The job itself failed (the worker crashed, the run failed); ``error`` says why."""
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)


class JobBackend(StrEnum):
    LOCAL = "local"
    TRIGGER = "trigger"


@dataclass(frozen=True, slots=True, order=True)
class CellRef:
    """One cell, addressed by its row and column ids."""

    row_id: int
    column_id: int


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
