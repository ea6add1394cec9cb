"""Typing into an input cell: the edit is stored, then the cell redrawn as stored."""

from __future__ import annotations

from typing import Any

import reflex as rx

from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import grid as grid_service, tables as table_service
from enrichment_app.services.access import Action
from enrichment_app.state.access import guard
from enrichment_app.state.table.window import WindowMixin


class EditingMixin(WindowMixin, mixin=True):
    async def _row_id_at(self, row: int) -> int | None:
        r = row - self.window_start
        if 0 <= r < len(self._window_row_ids):
            return self._window_row_ids[r]
        found = await in_session(
            get_runtime().open_session,
            grid_service.row_ids_between,
            table_id=self.table_id,
            start=row,
            stop=row + 1,
            view=self._current_view(),
        )
        return found[0] if found else None

    @rx.event
    @guard(Action.EDIT)
    async def edit_cell(self, pos: tuple[int, int], new_cell: dict[str, Any]):
        """Persist an edit to an input cell."""
        try:
            col, row = int(pos[0]), int(pos[1])
            value = new_cell.get("data")
        except (TypeError, ValueError, OverflowError, IndexError, KeyError, AttributeError):
            return
        if not (0 <= row < self.row_count and 0 <= col < len(self.grid_columns)):
            return
        runtime = get_runtime()
        if not isinstance(value, str | int | float | None):
            return
        try:  # cut before anything else reads it: the service stores MAX_CELL_CHARS at most
            value = "" if value is None else str(value)[: runtime.settings.max_cell_chars + 1]
        except ValueError:  # an integer too long to print
            return
        column_id = int(self.grid_columns[col]["column_id"])
        row_id = await self._row_id_at(row)
        if row_id is None:
            return
        try:
            stored = await in_transaction(
                runtime.open_session,
                table_service.update_cell,
                table_id=self.table_id,
                row_id=row_id,
                column_id=column_id,
                value=value,
                max_cell_chars=runtime.settings.max_cell_chars,
            )
            self.message = ""
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        r = self._row_index.get(row_id)
        if r is not None:
            self.window_cells[r][col] = dict(grid_service.grid_cell(stored))
