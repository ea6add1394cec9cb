"""The add-enrichment-column dialog: pick an enricher, name the column, edit its JSON config."""

from __future__ import annotations

import reflex as rx

from enrichment_app.components.layout import callout_when
from enrichment_app.state.add_column import AddColumnState


def _column_picker(field: rx.Var) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(width="100%", id="field-" + field["key"].to(str)),
        rx.select.content(
            rx.foreach(AddColumnState.table_columns, lambda c: rx.select.item(c, value=c))
        ),
        value=field["value"].to(str),
        on_change=lambda v: AddColumnState.field_changed(field["key"].to(str), v),
    )


def _template_input(field: rx.Var) -> rx.Component:
    """A template's text, with the table's columns to insert as ``{column}``."""
    return rx.vstack(
        rx.text_area(
            value=field["value"].to(str),
            on_change=lambda v: AddColumnState.field_changed(field["key"].to(str), v),
            id="field-" + field["key"].to(str),
            rows="2",
            width="100%",
        ),
        rx.flex(
            rx.text("Insert:", size="1", color_scheme="gray"),
            rx.foreach(
                AddColumnState.table_columns,
                lambda c: rx.badge(
                    "{" + c + "}",
                    variant="surface",
                    cursor="pointer",
                    class_name="insert-column",
                    on_click=AddColumnState.insert_column(field["key"].to(str), c),
                ),
            ),
            gap="1",
            wrap="wrap",
            align="center",
        ),
        spacing="1",
        width="100%",
    )


def _text_input(field: rx.Var) -> rx.Component:
    return rx.input(
        value=field["value"].to(str),
        on_change=lambda v: AddColumnState.field_changed(field["key"].to(str), v),
        id="field-" + field["key"].to(str),
        placeholder=field["placeholder"].to(str),
        type=rx.cond(field["kind"] == "secret", "password", "text"),
        width="100%",
    )


def _form_field(field: rx.Var) -> rx.Component:
    kind = field["kind"]
    return rx.vstack(
        rx.text(field["label"].to(str), size="2", weight="bold"),
        rx.match(
            kind,
            ("column", _column_picker(field)),
            ("template", _template_input(field)),
            _text_input(field),
        ),
        rx.cond(field["help"] != "", rx.text(field["help"].to(str), size="1", color_scheme="gray")),
        spacing="1",
        width="100%",
    )


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
            rx.dialog.title(
                rx.cond(AddColumnState.editing > 0, "Edit the column", "Add an enrichment column")
            ),
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
                rx.vstack(
                    rx.foreach(AddColumnState.form_fields, _form_field),
                    id="column-form",
                    spacing="3",
                    width="100%",
                ),
                rx.button(
                    rx.cond(AddColumnState.json_view, "Hide the JSON", "Edit as JSON"),
                    variant="ghost",
                    size="1",
                    id="column-json-toggle",
                    on_click=AddColumnState.toggle_json,
                ),
                rx.cond(
                    AddColumnState.json_view | (AddColumnState.form_fields.length() == 0),
                    rx.vstack(
                        rx.text("Config (JSON)", size="2", weight="bold"),
                        rx.text_area(
                            value=AddColumnState.config_text,
                            on_change=AddColumnState.config_changed,
                            id="column-config",
                            rows="8",
                            width="100%",
                            font_family="monospace",
                        ),
                        width="100%",
                    ),
                ),
                callout_when(AddColumnState.error, id="column-error"),
                rx.hstack(
                    rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")),
                    rx.button(
                        rx.cond(AddColumnState.editing > 0, "Save column", "Add column"),
                        on_click=AddColumnState.submit,
                        id="column-submit",
                    ),
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
