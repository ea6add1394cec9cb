"""A table far larger than the page holds: the grid loads rows by window as it scrolls."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from enrichment_app.services.tables import ColumnSpec
from tests.e2e.grid import open_grid
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


def test_a_whole_column_over_the_job_cap_is_refused_with_the_message_and_nothing_queued(
    page: Page, app_url: str, app_database_url: str, big_table: int
) -> None:
    """A job holds at most MAX_CELLS_PER_JOB cells (5,000 by default; raising it is issue 13):
    a whole column of 20,000 rows is refused with the reason, and no job is created."""
    page.goto(f"{app_url}/tables/{big_table}")
    expect(page.locator("#table-name")).to_have_text("Big: twenty thousand rows")
    grid = open_grid(page, WIDTHS, name="Big")
    page.mouse.click(*grid.header(2))
    expect(page.locator("#run-button")).to_have_text(f"Run {ROWS} cells")
    page.locator("#run-button").click()
    expect(page.locator("#message")).to_contain_text(f"{ROWS} cells selected")
    expect(page.locator("#message")).to_contain_text("one job can run at most 5000")
    expect(page.locator("#job-status")).to_have_count(0)
    assert job_count(app_database_url, big_table) == 0

    grid = open_grid(page, WIDTHS, name="Big")  # the message moved the grid down
    page.mouse.click(*grid.cell(0, 3))
    expect(page.locator("#inspector-value")).to_have_text("name 3")
    expect(page.locator("#run-button")).to_have_text("Run 0 cells")
