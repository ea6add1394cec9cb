"""The composition root: builds the Reflex app, its pages and its lifespan. No logic here."""

from __future__ import annotations

import logging

import reflex as rx

from enrichment_app import routes
from enrichment_app.api import build_api
from enrichment_app.pages.table import table_page
from enrichment_app.pages.tables import tables_page
from enrichment_app.redact import quiet_request_logs
from enrichment_app.runtime import get_runtime, lifespan
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
    tables_page, route=routes.TABLES, title="Tables · enrichment_app", on_load=TablesState.load
)
app.add_page(
    table_page, route=routes.TABLE, title="Table · enrichment_app", on_load=TableState.load
)
app.register_lifespan_task(lifespan)
