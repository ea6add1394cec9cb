"""Filter, sort and search the grid, the view in the URL, and Run the view, in real Chromium.

The job Run the view starts is checked in the database: its tasks are exactly the rows the
filter shows, in the column chosen.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import col, select

from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask, TableColumn
from enrichment_app.services.tables import ColumnSpec
from tests.e2e.grid import open_grid
from tests.support.database import add_table, database_session, greeting

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)

NAME = "Views: companies"
WIDTHS = [180, 180, 220]
ROWS = [
    (f"Company {i:03d}", "" if i % 3 == 0 else ("Bank" if i % 3 == 1 else "Retail"))
    for i in range(300)
]
EMPTY = [name for name, industry in ROWS if not industry]  # 100 rows


@pytest.fixture(scope="module")
def table(app_url: str, app_database_url: str) -> dict[str, int]:
    with database_session(app_database_url, migrate=True) as session:
        table_id = add_table(
            session,
            name=NAME,
            columns=[ColumnSpec("Name"), ColumnSpec("Industry"), greeting("Hi {Name}")],
            rows=([name, industry] for name, industry in ROWS),
        )
        ids = {
            c.name: c.id
            for c in session.exec(select(TableColumn).where(TableColumn.table_id == table_id))
        }
        return {"table": table_id, **{k: v for k, v in ids.items() if v is not None}}


def inspect_first_row(page: Page, expected: str) -> None:
    grid = open_grid(page, WIDTHS, name="Views")
    page.mouse.click(*grid.cell(0, 1))  # another cell first: the inspector follows the click
    page.mouse.click(*grid.cell(0, 0))
    expect(page.locator("#inspector-value")).to_have_text(expected)


def add_filter(page: Page, column: int, op: str, value: str = "") -> None:
    page.locator("#filter-column").select_option(str(column))
    page.locator("#filter-op").select_option(op)
    page.locator("#filter-value").fill(value)
    page.locator("#filter-value").press("Enter")  # the form submits on Enter


def test_filter_sort_and_run_the_view_runs_exactly_the_rows_shown(
    page: Page, app_url: str, app_database_url: str, table: dict[str, int]
) -> None:
    page.goto(f"{app_url}/tables/{table['table']}")
    expect(page.locator("#table-meta")).to_have_text("300 rows · 3 columns")
    add_filter(page, table["Industry"], "empty")
    expect(page.locator("#table-meta")).to_have_text("100 of 300 rows · 3 columns")
    expect(page.locator(".filter-chip")).to_have_text(["Industry is empty×"])
    page.locator("#sort-picker").select_option(f"-{table['Name']}")
    inspect_first_row(page, EMPTY[-1])  # Z→A: the last name first
    # The URL says the view (written by the page once the view is read).
    expect(page).to_have_url(re.compile(rf"\?f={table['Industry']}\.empty&s=-{table['Name']}$"))

    button = page.locator("#run-view-button")
    expect(button).to_have_text("Run Greeting for 100 rows")
    button.click()
    expect(page.locator("#job-status")).to_have_text("Enriched!", timeout=60_000)

    with database_session(app_database_url) as session:
        job = session.exec(
            select(EnrichmentJob)
            .where(EnrichmentJob.table_id == table["table"])
            .order_by(col(EnrichmentJob.id).desc())
        ).first()
        assert job is not None and job.total == 100
        rows = select(EnrichmentTask.row_id).where(EnrichmentTask.job_id == job.id)
        names = session.exec(
            select(Cell.value).where(col(Cell.row_id).in_(rows), Cell.column_id == table["Name"])
        ).all()
        columns = set(
            session.exec(select(EnrichmentTask.column_id).where(EnrichmentTask.job_id == job.id))
        )
    assert sorted(n or "" for n in names) == EMPTY
    assert columns == {table["Greeting"]}


def test_a_reload_or_a_shared_link_keeps_the_view_and_a_bad_one_says_why(
    page: Page, app_url: str, table: dict[str, int]
) -> None:
    url = f"{app_url}/tables/{table['table']}?f={table['Industry']}.equals.Bank&s={table['Name']}"
    page.goto(url)
    expect(page.locator("#table-meta")).to_have_text("100 of 300 rows · 3 columns")
    inspect_first_row(page, "Company 001")
    page.locator("#clear-view").wait_for()
    page.reload()
    expect(page.locator("#table-meta")).to_have_text("100 of 300 rows · 3 columns")
    expect(page.locator(".filter-chip")).to_have_text(['Industry is "Bank"×'])
    expect(page.locator("#sort-picker")).to_have_value(str(table["Name"]))

    page.goto(f"{app_url}/tables/{table['table']}?f={table['Industry']}.bigger.1")
    expect(page.locator("#view-notice")).to_contain_text("Unknown filter operator 'bigger'")
    expect(page.locator("#table-meta")).to_have_text("300 rows · 3 columns")

    page.goto(url)
    expect(page.locator("#table-meta")).to_have_text("100 of 300 rows · 3 columns")
    page.locator("#clear-view").click()
    expect(page.locator("#table-meta")).to_have_text("300 rows · 3 columns")
    expect(page).to_have_url(re.compile(rf"/tables/{table['table']}$"))


def test_search_finds_text_in_any_column(page: Page, app_url: str, table: dict[str, int]) -> None:
    page.goto(f"{app_url}/tables/{table['table']}")
    expect(page.locator("#table-meta")).to_have_text("300 rows · 3 columns")
    page.locator("#search-box").fill("company 29")
    expect(page.locator("#table-meta")).to_have_text("10 of 300 rows · 3 columns")
    inspect_first_row(page, "Company 290")
    page.locator("#search-box").fill("retail")
    expect(page.locator("#table-meta")).to_have_text("100 of 300 rows · 3 columns")
    expect(page).to_have_url(re.compile(r"\?q=retail$"))
