"""State of the tables page (list, import, export, delete) and of the start page."""

from __future__ import annotations

from typing import Any

import reflex as rx
from sqlmodel import Session

from enrichment_app import routes
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import audit, tables as table_service
from enrichment_app.services.access import Action, Grant
from enrichment_app.services.audit import Audited
from enrichment_app.state.access import (
    Guarded,
    current_grant,
    current_workspace,
    guard,
    table_argument,
)
from enrichment_app.state.csv_files import CsvFilesMixin, is_id


def _table_rows(session: Session, *, workspace_id: int) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "name": t.name, "columns": t.columns, "rows": t.rows}
        for t in table_service.list_tables(session, workspace_id=workspace_id)
    ]


def _delete_and_record(session: Session, *, grant: Grant, table_id: int) -> None:
    label = audit.table_label(session, table_id)
    table_service.delete_table(session, table_id=table_id)
    audit.record_on_table(
        session, grant=grant, action=Audited.TABLE_DELETE, table_id=table_id, label=label
    )


class TablesState(Guarded, CsvFilesMixin, rx.State):
    """The list of the current workspace's tables, CSV import and export (``CsvFilesMixin``),
    and deleting."""

    tables: list[dict[str, Any]] = []
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
    @guard(Action.DELETE_TABLE, target=table_argument("table_id"))
    async def delete_table(self, table_id: int):
        if not is_id(table_id):
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
