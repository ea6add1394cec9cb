"""The table page: the grid, Run, the live job status and the cell inspector."""

from __future__ import annotations

import reflex as rx

from enrichment_app import routes
from enrichment_app.components.add_column import add_column_dialog
from enrichment_app.components.filter_bar import filter_bar
from enrichment_app.components.grid import tab_title, table_grid
from enrichment_app.components.inspector import cell_inspector
from enrichment_app.components.layout import page_frame
from enrichment_app.components.run_bar import messages, run_bar
from enrichment_app.components.table_tools import (
    column_dialog,
    delete_rows_dialog,
    row_tools,
    shortcuts_dialog,
)
from enrichment_app.state.table import TableState


def not_found() -> rx.Component:
    return rx.vstack(
        rx.heading("Table not found", size="6", id="not-found"),
        rx.text("There is no table with this id. It may have been deleted."),
        rx.link("Back to all tables", href=routes.TABLES),
        spacing="3",
    )


def table_page() -> rx.Component:
    return page_frame(
        rx.cond(
            TableState.not_found,
            not_found(),
            rx.vstack(
                rx.hstack(
                    rx.heading(TableState.table_name, size="6", id="table-name"),
                    rx.text(TableState.table_meta, id="table-meta", color_scheme="gray", size="2"),
                    rx.spacer(),
                    rx.cond(TableState.can_edit_columns, add_column_dialog()),
                    width="100%",
                    align="center",
                ),
                run_bar(),
                messages(),
                rx.text(
                    "Select cells in the ✦ enrichment columns (click, drag, shift-click, or a "
                    "column header), then Run. A header's ▾ (or a right-click on it) edits, renames, "
                    "moves or deletes its column.",
                    size="2",
                    color_scheme="gray",
                ),
                filter_bar(),
                row_tools(),
                table_grid(),
                tab_title(),
                delete_rows_dialog(),
                column_dialog(),
                shortcuts_dialog(),
                cell_inspector(),
                spacing="3",
                width="100%",
            ),
        )
    )
