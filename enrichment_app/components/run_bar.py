"""The header of the table page: job status, the Run and Cancel buttons, messages."""

from __future__ import annotations

import reflex as rx

from enrichment_app.components.layout import callout_when
from enrichment_app.state.table import TableJobState, TableState


def status_badge() -> rx.Component:
    return rx.cond(
        TableJobState.status.label != "",
        rx.badge(
            rx.cond(TableJobState.status.active, rx.spinner(size="1"), rx.fragment()),
            rx.text(TableJobState.status.label, id="job-status"),
            color_scheme=TableJobState.status.tone,
            size="3",
            variant="soft",
        ),
    )


def run_bar() -> rx.Component:
    return rx.hstack(
        rx.button(
            rx.icon("play", size=16),
            TableState.run_label,
            id="run-button",
            on_click=TableJobState.run,
            disabled=(TableState.run_count == 0)
            | TableJobState.status.active
            | ~TableState.can_run,
            size="2",
        ),
        rx.cond(
            TableJobState.status.active & TableState.can_run,
            rx.button(
                rx.icon("square", size=14),
                "Cancel",
                id="cancel-button",
                on_click=TableJobState.cancel,
                color_scheme="red",
                variant="soft",
                size="2",
            ),
        ),
        status_badge(),
        rx.spacer(),
        rx.cond(
            ~TableState.can_run,
            rx.badge("View only", id="view-only", color_scheme="gray", variant="soft"),
        ),
        rx.tooltip(
            rx.badge(
                TableJobState.mode_label,
                id="mode",
                variant="outline",
                color_scheme=rx.cond(TableJobState.mode_label.contains("polling"), "amber", "gray"),
                custom_attrs={"title": TableJobState.mode_reason},
            ),
            content=TableJobState.mode_reason,
        ),
        width="100%",
        align="center",
        spacing="3",
    )


def messages() -> rx.Component:
    return rx.fragment(
        callout_when(TableState.message, id="message", width="100%"),
        callout_when(TableState.access_message, id="access-message", width="100%"),
        callout_when(
            TableJobState.job_notice, icon="info", color="amber", id="job-notice", width="100%"
        ),
    )
