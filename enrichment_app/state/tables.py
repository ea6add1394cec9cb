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
from enrichment_app.services import audit, csv_import, tables as table_service
from enrichment_app.services.access import Action, Grant
from enrichment_app.services.audit import Audited
from enrichment_app.services.tables import MAX_NAME_CHARS
from enrichment_app.state.access import (
    Guarded,
    current_grant,
    current_workspace,
    guard,
    table_argument,
)


def _table_rows(session: Session, *, workspace_id: int) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "name": t.name, "columns": t.columns, "rows": t.rows}
        for t in table_service.list_tables(session, workspace_id=workspace_id)
    ]


def _is_id(value: object) -> bool:
    """Whether a handler argument is a table id a database could hold (clients send anything)."""
    return type(value) is int and 1 <= value < 2**63


def _import_and_record(session: Session, *, grant: Grant, filename: str, **kwargs: Any):
    table = csv_import.import_csv(session, workspace_id=grant.workspace_id, **kwargs)
    assert table.id is not None
    rows = len(table_service.list_rows(session, table_id=table.id))
    audit.record_on_table(
        session,
        grant=grant,
        action=Audited.TABLE_IMPORT,
        table_id=table.id,
        label=table.name,
        detail=f"{filename[:100]}: {rows} row{'s' if rows != 1 else ''}",
    )
    return table


def _export_and_record(
    session: Session, *, grant: Grant, table_id: int, raw: bool
) -> tuple[str, str]:
    table = table_service.get_table(session=session, table_id=table_id)
    text = table_service.export_csv(session=session, table_id=table_id, raw=raw)
    audit.record_on_table(
        session,
        grant=grant,
        action=Audited.TABLE_EXPORT,
        table_id=table_id,
        detail="raw" if raw else "formulas neutralised",
    )
    return text, table_service.export_filename(table.name, raw=raw)


def _delete_and_record(session: Session, *, grant: Grant, table_id: int) -> None:
    label = audit.table_label(session, table_id)
    table_service.delete_table(session, table_id=table_id)
    audit.record_on_table(
        session, grant=grant, action=Audited.TABLE_DELETE, table_id=table_id, label=label
    )


class TablesState(Guarded, rx.State):
    """The list of the current workspace's tables, CSV import and export, and deleting."""

    tables: list[dict[str, Any]] = []
    new_table_name: str = ""
    message: str = ""
    notice: str = ""
    importing: bool = False
    can_create: bool = False
    """What the user's role in the workspace allows: the page hides the rest (and the
    handlers refuse it anyway)."""
    can_delete: bool = False

    @rx.event
    @guard(Action.VIEW, target=current_workspace)
    async def load(self):
        grant = current_grant()
        self.can_create = grant.allows(Action.CREATE_TABLE)
        self.can_delete = grant.allows(Action.DELETE_TABLE)
        self.tables = await in_session(
            get_runtime().open_session, _table_rows, workspace_id=grant.workspace_id
        )

    @rx.event
    @guard(Action.CREATE_TABLE, target=current_workspace)
    def table_name_changed(self, value: str):
        self.new_table_name = value[:MAX_NAME_CHARS] if isinstance(value, str) else ""

    @rx.event
    @guard(Action.CREATE_TABLE, target=current_workspace)
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
                _import_and_record,
                grant=current_grant(),
                filename=upload.filename or "",
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
    @guard(Action.EXPORT, target=table_argument("table_id"))
    async def export_csv(self, table_id: int, name: str, raw: bool = False):
        """Download the table; formulas neutralised unless ``raw`` (then "(raw)" in the name).

        The file is named after the table as stored; ``name`` is what the page shows, and is
        not trusted."""
        del name
        raw = raw is True
        if not _is_id(table_id):
            return
        try:
            text, filename = await in_transaction(
                get_runtime().open_session,
                _export_and_record,
                grant=current_grant(),
                table_id=table_id,
                raw=raw,
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        return rx.download(data=text.encode("utf-8"), filename=filename, mime_type="text/csv")

    @rx.event
    @guard(Action.DELETE_TABLE, target=table_argument("table_id"))
    async def delete_table(self, table_id: int):
        if not _is_id(table_id):
            return
        try:
            await in_transaction(
                get_runtime().open_session,
                _delete_and_record,
                grant=current_grant(),
                table_id=int(table_id),
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        self.notice = "Table deleted."
        return TablesState.load


class IndexState(Guarded, rx.State):
    """The start page opens the current workspace's first table (the demo on a fresh install)."""

    @rx.event
    @guard(Action.VIEW, target=current_workspace)
    async def open_first_table(self):
        tables = await in_session(
            get_runtime().open_session,
            table_service.list_tables,
            workspace_id=current_grant().workspace_id,
        )
        table_id = tables[0].id if tables else None
        return rx.redirect(routes.table_url(table_id) if table_id else routes.TABLES, replace=True)
