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
from enrichment_app.services.tables import MAX_NAME_CHARS


def _table_rows(session: Session) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "name": t.name, "columns": t.columns, "rows": t.rows}
        for t in table_service.list_tables(session)
    ]


def _is_id(value: object) -> bool:
    """Whether a handler argument is a table id a database could hold (clients send anything)."""
    return type(value) is int and 1 <= value < 2**63


def _export(session: Session, *, table_id: int, raw: bool) -> tuple[str, str]:
    table = table_service.get_table(session=session, table_id=table_id)
    text = table_service.export_csv(session=session, table_id=table_id, raw=raw)
    return text, table_service.export_filename(table.name, raw=raw)


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
        self.new_table_name = value[:MAX_NAME_CHARS] if isinstance(value, str) else ""

    @rx.event
    async def import_csv(self, files: list[rx.UploadFile]):
        """Create a table from the uploaded CSV; all or nothing."""
        self.message, self.notice = "", ""
        upload = files[0] if isinstance(files, list) and files else None
        if not isinstance(upload, rx.UploadFile):
            self.message = "Choose a CSV file first."
            return
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
        """Download the table; formulas neutralised unless ``raw`` (then "(raw)" in the name).

        The file is named after the table as stored; ``name`` is what the page shows, and is
        not trusted."""
        del name
        raw = raw is True
        if not _is_id(table_id):
            return
        try:
            text, filename = await in_session(
                get_runtime().open_session, _export, table_id=table_id, raw=raw
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        return rx.download(data=text.encode("utf-8"), filename=filename, mime_type="text/csv")

    @rx.event
    async def delete_table(self, table_id: int):
        if not _is_id(table_id):
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
