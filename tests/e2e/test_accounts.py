"""Accounts in a real browser: the first-run set-up, signing in and out, an invitation, a viewer,
two workspaces that cannot see each other, and a revoked token refused at once."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from enrichment_app.db.models import Workspace
from enrichment_app.services.access import Role
from enrichment_app.services.demo import COMPANIES, DEMO_COLUMNS
from tests.e2e.conftest import FirstRun
from tests.support.accounts import OWNER_EMAIL, OWNER_PASSWORD, add_user
from tests.support.database import add_table, database_session
from tests.support.reflex_socket import ReflexSocket, state_name

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)

TABLE_STATE = state_name("enrichment_app.state.table", "TableState")


def sign_in(page: Page, app_url: str, email: str, password: str) -> None:
    page.goto(app_url + "/signin")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#sign-in-submit").click()


def test_the_first_visitor_sets_up_the_owner(first_run: FirstRun) -> None:
    assert first_run.first_url.endswith("/setup")
    assert "too short (5 characters)" in first_run.weak_password_message
    assert "at least 10 characters" in first_run.weak_password_message
    assert first_run.landed_on.endswith("/tables")
    assert first_run.cookie["httpOnly"] is True
    assert first_run.cookie["sameSite"] == "Lax"


def test_set_up_is_gone_once_the_owner_exists(page: Page, app_url: str) -> None:
    page.goto(app_url + "/setup")
    expect(page).to_have_url(re.compile(r"/(signin|tables)"))


def test_sign_in_sign_out_and_a_wrong_password(browser: Browser, app_url: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(app_url + "/tables")
        expect(page).to_have_url(re.compile(r"/signin\?next=/tables$"))
        sign_in(page, app_url, OWNER_EMAIL, "not the password")
        expect(page.locator("#auth-error")).to_have_text("The email or the password is wrong.")
        sign_in(page, app_url, "nobody@example.com", OWNER_PASSWORD)
        expect(page.locator("#auth-error")).to_have_text("The email or the password is wrong.")
        sign_in(page, app_url, OWNER_EMAIL, OWNER_PASSWORD)
        expect(page).to_have_url(re.compile(r"/tables$"))
        expect(page.locator("#account-name")).to_contain_text("Olive Owner")
        assert not [c for c in context.cookies() if not c["httpOnly"]]
        assert page.evaluate("document.cookie") == ""  # the session is not readable by scripts

        page.locator("#account-menu").click()
        page.locator("#sign-out").click()
        expect(page).to_have_url(re.compile(r"/signin"))
        page.goto(app_url + "/tables")
        expect(page).to_have_url(re.compile(r"/signin"))
    finally:
        context.close()


def test_an_invited_viewer_can_read_and_export_but_not_edit_run_or_delete(
    page: Page, browser: Browser, app_url: str, api_url: str, app_database_url: str
) -> None:
    with database_session(app_database_url) as session:
        table_id = add_table(session, name="Viewed", columns=DEMO_COLUMNS, rows=COMPANIES)
    page.goto(app_url + "/settings")
    page.locator("#invite-note").fill("Vera, analyst")
    page.locator("#invite-role").click()
    page.get_by_role("option", name="viewer").click()
    page.locator("#invite-submit").click()
    link = page.locator("#new-secret")
    expect(link).to_have_value(re.compile(r"/invite/[\w-]{40,}$"))
    invitation = link.input_value()

    context = browser.new_context()
    try:
        guest = context.new_page()
        guest.goto(invitation)
        expect(guest.locator("#invitation-role")).to_have_text("viewer")
        guest.locator("#email").fill("vera@example.com")
        guest.locator("#name").fill("Vera")
        guest.locator("#password").fill("vera's long password")
        guest.locator("#password-again").fill("vera's long password")
        guest.locator("#join-submit").click()
        expect(guest).to_have_url(re.compile(r"/tables$"))
        row = guest.locator("#tables-list tr").filter(has_text="Viewed")
        expect(row.get_by_role("button", name="Export CSV")).to_be_visible()
        expect(row.get_by_role("button", name="Delete")).to_have_count(0)
        expect(guest.locator("#import-button")).to_have_count(0)
        with guest.expect_download() as download:
            row.get_by_role("button", name="Export CSV").click()
        assert download.value.suggested_filename == "Viewed.csv"

        guest.goto(f"{app_url}/tables/{table_id}")
        expect(guest.locator("#table-name")).to_have_text("Viewed")
        expect(guest.locator("#view-only")).to_be_visible()
        expect(guest.locator("#run-button")).to_be_disabled()
        expect(guest.locator("#add-column-button")).to_have_count(0)

        # The same handlers, sent over the socket anyway, are refused and change nothing.
        cookie = next(c for c in context.cookies() if c["name"] == "enrichment_session")
        with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's loop
            refused = pool.submit(asyncio.run, send_as(api_url, cookie["value"], table_id)).result()
        assert "Your role in this workspace is viewer" in refused
        guest.goto(app_url + "/invite/" + invitation.rpartition("/")[2])
        expect(guest.locator("#invitation-error")).to_contain_text("already used")
    finally:
        context.close()
    with database_session(app_database_url) as session:
        from enrichment_app.services.tables import export_csv

        assert "Changed" not in export_csv(session, table_id=table_id)


async def send_as(api_url: str, token: str, table_id: int) -> str:
    """Open the table as this session over a raw websocket, then edit and run: the refusal."""
    url = httpx.URL(api_url)
    socket = ReflexSocket(
        host=url.host,
        port=url.port or 80,
        path=f"/tables/{table_id}",
        headers={"Cookie": f"enrichment_session={token}"},
    )
    await socket.connect()
    try:
        await socket.until(
            lambda: socket.vars(TABLE_STATE).get("table_id") == table_id,
            within=30,
            message="the table to load",
        )
        socket.send_event(
            f"{TABLE_STATE}.edit_cell", {"pos": [0, 0], "new_cell": {"data": "Changed"}}
        )
        await socket.until(
            lambda: bool(socket.vars(TABLE_STATE).get("access_message")),
            within=30,
            message="the refusal",
        )
        return str(socket.vars(TABLE_STATE)["access_message"])
    finally:
        await socket.close()


def test_two_workspaces_cannot_see_each_others_tables(
    browser: Browser, app_url: str, api_url: str, app_database_url: str, app_secrets: dict[str, str]
) -> None:
    with database_session(app_database_url) as session:
        other = Workspace(name="Client B")
        session.add(other)
        session.commit()
        assert other.id is not None
        theirs = add_table(session, name="B's secret table", columns=DEMO_COLUMNS, rows=COMPANIES)
        from enrichment_app.db.models import DataTable

        row = session.get(DataTable, theirs)
        assert row is not None
        row.workspace_id = other.id
        session.add(row)
        session.commit()
        add_user(
            session,
            email="bob@example.com",
            role=Role.OWNER,
            workspace_id=other.id,
            password="bob's long password",
        )
        mine = add_table(session, name="A's own table", columns=DEMO_COLUMNS, rows=COMPANIES)

    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, app_url, "bob@example.com", "bob's long password")
        expect(page.locator("#tables-list")).to_contain_text("B's secret table")
        expect(page.locator("#tables-list")).not_to_contain_text("A's own table")
        expect(page.locator("#tables-list")).not_to_contain_text("Demo: companies")
        page.goto(f"{app_url}/tables/{mine}")
        expect(page.locator("#not-found")).to_have_text("Table not found")
    finally:
        context.close()


def test_a_token_made_on_the_page_works_until_revoked_and_sees_only_its_workspace(
    page: Page, app_url: str, api_url: str, app_database_url: str
) -> None:
    with database_session(app_database_url) as session:
        mine = add_table(session, name="Token table", columns=DEMO_COLUMNS, rows=COMPANIES)
        elsewhere = Workspace(name="Elsewhere")
        session.add(elsewhere)
        session.commit()
        theirs = add_table(session, name="Not yours", columns=DEMO_COLUMNS, rows=COMPANIES)
        from enrichment_app.db.models import DataTable

        row = session.get(DataTable, theirs)
        assert row is not None and elsewhere.id is not None
        row.workspace_id = elsewhere.id
        session.add(row)
        session.commit()
    page.goto(app_url + "/settings")
    page.locator("#token-name").fill("nightly import")
    page.locator("#token-role").click()
    page.get_by_role("option", name="editor").click()
    page.locator("#token-submit").click()
    field = page.locator("#new-secret")
    expect(field).to_have_value(re.compile(r"^enr_[\w-]{43}$"))
    token = field.input_value()
    auth = {"Authorization": f"Bearer {token}"}
    cells = {"cells": [{"rowId": 1, "columnId": 1}]}
    with httpx.Client(base_url=api_url, timeout=30) as http:
        refused_elsewhere = http.post(f"/api/tables/{theirs}/enrich", json=cells, headers=auth)
        assert refused_elsewhere.status_code == 404, refused_elsewhere.text
        assert refused_elsewhere.json()["error"]["message"] == f"Table {theirs} does not exist."
        ok = http.post(f"/api/tables/{mine}/enrich", json=cells, headers=auth)
        assert ok.status_code in (400, 404), ok.text  # past the access rule: the cells are wrong
        expect(page.locator("#tokens")).to_contain_text("nightly import")

        page.locator("#tokens tr").filter(has_text="nightly import").get_by_role(
            "button", name="Revoke"
        ).click()
        expect(page.locator("#settings-notice")).to_have_text("Token revoked.")
        refused = http.get("/api/openapi.json", headers=auth)
        assert refused.status_code == 401, refused.text
        assert "not valid" in refused.json()["error"]["message"]
