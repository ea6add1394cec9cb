"""The filter bar above the grid: add a condition, the sort, the search, clear, Run the view.

Native form controls (``select``, ``input``, ``button``), so Tab, arrows and Enter work as in
any form: Enter in the value box adds the condition.
"""

from __future__ import annotations

import reflex as rx

from enrichment_app.components.layout import callout_when
from enrichment_app.state.table import TableJobState, TableState
from enrichment_app.state.table.viewing import OPERATORS, STATUS_CHOICES

SEARCH_DEBOUNCE_MS = 300

_CONTROL = {
    "height": "32px",
    "border": "1px solid var(--gray-7)",
    "border_radius": "6px",
    "padding": "0 8px",
    "background": "var(--color-panel-solid)",
    "font_size": "14px",
}


def _option(value: str, label: str) -> rx.Component:
    return rx.el.option(label, value=value)


def condition_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.el.select(
                rx.foreach(TableState.column_choices, lambda c: _option(c["id"], c["name"])),
                name="column",
                id="filter-column",
                aria_label="Column to filter on",
                **_CONTROL,
            ),
            rx.el.select(
                *[_option(o["value"], o["label"]) for o in OPERATORS],
                *[_option(f"status:{s}", f"status is {s}") for s in STATUS_CHOICES],
                name="op",
                id="filter-op",
                default_value="contains",
                aria_label="Filter operator",
                **_CONTROL,
            ),
            rx.el.input(
                name="value",
                id="filter-value",
                placeholder="value",
                aria_label="Filter value",
                width="160px",
                **_CONTROL,
            ),
            rx.button(rx.icon("filter", size=14), "Add filter", id="filter-add", size="2"),
            spacing="2",
            align="center",
        ),
        on_submit=TableState.add_condition,
        reset_on_submit=False,
        id="filter-form",
    )


def condition_chips() -> rx.Component:
    return rx.hstack(
        rx.foreach(
            TableState.view_chips,
            lambda chip, i: rx.badge(
                rx.text(chip["text"]),
                rx.el.button(
                    "×",
                    on_click=TableState.remove_condition(i),
                    aria_label="Remove this filter",
                    class_name="filter-remove",
                    style={"background": "none", "border": "none", "cursor": "pointer"},
                ),
                class_name="filter-chip",
                variant="soft",
                size="2",
            ),
        ),
        spacing="2",
        wrap="wrap",
        id="filter-chips",
    )


def run_view_controls() -> rx.Component:
    return rx.cond(
        TableState.view_filtered
        & TableState.can_run
        & (TableState.enrichment_choices.length() > 0),
        rx.hstack(
            rx.el.select(
                rx.foreach(TableState.enrichment_choices, lambda c: _option(c["id"], c["name"])),
                value=TableState.run_view_target,
                on_change=TableState.choose_run_column,
                id="run-view-column",
                aria_label="Column to run for the rows shown",
                **_CONTROL,
            ),
            rx.button(
                rx.icon("play", size=14),
                TableState.run_view_label,
                id="run-view-button",
                on_click=TableJobState.run_view,
                disabled=TableJobState.status.active | (TableState.row_count == 0),
                size="2",
                variant="soft",
            ),
            spacing="2",
            align="center",
        ),
    )


def filter_bar() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            condition_form(),
            rx.el.select(
                rx.foreach(TableState.sort_choices, lambda c: _option(c["value"], c["label"])),
                value=TableState.sort_choice,
                on_change=TableState.sort_changed,
                id="sort-picker",
                aria_label="Sort rows by",
                **_CONTROL,
            ),
            rx.debounce_input(
                rx.input(
                    value=TableState.search_text,
                    on_change=TableState.search_changed,
                    placeholder="Search all text",
                    id="search-box",
                    aria_label="Search all text",
                    width="200px",
                ),
                debounce_timeout=SEARCH_DEBOUNCE_MS,
            ),
            rx.cond(
                TableState.view_active,
                rx.button(
                    "Clear filters",
                    id="clear-view",
                    on_click=TableState.clear_view,
                    variant="ghost",
                    size="2",
                ),
            ),
            rx.spacer(),
            run_view_controls(),
            width="100%",
            align="center",
            spacing="3",
            wrap="wrap",
        ),
        condition_chips(),
        callout_when(TableState.view_notice, icon="info", color="amber", id="view-notice"),
        width="100%",
        spacing="2",
    )
