"""The grid's selection: what is selected, how many of its cells would run, the focused cell.

Selections are resolved against the database by row position, so selecting a whole column of
100,000 rows runs 100,000 cells without the page holding their row ids.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.experimental.client_state import ClientStateVar

from enrichment_app.domain import ColumnKind
from enrichment_app.selection import (
    bounded_selection,
    focused_point,
    selected_spans,
    selects_nothing,
    span_count,
)
from enrichment_app.services.access import Action
from enrichment_app.state.access import guard
from enrichment_app.state.table.window import WindowMixin


def cursor_at(col: int, row: int) -> dict[str, Any]:
    """A selection of just one active cell.

    The grid always keeps an active cell, as spreadsheets do: Glide selects the first cell
    when it gains focus with no current cell, and with a server-controlled selection that
    arrives after the user's own click and overrides it.
    """
    return {
        "current": {
            "cell": [col, row],
            "range": {"x": col, "y": row, "width": 1, "height": 1},
            "rangeStack": [],
        },
        "columns": {"items": []},
        "rows": {"items": []},
    }


NO_SELECTION: dict[str, Any] = {"current": None, "columns": {"items": []}, "rows": {"items": []}}

grid_selection = ClientStateVar.create("grid_selection", default=NO_SELECTION)
"""The grid's selection lives in the browser, so the grid redraws it at once; every change
is also sent to ``TableState.select``. A server-controlled selection lags the mouse, and
Glide then resets it to the first cell when the canvas takes focus.

It starts empty: a cursor given to the grid before its rows arrive is one Glide drops (out of
bounds), and the drop reaches ``select`` after the page's load has put the cursor there.
The load pushes the cursor once the rows are there."""


class SelectionMixin(WindowMixin, mixin=True):
    selection: dict[str, Any] = NO_SELECTION
    run_count: int = 0
    selected_count: int = 0
    focus: list[int] = []

    @rx.var
    def run_label(self) -> str:
        n = self.run_count
        return f"Run {n} cell" if n == 1 else f"Run {n} cells"

    @rx.var
    def focused_cell(self) -> dict[str, str]:
        """The selected cell, for the inspector: its column, status, value and error."""
        if len(self.focus) != 2:
            return {}
        col, row = self.focus
        cell = self._window_cell(col, row)
        if cell is None:
            return {}
        column = self.grid_columns[col]
        return {
            "column": str(column.get("title", "")),
            "row": str(row + 1),
            "status": cell.get("s", ""),
            "value": cell.get("v", ""),
            "error": cell.get("e", ""),
        }

    @rx.event
    @guard(Action.VIEW)
    async def select(self, selection: dict[str, Any]):
        """Track the grid selection and how many of its cells would run.

        A selection of nothing keeps the active cell, as spreadsheets do. Glide sends one
        when its cursor falls outside the grid (its rows not there yet, or fewer of them)."""
        if selects_nothing(selection):
            return self._keep_cursor()
        self._apply_selection(selection)
        if len(self.focus) == 2 and 0 <= self.focus[1] < self.row_count:
            row = self.focus[1]
            if not self._window_covers(row, row + 1):  # the inspector needs the focused cell
                await self._load_rows_around(row, row + 1)

    @rx.event
    @guard(Action.VIEW)
    def clear_selection(self):
        """Escape clears the selected ranges but keeps the active cell."""
        return self._keep_cursor()

    def _keep_cursor(self):
        """Select just the active cell (the first, if none) and show it in the grid; with no
        cell to put it on, select nothing (pushing a cursor there, Glide would drop it again)."""
        if not self._has_cells():
            self._apply_selection(NO_SELECTION)
            return None
        col, row = (int(v) for v in self.focus) if len(self.focus) == 2 else (0, 0)
        self._apply_selection(cursor_at(col, row))
        col, row = self.focus  # bounded to the grid
        return grid_selection.push(cursor_at(col, row))  # a plain dict, not the state's proxy

    def _show_selection(self):
        """Bound the selection to the grid as it is now and show it there."""
        selection = bounded_selection(
            self.selection, n_cols=len(self.grid_columns), n_rows=self.row_count
        )
        if selects_nothing(selection) or not self._has_cells():
            return self._keep_cursor()
        self._apply_selection(selection)
        return grid_selection.push(selection)

    def _has_cells(self) -> bool:
        return bool(self.grid_columns) and self.row_count > 0

    def _selected_spans(self) -> dict[int, list[tuple[int, int]]]:
        return selected_spans(self.selection, n_cols=len(self.grid_columns), n_rows=self.row_count)

    def _apply_selection(self, selection: dict[str, Any]) -> None:
        selection = bounded_selection(
            selection, n_cols=len(self.grid_columns), n_rows=self.row_count
        )
        self.selection = selection
        spans = self._selected_spans()
        self.selected_count = sum(span_count(s) for s in spans.values())
        kinds = [c.get("kind") for c in self.grid_columns]
        self.run_count = sum(
            span_count(s) for col, s in spans.items() if kinds[col] == ColumnKind.ENRICHMENT.value
        )
        focus = focused_point(selection)
        self.focus = list(focus) if focus else []

    def _runnable_spans(self) -> dict[int, list[tuple[int, int]]]:
        """The selected row spans of each enrichment column, by column id."""
        return {
            int(self.grid_columns[col]["column_id"]): spans
            for col, spans in self._selected_spans().items()
            if self.grid_columns[col].get("kind") == ColumnKind.ENRICHMENT.value
        }
