"""The header's words for every run and job status."""

from __future__ import annotations

import pytest

from enrichment_app.live.status import describe_job, describe_run


@pytest.mark.parametrize(
    ("status", "done", "failed", "total", "error", "label", "active"),
    [
        ("", 0, 0, 0, None, "Starting…", True),
        ("PENDING_VERSION", 0, 0, 0, None, "Starting…", True),
        ("DELAYED", 0, 0, 0, None, "Starting…", True),
        ("QUEUED", 0, 0, 5, None, "In Queue…", True),
        ("DEQUEUED", 0, 0, 5, None, "Enriching… (0/5)", True),
        ("EXECUTING", 2, 1, 5, None, "Enriching… (3/5)", True),
        ("WAITING", 4, 0, 5, None, "Enriching… (4/5)", True),
        ("COMPLETED", 5, 0, 5, None, "Enriched!", False),
        ("COMPLETED", 4, 1, 5, None, "Enriched! (1 failed)", False),
        ("FAILED", 1, 0, 5, "boom", "Failed: boom", False),
        ("CRASHED", 1, 0, 5, "OOM", "Crashed: OOM", False),
        ("SYSTEM_FAILURE", 0, 0, 5, None, "Failed", False),
        ("TIMED_OUT", 0, 0, 5, "maxDuration", "Timed out: maxDuration", False),
        ("EXPIRED", 0, 0, 5, None, "Expired", False),
        ("CANCELED", 2, 0, 5, "ignored", "Canceled", False),
    ],
)
def test_describe_run(
    status: str, done: int, failed: int, total: int, error: str | None, label: str, active: bool
) -> None:
    line = describe_run(status, done=done, failed=failed, total=total, error=error)
    assert (line.label, line.active) == (label, active)


@pytest.mark.parametrize(
    ("status", "done", "failed", "error", "label", "tone"),
    [
        ("queued", 0, 0, None, "In Queue…", "blue"),
        ("running", 3, 2, None, "Enriching… (5/9)", "blue"),
        ("completed", 9, 0, None, "Enriched!", "green"),
        ("completed", 8, 1, None, "Enriched! (1 failed)", "amber"),
        ("failed", 0, 0, "worker crashed", "Failed: worker crashed", "red"),
        ("canceled", 2, 0, None, "Canceled", "gray"),
        ("", 0, 0, None, "", "gray"),
    ],
)
def test_describe_job(
    status: str, done: int, failed: int, error: str | None, label: str, tone: str
) -> None:
    line = describe_job(status, done=done, failed=failed, total=9, error=error)
    assert (line.label, line.tone) == (label, tone)
