"""The tables page: every table, CSV import and export, and deleting."""

from __future__ import annotations

import reflex as rx

from enrichment_app.components.layout import callout_when, page_frame
from enrichment_app.state.tables import TablesState


def table_row(table: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(table["name"], href="/tables/" + table["id"].to_string())),
        rx.table.cell(table["rows"]),
        rx.table.cell(table["columns"]),
        rx.table.cell(
            rx.hstack(
                rx.button(
                    rx.icon("download", size=14),
                    "Export CSV",
                    variant="soft",
                    size="1",
                    loading=TablesState.exporting == table["id"],
                    on_click=TablesState.export_csv(table["id"], table["name"], False),
                ),
                rx.tooltip(
                    rx.button(
                        rx.icon("file-warning", size=14),
                        "Export raw",
                        variant="soft",
                        color_scheme="gray",
                        size="1",
                        on_click=TablesState.export_csv(table["id"], table["name"], True),
                    ),
                    content="Values exactly as stored, formulas included: open it only in a"
                    " tool you trust with them",
                ),
                rx.cond(TablesState.can_delete, delete_button(table)),
                spacing="2",
            )
        ),
    )


def delete_button(table: rx.Var) -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(
                rx.icon("trash-2", size=14),
                "Delete",
                color_scheme="red",
                variant="soft",
                size="1",
            )
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete this table?"),
            rx.alert_dialog.description(
                "Its rows, columns and enriched values are deleted for good."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Keep it", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(
                    rx.button(
                        "Delete",
                        color_scheme="red",
                        on_click=TablesState.delete_table(table["id"]),
                    )
                ),
                justify="end",
                spacing="3",
            ),
        ),
    )


def export_progress() -> rx.Component:
    """How far the running export got, and Cancel."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(
                    "Exporting ",
                    TablesState.export_name,
                    ": ",
                    TablesState.export_rows.to_string(),
                    " of ",
                    TablesState.export_total.to_string(),
                    " rows written",
                    size="2",
                    id="export-progress-text",
                ),
                rx.spacer(),
                rx.button(
                    "Cancel",
                    id="export-cancel",
                    variant="soft",
                    color_scheme="gray",
                    size="1",
                    on_click=TablesState.cancel_export,
                ),
                width="100%",
                align="center",
            ),
            rx.progress(value=TablesState.export_percent, id="export-progress", width="100%"),
            width="100%",
            spacing="2",
        ),
        width="100%",
    )


def import_progress() -> rx.Component:
    """How far the running import got, and Cancel (which stores nothing)."""
    return rx.vstack(
        rx.hstack(
            rx.text(TablesState.import_text, size="2", id="import-progress-text"),
            rx.spacer(),
            rx.button(
                "Cancel",
                id="import-cancel",
                variant="soft",
                color_scheme="gray",
                size="1",
                on_click=[TablesState.cancel_import, rx.cancel_upload("csv_upload")],
            ),
            width="100%",
            align="center",
        ),
        rx.progress(value=TablesState.import_percent, id="import-progress", width="100%"),
        width="100%",
        spacing="2",
    )


def import_form() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("New table from CSV", size="4"),
            rx.text("The header row becomes the table's columns.", size="2", color_scheme="gray"),
            rx.input(
                placeholder="Table name (defaults to the file name)",
                value=TablesState.new_table_name,
                on_change=TablesState.table_name_changed,
                id="new-table-name",
                width="100%",
            ),
            rx.upload(
                rx.vstack(
                    rx.icon("upload", size=20),
                    rx.text("Drop a CSV file here or click to choose one", size="2"),
                    align="center",
                ),
                id="csv_upload",
                accept={"text/csv": [".csv"], "text/plain": [".txt", ".tsv"]},
                max_files=1,
                border="1px dashed var(--gray-7)",
                padding="16px",
                width="100%",
            ),
            rx.text(rx.selected_files("csv_upload").join(", "), size="2"),
            rx.button(
                "Import",
                id="import-button",
                loading=TablesState.importing,
                on_click=TablesState.import_csv(
                    rx.upload_files_chunk(
                        upload_id="csv_upload", on_upload_progress=TablesState.upload_progress
                    )
                ),
            ),
            rx.cond(TablesState.importing, import_progress()),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def tables_page() -> rx.Component:
    return page_frame(
        rx.heading("Tables", size="6"),
        callout_when(TablesState.message, id="tables-message"),
        callout_when(TablesState.access_message, id="access-message"),
        callout_when(TablesState.notice, icon="check", color="green", id="tables-notice"),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Name"),
                    rx.table.column_header_cell("Rows"),
                    rx.table.column_header_cell("Columns"),
                    rx.table.column_header_cell(""),
                )
            ),
            rx.table.body(rx.foreach(TablesState.tables, table_row)),
            width="100%",
            id="tables-list",
        ),
        rx.cond(TablesState.exporting != 0, export_progress()),
        rx.text(
            "Export CSV puts a ' before values that start with =, +, -, @, a tab or a carriage"
            " return, so a spreadsheet shows them as text instead of running them as formulas."
            " Export raw keeps every value exactly as stored.",
            size="2",
            color_scheme="gray",
            id="export-note",
        ),
        rx.cond(TablesState.can_create, import_form()),
    )
