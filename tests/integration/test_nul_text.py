"""The NUL character on SQLite and PostgreSQL: refused from people, removed from providers.

PostgreSQL cannot store ``\\x00`` in text. Before this rule, a NUL in a typed value, a name,
a column config or a provider's answer raised a raw driver error on PostgreSQL (and a job's
batch of results could not be written), while SQLite stored it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, EnrichmentJob
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import ColumnKind
from enrichment_app.enrichers import EnrichContext, Enricher, register, unregister
from enrichment_app.errors import EnrichError, InvalidInputError
from enrichment_app.runner.processing import process_job
from enrichment_app.services.jobs import create_job, fail_job
from enrichment_app.services.tables import (
    ColumnSpec,
    add_column,
    create_table,
    update_cell,
)
from enrichment_app.settings import Settings
from tests.integration.db_helpers import cells_of, column_refs, row_counts, seed_demo_table


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return settings
    url = request.getfixturevalue("postgres_database")
    return settings.model_copy(update={"database_url": url})


class NulEnricher(Enricher):
    """Answers with a NUL inside the value, or fails with one inside the message."""

    name = "test_nul"
    label = "NUL"

    async def enrich(self, ctx: EnrichContext) -> str:
        company = ctx.row.get("Company") or ""
        if company.startswith("A"):
            raise EnrichError(f"provider said no\x00 to {company}")
        return f"{company}\x00!"


@pytest.fixture
def nul_enricher() -> Iterator[None]:
    register(NulEnricher(), replace=True)
    yield
    unregister(NulEnricher.name)


def _demo(open_session: SessionFactory) -> int:
    with open_session() as session:
        table_id = seed_demo_table(session)
        session.commit()
    return table_id


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("table name", "The table name contains a NUL character"),
        ("column name", "The column name contains a NUL character"),
        ("row value", "Row 2, column 'name', contains a NUL character"),
        ("column config", "The config of column 'Hello' contains a NUL character"),
    ],
)
def test_creating_with_a_nul_is_refused_and_stores_nothing(
    open_session: SessionFactory, case: str, message: str
) -> None:
    table_name = "x\x00" if case == "table name" else "People"
    column = "na\x00me" if case == "column name" else "name"
    rows = [["Ada"], ["Gr\x00ace"]] if case == "row value" else [["Ada"]]
    template = "Hi {name}\x00" if case == "column config" else "Hi {name}"
    columns = [
        ColumnSpec(name=column),
        ColumnSpec(
            name="Hello",
            kind=ColumnKind.ENRICHMENT,
            enricher="template",
            config={"template": template},
        ),
    ]
    with open_session() as session:
        before = row_counts(session)
    with open_session() as session, pytest.raises(InvalidInputError, match=message):
        create_table(
            session=session, name=table_name, columns=columns, rows=rows, max_cell_chars=100
        )
        session.commit()
    with open_session() as session:
        assert row_counts(session) == before


def test_an_edit_with_a_nul_is_refused_and_the_old_value_kept(
    open_session: SessionFactory,
) -> None:
    table_id = _demo(open_session)
    with open_session() as session:
        ref = column_refs(session, table_id, "Company")[0]
        [old] = cells_of(session, [ref])
        old_value, before = old.value, row_counts(session)
    with open_session() as session, pytest.raises(InvalidInputError, match="'Company' contains"):
        update_cell(
            session=session,
            table_id=table_id,
            row_id=ref.row_id,
            column_id=ref.column_id,
            value="Acme\x00",
            max_cell_chars=100,
        )
        session.commit()
    with open_session() as session:
        assert cells_of(session, [ref])[0].value == old_value
        assert row_counts(session) == before


async def test_a_providers_nul_is_removed_and_the_job_completes(
    open_session: SessionFactory, settings: Settings, http: httpx.AsyncClient, nul_enricher: None
) -> None:
    table_id = _demo(open_session)
    with unit_of_work(open_session) as session:
        add_column(
            session=session,
            table_id=table_id,
            spec=ColumnSpec(name="Nul", kind=ColumnKind.ENRICHMENT, enricher=NulEnricher.name),
        )
        session.commit()
        refs = column_refs(session, table_id, "Nul")[:6]
        companies = [c.value for c in cells_of(session, column_refs(session, table_id, "Company"))]
        job = create_job(session=session, table_id=table_id, cells=refs, max_cells=100).job
    assert job.id is not None
    summary = await process_job(job.id, session_factory=open_session, http=http, settings=settings)
    failing = sum(1 for c in companies[:6] if (c or "").startswith("A"))
    assert (summary.status, summary.done, summary.failed) == ("completed", 6 - failing, failing)
    with open_session() as session:
        cells = cells_of(session, refs)
    for company, cell in zip(companies, cells, strict=False):
        if (company or "").startswith("A"):
            assert (cell.status, cell.error) == ("error", f"provider said no to {company}")
        else:
            assert (cell.status, cell.value) == ("done", f"{company}!")


def test_a_failure_reason_with_a_nul_is_stored_without_it(open_session: SessionFactory) -> None:
    table_id = _demo(open_session)
    with unit_of_work(open_session) as session:
        refs = column_refs(session, table_id, "Email domain")[:2]
        job = create_job(session=session, table_id=table_id, cells=refs, max_cells=10).job
        assert job.id is not None
        fail_job(session=session, job_id=job.id, error="run crashed:\x00 out of memory")
    with open_session() as session:
        stored = session.exec(select(EnrichmentJob).where(EnrichmentJob.id == job.id)).one()
        assert stored.error == "run crashed: out of memory"
        errors = {c.error for c in session.exec(select(Cell).where(Cell.table_id == table_id))}
        assert "run crashed: out of memory" in errors
