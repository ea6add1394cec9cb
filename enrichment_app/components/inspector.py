"""The cell inspector: the selected cell's status, full value and error message."""

from __future__ import annotations

import reflex as rx

from enrichment_app.state.table import TableState


def cell_inspector() -> rx.Component:
    cell = TableState.focused_cell
    return rx.card(
        rx.cond(
            cell.contains("column"),
            rx.vstack(
                rx.hstack(
                    rx.text(cell["column"], weight="bold"),
                    rx.text("row ", cell["row"], color_scheme="gray"),
                    rx.badge(cell["status"], id="inspector-status"),
                    spacing="3",
                    align="center",
                ),
                rx.cond(
                    cell["error"] != "",
                    rx.text(cell["error"], color_scheme="red", id="inspector-error"),
                ),
                rx.text(
                    cell["value"],
                    id="inspector-value",
                    white_space="pre-wrap",
                    word_break="break-word",
                ),
                spacing="2",
                align="start",
                width="100%",
            ),
            rx.text(
                "Select a cell to see its full value, status and any error.", color_scheme="gray"
            ),
        ),
        id="cell-inspector",
        width="100%",
    )
