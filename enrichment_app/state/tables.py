"""State of the tables page (list, import, export, delete) and of the start page."""

from __future__ import annotations

from typing import Any

import reflex as rx
from sqlmodel import Session

from enrichment_app import routes
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import tables as table_service
from enrichment_app.state.csv_files import CsvFilesMixin, is_id


def _table_rows(session: Session) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "name": t.name, "columns": t.columns, "rows": t.rows}
        for t in table_service.list_tables(session)
    ]


class TablesState(CsvFilesMixin, rx.State):
    """The list of tables, CSV import and export (``CsvFilesMixin``), and deleting."""

    tables: list[dict[str, Any]] = []

    @rx.event
    async def load(self):
        self.tables = await in_session(get_runtime().open_session, _table_rows)

    @rx.event
    async def delete_table(self, table_id: int):
        if not is_id(table_id):
            return
        try:
            await in_transaction(
                get_runtime().open_session, table_service.delete_table, table_id=table_id
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        self.notice = "Table deleted."
        return TablesState.load


class IndexState(rx.State):
    """The start page opens the first table (the demo on a fresh install)."""

    @rx.event
    async def open_first_table(self):
        tables = await in_session(get_runtime().open_session, table_service.list_tables)
        table_id = tables[0].id if tables else None
        return rx.redirect(routes.table_url(table_id) if table_id else routes.TABLES, replace=True)
