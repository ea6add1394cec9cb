"""The table page's spreadsheet tools: add and delete rows with Undo, the column dialog
(rename, move, delete), the keyboard shortcuts overlay and the empty states."""

from __future__ import annotations

import reflex as rx

from enrichment_app.components.layout import callout_when
from enrichment_app.state.add_column import AddColumnState
from enrichment_app.state.table import TableState

SHORTCUTS = (
    ("Arrows", "Move the selected cell"),
    ("Shift + arrows", "Grow the selection"),
    ("Ctrl + A", "Select every cell"),
    ("Enter / Shift + Enter", "Edit the cell; after typing, move down / up"),
    ("Tab / Shift + Tab", "After typing, move right / left"),
    ("Delete", "Clear the selected input cells"),
    ("Ctrl + C / Ctrl + V", "Copy the selection as tab-separated text / paste cells"),
    ("Ctrl + Enter", "Run the selected enrichment cells"),
    ("Escape", "Clear the selection (or stop editing)"),
    ("?", "Show this list"),
)


def row_tools() -> rx.Component:
    """Add row and Delete rows (for editors), and the Undo that follows a delete."""
    return rx.hstack(
        rx.cond(
            TableState.can_edit,
            rx.hstack(
                rx.button(
                    rx.icon("plus", size=14),
                    "Add row",
                    id="add-row",
                    variant="soft",
                    size="1",
                    on_click=TableState.add_row,
                ),
                rx.button(
                    rx.icon("trash-2", size=14),
                    "Delete rows",
                    id="delete-rows",
                    variant="soft",
                    color_scheme="red",
                    size="1",
                    on_click=TableState.ask_delete_rows,
                ),
                spacing="2",
            ),
        ),
        status_line(),
        rx.spacer(),
        rx.button(
            rx.icon("keyboard", size=14),
            "Shortcuts (?)",
            id="shortcuts-button",
            variant="ghost",
            size="1",
            on_click=TableState.toggle_shortcuts(True),
        ),
        width="100%",
        align="center",
        min_height="28px",
    )


def status_line() -> rx.Component:
    """One line beside Add row: Undo after a delete, what a paste did, or what to do next."""
    return rx.cond(
        TableState.undo_label != "",
        rx.hstack(
            rx.text(TableState.undo_label, id="undo-label", size="2"),
            rx.button("Undo", id="undo-button", size="1", on_click=TableState.undo_delete),
            rx.button("Dismiss", size="1", variant="ghost", on_click=TableState.dismiss_undo),
            align="center",
        ),
        rx.cond(
            TableState.notice != "",
            rx.text(TableState.notice, id="notice", size="2", color_scheme="blue"),
            empty_state(),
        ),
    )


def delete_rows_dialog() -> rx.Component:
    n = TableState.confirm_rows
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete rows?"),
            rx.alert_dialog.description(
                rx.cond(
                    n == 1, "Delete 1 row and its values?", f"Delete {n} rows and their values?"
                ),
                " You can undo it right after.",
                id="delete-rows-text",
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button(
                        "Cancel",
                        variant="soft",
                        color_scheme="gray",
                        on_click=TableState.close_delete_rows,
                    )
                ),
                rx.alert_dialog.action(
                    rx.button(
                        "Delete",
                        color_scheme="red",
                        id="confirm-delete-rows",
                        on_click=TableState.delete_rows,
                    )
                ),
                justify="end",
                spacing="2",
                margin_top="12px",
            ),
        ),
        open=n > 0,
    )


def column_dialog() -> rx.Component:
    """Opened from a header's menu: rename, move left or right, delete."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Column ", rx.text.strong(TableState.column_title)),
            rx.vstack(
                rx.text("Name", size="2", weight="bold"),
                rx.hstack(
                    rx.input(
                        value=TableState.column_rename,
                        on_change=TableState.column_rename_changed,
                        id="column-rename",
                        width="100%",
                    ),
                    rx.button(
                        "Rename", id="column-rename-submit", on_click=TableState.rename_column
                    ),
                    width="100%",
                ),
                rx.cond(
                    TableState.column_menu_kind == "enrichment",
                    rx.button(
                        rx.icon("settings-2", size=14),
                        "Edit the config",
                        id="column-edit",
                        variant="soft",
                        on_click=AddColumnState.open_edit,
                    ),
                ),
                rx.hstack(
                    rx.button(
                        rx.icon("arrow-left", size=14),
                        "Move left",
                        id="column-left",
                        variant="soft",
                        on_click=TableState.move_column_by(-1),
                    ),
                    rx.button(
                        "Move right",
                        rx.icon("arrow-right", size=14),
                        id="column-right",
                        variant="soft",
                        on_click=TableState.move_column_by(1),
                    ),
                    rx.spacer(),
                    rx.button(
                        rx.icon("trash-2", size=14),
                        "Delete column",
                        id="column-delete",
                        color_scheme="red",
                        variant="soft",
                        on_click=TableState.ask_delete_column,
                    ),
                    width="100%",
                ),
                rx.cond(
                    TableState.column_confirm_delete,
                    rx.callout(
                        rx.vstack(
                            rx.text(
                                rx.cond(
                                    TableState.column_values == 0,
                                    "It holds no values.",
                                    f"{TableState.column_values} value(s) will be lost.",
                                ),
                                " Delete it?",
                                id="column-delete-text",
                            ),
                            rx.button(
                                "Delete column",
                                id="column-delete-confirm",
                                color_scheme="red",
                                size="1",
                                on_click=TableState.delete_column,
                            ),
                        ),
                        icon="triangle_alert",
                        color_scheme="red",
                    ),
                ),
                callout_when(TableState.column_error, id="column-menu-error"),
                rx.hstack(
                    rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")),
                    justify="end",
                    width="100%",
                ),
                spacing="3",
                width="100%",
            ),
        ),
        open=TableState.column_menu >= 0,
        on_open_change=TableState.close_column_menu,
    )


def shortcuts_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Keyboard shortcuts"),
            rx.table.root(
                rx.table.body(
                    *[
                        rx.table.row(rx.table.cell(rx.code(keys)), rx.table.cell(what))
                        for keys, what in SHORTCUTS
                    ]
                ),
                id="shortcuts",
            ),
            rx.hstack(
                rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")),
                justify="end",
                margin_top="12px",
            ),
        ),
        open=TableState.shortcuts_open,
        on_open_change=TableState.toggle_shortcuts,
    )


def empty_state() -> rx.Component:
    """What to do next: rows to add, or a column never run."""
    return rx.cond(
        TableState.row_count == 0,
        rx.text(
            "This table has no rows yet. Add a row or paste from a spreadsheet "
            "(select the first cell and press Ctrl+V).",
            id="empty-rows",
            size="2",
            color_scheme="blue",
        ),
        rx.cond(
            TableState.never_run_column != "",
            rx.text(
                f"Select cells in {TableState.never_run_column} and press Run (or Ctrl+Enter).",
                id="never-run",
                size="2",
                color_scheme="blue",
            ),
        ),
    )
