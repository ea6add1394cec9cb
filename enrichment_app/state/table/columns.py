"""Managing the open table's columns from the grid: the column menu (rename, move left or
right, delete with a count of the values lost), drag to reorder, drag to resize.

The work is in ``services/columns.py``; every change is noted on the table change bus there,
so other tabs redraw. Widths are kept per table (``TableColumn.width``).
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from sqlmodel import Session

from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import audit, columns as column_service
from enrichment_app.services.access import Action, Grant
from enrichment_app.services.audit import Audited
from enrichment_app.services.tables import MAX_NAME_CHARS
from enrichment_app.state.access import current_grant, guard
from enrichment_app.state.table.rows import RowsMixin


def _audited(
    session: Session,
    *,
    change: Any,
    grant: Grant,
    action: Audited,
    detail: str,
    table_id: int,
    column_id: int,
    **arguments: Any,
) -> Any:
    """``change`` and its audit entry, in one transaction."""
    result = change(session, table_id=table_id, column_id=column_id, **arguments)
    audit.record_on_table(session, grant=grant, action=action, table_id=table_id, detail=detail)
    return result


class ColumnsMixin(RowsMixin, mixin=True):
    column_menu: int = -1
    """The grid index of the column whose menu is open (-1: none)."""
    column_title: str = ""
    column_rename: str = ""
    column_values: int = 0
    column_confirm_delete: bool = False
    column_error: str = ""
    column_menu_kind: str = ""

    def _column_at(self, index: Any) -> dict[str, Any] | None:
        if isinstance(index, bool) or not isinstance(index, int | float):
            return None
        if not -1 < index < len(self.grid_columns):
            return None
        i = int(index)
        return self.grid_columns[i] if 0 <= i < len(self.grid_columns) else None

    @rx.event
    @guard(Action.EDIT_COLUMNS)
    async def open_column_menu(self, index: Any, _bounds: Any = None):
        """The header's menu (its ▾, or a right-click on it): open the column's dialog."""
        if isinstance(index, list | tuple) and index:
            index = index[0]  # a context menu sends (column, row)
        column = self._column_at(index)
        if column is None:
            return
        self.column_menu = int(index)
        self.column_menu_kind = str(column.get("kind", ""))
        self.column_title = str(column.get("title", "")).removesuffix(" ✦")
        self.column_rename = self.column_title
        self.column_confirm_delete, self.column_error = False, ""
        try:
            self.column_values = await in_session(
                get_runtime().open_session,
                column_service.values_in_column,
                table_id=self.table_id,
                column_id=int(column["column_id"]),
            )
        except EnrichmentAppError as exc:
            self.column_error = str(exc)

    @rx.event
    @guard(Action.EDIT_COLUMNS)
    def close_column_menu(self, value: bool = False):
        if value is not True:
            self.column_menu = -1
            self.column_confirm_delete, self.column_error = False, ""

    @rx.event
    @guard(Action.EDIT_COLUMNS)
    def column_rename_changed(self, value: str):
        self.column_rename = value[:MAX_NAME_CHARS] if isinstance(value, str) else ""

    async def _column_change(self, fn: Any, action: Audited, detail: str, **arguments: Any) -> Any:
        column = self._column_at(self.column_menu)
        if column is None:
            return None
        try:
            result = await in_transaction(
                get_runtime().open_session,
                _audited,
                change=fn,
                grant=current_grant(),
                action=action,
                detail=f"'{self.column_title}' {detail}",
                table_id=self.table_id,
                column_id=int(column["column_id"]),
                **arguments,
            )
            await self._redraw()
        except EnrichmentAppError as exc:
            self.column_error = str(exc)
            return None
        self.column_error = ""
        return result

    @rx.event
    @guard(Action.EDIT_COLUMNS)
    async def rename_column(self):
        rewritten = await self._column_change(
            column_service.rename_column,
            Audited.COLUMN_CHANGE,
            f"renamed to '{self.column_rename.strip()}'",
            name=self.column_rename,
        )
        if rewritten is not None:
            self.column_title = self.column_rename.strip()
            self.notice = (
                f"Renamed; {', '.join(repr(n) for n in rewritten)} now read '{self.column_title}'."
                if rewritten
                else ""
            )
            self.column_menu = -1

    @rx.event
    @guard(Action.EDIT_COLUMNS)
    async def move_column_by(self, step: int):
        if step not in (-1, 1) or self.column_menu < 0:
            return
        to = self.column_menu + step
        if not 0 <= to < len(self.grid_columns):
            return
        moved = await self._column_change(
            column_service.move_column, Audited.COLUMN_CHANGE, f"moved to place {to + 1}", to=to
        )
        if moved is None:
            return
        self.column_menu = to

    @rx.event
    @guard(Action.EDIT_COLUMNS)
    def ask_delete_column(self):
        self.column_confirm_delete = True

    @rx.event
    @guard(Action.EDIT_COLUMNS)
    async def delete_column(self):
        self.column_confirm_delete = False
        deleted = await self._column_change(
            column_service.delete_column, Audited.COLUMN_DELETE, "deleted"
        )
        if deleted is None:
            return
        self.column_menu = -1
        self._apply_selection(self.selection)

    @rx.event
    @guard(Action.EDIT_COLUMNS)
    async def column_moved(self, start: int, end: int):
        """A header dragged from index ``start`` to ``end``."""
        if self._column_at(start) is None or self._column_at(end) is None or start == end:
            return
        self.column_menu = int(start)
        try:
            column = self._column_at(start)
            self.column_title = str(column.get("title", "")).removesuffix(" ✦") if column else ""
            await self._column_change(
                column_service.move_column,
                Audited.COLUMN_CHANGE,
                f"moved to place {int(end) + 1}",
                to=int(end),
            )
        finally:
            self.column_menu = -1
        if self.column_error:
            self.message, self.column_error = self.column_error, ""

    @rx.event
    @guard(Action.VIEW)
    def column_resized(self, column: Any, width: Any):
        """While a header's edge is dragged: show the new width at once."""
        index = self._width_target(column, width)
        if index is not None:
            self.grid_columns[index]["width"] = int(width)

    @rx.event
    @guard(Action.EDIT_COLUMNS)
    async def save_column_width(self, column: Any, width: Any):
        """When the drag stops: keep the width for everyone who opens the table."""
        index = self._width_target(column, width)
        if index is None:
            return
        try:
            kept = await in_transaction(
                get_runtime().open_session,
                column_service.set_column_width,
                table_id=self.table_id,
                column_id=int(self.grid_columns[index]["column_id"]),
                width=int(width),
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        self.grid_columns[index]["width"] = kept

    def _width_target(self, column: Any, width: Any) -> int | None:
        if isinstance(width, bool) or not isinstance(width, int | float):
            return None
        if not isinstance(column, dict) or not 0 < width < 100_000:
            return None
        for i, c in enumerate(self.grid_columns):
            if c.get("id") == column.get("id"):
                return i
        return None
