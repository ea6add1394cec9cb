"""The core on PostgreSQL: a throwaway PostgreSQL cluster started from Debian's packages.

The cluster (tests/integration/conftest.py) lives in a temporary directory and is stopped when
the test session ends. Each test gets its own database.
"""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.migrate import alembic_config, upgrade_database
from enrichment_app.db.models import EnrichmentTask
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellStatus, TaskStatus
from enrichment_app.errors import CsvImportError
from enrichment_app.runner.processing import process_job
from enrichment_app.services.csv_import import import_csv
from enrichment_app.services.jobs import cancel_job, create_job
from enrichment_app.services.tables import delete_table, export_csv
from enrichment_app.settings import Settings
from tests.integration.db_helpers import (
    cells_of,
    column_refs,
    row_counts,
    seed_demo_table,
    tasks_of,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings(postgres_database: str) -> Settings:
    """Settings pointing at a fresh database of the session's cluster (replaces the SQLite one)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=postgres_database,
        max_cells_per_job=5000,
        max_cell_chars=10_000,
        max_csv_bytes=1024 * 1024,
        seed_demo=False,
        run_local_jobs=True,
        llm_api_key=None,
        trigger_secret_key=None,
        enrichment_api_key=None,
    )


def test_migrations_apply_and_are_idempotent(engine: sa.Engine) -> None:
    assert engine.dialect.name == "postgresql"
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        assert (
            connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
        )
        tables = set(sa.inspect(connection).get_table_names())
        index = connection.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_task_active_cell'")
        ).scalar_one()
    assert {"data_table", "table_column", "table_row", "cell", "enrichment_job"} < tables
    assert "UNIQUE" in index
    assert "WHERE" in index
    upgrade_database(engine)  # already at head: nothing happens, nothing breaks


def test_csv_import_export_and_refusal(open_session: SessionFactory) -> None:
    data = 'name,bio\nAda,"line one\nline two, with ""quotes"""\nZoë,<b>x</b>\n'.encode()
    with open_session() as session:
        table = import_csv(
            session=session, name="Up", data=data, max_bytes=10_000, max_cell_chars=100
        )
        session.commit()
        assert table.id is not None
        assert export_csv(session=session, table_id=table.id, raw=True) == data.decode()
        before = row_counts(session)
    with open_session() as session, pytest.raises(CsvImportError, match="twice"):
        import_csv(
            session=session, name="Bad", data=b"a,A\n1,2\n", max_bytes=10_000, max_cell_chars=100
        )
    with open_session() as session:
        assert row_counts(session) == before
        delete_table(session=session, table_id=table.id)
        session.commit()
        assert set(row_counts(session).values()) == {0}


async def test_a_job_runs_and_another_is_cancelled(
    open_session: SessionFactory, settings: Settings, http: httpx.AsyncClient
) -> None:
    with unit_of_work(open_session) as session:
        demo_id = seed_demo_table(session, max_cell_chars=settings.max_cell_chars)
        domains = column_refs(session, demo_id, "Email domain")
        intros = column_refs(session, demo_id, "Intro line")
        job = create_job(session=session, table_id=demo_id, cells=domains, max_cells=100).job
    assert job.id is not None
    results = []
    summary = await process_job(
        job.id, session_factory=open_session, http=http, settings=settings, on_result=results.append
    )
    assert (summary.status, summary.done, summary.failed) == ("completed", 24, 1)
    assert len(results) == 25
    with unit_of_work(open_session) as session:
        assert cells_of(session, domains[:1])[0].value == "acme-robotics.example"
        other = create_job(session=session, table_id=demo_id, cells=intros, max_cells=100)
        assert other.job.id is not None
        canceled = cancel_job(session=session, job_id=other.job.id)
        assert canceled.status == "canceled"
        assert {c.status for c in cells_of(session, intros)} == {CellStatus.CANCELED}
        assert {t.status for t in tasks_of(session, other.job.id)} == {TaskStatus.CANCELED}


def test_the_database_refuses_a_second_active_task_for_a_cell(
    open_session: SessionFactory, settings: Settings
) -> None:
    with unit_of_work(open_session) as session:
        demo_id = seed_demo_table(session, max_cell_chars=settings.max_cell_chars)
        ref = column_refs(session, demo_id, "Email domain")[0]
        job = create_job(session=session, table_id=demo_id, cells=[ref], max_cells=10).job
    with (
        open_session() as session,
        pytest.raises(sa.exc.IntegrityError, match="uq_task_active_cell"),
    ):
        session.add(
            EnrichmentTask(
                job_id=job.id, row_id=ref.row_id, column_id=ref.column_id, status=TaskStatus.RUNNING
            )
        )
        session.commit()
    with open_session() as session:
        session.add(
            EnrichmentTask(job_id=job.id, row_id=ref.row_id, column_id=ref.column_id, status="done")
        )
        session.commit()
        tasks = session.exec(select(EnrichmentTask).where(EnrichmentTask.job_id == job.id)).all()
        assert sorted(t.status for t in tasks) == ["done", "queued"]
