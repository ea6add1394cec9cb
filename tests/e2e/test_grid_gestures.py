"""The grid's own gestures, in a real browser: the header's ▾ menu, dragging a column to
another place and resizing it (both kept after a reload), copying a selection out as
tab-separated text, and Shift+Tab / Shift+Enter moving back after typing."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import col, select

from enrichment_app.db.models import TableColumn
from tests.e2e.grid import HEADER_HEIGHT, ROW_MARKER_WIDTH, GridGeometry, drag
from tests.e2e.test_spreadsheet import WIDTHS, _open, _shift_click, _table, _values, _wait_values
from tests.support.database import database_session
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)

MENU_BUTTON = 30
"""Glide's header menu button: the header's last 30 px (``menuButtonSize``)."""


def _columns(database_url: str, table_id: int) -> list[tuple[str, int | None]]:
    """The table's columns in order, with their kept widths."""
    with database_session(database_url) as session:
        return [
            (c.name, c.width)
            for c in session.exec(
                select(TableColumn)
                .where(TableColumn.table_id == table_id)
                .order_by(col(TableColumn.position))
            )
        ]


def _menu(grid: GridGeometry, column: int) -> tuple[float, float]:
    x = grid.x + ROW_MARKER_WIDTH + sum(grid.widths[: column + 1]) - MENU_BUTTON / 2
    return x, grid.y + HEADER_HEIGHT / 2


def _dark_pixels(page: Page, grid: GridGeometry, column: int) -> int:
    """How many pixels of the column's menu button are drawn dark (the ▾), read off the canvases."""
    x, y = _menu(grid, column)
    return int(
        page.evaluate(
            """([x, y, size]) => {
              let dark = 0;  // Glide draws the header on a canvas of its own, over the cells'
              for (const canvas of document.querySelectorAll('#table-grid canvas')) {
                const box = canvas.getBoundingClientRect();
                if (box.width === 0 || x < box.left || x > box.right || y < box.top || y > box.bottom) continue;
                const scale = canvas.width / box.width;
                const pixels = canvas.getContext('2d').getImageData(
                  (x - size / 2 - box.x) * scale, (y - size / 2 - box.y) * scale, size * scale, size * scale).data;
                for (let i = 0; i < pixels.length; i += 4)
                  if (pixels[i + 3] > 128 && pixels[i] + pixels[i + 1] + pixels[i + 2] < 384) dark++;
              }
              return dark;
            }""",
            [x, y, MENU_BUTTON - 4],
        )
    )


def test_every_header_shows_its_menu_which_opens_the_column_dialog(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Menus")
    grid = _open(page, app_url, table_id, "Menus")
    page.mouse.move(*grid.cell(1, 2))  # over no header: Glide alone draws a ▾ only under the mouse
    for column in range(3):
        wait_until(
            lambda column=column: _dark_pixels(page, grid, column) > 10,  # type: ignore[misc]
            timeout=10,
            message=f"the ▾ of column {column}",
            found=lambda column=column: _dark_pixels(page, grid, column),  # type: ignore[misc]
        )
    _open_by_menu(page, grid, 2, "Label")
    for control in ("#column-edit", "#column-rename-submit", "#column-left", "#column-delete"):
        expect(page.locator(control)).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#column-rename")).to_have_count(0)
    _open_by_menu(page, grid, 0, "Company")
    page.locator("#column-right").click()
    wait_until(
        lambda: names(app_database_url, table_id) == ["Website", "Company", "Label"],
        timeout=15,
        message="Company moved right",
        found=lambda: _columns(app_database_url, table_id),
    )


def _open_by_menu(page: Page, grid: GridGeometry, column: int, name: str) -> None:
    """Click the column's ▾ until its dialog opens (a click that lands while the grid redraws
    its columns is lost; the condition is the dialog)."""
    for _ in range(5):
        page.mouse.click(*_menu(grid, column))
        try:
            expect(page.locator("#column-rename")).to_have_value(name, timeout=3000)
            return
        except AssertionError:
            continue
    raise AssertionError(f"the ▾ of {name!r} did not open its dialog")


def _reopened(page: Page) -> Page:
    """A new tab to open the table again in: nothing of the first tab's page or state is
    carried over, so what it shows was read back from the database."""
    return page.context.new_page()


def names(database_url: str, table_id: int) -> list[str]:
    return [name for name, _ in _columns(database_url, table_id)]


def test_a_dragged_column_keeps_its_place_after_a_reload(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Dragging")
    grid = _open(page, app_url, table_id, "Dragging")
    drag(page, grid.header(1), grid.header(0))
    wait_until(
        lambda: names(app_database_url, table_id) == ["Website", "Company", "Label"],
        timeout=15,
        message="Website dragged to the front",
        found=lambda: _columns(app_database_url, table_id),
    )
    page = _reopened(page)
    grid = _open(page, app_url, table_id, "Dragging")
    expect(page.locator("#cell-inspector")).to_contain_text("Websiterow 1")
    page.mouse.click(*grid.cell(1, 1))
    expect(page.locator("#cell-inspector")).to_contain_text("Companyrow 2")
    expect(page.locator("#inspector-value")).to_have_text("Globex")


def test_a_resized_column_keeps_its_width_after_a_reload(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Resizing")
    grid = _open(page, app_url, table_id, "Resizing")
    edge = grid.x + ROW_MARKER_WIDTH + WIDTHS[0] - 2
    y = grid.y + HEADER_HEIGHT / 2
    drag(page, (edge, y), (edge + 100, y))
    wait_until(
        lambda: (_columns(app_database_url, table_id)[0][1] or 0) >= 260,
        timeout=15,
        message="Company's kept width",
        found=lambda: _columns(app_database_url, table_id),
    )
    page = _reopened(page)
    grid = _open(page, app_url, table_id, "Resizing")
    # 230 px in: Website under the old widths, still Company once the width is kept.
    page.mouse.click(grid.x + ROW_MARKER_WIDTH + 230, grid.cell(0, 1)[1])
    expect(page.locator("#cell-inspector")).to_contain_text("Companyrow 2")


def test_copy_puts_the_selection_on_the_clipboard_as_tab_separated_text(
    page: Page, app_url: str, app_database_url: str
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_url)
    table_id = _table(app_database_url, "Copying")
    grid = _open(page, app_url, table_id, "Copying")
    page.evaluate("navigator.clipboard.writeText('before')")
    page.mouse.click(*grid.cell(0, 1))
    _shift_click(page, grid.cell(1, 2))
    expect(page.locator("#cell-inspector")).to_contain_text("Companyrow 2")
    page.keyboard.press("Control+C")
    wait_until(
        lambda: (
            page.evaluate("navigator.clipboard.readText()")
            == "Globex\tglobex.example\nInitech\tinitech.example"
        ),
        timeout=10,
        message="the copied cells",
        found=lambda: page.evaluate("navigator.clipboard.readText()"),
    )


def test_shift_tab_and_shift_enter_move_back_after_typing(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Backwards")
    grid = _open(page, app_url, table_id, "Backwards")
    inspector, editor = page.locator("#cell-inspector"), page.locator("textarea.gdg-input")
    page.mouse.dblclick(*grid.cell(1, 1))
    editor.fill("globex.test")
    editor.press("Shift+Tab")  # saved, and the cursor moves left
    expect(inspector).to_contain_text("Companyrow 2")
    expect(page.locator("#inspector-value")).to_have_text("Globex")
    page.mouse.dblclick(*grid.cell(0, 2))
    editor.fill("Initech Ltd")
    editor.press("Shift+Enter")  # saved, and the cursor moves up
    expect(inspector).to_contain_text("Companyrow 2")
    expect(page.locator("#inspector-value")).to_have_text("Globex")
    expect(editor).to_have_count(0)
    _wait_values(
        app_database_url,
        table_id,
        [
            ["Acme", "acme.example", None],
            ["Globex", "globex.test", None],
            ["Initech Ltd", "initech.example", None],
        ],
        page,
    )
    page.keyboard.press("Delete")  # the cursor is on the grid, where it moved to
    wait_until(
        lambda: _values(app_database_url, table_id)[1][0] is None,
        timeout=15,
        message="Globex cleared",
        found=lambda: _values(app_database_url, table_id),
    )
