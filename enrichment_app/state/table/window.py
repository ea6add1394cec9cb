"""The window of rows the page holds, and loading more of it as the grid scrolls.

The page holds a *window* of the table, not the table: the rows on screen plus a buffer above
and below (``window_cells``, from row ``window_start``), and the total ``row_count`` so the
grid's scrollbar is right. When the grid scrolls past the buffer it reports its visible region
(``view``) and the state loads the rows around it; rows outside the window draw as loading.

Rows are positions in the page's *view* (``enrichment_app.views``: a filter, a sort, a search,
kept in the URL as ``view_f``, ``view_s``, ``view_q``): ``row_count`` is how many rows the
view shows, and every read by position (the window, a selection, an edit) goes through it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import reflex as rx

from enrichment_app.db.sessions import in_session
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import grid as grid_service
from enrichment_app.services.access import Action
from enrichment_app.state.access import guard
from enrichment_app.state.table.base import TableBase
from enrichment_app.views import EVERYTHING, View, parse_view

FIRST_WINDOW_ROWS = 120
"""Rows loaded with the page: more than a tall screen shows."""
WINDOW_BUFFER_ROWS = 60
"""Rows kept loaded above and below the visible region."""
MAX_VISIBLE_ROWS = 400
"""The most rows a grid can show at once; a taller region (from a hostile client) is clipped."""


class WindowMixin(TableBase, mixin=True):
    grid_columns: list[dict[str, Any]] = []
    row_count: int = 0
    """The rows the view shows."""
    total_rows: int = 0
    """The table's rows, whatever the view."""
    view_f: str = ""
    view_s: str = ""
    view_q: str = ""
    """The view's URL parameters ``f``, ``s``, ``q`` (``enrichment_app.views``); all empty:
    the whole table in its own order."""
    window_start: int = 0
    """The row index of ``window_cells[0]``."""
    window_cells: list[list[dict[str, str]]] = []

    _window_row_ids: list[int] = []
    _row_index: dict[int, int] = {}
    """Row id -> index in ``window_cells``, for the rows in the window."""
    _col_index: dict[int, int] = {}
    _window_version: int = 0
    _since: datetime | None = None
    """When the window's cells were last read; the next read asks for what changed since."""

    @rx.var
    def table_meta(self) -> str:
        rows, cols = self.row_count, len(self.grid_columns)
        shown = f"{rows} row{'s' * (rows != 1)}"
        if (self.view_f or self.view_q) and self.total_rows != rows:
            total = self.total_rows
            shown = f"{rows:,} of {total:,} row{'s' * (total != 1)}"
        return f"{shown} · {cols} column{'s' * (cols != 1)}"

    def _view_key(self) -> tuple[str, str, str]:
        return self.view_f, self.view_s, self.view_q

    def _current_view(self) -> View:
        """The page's view (the whole table if its parameters no longer parse)."""
        if not (self.view_f or self.view_s or self.view_q):
            return EVERYTHING
        try:
            return parse_view(self.view_f, self.view_s, self.view_q)
        except EnrichmentAppError:
            return EVERYTHING

    def _window_cell(self, col: int, row: int) -> dict[str, str] | None:
        """The cell at (col, row) if its row is in the window."""
        r = row - self.window_start
        if 0 <= r < len(self.window_cells) and 0 <= col < len(self.grid_columns):
            return self.window_cells[r][col]
        return None

    def _window_covers(self, first: int, stop: int) -> bool:
        """Whether rows ``[first, stop)`` (clipped to the table) are all in the window."""
        stop = min(stop, self.row_count)
        end = self.window_start + len(self.window_cells)
        return first >= self.window_start and stop <= end

    def _window_span(self) -> tuple[int, int]:
        """The rows to read again to refresh the window: at least a first window's worth."""
        return self.window_start, self.window_start + max(len(self.window_cells), FIRST_WINDOW_ROWS)

    def _window_bounds(self, first: int, stop: int) -> tuple[int, int]:
        """The window to load so that rows ``[first, stop)`` have a buffer on both sides."""
        start = max(0, first - WINDOW_BUFFER_ROWS)
        return start, min(self.row_count, max(stop, first + 1) + WINDOW_BUFFER_ROWS)

    def _apply_grid(
        self, meta: grid_service.GridMeta, window: grid_service.GridWindow, start: int
    ) -> bool:
        """Apply a re-read table; its window only if the user has not scrolled since (True)."""
        self._apply_meta(meta)
        if self.window_start != start:
            return False
        self._apply_window(window)
        return True

    def _apply_meta(self, meta: grid_service.GridMeta) -> None:
        self.table_name = meta.name
        self.grid_columns = [dict(c) for c in meta.columns]
        self.row_count = meta.row_count
        self.total_rows = meta.total_rows if meta.total_rows >= 0 else meta.row_count
        self._col_index = {int(c["column_id"]): i for i, c in enumerate(meta.columns)}

    def _apply_window(self, window: grid_service.GridWindow) -> None:
        self.window_start = window.start
        self.window_cells = [[dict(c) for c in row] for row in window.cells]
        self._window_row_ids = list(window.row_ids)
        self._row_index = {rid: i for i, rid in enumerate(window.row_ids)}
        self._window_version += 1

    def _apply_cells(self, changed: grid_service.Changes) -> None:
        """Redraw the changed cells that are in the window."""
        for row_id, column_id, cell in changed:
            r, c = self._row_index.get(row_id), self._col_index.get(column_id)
            if r is not None and c is not None and self.window_cells[r][c] != cell:
                self.window_cells[r][c] = dict(cell)

    async def _load_window(self, start: int, stop: int) -> None:
        """Read rows ``[start, stop)`` from the database into the window."""
        window = await in_session(
            get_runtime().open_session,
            grid_service.load_window,
            table_id=self.table_id,
            start=start,
            stop=stop,
            column_ids=[int(c["column_id"]) for c in self.grid_columns],
            view=self._current_view(),
        )
        self._apply_window(window)

    async def _load_rows_around(self, first: int, stop: int) -> None:
        """Load rows ``[first, stop)`` with their buffer, saying so if the read fails."""
        try:
            await self._load_window(*self._window_bounds(first, stop))
        except EnrichmentAppError as exc:
            self.message = str(exc)

    @rx.event
    @guard(Action.VIEW)
    async def view(self, region: dict[str, Any]):
        """The grid scrolled: make sure the visible rows, plus a buffer, are loaded."""
        try:
            first, height = int(region["y"]), int(region["height"])
        except (KeyError, TypeError, ValueError, OverflowError):
            return
        first = min(max(first, 0), self.row_count)
        height = min(max(height, 1), MAX_VISIBLE_ROWS)
        if not self.table_id or self._window_covers(first, first + height):
            return
        await self._load_rows_around(first, first + height)
