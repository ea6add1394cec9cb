"""The add-enrichment-column dialog: pick an enricher, name the column, edit its JSON config."""

from __future__ import annotations

import reflex as rx

from enrichment_app.components.layout import callout_when
from enrichment_app.state.add_column import AddColumnState


def add_column_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.button(
                rx.icon("plus", size=14),
                "Add enrichment column",
                variant="soft",
                id="add-column-button",
            )
        ),
        rx.dialog.content(
            rx.dialog.title("Add an enrichment column"),
            rx.vstack(
                rx.text("Column name", size="2", weight="bold"),
                rx.input(
                    value=AddColumnState.name,
                    on_change=AddColumnState.name_changed,
                    id="column-name",
                    width="100%",
                ),
                rx.text("Enricher", size="2", weight="bold"),
                rx.select.root(
                    rx.select.trigger(id="column-enricher", width="100%"),
                    rx.select.content(
                        rx.foreach(
                            AddColumnState.enrichers,
                            lambda e: rx.select.item(e["label"], value=e["name"]),
                        )
                    ),
                    value=AddColumnState.enricher,
                    on_change=AddColumnState.choose_enricher,
                ),
                rx.text(AddColumnState.description, size="2", color_scheme="gray"),
                rx.text("Config (JSON)", size="2", weight="bold"),
                rx.text_area(
                    value=AddColumnState.config_text,
                    on_change=AddColumnState.config_changed,
                    id="column-config",
                    rows="8",
                    width="100%",
                    font_family="monospace",
                ),
                callout_when(AddColumnState.error, id="column-error"),
                rx.hstack(
                    rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")),
                    rx.button("Add column", on_click=AddColumnState.submit, id="column-submit"),
                    justify="end",
                    width="100%",
                ),
                spacing="2",
                width="100%",
            ),
        ),
        open=AddColumnState.open,
        on_open_change=AddColumnState.open_changed,
    )
