"""``python -m enrichment_app.worker <job_id>`` as a real subprocess against a prepared SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.services.jobs import cancel_job, create_job
from enrichment_app.settings import Settings
from tests.integration.db_helpers import cells_of, column_refs, seed_demo_table
from tests.support.paths import ROOT


def _run_worker(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the worker with a clean environment, from a directory without a ``.env`` file."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": settings.database_url,
        "SEED_DEMO": "false",
    }
    return subprocess.run(
        [sys.executable, "-m", "enrichment_app.worker", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture
def demo_id(open_session: SessionFactory, settings: Settings) -> int:
    with open_session() as session:
        return seed_demo_table(session, max_cell_chars=settings.max_cell_chars)


def test_the_worker_processes_a_job_and_prints_its_cells_in_batches(
    open_session: SessionFactory, settings: Settings, demo_id: int, tmp_path: Path
) -> None:
    with unit_of_work(open_session) as session:
        domains = column_refs(session, demo_id, "Email domain")
        intros = column_refs(session, demo_id, "Intro line")[:3]
        job = create_job(
            session=session, table_id=demo_id, cells=domains + intros, max_cells=100
        ).job

    done = _run_worker(settings, tmp_path, str(job.id))

    assert done.returncode == 0, done.stderr
    lines = _lines(done.stdout)
    *batches, summary = lines
    assert {line["type"] for line in batches} == {"cells"}
    assert {line["job_id"] for line in batches} == {job.id}
    assert len(batches) < 28, "cells stored together are reported together"
    cells = [cell for line in batches for cell in line["cells"]]
    assert len(cells) == 28
    assert sorted((c["row_id"], c["column_id"]) for c in cells) == sorted(
        (r.row_id, r.column_id) for r in domains + intros
    )
    progress = [line["done"] + line["failed"] for line in batches]
    assert progress == sorted(progress) and progress[-1] == 28
    assert all(line["total"] == 28 for line in batches)
    (failed,) = [c for c in cells if c["status"] == "error"]
    assert failed["value"] is None
    assert "not an email address" in failed["error"]
    assert summary == {
        "type": "summary",
        "job_id": job.id,
        "status": "completed",
        "total": 28,
        "done": 27,
        "failed": 1,
        "error": None,
    }
    # The results are in the database the test prepared.
    with open_session() as session:
        stored = cells_of(session, domains[:1] + intros[:1])
        assert [(c.status, c.value) for c in stored] == [
            ("done", "acme-robotics.example"),
            (
                "done",
                "Hi Acme Robotics team, we noticed acme-robotics.example and would love to talk.",
            ),
        ]


def test_an_unknown_job_exits_1_with_an_error_line(settings: Settings, tmp_path: Path) -> None:
    done = _run_worker(settings, tmp_path, "4242")
    assert done.returncode == 1
    assert _lines(done.stdout) == [
        {"type": "error", "job_id": 4242, "error": "Job 4242 does not exist."}
    ]


def test_a_canceled_job_exits_1_and_runs_nothing(
    open_session: SessionFactory, settings: Settings, demo_id: int, tmp_path: Path
) -> None:
    with unit_of_work(open_session) as session:
        cells = column_refs(session, demo_id, "Email domain")[:2]
        job = create_job(session=session, table_id=demo_id, cells=cells, max_cells=100).job
        assert job.id is not None
        cancel_job(session=session, job_id=job.id)
    done = _run_worker(settings, tmp_path, str(job.id))
    assert done.returncode == 1
    [summary] = _lines(done.stdout)
    assert (summary["type"], summary["status"], summary["done"]) == ("summary", "canceled", 0)


@pytest.mark.parametrize(
    "args", [(), ("seven",), ("1", "2")], ids=["no id", "not a number", "two ids"]
)
def test_bad_usage_exits_2_with_the_usage_on_stderr(
    settings: Settings, tmp_path: Path, args: tuple[str, ...]
) -> None:
    done = _run_worker(settings, tmp_path, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "usage: python -m enrichment_app.worker" in done.stderr
