"""State of the tables page (list, import, export, delete) and of the start page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import reflex as rx
from sqlmodel import Session

from enrichment_app import routes
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import csv_import, tables as table_service


def _table_rows(session: Session) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "name": t.name, "columns": t.columns, "rows": t.rows}
        for t in table_service.list_tables(session)
    ]


class TablesState(rx.State):
    """The list of tables, CSV import and export, and deleting."""

    tables: list[dict[str, Any]] = []
    new_table_name: str = ""
    message: str = ""
    notice: str = ""
    importing: bool = False

    @rx.event
    async def load(self):
        self.tables = await in_session(get_runtime().open_session, _table_rows)

    @rx.event
    def set_new_table_name(self, value: str):
        self.new_table_name = value

    @rx.event
    async def import_csv(self, files: list[rx.UploadFile]):
        """Create a table from the uploaded CSV; all or nothing."""
        self.message, self.notice = "", ""
        if not files:
            self.message = "Choose a CSV file first."
            return
        upload = files[0]
        runtime = get_runtime()
        limit = runtime.settings.max_csv_bytes
        data = await upload.read(limit + 1)
        name = self.new_table_name.strip() or Path(upload.filename or "Imported table").stem
        self.importing = True
        yield
        try:
            table = await in_transaction(
                runtime.open_session,
                csv_import.import_csv,
                name=name,
                data=data,
                max_bytes=limit,
                max_cell_chars=runtime.settings.max_cell_chars,
            )
        except EnrichmentAppError as exc:
            self.message = f"Could not import {upload.filename}: {exc}"
            return
        finally:
            self.importing = False
        self.new_table_name = ""
        self.notice = f"Imported '{name}'."
        yield rx.clear_selected_files("csv_upload")
        yield rx.redirect(routes.table_url(table.id or 0))

    @rx.event
    async def export_csv(self, table_id: int, name: str, raw: bool = False):
        """Download the table; formulas neutralised unless ``raw`` (then "(raw)" in the name)."""
        raw = raw is True
        try:
            text = await in_session(
                get_runtime().open_session,
                table_service.export_csv,
                table_id=int(table_id),
                raw=raw,
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        safe = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in str(name)[:200])
        filename = f"{safe.strip() or 'table'}{' (raw)' if raw else ''}.csv"
        return rx.download(data=text.encode("utf-8"), filename=filename, mime_type="text/csv")

    @rx.event
    async def delete_table(self, table_id: int):
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
