"""The plugin enricher of docs/writing-an-enricher.md works as the page says.

The page's Python block is run as a module of its own (it registers ``slug``), then checked:
its config rules, the columns it reads, its values and errors, and a job with a ``slug``
column on the demo table through ``add_column``, ``create_job`` and ``process_job``.
"""

from __future__ import annotations

import types
from collections.abc import Iterator

import httpx
import pytest

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import ColumnKind
from enrichment_app.enrichers import EnrichContext, Enricher, get_enricher, unregister
from enrichment_app.errors import EnricherConfigError, EnrichError
from enrichment_app.runner.processing import process_job
from enrichment_app.services.jobs import create_job
from enrichment_app.services.tables import ColumnSpec, add_column
from enrichment_app.settings import Settings
from tests.integration.db_helpers import cells_of, column_refs, seed_demo_table
from tests.support.docs import code_blocks
from tests.support.paths import ROOT

PAGE = ROOT / "docs" / "writing-an-enricher.md"


def page_code() -> str:
    (code,) = [block.text for block in code_blocks(PAGE) if block.lang == "python"]
    return code


@pytest.fixture
def slug() -> Iterator[Enricher]:
    module = types.ModuleType("slug_enricher_from_the_docs")
    exec(compile(page_code(), str(PAGE), "exec"), module.__dict__)
    try:
        yield get_enricher("slug")
    finally:
        unregister("slug")


def test_the_page_registers_its_enricher_and_the_fixture_removes_it(slug: Enricher) -> None:
    assert type(slug).__name__ == "SlugEnricher"
    assert slug.validate_config(slug.config_example) == slug.config_example


def test_the_config_is_normalised_and_bad_configs_are_refused(slug: Enricher) -> None:
    assert slug.validate_config({"column": "Company"}) == {"column": "Company", "max_length": 60}
    assert slug.referenced_columns({"column": "Company", "max_length": 60}) == {"Company"}
    refusals = {
        "slug: config needs 'column'": {},
        "slug: unknown config key 'colum'; allowed: column, max_length": {"colum": "Company"},
        "slug: 'max_length' must be between 1 and 200": {"column": "Company", "max_length": 0},
        "slug: 'max_length' must be a whole number": {"column": "Company", "max_length": 1.5},
    }
    for message, config in refusals.items():
        with pytest.raises(EnricherConfigError) as refused:
            slug.validate_config(config)
        assert str(refused.value) == message


async def test_values_and_errors(slug: Enricher, settings: Settings) -> None:
    async def enrich(text: str, max_length: int = 60) -> str:
        config = {"column": "Company", "max_length": max_length}
        async with httpx.AsyncClient() as http:
            ctx = EnrichContext(row={"Company": text}, config=config, http=http, settings=settings)
            return await slug.enrich(ctx)

    assert await enrich("Cedar & Pine Studio") == "cedar-pine-studio"
    assert await enrich("Crème Brûlée Café") == "creme-brulee-cafe"
    assert await enrich("Cedar & Pine Studio", max_length=6) == "cedar"
    with pytest.raises(EnrichError, match="has no letters or digits"):
        await enrich("★ ★ ★")
    with pytest.raises(EnrichError, match="No text in column 'Company'"):
        await enrich("   ")


async def test_a_job_with_a_slug_column_fills_it(
    slug: Enricher, open_session: SessionFactory, settings: Settings, http: httpx.AsyncClient
) -> None:
    with unit_of_work(open_session) as session:
        table_id = seed_demo_table(session)
        with pytest.raises(EnricherConfigError, match="'Nope', which is not a column"):
            add_column(
                session=session,
                table_id=table_id,
                spec=ColumnSpec("Bad", ColumnKind.ENRICHMENT, "slug", {"column": "Nope"}),
            )
        spec = ColumnSpec("Slug", ColumnKind.ENRICHMENT, "slug", {"column": "Company"})
        add_column(session=session, table_id=table_id, spec=spec)
        session.flush()
        refs = column_refs(session, table_id, "Slug")
        job = create_job(session=session, table_id=table_id, cells=refs, max_cells=5000).job
    assert job.id is not None

    summary = await process_job(job.id, session_factory=open_session, http=http, settings=settings)

    assert (summary.status, summary.done, summary.failed) == ("completed", 25, 0)
    with open_session() as session:
        values = [cell.value for cell in cells_of(session, refs)]
    assert values[:3] == ["acme-robotics", "blue-harbor-logistics", "cedar-pine-studio"]
