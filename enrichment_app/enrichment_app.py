"""The composition root: builds the Reflex app, its pages and its lifespan. No logic here.

Every page's ``on_load`` runs guarded handlers (``state/access.py``): a signed-out browser is
sent to the sign-in page, or to the owner set-up page while no account exists. The set-up,
sign-in and invitation pages are the only ones that work signed out.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import reflex as rx
from reflex.config import get_config

from enrichment_app import routes
from enrichment_app.api import build_api
from enrichment_app.edge import EdgeGuard, GuardRules, Site, parse_hosts, parse_origins
from enrichment_app.edge.guard import BodyLimit
from enrichment_app.pages.audit import audit_page
from enrichment_app.pages.auth import invitation_page, setup_page, sign_in_page
from enrichment_app.pages.settings import settings_page
from enrichment_app.pages.table import table_page
from enrichment_app.pages.tables import tables_page
from enrichment_app.redact import quiet_request_logs
from enrichment_app.runtime import get_runtime, lifespan
from enrichment_app.services.csv_import import too_large
from enrichment_app.state.account import AccountState
from enrichment_app.state.audit import AuditState
from enrichment_app.state.auth import AuthState
from enrichment_app.state.settings import SettingsState
from enrichment_app.state.table import TableState
from enrichment_app.state.tables import IndexState, TablesState

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
quiet_request_logs()

MULTIPART_OVERHEAD = 64 * 1024
"""Room around the file in a ``/_upload`` body: boundaries, part headers, the file name."""


@lru_cache(maxsize=8)
def _rules(
    ports: tuple[int | None, int | None],
    urls: tuple[str, ...],
    origins: str,
    hosts: str,
    max_csv_bytes: int,
) -> GuardRules:
    site = Site(
        frontend_port=ports[0],
        backend_port=ports[1],
        urls=urls,
        extra_origins=parse_origins(origins),
        extra_hosts=parse_hosts(hosts),
    )
    limit = BodyLimit(max_csv_bytes, too_large(max_csv_bytes))
    upload = BodyLimit(max_csv_bytes + MULTIPART_OVERHEAD, limit.message)
    return GuardRules(site=site, body_limits={"/_upload": upload, "/api/tables/import": limit})


def guard_rules() -> GuardRules:
    """The edge's rules, from where Reflex serves the app now (its ports, ``REFLEX_API_URL``,
    ``REFLEX_DEPLOY_URL``) and the settings; read per request, built once per change."""
    config = get_config()
    settings = get_runtime().settings
    urls = tuple(u for u in (config.api_url, config.deploy_url) if u)
    return _rules(
        (config.frontend_port, config.backend_port),
        urls,
        settings.allowed_origins,
        settings.allowed_hosts,
        settings.max_csv_bytes,
    )


def allows_origin(origin: str, environ: object = None) -> bool:
    """Whether a page on ``origin`` may use the backend (python-engineio's callable form)."""
    del environ
    return guard_rules().site.allows_origin(origin)


# One rule for every layer that looks at Origin: the guard (websocket, uploads, /api), Reflex's
# CORS middleware (rxconfig.py hands it this rule) and the socket server (set on it below).
app = rx.App(api_transformer=[build_api(get_runtime), EdgeGuard.wrap(guard_rules)])
if app.sio is not None:
    app.sio.eio.cors_allowed_origins = allows_origin
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
