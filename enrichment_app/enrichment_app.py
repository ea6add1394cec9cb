"""The composition root: builds the Reflex app, its pages and its lifespan. No logic here.

Every page's ``on_load`` runs guarded handlers (``state/access.py``): a signed-out browser is
sent to the sign-in page, or to the owner set-up page while no account exists. The set-up,
sign-in and invitation pages are the only ones that work signed out.
"""

from __future__ import annotations

import logging

import reflex as rx

from enrichment_app import routes
from enrichment_app.api import build_api
from enrichment_app.pages.audit import audit_page
from enrichment_app.pages.auth import invitation_page, setup_page, sign_in_page
from enrichment_app.pages.settings import settings_page
from enrichment_app.pages.table import table_page
from enrichment_app.pages.tables import tables_page
from enrichment_app.redact import quiet_request_logs
from enrichment_app.runtime import get_runtime, lifespan
from enrichment_app.state.account import AccountState
from enrichment_app.state.audit import AuditState
from enrichment_app.state.auth import AuthState
from enrichment_app.state.settings import SettingsState
from enrichment_app.state.table import TableState
from enrichment_app.state.tables import IndexState, TablesState

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
quiet_request_logs()

app = rx.App(api_transformer=build_api(get_runtime))
app.add_page(
    lambda: rx.center(rx.spinner(), height="50vh"),
    route=routes.INDEX,
    title="enrichment_app",
    on_load=IndexState.open_first_table,
)
app.add_page(
    tables_page,
    route=routes.TABLES,
    title="Tables · enrichment_app",
    on_load=[AccountState.load, TablesState.load],
)
app.add_page(
    table_page,
    route=routes.TABLE,
    title="Table · enrichment_app",
    on_load=[TableState.load, AccountState.load],
)
app.add_page(
    settings_page,
    route=routes.SETTINGS,
    title="Members and tokens · enrichment_app",
    on_load=[AccountState.load, SettingsState.load],
)
app.add_page(
    audit_page,
    route=routes.AUDIT,
    title="Audit log · enrichment_app",
    on_load=[AccountState.load, AuditState.load],
)
app.add_page(
    setup_page, route=routes.SETUP, title="Set up · enrichment_app", on_load=AuthState.load_setup
)
app.add_page(
    sign_in_page,
    route=routes.SIGN_IN,
    title="Sign in · enrichment_app",
    on_load=AuthState.load_sign_in,
)
app.add_page(
    invitation_page,
    route=routes.INVITATION,
    title="Invitation · enrichment_app",
    on_load=AuthState.load_invitation,
)
app.register_lifespan_task(lifespan)
