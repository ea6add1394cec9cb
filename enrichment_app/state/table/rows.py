"""Rows on the page as in a spreadsheet: add a row, paste a block, clear cells with Delete,
delete the selected rows with one-step undo, and the keyboard shortcuts overlay.

The work is in ``services/row_edits.py`` (plain Python); these handlers bound what the client
sends, call it, and redraw the grid. What one delete took is kept in the backend-only
``_undo_rows`` (never sent to the browser) until Undo or the next delete.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from enrichment_app.clipboard import read_block
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.selection import selected_spans
from enrichment_app.services import grid as grid_service, row_edits
from enrichment_app.services.access import Action
from enrichment_app.state.access import guard
from enrichment_app.state.table.selection import SelectionMixin, cursor_at, grid_selection
from enrichment_app.state.table.window import FIRST_WINDOW_ROWS

MAX_PASTE_TEXT = 5_000_001
"""Pasted text is cut here before it is read (``read_block`` refuses what is longer)."""


class RowsMixin(SelectionMixin, mixin=True):
    confirm_rows: int = 0
    """How many rows the open "Delete rows?" confirmation would delete (0: closed)."""
    undo_label: str = ""
    """What Undo would bring back ("Undo: 3 rows deleted"); empty when there is nothing."""
    notice: str = ""
    """A note that is not an error (what a paste left out)."""
    shortcuts_open: bool = False
    _undo_rows: list[list[Any]] = []
    _undo_table: int = 0

    async def _redraw(self, *, first: int | None = None) -> None:
        """Read the table again, keeping the window (or moving it to show row ``first``)."""
        start = self.window_start
        if first is not None and not self._window_covers(first, first + 1):
            start = max(0, first - FIRST_WINDOW_ROWS // 2)
        read = await in_session(
            get_runtime().open_session,
            grid_service.read_table,
            table_id=self.table_id,
            start=start,
            stop=start + max(len(self.window_cells), FIRST_WINDOW_ROWS),
        )
        self._apply_meta(read.meta)
        self._apply_window(read.window)

    def _focus_on(self, col: int, row: int):
        selection = cursor_at(col, row)
        self._apply_selection(selection)
        return grid_selection.push(cursor_at(col, row))

    @rx.event
    @guard(Action.EDIT)
    async def add_row(self):
        """A blank row at the end, with its first cell selected to type into."""
        try:
            index = await in_transaction(
                get_runtime().open_session, row_edits.add_blank_row, table_id=self.table_id
            )
            await self._redraw(first=index)
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return None
        self.message = ""
        return self._focus_on(0, index)

    @rx.event
    @guard(Action.EDIT)
    async def paste(self, text: str):
        """Paste spreadsheet cells at the selected cell; rows are added as needed."""
        if not isinstance(text, str):
            self.message = "Only text can be pasted into the table."
            return
        if len(self.focus) != 2:
            self.message = "Select a cell to paste at."
            return
        col, row = self.focus
        runtime = get_runtime()
        try:
            block = read_block(text[:MAX_PASTE_TEXT])
            done = await in_transaction(
                runtime.open_session,
                row_edits.paste_block,
                table_id=self.table_id,
                first_col=col,
                first_row=row,
                block=block,
                max_cell_chars=runtime.settings.max_cell_chars,
            )
            await self._redraw()
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        self.message = ""
        rows = (
            f", {done.rows_added} row{'s' * (done.rows_added != 1)} added"
            if done.rows_added
            else ""
        )
        self.notice = (
            f"Pasted {done.cells} cell{'s' * (done.cells != 1)}{rows}. {done.note}".strip()
        )

    @rx.event
    @guard(Action.EDIT)
    async def clear_cells(self, selection: Any = None):
        """Delete: empty the selected input cells (enrichment cells are left, with a message).

        The grid sends the selection the key was pressed on, and that is what is cleared: a
        Delete pressed right after a shift-click clears the new range even if the range's own
        ``select`` has not been applied yet."""
        if isinstance(selection, dict):
            self._apply_selection(selection)
        blocks = [
            (range(c, c + 1), range(start, stop))
            for c, spans in self._selected_spans().items()
            for start, stop in spans
        ]
        try:
            done = await in_transaction(
                get_runtime().open_session,
                row_edits.clear_cells,
                table_id=self.table_id,
                blocks=blocks,
            )
            await self._redraw()
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        self.message = done.note
        self.notice = ""

    def _selected_rows(self) -> list[tuple[int, int]]:
        """The row spans the selection touches (any column), merged."""
        spans = selected_spans(self.selection, n_cols=len(self.grid_columns), n_rows=self.row_count)
        rows = sorted({span for s in spans.values() for span in s})
        merged: list[tuple[int, int]] = []
        for start, stop in rows:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
            else:
                merged.append((start, stop))
        return merged

    @rx.event
    @guard(Action.EDIT)
    def ask_delete_rows(self):
        """Open the confirmation for the rows the selection touches."""
        count = sum(stop - start for start, stop in self._selected_rows())
        if count == 0:
            self.message = "Select the rows to delete first (click their numbers)."
            return
        if count > row_edits.MAX_DELETE_ROWS:
            self.message = (
                f"{count:,} rows selected; at most {row_edits.MAX_DELETE_ROWS:,} can be deleted "
                "at once."
            )
            return
        self.confirm_rows = count

    @rx.event
    @guard(Action.EDIT)
    def close_delete_rows(self):
        self.confirm_rows = 0

    @rx.event
    @guard(Action.EDIT)
    async def delete_rows(self):
        """Delete the selected rows (after the confirmation), keeping them for one Undo."""
        self.confirm_rows = 0
        spans = self._selected_rows()
        runtime = get_runtime()
        try:
            row_ids: list[int] = []
            for start, stop in spans:
                row_ids += await in_session(
                    runtime.open_session,
                    grid_service.row_ids_between,
                    table_id=self.table_id,
                    start=start,
                    stop=stop,
                )
            deleted = await in_transaction(
                runtime.open_session, row_edits.delete_rows, table_id=self.table_id, row_ids=row_ids
            )
            await self._redraw()
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return None
        n = len(deleted.rows)
        self._undo_rows, self._undo_table = deleted.to_json(), self.table_id
        self.undo_label = f"{n} row{'s' * (n != 1)} deleted"
        self.message = ""
        first = spans[0][0] if spans else 0
        return self._focus_on(0, min(first, max(self.row_count - 1, 0)))

    @rx.event
    @guard(Action.EDIT)
    async def undo_delete(self):
        """Put the last deleted rows back where they were."""
        if not self._undo_rows or self._undo_table != self.table_id:
            self.undo_label = ""
            return
        deleted = row_edits.DeletedRows.from_json(self.table_id, self._undo_rows)
        try:
            await in_transaction(
                get_runtime().open_session, row_edits.restore_rows, deleted=deleted
            )
            await self._redraw()
        except EnrichmentAppError as exc:
            self.message = str(exc)
        self._undo_rows, self.undo_label = [], ""

    @rx.event
    @guard(Action.VIEW)
    def dismiss_undo(self):
        self._undo_rows, self.undo_label, self.notice = [], "", ""

    @rx.var
    def never_run_column(self) -> str:
        """The first enrichment column with nothing in the rows on the page ("" when none),
        for the hint that says how to fill it."""
        if not self.window_cells:
            return ""
        for c, column in enumerate(self.grid_columns):
            if column.get("kind") != "enrichment":
                continue
            if all(row[c].get("s") == "empty" for row in self.window_cells if c < len(row)):
                return str(column.get("title", ""))
        return ""

    @rx.event
    @guard(Action.VIEW)
    def toggle_shortcuts(self, value: bool | None = None):
        self.shortcuts_open = (not self.shortcuts_open) if value is None else value is True
