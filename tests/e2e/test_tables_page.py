"""The tables page in a real browser: CSV import (and refusal), export and delete."""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)

GOOD_CSV = 'name,city\nAda,"London, UK"\nGrace,"New York"\n"Quote ""Q"" Person",Paris\n'


def upload(page: Page, name: str, data: bytes, table_name: str = "") -> None:
    page.locator("#new-table-name").fill(table_name)
    page.locator("#csv_upload input[type=file]").set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": data}]
    )
    expect(page.get_by_text(name)).to_be_visible()
    page.locator("#import-button").click()


def test_import_export_and_delete_a_table(page: Page, app_url: str) -> None:
    page.goto(app_url + "/tables")
    expect(page.locator("#tables-list")).to_contain_text("Demo: companies")

    upload(page, "people.csv", GOOD_CSV.encode(), table_name="People")
    expect(page).to_have_url(re.compile(r"/tables/\d+$"))
    expect(page.locator("#table-name")).to_have_text("People")
    expect(page.locator("#table-meta")).to_have_text("3 rows · 2 columns")

    page.goto(app_url + "/tables")
    row = page.locator("#tables-list tr").filter(has_text="People")
    with page.expect_download() as download:
        row.get_by_role("button", name="Export CSV").click()
    assert download.value.suggested_filename == "People.csv"
    exported = download.value.path().read_text(encoding="utf-8")
    assert list(csv.reader(io.StringIO(exported))) == list(csv.reader(io.StringIO(GOOD_CSV)))

    row.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#tables-list")).not_to_contain_text("People")
    expect(page.locator("#tables-list")).to_contain_text("Demo: companies")


def test_a_malformed_csv_is_refused_with_the_reason_and_nothing_is_stored(
    page: Page, app_url: str
) -> None:
    page.goto(app_url + "/tables")
    expect(page.locator("#tables-list")).to_contain_text("Demo: companies")
    rows_before = page.locator("#tables-list tbody tr").count()

    upload(page, "broken.csv", b"a,b,a\n1,2,3\n", table_name="Broken")
    expect(page.locator("#tables-message")).to_contain_text("names the column 'a' twice")
    expect(page).to_have_url(re.compile(r"/tables$"))
    page.reload()
    expect(page.locator("#tables-list")).to_contain_text("Demo: companies")
    expect(page.locator("#tables-list tbody tr")).to_have_count(rows_before)
    expect(page.locator("#tables-list")).not_to_contain_text("Broken")

    upload(page, "latin1.csv", "name\nJos\xe9\n".encode("latin-1"))
    expect(page.locator("#tables-message")).to_contain_text("not UTF-8")


def test_a_long_import_shows_its_progress_and_cancel_stores_nothing(
    page: Page, app_url: str
) -> None:
    page.goto(app_url + "/tables")
    expect(page.locator("#tables-list")).to_contain_text("Demo: companies")
    rows_before = page.locator("#tables-list tbody tr").count()
    data = b"Name,City,Country,Email,Phone,Note\n" + b"".join(
        f"name {i},city {i % 97},country,n{i}@example.com,+1 555 {i:07d},a note {i}\n".encode()
        for i in range(100_000)  # the most rows an import takes: about 2 s to read unloaded
    )
    # The upload is throttled to 1 MB/s (Chromium's network emulation), as over a slow link,
    # so the import is still receiving when Cancel is pressed; the page clicks it itself as
    # soon as the progress shows bytes arriving (the progress redraws the button many times a
    # second, so the click is dispatched, not positioned). Unthrottled, the 2 s import once
    # ended before a click from the test process landed, at a load of 10.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 1e6},
    )
    page.evaluate(
        """() => { window.__canceledAt = null;
          new MutationObserver((_, observer) => {
            const text = document.querySelector('#import-progress-text')?.textContent ?? '';
            const cancel = document.querySelector('#import-cancel');
            if (cancel && /Receiving big\\.csv: [0-9.]*[1-9][0-9.]* MB/.test(text)) {
              window.__canceledAt = text; observer.disconnect(); cancel.click();
            }
          }).observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
    )
    upload(page, "big.csv", data, table_name="Big import")
    expect(page.locator("#tables-notice")).to_have_text("Import canceled; nothing was stored.")
    canceled_at = page.evaluate("__canceledAt")
    assert re.fullmatch(r"Receiving big\.csv: [0-9.]+ MB of 7\.[0-9] MB", canceled_at)
    expect(page.locator("#import-progress")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/tables$"))
    page.reload()
    expect(page.locator("#tables-list")).to_contain_text("Demo: companies")
    expect(page.locator("#tables-list tbody tr")).to_have_count(rows_before)
    expect(page.locator("#tables-list")).not_to_contain_text("Big import")


def test_the_header_shows_the_logo_and_the_favicon_is_served(page: Page, app_url: str) -> None:
    page.goto(app_url + "/tables")
    logo = page.locator("#logo")
    expect(logo).to_be_visible()
    expect(logo).to_have_js_property("complete", True)
    assert logo.evaluate("img => img.naturalWidth") > 0  # the SVG loaded and decoded
    for asset, kind in (("/logo.svg", "image/svg+xml"), ("/favicon.ico", "image/")):
        response = httpx.get(app_url + asset, timeout=10)
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
    icon = httpx.get(app_url + "/favicon.ico", timeout=10).content
    assert icon[:4] == b"\x00\x00\x01\x00"  # an ICO directory


def test_export_neutralises_formulas_and_export_raw_keeps_them(page: Page, app_url: str) -> None:
    page.goto(app_url + "/tables")
    upload(page, "formulas.csv", b'name\n"=HYPERLINK(""https://evil.example/"")"\n', "Formulas")
    expect(page.locator("#table-name")).to_have_text("Formulas")
    page.goto(app_url + "/tables")
    expect(page.locator("#export-note")).to_contain_text("Export raw keeps every value")
    row = page.locator("#tables-list tr").filter(has_text="Formulas")
    with page.expect_download() as safe:
        row.get_by_role("button", name="Export CSV").click()
    assert safe.value.suggested_filename == "Formulas.csv"
    values = list(csv.reader(io.StringIO(safe.value.path().read_text(encoding="utf-8"))))
    assert values == [["name"], ['\'=HYPERLINK("https://evil.example/")']]
    with page.expect_download() as raw:
        row.get_by_role("button", name="Export raw").click()
    assert raw.value.suggested_filename == "Formulas (raw).csv"
    values = list(csv.reader(io.StringIO(raw.value.path().read_text(encoding="utf-8"))))
    assert values == [["name"], ['=HYPERLINK("https://evil.example/")']]
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#tables-list")).not_to_contain_text("Formulas")
