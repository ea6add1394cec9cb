"""The audit log page (admins)."""

from __future__ import annotations

import reflex as rx

from enrichment_app.components.layout import callout_when, page_frame
from enrichment_app.state.audit import AuditState


def _filter(
    name: str, label: str, items: rx.Var, value: rx.Var, key: str, text: str
) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(placeholder=label, id=f"audit-{name}"),
        rx.select.content(
            rx.select.item(f"All {label.lower()}s", value="all"),
            rx.foreach(items, lambda i: rx.select.item(i[text], value=i[key])),
        ),
        value=rx.cond(value == "", "all", value),
        on_change=lambda v: AuditState.filter_changed(name, v),
    )


def audit_page() -> rx.Component:
    return page_frame(
        rx.heading("Audit log", size="6"),
        callout_when(AuditState.access_message, id="access-message"),
        rx.hstack(
            _filter("table", "Table", AuditState.tables, AuditState.table_filter, "id", "name"),
            _filter("user", "User", AuditState.users, AuditState.user_filter, "id", "email"),
            rx.select.root(
                rx.select.trigger(placeholder="Action", id="audit-action"),
                rx.select.content(
                    rx.select.item("All actions", value="all"),
                    rx.foreach(AuditState.actions, lambda a: rx.select.item(a, value=a)),
                ),
                value=rx.cond(AuditState.action_filter == "", "all", AuditState.action_filter),
                on_change=lambda v: AuditState.filter_changed("action", v),
            ),
            rx.text(AuditState.total, " entries", size="2", color_scheme="gray", id="audit-total"),
            spacing="3",
            align="center",
        ),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[
                        rx.table.column_header_cell(h)
                        for h in ("When (UTC)", "Who", "Action", "What", "Detail")
                    ]
                )
            ),
            rx.table.body(
                rx.foreach(
                    AuditState.events,
                    lambda e: rx.table.row(
                        rx.table.cell(e["at"]),
                        rx.table.cell(e["actor"]),
                        rx.table.cell(rx.code(e["action"])),
                        rx.table.cell(e["target"]),
                        rx.table.cell(e["detail"]),
                    ),
                )
            ),
            width="100%",
            id="audit-events",
        ),
        rx.hstack(
            rx.button(
                "Newer",
                on_click=AuditState.go_to_page(AuditState.page - 1),
                disabled=AuditState.page <= 1,
                variant="soft",
            ),
            rx.text("Page ", AuditState.page, " of ", AuditState.pages, size="2"),
            rx.button(
                "Older",
                on_click=AuditState.go_to_page(AuditState.page + 1),
                disabled=AuditState.page >= AuditState.pages,
                variant="soft",
            ),
            align="center",
        ),
    )
