"""The table page in a real browser: select, Run, watch the status, inspect cells, cancel."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from enrichment_app.services.demo import COMPANIES, DEMO_COLUMNS, DEMO_TABLE_NAME
from enrichment_app.services.tables import ColumnSpec, list_rows
from tests.e2e.conftest import FirstRun, GatedApi, signed_in_context
from tests.e2e.grid import drag, open_grid, seen_statuses, watch_status
from tests.support.database import add_table, database_session, job_count
from tests.support.paths import ARTIFACTS

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)

DEMO_WIDTHS = [180, 180, 180, 220, 220]
COMPANY, WEBSITE, EMAIL, DOMAIN, INTRO = range(5)


@pytest.fixture
def demo_table(app_url: str, app_database_url: str) -> int:
    """A fresh copy of the demo table for this test alone: no job, edit or column before it."""
    with database_session(app_database_url) as session:
        return add_table(session, name=DEMO_TABLE_NAME, columns=DEMO_COLUMNS, rows=COMPANIES)


def test_start_page_opens_demo_table_with_run_disabled(page: Page, app_url: str) -> None:
    page.goto(app_url + "/")
    expect(page).to_have_url(re.compile(r"/tables/\d+$"))
    expect(page.locator("#table-name")).to_have_text("Demo: companies")
    expect(page.locator("#mode")).to_have_text("Local runner · live")
    expect(page.locator("#run-button")).to_have_text("Run 0 cells")
    expect(page.locator("#run-button")).to_be_disabled()


def test_drag_select_run_and_watch_statuses_to_enriched(
    page: Page, app_url: str, demo_table: int
) -> None:
    page.goto(f"{app_url}/tables/{demo_table}")
    grid = open_grid(page, DEMO_WIDTHS)
    page.mouse.click(*grid.cell(DOMAIN, 0))
    drag(page, grid.cell(DOMAIN, 0), grid.cell(INTRO, 9))
    expect(page.locator("#run-button")).to_have_text("Run 20 cells")
    expect(page.locator("#run-button")).to_be_enabled()

    watch_status(page)
    page.locator("#run-button").click()
    expect(page.locator("#job-status")).to_have_text("Enriched!")
    statuses = seen_statuses(page)
    assert statuses[0] == "Starting…", statuses  # a fresh table: no earlier job to show
    assert statuses[-1] == "Enriched!", statuses

    page.mouse.click(*grid.cell(DOMAIN, 3))
    expect(page.locator("#inspector-value")).to_have_text("deltagrid.example")
    expect(page.locator("#inspector-status")).to_have_text("done")
    page.mouse.click(*grid.cell(INTRO, 0))
    expect(page.locator("#inspector-value")).to_have_text(
        "Hi Acme Robotics team, we noticed acme-robotics.example and would love to talk."
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "enriched-table.png"), full_page=True)


def test_error_cell_shows_its_message(page: Page, app_url: str, demo_table: int) -> None:
    page.goto(f"{app_url}/tables/{demo_table}")
    grid = open_grid(page, DEMO_WIDTHS)
    row = 17  # Redwood Legal, whose contact email is not an email address
    page.mouse.click(*grid.cell(DOMAIN, row))
    expect(page.locator("#run-button")).to_have_text("Run 1 cell")
    page.locator("#run-button").click()
    expect(page.locator("#job-status")).to_have_text("Enriched! (1 failed)")
    page.mouse.click(*grid.cell(COMPANY, row))
    expect(page.locator("#inspector-value")).to_have_text("Redwood Legal")
    page.mouse.click(*grid.cell(DOMAIN, row))
    expect(page.locator("#inspector-status")).to_have_text("error")
    expect(page.locator("#inspector-error")).to_contain_text("not an email address")


def test_input_selection_cannot_run_and_edits_persist_as_text(
    page: Page, app_url: str, demo_table: int
) -> None:
    page.goto(f"{app_url}/tables/{demo_table}")
    grid = open_grid(page, DEMO_WIDTHS)
    page.mouse.click(*grid.cell(WEBSITE, 1))
    expect(page.locator("#inspector-value")).to_have_text("blueharbor.example")
    expect(page.locator("#run-button")).to_have_text("Run 0 cells")
    expect(page.locator("#run-button")).to_be_disabled()

    payload = "<img src=x onerror=window.__xss=1><script>window.__xss=2</script>"
    page.mouse.dblclick(*grid.cell(WEBSITE, 1))
    editor = page.locator("textarea.gdg-input")
    editor.fill(payload)
    editor.press("Enter")
    expect(editor).to_have_count(0)
    page.mouse.click(*grid.cell(WEBSITE, 1))
    expect(page.locator("#inspector-value")).to_have_text(payload)

    page.reload()
    grid = open_grid(page, DEMO_WIDTHS)
    page.mouse.click(*grid.cell(WEBSITE, 1))
    expect(page.locator("#inspector-value")).to_have_text(payload)
    assert page.evaluate("window.__xss") is None


def test_unknown_table_shows_not_found(page: Page, app_url: str) -> None:
    page.goto(app_url + "/tables/987654")
    expect(page.locator("#not-found")).to_have_text("Table not found")
    page.goto(app_url + "/tables/not-a-number")
    expect(page.locator("#not-found")).to_have_text("Table not found")


def test_add_column_then_progress_counts_up_and_cancel_stops(
    page: Page, app_url: str, gated_api: GatedApi, demo_table: int
) -> None:
    page.goto(f"{app_url}/tables/{demo_table}")
    open_grid(page, DEMO_WIDTHS)

    page.locator("#add-column-button").click()
    page.locator("#column-name").fill("Industry")
    page.locator("#column-enricher").click()
    page.get_by_role("option", name="HTTP JSON API").click()
    page.locator("#column-json-toggle").click()  # the JSON view, for advanced users
    page.locator("#column-config").fill("{not json")
    page.locator("#column-submit").click()
    expect(page.locator("#column-error")).to_contain_text("not valid JSON")
    page.locator("#column-config").fill(json.dumps(gated_api.lookup_config()))
    page.locator("#column-submit").click()
    expect(page.locator("#column-error")).to_have_count(0)
    expect(page.locator("#table-meta")).to_have_text("25 rows · 6 columns")
    expect(page.get_by_role("dialog")).to_have_count(0)
    # What a person's click needs: the dialog's backdrop has faded out. During its exit
    # animation the closed overlay still covers the page and swallows clicks on the grid.
    expect(page.locator(".rt-DialogOverlay")).to_have_count(0)

    grid = open_grid(page, [*DEMO_WIDTHS, 220])
    page.mouse.click(*grid.cell(5, 0))
    expect(page.locator("#run-button")).to_have_text("Run 1 cell")
    page.mouse.click(*grid.header(5))
    expect(page.locator("#run-button")).to_have_text("Run 25 cells")
    watch_status(page)
    page.locator("#run-button").click()
    expect(page.locator("#job-status")).to_have_text("Enriching… (0/25)")
    gated_api.release(3)
    expect(page.locator("#job-status")).to_have_text("Enriching… (3/25)")
    gated_api.release(2)
    expect(page.locator("#job-status")).to_have_text("Enriching… (5/25)")

    page.locator("#cancel-button").click()
    expect(page.locator("#job-status")).to_have_text("Canceled")
    expect(page.locator("#cancel-button")).to_have_count(0)
    statuses = seen_statuses(page)
    run = statuses[statuses.index("Starting…") :]
    assert run[-1] == "Canceled", statuses
    counts = [int(s.split("(")[1].split("/")[0]) for s in run if s.startswith("Enriching")]
    assert counts == sorted(counts) and {0, 3, 5} <= set(counts), statuses

    page.mouse.click(*grid.cell(5, 0))
    expect(page.locator("#inspector-value")).to_have_text("Acme Robotics industry")
    page.mouse.click(*grid.cell(5, 12))
    expect(page.locator("#inspector-status")).to_have_text("canceled")
    assert gated_api.release_stranded() <= 4  # the in-flight lookups of the canceled job


def test_a_double_clicked_run_starts_one_job(
    page: Page, app_url: str, app_database_url: str, demo_table: int
) -> None:
    page.goto(f"{app_url}/tables/{demo_table}")
    grid = open_grid(page, DEMO_WIDTHS)
    page.mouse.click(*grid.cell(INTRO, 20))
    drag(page, grid.cell(INTRO, 20), grid.cell(INTRO, 22))
    expect(page.locator("#run-button")).to_have_text("Run 3 cells")
    before = job_count(app_database_url, demo_table)
    page.locator("#run-button").dblclick()
    expect(page.locator("#job-status")).to_have_text("Enriched!")
    assert job_count(app_database_url, demo_table) == before + 1
    expect(page.locator("#message")).to_have_count(0)


def test_reloading_the_page_reattaches_to_the_running_job(
    page: Page, app_url: str, app_database_url: str, gated_api: GatedApi, demo_table: int
) -> None:
    assert gated_api.drain() == 0, "a previous test left permits behind"
    assert gated_api.waiting == 0, "a previous test left requests waiting"
    gated_api.add_lookup_column(app_database_url, demo_table)  # column 5: Industry
    page.goto(f"{app_url}/tables/{demo_table}")
    grid = open_grid(page, [*DEMO_WIDTHS, 220])
    page.mouse.click(*grid.cell(5, 12))
    drag(page, grid.cell(5, 12), grid.cell(5, 15))
    expect(page.locator("#run-button")).to_have_text("Run 4 cells")
    page.locator("#run-button").click()
    expect(page.locator("#job-status")).to_have_text("Enriching… (0/4)")
    gated_api.release(1)
    expect(page.locator("#job-status")).to_have_text("Enriching… (1/4)")

    page.reload()
    open_grid(page, [*DEMO_WIDTHS, 220])
    expect(page.locator("#job-status")).to_have_text("Enriching… (1/4)")
    expect(page.locator("#cancel-button")).to_be_visible()
    gated_api.release(3)
    expect(page.locator("#job-status")).to_have_text("Enriched!")


def create_company_table(database_url: str, gated_api: GatedApi) -> tuple[int, list[int], int]:
    """A fresh three-row table with a gated ``Industry`` lookup; (table id, row ids, column id)."""
    with database_session(database_url) as session:
        table_id = add_table(
            session,
            name="Elsewhere",
            columns=[ColumnSpec(name="Company")],
            rows=[["Acme"], ["Globex"], ["Initech"]],
        )
        rows = [r.id for r in list_rows(session=session, table_id=table_id) if r.id]
    return table_id, rows, gated_api.add_lookup_column(database_url, table_id)


def test_two_tabs_on_one_table_see_each_other_s_changes_pushed(
    page: Page,
    browser: Browser,
    app_url: str,
    api_url: str,
    app_secrets: dict[str, str],
    app_database_url: str,
    gated_api: GatedApi,
    first_run: FirstRun,
) -> None:
    """Everything another tab or the REST API changes shows in this one as it happens.

    The app's fallback poll (TABLE_REFRESH_SECONDS) is an hour in these tests (conftest), so
    only a pushed change can show in time.
    """
    assert gated_api.drain() == 0, "a previous test left permits behind"
    table_id, row_ids, industry = create_company_table(app_database_url, gated_api)
    page.goto(f"{app_url}/tables/{table_id}")
    grid = open_grid(page, [180, 220], name="Elsewhere")
    expect(page.locator("#table-meta")).to_have_text("3 rows · 2 columns")
    expect(page.locator("#mode")).to_have_text("Local runner · live")
    watch_status(page)
    other = signed_in_context(browser, first_run)
    try:
        second = other.new_page()
        second.goto(f"{app_url}/tables/{table_id}")
        second_grid = open_grid(second, [180, 220], name="Elsewhere")
        expect(second.locator("#mode")).to_have_text("Local runner · live")

        response = httpx.post(
            f"{api_url}/api/tables/{table_id}/enrich",
            headers={"Authorization": f"Bearer {app_secrets['ENRICHMENT_API_KEY']}"},
            json={"cells": [{"rowId": r, "columnId": industry} for r in row_ids]},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        for tab in (page, second):
            expect(tab.locator("#job-status")).to_have_text("Enriching… (0/3)")
        gated_api.release(2)
        for tab in (page, second):
            expect(tab.locator("#job-status")).to_have_text("Enriching… (2/3)")
        gated_api.release(1)
        expect(page.locator("#job-status")).to_have_text("Enriched!")
        page.mouse.click(*grid.cell(1, 2))
        expect(page.locator("#inspector-value")).to_have_text("Initech industry")

        second.mouse.dblclick(*second_grid.cell(0, 1))
        editor = second.locator("textarea.gdg-input")
        editor.fill("Globex Two")
        editor.press("Enter")
        expect(editor).to_have_count(0)
        page.mouse.click(*grid.cell(0, 1))
        expect(page.locator("#inspector-value")).to_have_text("Globex Two")

        second.locator("#add-column-button").click()
        second.locator("#column-name").fill("Greeting")
        second.locator("#column-json-toggle").click()
        second.locator("#column-config").fill(json.dumps({"template": "Hi {Company}"}))
        second.locator("#column-submit").click()
        expect(second.locator("#table-meta")).to_have_text("3 rows · 3 columns")
        expect(page.locator("#table-meta")).to_have_text("3 rows · 3 columns")

        second.goto(f"{app_url}/tables")
        row = second.locator("#tables-list tr").filter(has_text="Elsewhere")
        row.get_by_role("button", name="Delete").click()
        second.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
        expect(second.locator("#tables-list")).not_to_contain_text("Elsewhere")
    finally:
        other.close()
    expect(page.locator("#not-found")).to_have_text("Table not found")
