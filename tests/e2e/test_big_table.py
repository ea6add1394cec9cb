"""A table far larger than the page holds: the grid loads rows by window as it scrolls, and a
whole column of it is one Run."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import col, func, select

from enrichment_app.db.models import Cell, TableColumn
from enrichment_app.services.tables import ColumnSpec
from tests.e2e.grid import open_grid, watch_status
from tests.support.database import add_table, database_session, greeting, job_count

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)

ROWS = 20_000
WIDTHS = [180, 180, 220]


@pytest.fixture(scope="module")
def big_table(app_url: str, app_database_url: str) -> int:
    with database_session(app_database_url, migrate=True) as session:
        return add_table(
            session,
            name="Big: twenty thousand rows",
            columns=[
                ColumnSpec("Name"),
                ColumnSpec("City"),
                greeting(),
            ],
            rows=([f"name {i}", f"city {i % 97}"] for i in range(ROWS)),
        )


def _window(page: Page) -> tuple[int, int]:
    """The rows the page holds: (first row index, how many)."""
    grid = page.locator("#table-grid")
    return int(grid.get_attribute("data-window-start") or -1), int(
        grid.get_attribute("data-window-rows") or 0
    )


def test_scrolling_to_the_bottom_loads_the_last_rows(
    page: Page, app_url: str, big_table: int
) -> None:
    page.goto(f"{app_url}/tables/{big_table}")
    expect(page.locator("#table-name")).to_have_text("Big: twenty thousand rows")
    expect(page.locator("#table-meta")).to_have_text(f"{ROWS} rows · 3 columns")
    grid = open_grid(page, WIDTHS, name="Big")
    expect(page.locator("#table-grid")).to_have_attribute("data-window-start", "0")
    start, held = _window(page)
    assert 0 < held < 1000, "the page holds a window of rows, not the table"

    page.locator("#table-grid .dvn-scroller").first.evaluate(
        "el => { el.scrollTop = el.scrollHeight; }"
    )
    # The grid reports the new visible region and the page loads the rows around it.
    expect(page.locator("#table-grid")).not_to_have_attribute("data-window-start", "0")
    start, held = _window(page)
    assert start + held == ROWS and held < 1000, (start, held)
    # The last row sits at the bottom of the grid: click it and read it in the inspector.
    box = page.locator('#table-grid canvas[data-testid="data-grid-canvas"]').first.bounding_box()
    assert box is not None
    page.mouse.click(grid.cell(0, 0)[0], box["y"] + box["height"] - 34 / 2 - 2)
    expect(page.locator("#inspector-value")).to_have_text(f"name {ROWS - 1}")
    expect(page.locator("#cell-inspector")).to_contain_text(f"row {ROWS}")


def test_a_whole_column_of_a_big_table_runs_every_row(
    page: Page, app_url: str, app_database_url: str, big_table: int
) -> None:
    """One Run of a whole column of 20,000 rows is one job (the cap is 100,000 cells): the
    header counts it live to Enriched!, and every row's cell is filled in the database."""
    page.goto(f"{app_url}/tables/{big_table}")
    expect(page.locator("#table-name")).to_have_text("Big: twenty thousand rows")
    grid = open_grid(page, WIDTHS, name="Big")
    watch_status(page)
    page.mouse.click(*grid.header(2))
    expect(page.locator("#run-button")).to_have_text(f"Run {ROWS} cells")
    page.locator("#run-button").click()
    expect(page.locator("#job-status")).to_have_text("Enriched!", timeout=180_000)
    seen = page.evaluate("() => window.__statuses")
    counts = [
        int(m.group(1))
        for text in seen
        if (m := re.fullmatch(rf"Enriching… \((\d+)/{ROWS}\)", text))
    ]
    assert counts and all(0 <= n <= ROWS for n in counts), seen
    assert len(set(counts)) > 1, f"the header counted the job live: {seen}"
    assert job_count(app_database_url, big_table) == 1, "one job"
    assert done_cells(app_database_url, big_table) == ROWS
    expect(page.locator("#message")).to_have_count(0)

    # The window shows the values the job wrote, at the top and at the bottom of the table.
    page.mouse.click(*grid.cell(2, 3))
    expect(page.locator("#inspector-value")).to_have_text("Hi name 3")
    page.locator("#table-grid .dvn-scroller").first.evaluate(
        "el => { el.scrollTop = el.scrollHeight; }"
    )
    expect(page.locator("#table-grid")).not_to_have_attribute("data-window-start", "0")
    box = page.locator('#table-grid canvas[data-testid="data-grid-canvas"]').first.bounding_box()
    assert box is not None
    page.mouse.click(grid.cell(2, 0)[0], box["y"] + box["height"] - 34 / 2 - 2)
    expect(page.locator("#inspector-value")).to_have_text(f"Hi name {ROWS - 1}")


def done_cells(database_url: str, table_id: int) -> int:
    """How many cells of the table's Greeting column are filled (status done, a value)."""
    with database_session(database_url) as session:
        column = session.exec(
            select(TableColumn.id).where(
                TableColumn.table_id == table_id, TableColumn.name == "Greeting"
            )
        ).one()
        return session.exec(
            select(func.count())
            .select_from(Cell)
            .where(Cell.column_id == column, Cell.status == "done", col(Cell.value).is_not(None))
        ).one()
