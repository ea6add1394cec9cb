"""The table grid: Glide Data Grid with a cell renderer that shows each cell's state."""

from __future__ import annotations

import reflex as rx
from reflex.vars.base import VarData

from enrichment_app.state.table import TableState, grid_selection

# Colours per cell status (Glide theme overrides), chosen to read at a glance.
_CELL_RENDERER = """(([col, row]) => {
  const columns = %(columns)s;
  const data = %(data)s;
  const column = columns[col];
  const cells = data[row];
  if (!column || !cells) return {kind: "loading", allowOverlay: false};
  const cell = cells[col] || {v: "", s: "empty", e: ""};
  const editable = column.kind === "input";
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
    columns, data = TableState.grid_columns, TableState.cells
    return rx.Var(
        _CELL_RENDERER % {"columns": str(columns), "data": str(data)},
        _var_data=VarData.merge(columns._get_all_var_data(), data._get_all_var_data()),
    )


def table_grid() -> rx.Component:
    return rx.box(
        grid_selection,
        rx.data_editor(
            columns=TableState.grid_columns,
            data=TableState.cells,
            grid_selection=grid_selection.value,
            on_grid_selection_change=[grid_selection.set, TableState.select],
            on_selection_cleared=TableState.clear_selection,
            on_cell_edited=TableState.edit_cell,
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
        width="100%",
        border="1px solid var(--gray-5)",
        border_radius="8px",
        overflow="hidden",
    )
