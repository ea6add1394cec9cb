"""The table grid: Glide Data Grid showing a window of the table's rows.

``rows`` is the table's full row count, so the scrollbar is right; ``getCellContent`` draws the
rows in the state's window and a loading placeholder for the rest. When the visible region
changes the grid tells ``TableState.view``, which loads the rows around it.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.components.component import field
from reflex_base.event import EventHandler, passthrough_event_spec
from reflex_base.vars.base import VarData
from reflex_components_core.el.elements.typography import Div
from reflex_components_dataeditor.dataeditor import DataEditor, Rectangle

from enrichment_app.components.grid_keys import handled_delete, page_keys
from enrichment_app.state.table import TableJobState, TableState, grid_selection

VIEW_THROTTLE_MS = 150
"""While the grid scrolls, report the visible region at most this often..."""
VIEW_DEBOUNCE_MS = 60
"""...and once more when it stops, so the final position is always loaded."""


class WindowedDataEditor(DataEditor):
    """Reflex's data editor plus Glide's ``onVisibleRegionChanged`` and ``onColumnMoved``,
    which 0.10.1 leaves out."""

    on_visible_region_changed: EventHandler[passthrough_event_spec(Rectangle)] = field(
        doc="Fired when the visible region (the rows and columns on screen) changes."
    )
    on_column_moved: EventHandler[passthrough_event_spec(int, int)] = field(
        doc="Fired when a header is dragged to another place: (from index, to index)."
    )


def _pasted_text(e: rx.Var) -> tuple[rx.Var[str]]:
    """A paste event's plain text (what spreadsheets put there: tab-separated cells)."""
    return (rx.Var(f"(({e}).preventDefault(), ({e}).clipboardData.getData('text/plain'))").to(str),)


class GridFrame(Div):
    """The grid's box: a paste in the grid reaches the server as text (parsed there, in
    ``enrichment_app/clipboard.py``)."""

    on_paste: EventHandler[_pasted_text] = field(doc="Fired with the pasted plain text.")


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


# Glide 6.0.3 draws a header's ▾ only while the mouse is over that header
# (``drawHeaderInner``: ``shouldDrawMenu = c.hasMenu && (isHovered || (touchMode && selected))``),
# so nobody finds the column menu. Its click target is there whether drawn or not
# (``isOverHeaderMenu`` tests ``hasMenu`` only): draw the ▾ on every header that has a menu,
# over a patch of the header's background so a long title does not run under it.
_DRAW_HEADER = """((args, draw) => {
  draw();
  const {ctx, column, theme, rect, menuBounds, isHovered, isSelected, hasSelectedCell} = args;
  if (column.hasMenu !== true || isHovered || rect.width <= 35) return;
  ctx.fillStyle = isSelected ? theme.accentColor : hasSelectedCell ? theme.bgHeaderHasFocus : theme.bgHeader;
  ctx.fillRect(menuBounds.x, rect.y + 1, menuBounds.width, rect.height - 2);
  const x = menuBounds.x + menuBounds.width / 2 - 5.5;
  const y = menuBounds.y + menuBounds.height / 2 - 3;
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x + 11, y);
  ctx.lineTo(x + 5.5, y + 6);
  ctx.closePath();
  ctx.fillStyle = isSelected ? theme.textHeaderSelected : theme.textHeader;
  ctx.fill();
})"""


def _columns_with_menus() -> rx.Var:
    """The columns, each with a header menu (▾) for those who may change columns."""
    columns, allowed = TableState.grid_columns, TableState.can_edit_columns
    return rx.Var(
        f"{columns!s}.map((c) => ({{...c, hasMenu: {allowed!s}}}))",
        _var_type=list[dict[str, Any]],
        _var_data=VarData.merge(columns._get_all_var_data(), allowed._get_all_var_data()),
    )


def tab_title() -> rx.Component:
    """Sets the browser tab's title to ``TableJobState.tab_title`` (the job's progress)."""
    title = TableJobState.tab_title
    hook = f"useEffect(() => {{ if ({title!s}) document.title = {title!s}; }}, [{title!s}])"
    marker = rx.Var(
        "true",
        _var_data=VarData.merge(
            title._get_all_var_data(), VarData(hooks={hook: None}, imports={"react": "useEffect"})
        ),
    )
    return rx.el.span(custom_attrs={"data-tab-title": marker}, display="none")


def table_grid() -> rx.Component:
    return GridFrame.create(
        grid_selection,
        WindowedDataEditor.create(
            columns=_columns_with_menus(),
            data=TableState.window_cells,
            rows=TableState.row_count,
            grid_selection=grid_selection.value,
            on_grid_selection_change=[grid_selection.set, TableState.select],
            on_selection_cleared=TableState.clear_selection,
            on_cell_edited=TableState.edit_cell,
            on_column_moved=TableState.column_moved,
            on_column_resize=[
                TableState.column_resized.throttle(VIEW_THROTTLE_MS),
                TableState.save_column_width.debounce(400),
            ],
            on_header_menu_click=TableState.open_column_menu,
            on_header_context_menu=TableState.open_column_menu,
            on_visible_region_changed=[
                TableState.view.throttle(VIEW_THROTTLE_MS),
                TableState.view.debounce(VIEW_DEBOUNCE_MS),
            ],
            range_select="multi-rect",
            column_select="multi",
            row_select="multi",
            row_markers="clickable-number",
            smooth_scroll_x=True,
            smooth_scroll_y=True,
            row_height=34,
            header_height=38,
            custom_attrs={
                "getCellContent": cell_renderer(),
                "drawHeader": rx.Var(_DRAW_HEADER),
                "onDelete": handled_delete(),
                # A click on the active cell selects it, as in a spreadsheet: a double-click,
                # Enter or typing edits. (Glide's "second-click" opened the editor on such a
                # click, and a shift-click and Delete right after it went to the editor.)
                "cellActivationBehavior": "double-click",
            },
            width="100%",
            height="60vh",
        ),
        id="table-grid",
        on_paste=TableState.paste,
        # Which rows the page holds, for tests and benchmarks (the canvas has no DOM per cell).
        custom_attrs={
            "onKeyDownCapture": page_keys(),
            "data-window-start": TableState.window_start,
            "data-window-rows": TableState.window_cells.length(),
        },
        width="100%",
        border="1px solid var(--gray-5)",
        border_radius="8px",
        overflow="hidden",
    )
