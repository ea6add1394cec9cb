"""What the page's header says about a job, in the seed's words (pure functions).

Starting… → In Queue… → Enriching… (done/total) → Enriched!, or how it ended. A job run by
Trigger.dev is described by its run's status; a local job by its own status.
"""

from __future__ import annotations

from dataclasses import dataclass

from enrichment_app.domain import JobStatus


@dataclass(frozen=True, slots=True)
class StatusLine:
    label: str
    tone: str
    """A Radix colour: blue while active, green/amber when done, red on failure, gray else."""
    active: bool


STARTING = StatusLine("Starting…", "blue", True)
IN_QUEUE = StatusLine("In Queue…", "blue", True)

_RUN_ENDINGS = {
    "CANCELED": "Canceled",
    "FAILED": "Failed",
    "CRASHED": "Crashed",
    "SYSTEM_FAILURE": "Failed",
    "TIMED_OUT": "Timed out",
    "EXPIRED": "Expired",
}


def _progress(done: int, failed: int, total: int) -> StatusLine:
    return StatusLine(f"Enriching… ({done + failed}/{total})", "blue", True)


def _enriched(failed: int) -> StatusLine:
    if failed:
        return StatusLine(f"Enriched! ({failed} failed)", "amber", False)
    return StatusLine("Enriched!", "green", False)


def _ended(word: str, error: str | None) -> StatusLine:
    tone = "gray" if word == "Canceled" else "red"
    return StatusLine(f"{word}: {error}" if error and word != "Canceled" else word, tone, False)


def describe_run(
    status: str, *, done: int, failed: int, total: int, error: str | None
) -> StatusLine:
    """The header for a Trigger.dev run, from its SDK status and its progress metadata."""
    if status in ("", "PENDING_VERSION", "DELAYED"):
        return STARTING
    if status == "QUEUED":
        return IN_QUEUE
    if status in ("DEQUEUED", "EXECUTING", "WAITING"):
        return _progress(done, failed, total)
    if status == "COMPLETED":
        return _enriched(failed)
    return _ended(_RUN_ENDINGS.get(status, "Failed"), error)


def describe_job(
    status: str, *, done: int, failed: int, total: int, error: str | None
) -> StatusLine:
    """The header for a job followed through the database (the local runner, or polling)."""
    if status == JobStatus.QUEUED.value:
        return IN_QUEUE
    if status == JobStatus.RUNNING.value:
        return _progress(done, failed, total)
    if status == JobStatus.COMPLETED.value:
        return _enriched(failed)
    if status == JobStatus.FAILED.value:
        return _ended("Failed", error)
    if status == JobStatus.CANCELED.value:
        return _ended("Canceled", error)
    return StatusLine("", "gray", False)
