"""Creating, cancelling and failing enrichment jobs on a real (SQLite) database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellRef, CellStatus, JobStatus, TaskStatus, utcnow
from enrichment_app.errors import CellsBusyError, InvalidInputError, NotFoundError
from enrichment_app.services.csv_import import import_csv
from enrichment_app.services.grid import changed_cells_in_rows, row_ids_between
from enrichment_app.services.jobs import (
    JobView,
    cancel_job,
    create_job,
    fail_job,
    get_job,
    latest_job,
)
from tests.integration.db_helpers import (
    cells_of,
    column_refs,
    row_counts,
    seed_demo_table,
    tasks_of,
)


@pytest.fixture
def demo_id(open_session: SessionFactory) -> int:
    with open_session() as session:
        return seed_demo_table(session)


def _refs(open_session: SessionFactory, table_id: int, column: str) -> list[CellRef]:
    with open_session() as session:
        return column_refs(session, table_id, column)


def _create(
    open_session: SessionFactory, table_id: int, cells: list[CellRef], max_cells: int = 100
):
    with unit_of_work(open_session) as session:
        return create_job(session=session, table_id=table_id, cells=cells, max_cells=max_cells)


def _finish(session: Session, job_id: int, ref: CellRef, value: str) -> None:
    """Record a task as done the way the runner does (task, cell and counter)."""
    session.execute(
        sa.update(EnrichmentTask)
        .where(
            col(EnrichmentTask.job_id) == job_id,
            col(EnrichmentTask.row_id) == ref.row_id,
            col(EnrichmentTask.column_id) == ref.column_id,
        )
        .values(status=TaskStatus.DONE.value, finished_at=utcnow())
    )
    session.execute(
        sa.update(Cell)
        .where(col(Cell.row_id) == ref.row_id, col(Cell.column_id) == ref.column_id)
        .values(status=CellStatus.DONE.value, value=value)
    )
    session.execute(
        sa.update(EnrichmentJob)
        .where(col(EnrichmentJob.id) == job_id)
        .values(done=EnrichmentJob.done + 1, status=JobStatus.RUNNING.value)
    )
    session.commit()


# --- create_job: refusals ---------------------------------------------------------------


def test_an_empty_selection_is_refused(open_session: SessionFactory, demo_id: int) -> None:
    with open_session() as session:
        before = row_counts(session)
    with pytest.raises(InvalidInputError, match="Select one or more cells"):
        _create(open_session, demo_id, [])
    with open_session() as session:
        assert row_counts(session) == before


def test_an_input_only_selection_is_refused(open_session: SessionFactory, demo_id: int) -> None:
    cells = _refs(open_session, demo_id, "Company") + _refs(open_session, demo_id, "Website")
    with pytest.raises(InvalidInputError, match="no cells in an enrichment column"):
        _create(open_session, demo_id, cells)
    with open_session() as session:
        assert session.exec(select(EnrichmentJob)).all() == []


def test_an_unknown_table_is_not_found(open_session: SessionFactory, demo_id: int) -> None:
    cells = _refs(open_session, demo_id, "Email domain")
    with pytest.raises(NotFoundError, match="Table 999 does not exist"):
        _create(open_session, 999, cells)


def test_cells_of_another_table_are_not_found(open_session: SessionFactory, demo_id: int) -> None:
    with open_session() as session:
        other = import_csv(
            session=session, name="Other", data=b"a\n1\n", max_bytes=1000, max_cell_chars=100
        )
        session.commit()
    assert other.id is not None
    foreign = _refs(open_session, demo_id, "Email domain")[:2]
    own = _refs(open_session, other.id, "a")
    with pytest.raises(NotFoundError, match=f"2 selected cell\\(s\\) are not in table {other.id}"):
        _create(open_session, other.id, own + foreign)
    # A real column id with a row of another table is caught too.
    mixed = [CellRef(foreign[0].row_id, own[0].column_id)]
    with pytest.raises(NotFoundError, match="not in table"):
        _create(open_session, other.id, mixed)
    with open_session() as session:
        assert session.exec(select(EnrichmentTask)).all() == []


def test_more_cells_than_the_limit_are_refused(open_session: SessionFactory, demo_id: int) -> None:
    cells = _refs(open_session, demo_id, "Email domain") + _refs(
        open_session, demo_id, "Intro line"
    )
    inputs = _refs(open_session, demo_id, "Company")
    with pytest.raises(InvalidInputError, match=f"{len(cells)} cells selected; .* at most 49"):
        _create(open_session, demo_id, cells + inputs, max_cells=len(cells) - 1)
    # Exactly at the limit is fine, and the input cells never count.
    created = _create(open_session, demo_id, cells + inputs, max_cells=len(cells))
    assert created.job.total == len(cells) == 50


# --- create_job: what it creates ----------------------------------------------------------


def test_a_job_queues_one_task_per_enrichment_cell(
    open_session: SessionFactory, demo_id: int
) -> None:
    cells = _refs(open_session, demo_id, "Email domain")[:5]
    duplicates_and_inputs = cells[:2] + _refs(open_session, demo_id, "Company")[:3]
    created = _create(open_session, demo_id, cells + duplicates_and_inputs)
    assert created.skipped_active == 0
    assert created.job.status == JobStatus.QUEUED
    assert (created.job.total, created.job.done, created.job.failed) == (5, 0, 0)
    assert created.job.id is not None
    with open_session() as session:
        tasks = tasks_of(session, created.job.id)
        assert [t.id for t in tasks] == created.task_ids
        assert sorted(CellRef(t.row_id, t.column_id) for t in tasks) == sorted(cells)
        assert {t.status for t in tasks} == {TaskStatus.QUEUED}
        assert {c.status for c in cells_of(session, cells)} == {CellStatus.QUEUED}
        untouched = _refs(open_session, demo_id, "Email domain")[5:]
        assert {c.status for c in cells_of(session, untouched)} == {CellStatus.EMPTY}
        assert latest_job(session=session, table_id=demo_id) == get_job(
            session=session, job_id=created.job.id
        )


def test_a_second_job_over_the_same_cells_is_refused(
    open_session: SessionFactory, demo_id: int
) -> None:
    cells = _refs(open_session, demo_id, "Intro line")[:4]
    first = _create(open_session, demo_id, cells)
    with pytest.raises(CellsBusyError, match="already queued or running"):
        _create(open_session, demo_id, cells)
    with open_session() as session:
        assert [j.id for j in session.exec(select(EnrichmentJob)).all()] == [first.job.id]
        assert len(session.exec(select(EnrichmentTask)).all()) == 4


def test_an_overlapping_selection_queues_only_the_new_cells(
    open_session: SessionFactory, demo_id: int
) -> None:
    column = _refs(open_session, demo_id, "Email domain")
    first = _create(open_session, demo_id, column[:6])
    second = _create(open_session, demo_id, column[4:10])
    assert second.skipped_active == 2
    assert second.job.total == 4
    assert second.job.id is not None
    with open_session() as session:
        queued = tasks_of(session, second.job.id)
        assert sorted(CellRef(t.row_id, t.column_id) for t in queued) == column[6:10]
        assert first.job.id is not None
        assert len(tasks_of(session, first.job.id)) == 6


def test_a_finished_cell_can_run_again(open_session: SessionFactory, demo_id: int) -> None:
    cells = _refs(open_session, demo_id, "Email domain")[:2]
    first = _create(open_session, demo_id, cells)
    assert first.job.id is not None
    with open_session() as session:
        for ref in cells:
            _finish(session, first.job.id, ref, "old.example")
    again = _create(open_session, demo_id, cells)
    assert (again.job.total, again.skipped_active) == (2, 0)


def test_the_database_refuses_a_second_active_task_for_a_cell(
    open_session: SessionFactory, demo_id: int
) -> None:
    ref = _refs(open_session, demo_id, "Email domain")[0]
    created = _create(open_session, demo_id, [ref])
    job_id = created.job.id
    for status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
        with open_session() as session, pytest.raises(sa.exc.IntegrityError):
            session.add(
                EnrichmentTask(
                    job_id=job_id, row_id=ref.row_id, column_id=ref.column_id, status=status
                )
            )
            session.commit()
    # Finished tasks for the same cell are history, not duplicates.
    with open_session() as session:
        for status in (TaskStatus.DONE, TaskStatus.ERROR, TaskStatus.CANCELED):
            session.add(
                EnrichmentTask(
                    job_id=job_id, row_id=ref.row_id, column_id=ref.column_id, status=status
                )
            )
        session.commit()
        assert len(tasks_of(session, job_id or 0)) == 4


# --- cancel_job and fail_job --------------------------------------------------------------


def test_cancel_keeps_finished_cells_and_cancels_the_rest(
    open_session: SessionFactory, demo_id: int
) -> None:
    cells = _refs(open_session, demo_id, "Email domain")[:5]
    other = _refs(open_session, demo_id, "Intro line")[:2]
    job_id = _create(open_session, demo_id, cells).job.id
    bystander_id = _create(open_session, demo_id, other).job.id
    assert job_id is not None
    assert bystander_id is not None
    with open_session() as session:
        _finish(session, job_id, cells[0], "acme-robotics.example")
        _finish(session, job_id, cells[1], "blueharbor.example")
        session.execute(
            sa.update(EnrichmentTask)
            .where(
                col(EnrichmentTask.job_id) == job_id, col(EnrichmentTask.row_id) == cells[2].row_id
            )
            .values(status=TaskStatus.RUNNING.value)
        )
        session.commit()

    with unit_of_work(open_session) as session:
        job = cancel_job(session=session, job_id=job_id)
    assert job.status == JobStatus.CANCELED
    assert job.finished_at is not None
    assert (job.done, job.failed, job.total) == (2, 0, 5)
    with open_session() as session:
        statuses = [t.status for t in tasks_of(session, job_id)]
        assert statuses == ["done", "done", "canceled", "canceled", "canceled"]
        got = [(c.status, c.value) for c in cells_of(session, cells)]
        assert got == [
            ("done", "acme-robotics.example"),
            ("done", "blueharbor.example"),
            ("canceled", None),
            ("canceled", None),
            ("canceled", None),
        ]
        # Another job's cells are not touched.
        assert {t.status for t in tasks_of(session, bystander_id)} == {"queued"}
        assert {c.status for c in cells_of(session, other)} == {"queued"}
        snapshot = row_counts(session), [(c.status, c.value) for c in cells_of(session, cells)]

    with unit_of_work(open_session) as session:
        again = cancel_job(session=session, job_id=job_id)
    assert (again.status, again.finished_at) == (JobStatus.CANCELED, job.finished_at)
    with open_session() as session:
        assert (row_counts(session), [(c.status, c.value) for c in cells_of(session, cells)]) == (
            snapshot
        )
    # The canceled cells are free to run again.
    assert _create(open_session, demo_id, cells).job.total == 5


def test_cancelling_an_unknown_job_is_not_found(open_session: SessionFactory) -> None:
    with unit_of_work(open_session) as session, pytest.raises(NotFoundError, match="Job 42"):
        cancel_job(session=session, job_id=42)


def test_fail_job_marks_unfinished_cells_as_errors(
    open_session: SessionFactory, demo_id: int
) -> None:
    cells = _refs(open_session, demo_id, "Intro line")[:3]
    job_id = _create(open_session, demo_id, cells).job.id
    assert job_id is not None
    with unit_of_work(open_session) as session:
        _finish(session, job_id, cells[0], "Hi Acme")
        job = fail_job(session=session, job_id=job_id, error="The worker crashed: boom")
    assert (job.status, job.error) == (JobStatus.FAILED, "The worker crashed: boom")
    assert (job.done, job.failed, job.total) == (1, 2, 3)
    with unit_of_work(open_session) as session:
        assert [(t.status, t.error) for t in tasks_of(session, job_id)] == [
            ("done", None),
            ("error", "The worker crashed: boom"),
            ("error", "The worker crashed: boom"),
        ]
        assert [(c.status, c.value, c.error) for c in cells_of(session, cells)] == [
            ("done", "Hi Acme", None),
            ("error", None, "The worker crashed: boom"),
            ("error", None, "The worker crashed: boom"),
        ]
        # A final job stays as it is: failing or cancelling it again changes nothing.
        assert fail_job(session=session, job_id=job_id, error="again").error == (
            "The worker crashed: boom"
        )
        assert cancel_job(session=session, job_id=job_id).status == JobStatus.FAILED


# --- reading ------------------------------------------------------------------------------


def test_job_view_and_the_cells_a_new_job_changed(
    open_session: SessionFactory, demo_id: int
) -> None:
    cells = _refs(open_session, demo_id, "Email domain")[:2]
    with open_session() as session:
        assert latest_job(session=session, table_id=demo_id) is None
    before = utcnow() - timedelta(microseconds=1)
    created = _create(open_session, demo_id, cells)
    assert created.job.id is not None
    view = JobView.of(created.job)
    assert not view.is_final
    data = view.to_json()
    assert data["id"] == created.job.id
    assert (data["status"], data["total"], data["backend"]) == ("queued", 2, "local")
    assert data["finishedAt"] is None
    assert datetime.fromisoformat(data["createdAt"]) == created.job.created_at.replace(tzinfo=UTC)
    assert data["createdAt"].endswith("+00:00")  # SQLite hands back naive UTC; the API says so
    with unit_of_work(open_session) as session:
        rows = row_ids_between(session, table_id=demo_id, start=0, stop=10_000)
        changed = changed_cells_in_rows(session, table_id=demo_id, since=before, row_ids=rows)
        assert sorted(CellRef(r, c) for r, c, _ in changed) == sorted(cells)
        assert changed_cells_in_rows(session, table_id=demo_id, since=utcnow(), row_ids=rows) == []
        job = cancel_job(session=session, job_id=created.job.id)
    assert JobView.of(job).is_final
