"""The table page as a spreadsheet, in a real browser: add a row, paste a block, Delete,
delete rows and Undo, Enter and Tab after typing, Ctrl+Enter runs, the ? overlay, the column
dialog (rename, delete), the tab's title and the empty states."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import col, select

from enrichment_app.db.models import Cell, TableColumn, TableRow
from enrichment_app.domain import ColumnKind
from enrichment_app.services.tables import ColumnSpec
from tests.e2e.grid import ROW_MARKER_WIDTH, GridGeometry, open_grid
from tests.support.database import add_table, database_session
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)

WIDTHS = [180, 180, 220]
COLUMNS = [
    ColumnSpec("Company", ColumnKind.INPUT),
    ColumnSpec("Website", ColumnKind.INPUT),
    ColumnSpec(
        "Label",
        ColumnKind.ENRICHMENT,
        enricher="template",
        config={"template": "{Company} at {Website}"},
    ),
]
ROWS = [["Acme", "acme.example"], ["Globex", "globex.example"], ["Initech", "initech.example"]]


def _table(database_url: str, name: str, rows: list[list[str]] = ROWS) -> int:
    with database_session(database_url) as session:
        return add_table(session, name=name, columns=COLUMNS, rows=rows)


def _values(database_url: str, table_id: int) -> list[list[str | None]]:
    """The table's rows, in order, as stored (None for an empty cell)."""
    with database_session(database_url) as session:
        columns = session.exec(
            select(TableColumn)
            .where(TableColumn.table_id == table_id)
            .order_by(col(TableColumn.position))
        ).all()
        rows = session.exec(
            select(TableRow).where(TableRow.table_id == table_id).order_by(col(TableRow.position))
        ).all()
        cells = {
            (c.row_id, c.column_id): c.value
            for c in session.exec(select(Cell).where(Cell.table_id == table_id))
        }
        return [[cells.get((r.id, c.id)) for c in columns] for r in rows]


def _open(page: Page, app_url: str, table_id: int, name: str) -> GridGeometry:
    page.goto(f"{app_url}/tables/{table_id}")
    grid = open_grid(page, WIDTHS, name=name)
    # The load puts the cursor on the first cell after the name shows: a click before that
    # would be undone. The inspector names that cell once the load is through.
    expect(page.locator("#cell-inspector")).to_contain_text("row 1")
    return grid


def _paste(page: Page, text: str) -> None:
    """A paste event as a browser fires it for Ctrl+V, with the text spreadsheets put there."""
    page.evaluate(
        """(text) => {
          const data = new DataTransfer();
          data.setData('text/plain', text);
          const target = document.activeElement || document.querySelector('#table-grid canvas');
          target.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
        }""",
        text,
    )


def _wait_values(
    database_url: str, table_id: int, expected: list[list[str | None]], page: Page
) -> None:
    del page
    wait_until(
        lambda: _values(database_url, table_id) == expected,
        timeout=15,
        message="the table's stored values",
        found=lambda: _values(database_url, table_id),
    )


def test_paste_a_block_adds_rows_and_skips_the_enrichment_column(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Paste here")
    grid = _open(page, app_url, table_id, "Paste here")
    page.mouse.click(*grid.cell(1, 2))
    expect(page.locator("#cell-inspector")).to_contain_text("Websiterow 3")  # selected
    _paste(page, 'new.example\tX\n"two\nlines"\tY\nthird.example\tZ\n')
    expect(page.locator("#table-meta")).to_have_text("5 rows · 3 columns")
    expect(page.locator("#notice")).to_contain_text("'Label' is an enrichment column")
    assert _values(app_database_url, table_id) == [
        ["Acme", "acme.example", None],
        ["Globex", "globex.example", None],
        ["Initech", "new.example", None],
        [None, "two\nlines", None],
        [None, "third.example", None],
    ]
    page.mouse.click(*grid.cell(2, 0))
    _paste(page, "refused")
    expect(page.locator("#message")).to_contain_text("filled by Run")


def test_add_row_then_type_with_enter_and_tab(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Typing")
    grid = _open(page, app_url, table_id, "Typing")
    page.locator("#add-row").click()
    expect(page.locator("#table-meta")).to_have_text("4 rows · 3 columns")
    expect(page.locator("#table-grid")).to_have_attribute("data-window-rows", "4")
    expect(page.locator("#cell-inspector")).to_contain_text("row 4")  # Add row selects it
    inspector, editor = page.locator("#cell-inspector"), page.locator("textarea.gdg-input")
    page.mouse.dblclick(*grid.cell(0, 3))
    editor.fill("Umbrella")
    editor.press("Tab")  # saved, and the cursor moves right
    expect(inspector).to_contain_text("Website")
    expect(page.locator("#inspector-value")).to_have_text("")
    page.mouse.dblclick(*grid.cell(1, 3))
    editor.fill("umbrella.example")
    editor.press("Enter")  # saved (the last row: the cursor stays)
    expect(page.locator("#inspector-value")).to_have_text("umbrella.example")
    page.mouse.dblclick(*grid.cell(0, 1))
    editor.fill("Globex Corp")
    editor.press("Enter")  # saved, and the cursor moves down
    expect(inspector).to_contain_text("row 3")
    expect(page.locator("#inspector-value")).to_have_text("Initech")
    _wait_values(
        app_database_url,
        table_id,
        [
            ["Acme", "acme.example", None],
            ["Globex Corp", "globex.example", None],
            ["Initech", "initech.example", None],
            ["Umbrella", "umbrella.example", None],
        ],
        page,
    )


def _shift_click(page: Page, at: tuple[float, float]) -> None:
    page.keyboard.down("Shift")
    page.mouse.click(*at)
    page.keyboard.up("Shift")


def test_delete_clears_input_cells_and_refuses_enrichment_cells(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Clearing")
    grid = _open(page, app_url, table_id, "Clearing")
    page.mouse.click(*grid.cell(0, 0))
    _shift_click(page, grid.cell(1, 1))
    page.keyboard.press("Delete")  # at once: the key carries the range it was pressed on
    cleared = [[None, None, None], [None, None, None], ["Initech", "initech.example", None]]
    _wait_values(app_database_url, table_id, cleared, page)
    page.mouse.click(*grid.cell(2, 2))
    page.keyboard.press("Delete")
    expect(page.locator("#message")).to_contain_text("not cleared by Delete")


def test_delete_rows_with_a_confirmation_and_undo(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Deleting")
    grid = _open(page, app_url, table_id, "Deleting")
    marker = grid.x + ROW_MARKER_WIDTH / 2
    page.mouse.click(marker, grid.cell(0, 0)[1])
    _shift_click(page, (marker, grid.cell(0, 1)[1]))
    page.locator("#delete-rows").click()
    expect(page.locator("#delete-rows-text")).to_contain_text("Delete 2 rows")
    page.locator("#confirm-delete-rows").click()
    expect(page.locator("#table-meta")).to_have_text("1 row · 3 columns")
    assert _values(app_database_url, table_id) == [["Initech", "initech.example", None]]
    page.locator("#undo-button").click()
    expect(page.locator("#table-meta")).to_have_text("3 rows · 3 columns")
    assert _values(app_database_url, table_id) == [[*r, None] for r in ROWS]
    expect(page.locator("#undo-button")).to_have_count(0)


def test_ctrl_enter_runs_and_the_tab_title_shows_the_job(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Keys")
    grid = _open(page, app_url, table_id, "Keys")
    expect(page.locator("#never-run")).to_contain_text("Select cells in Label ✦ and press Run")
    page.evaluate(
        """() => { window.__titles = [];
          new MutationObserver(() => window.__titles.push(document.title))
            .observe(document.head, {subtree: true, childList: true, characterData: true}); }"""
    )
    page.mouse.click(*grid.cell(2, 0))
    _shift_click(page, grid.cell(2, 2))
    expect(page.locator("#run-button")).to_have_text("Run 3 cells")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#job-status")).to_have_text("Enriched!")
    expect(page.locator("#never-run")).to_have_count(0)
    titles = page.evaluate("window.__titles")
    assert any(re.fullmatch(r"\(\d/3\) .+ · Keys", t) for t in titles), titles
    expect(page).to_have_title("Keys · enrichment_app")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_contain_text("Ctrl + Enter")


def test_column_dialog_renames_rewriting_templates_and_deletes_with_a_count(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Columns")
    grid = _open(page, app_url, table_id, "Columns")
    _open_column_dialog(page, grid.header(0), "Company")
    page.locator("#column-rename").fill("Firm")
    page.locator("#column-rename-submit").click()
    expect(page.locator("#notice")).to_contain_text("'Label' now read 'Firm'")
    with database_session(app_database_url) as session:
        label = session.exec(
            select(TableColumn).where(TableColumn.table_id == table_id, TableColumn.name == "Label")
        ).one()
        assert label.config == {"template": "{Firm} at {Website}"}
    expect(page.locator("#column-rename")).to_have_count(0)  # the dialog has closed
    _open_column_dialog(page, grid.header(2), "Label")
    page.locator("#column-delete").click()
    expect(page.locator("#column-delete-text")).to_contain_text("It holds no values")
    page.locator("#column-delete-confirm").click()
    expect(page.locator("#table-meta")).to_have_text("3 rows · 2 columns")
    expect(page.locator("#never-run")).to_have_count(0)  # no enrichment column is left
    expect(page.locator("#column-rename")).to_have_count(0)
    _open_column_dialog(page, grid.header(1), "Website")
    page.locator("#column-delete").click()
    expect(page.locator("#column-delete-text")).to_contain_text("3 value(s) will be lost")


def test_a_table_without_rows_says_what_to_do(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Empty", rows=[])
    page.goto(f"{app_url}/tables/{table_id}")
    expect(page.locator("#empty-rows")).to_contain_text("Add a row or paste from a spreadsheet")
    page.locator("#add-row").click()
    expect(page.locator("#empty-rows")).to_have_count(0)


def _open_column_dialog(page: Page, header: tuple[float, float], name: str) -> None:
    """Right-click a header until its dialog opens: a right-click that lands while the grid
    redraws its new columns is lost, so the click is repeated (the condition is the dialog)."""
    for _ in range(5):
        page.mouse.click(*header, button="right")
        try:
            expect(page.locator("#column-rename")).to_have_value(name, timeout=3000)
            return
        except AssertionError:
            continue
    raise AssertionError(f"the column dialog of {name!r} did not open")


def test_add_a_column_through_the_form_then_edit_it_keeping_its_secret(
    page: Page, app_url: str, app_database_url: str
) -> None:
    table_id = _table(app_database_url, "Forms")
    _open(page, app_url, table_id, "Forms")
    page.locator("#add-column-button").click()
    expect(page.locator("#field-template")).to_have_value("{Company} ({Website})")
    page.locator("#column-name").fill("Domain")
    page.locator("#column-enricher").click()
    page.get_by_role("option", name="Email domain").click()
    page.locator("#field-column").click()
    page.get_by_role("option", name="Website").click()
    page.locator("#column-json-toggle").click()  # the JSON view follows the form
    expect(page.locator("#column-config")).to_have_value('{\n  "column": "Website"\n}')
    page.locator("#column-submit").click()
    expect(page.locator("#table-meta")).to_have_text("3 rows · 4 columns")

    page.locator("#add-column-button").click()
    page.locator("#column-name").fill("Lookup")
    page.locator("#column-enricher").click()
    page.get_by_role("option", name="HTTP JSON API").click()
    page.locator("#field-url").fill("https://api.example.com/q?d=")
    page.locator(".insert-column", has_text="{Website}").click()
    expect(page.locator("#field-url")).to_have_value("https://api.example.com/q?d={Website}")
    page.locator('[id="field-auth.token"]').fill("tok-form-secret")
    page.locator("#column-submit").click()
    expect(page.locator("#table-meta")).to_have_text("3 rows · 5 columns")

    grid = open_grid(page, [180, 180, 220, 220, 220], name="Forms")
    _open_column_dialog(page, grid.header(4), "Lookup")
    page.locator("#column-edit").click()
    expect(page.locator('[id="field-auth.token"]')).to_have_value("•••")
    page.locator("#field-path").fill("data.name")
    page.locator("#column-submit").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert "tok-form-secret" not in page.content()
    with database_session(app_database_url) as session:
        columns = {
            c.name: c.config
            for c in session.exec(select(TableColumn).where(TableColumn.table_id == table_id))
        }
    assert columns["Domain"] == {"column": "Website"}
    assert columns["Lookup"]["path"] == "data.name"
    assert columns["Lookup"]["url"] == "https://api.example.com/q?d={Website}"
    token = columns["Lookup"]["auth"]["token"]
    assert isinstance(token, dict) and "tok-form-secret" not in str(token)  # sealed, kept
