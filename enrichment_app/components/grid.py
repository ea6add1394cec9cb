"""The table grid: Glide Data Grid showing a window of the table's rows.

``rows`` is the table's full row count, so the scrollbar is right; ``getCellContent`` draws the
rows in the state's window and a loading placeholder for the rest. When the visible region
changes the grid tells ``TableState.view``, which loads the rows around it.
"""

from __future__ import annotations

import reflex as rx
from reflex_base.components.component import field
from reflex_base.event import EventHandler, passthrough_event_spec
from reflex_base.vars.base import VarData
from reflex_components_dataeditor.dataeditor import DataEditor, Rectangle

from enrichment_app.state.table import TableState, grid_selection

VIEW_THROTTLE_MS = 150
"""While the grid scrolls, report the visible region at most this often..."""
VIEW_DEBOUNCE_MS = 60
"""...and once more when it stops, so the final position is always loaded."""


class WindowedDataEditor(DataEditor):
    """Reflex's data editor plus Glide's ``onVisibleRegionChanged``, which 0.10.1 leaves out."""

    on_visible_region_changed: EventHandler[passthrough_event_spec(Rectangle)] = field(
        doc="Fired when the visible region (the rows and columns on screen) changes."
    )


# Colours per cell status (Glide theme overrides), chosen to read at a glance.
_CELL_RENDERER = """(([col, row]) => {
  const columns = %(columns)s;
  const data = %(data)s;
  const column = columns[col];
  const cells = data[row - %(start)s];
  if (!column || !cells) return {kind: "loading", allowOverlay: false};
  const cell = cells[col] || {v: "", s: "empty", e: ""};
  const editable = column.kind === "input" && %(can_edit)s;
  const themes = {
    queued: {bgCell: "#f1f5f9", textDark: "#64748b"},
    running: {bgCell: "#e0f2fe", textDark: "#0369a1"},
    error: {bgCell: "#fef2f2", textDark: "#b91c1c"},
    canceled: {bgCell: "#f8fafc", textDark: "#94a3b8"},
  };
  let label = cell.v;
  if (cell.s === "queued") label = "Queued…";
  else if (cell.s === "running") label = "Running…";
  else if (cell.s === "error") label = "⚠ " + (cell.e || "Error");
  else if (cell.s === "canceled" && !cell.v) label = "Canceled";
  return {
    kind: "text",
    data: cell.v,
    displayData: label,
    allowOverlay: editable,
    readonly: !editable,
    themeOverride: themes[cell.s],
  };
})"""


def cell_renderer() -> rx.Var:
    columns, data, start, can_edit = (
        TableState.grid_columns,
        TableState.window_cells,
        TableState.window_start,
        TableState.can_edit,
    )
    return rx.Var(
        _CELL_RENDERER
        % {
            "columns": str(columns),
            "data": str(data),
            "start": str(start),
            "can_edit": str(can_edit),
        },
        _var_data=VarData.merge(
            columns._get_all_var_data(),
            data._get_all_var_data(),
            start._get_all_var_data(),
            can_edit._get_all_var_data(),
        ),
    )


def table_grid() -> rx.Component:
    return rx.box(
        grid_selection,
        WindowedDataEditor.create(
            columns=TableState.grid_columns,
            data=TableState.window_cells,
            rows=TableState.row_count,
            grid_selection=grid_selection.value,
            on_grid_selection_change=[grid_selection.set, TableState.select],
            on_selection_cleared=TableState.clear_selection,
            on_cell_edited=TableState.edit_cell,
            on_visible_region_changed=[
                TableState.view.throttle(VIEW_THROTTLE_MS),
                TableState.view.debounce(VIEW_DEBOUNCE_MS),
            ],
            range_select="multi-rect",
            column_select="multi",
            row_select="multi",
            row_markers="number",
            smooth_scroll_x=True,
            smooth_scroll_y=True,
            row_height=34,
            header_height=38,
            custom_attrs={"getCellContent": cell_renderer()},
            width="100%",
            height="60vh",
        ),
        id="table-grid",
        # Which rows the page holds, for tests and benchmarks (the canvas has no DOM per cell).
        custom_attrs={
            "data-window-start": TableState.window_start,
            "data-window-rows": TableState.window_cells.length(),
        },
        width="100%",
        border="1px solid var(--gray-5)",
        border_radius="8px",
        overflow="hidden",
    )
