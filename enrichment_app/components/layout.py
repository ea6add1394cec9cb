"""The page frame shared by every page: the header with the logo (``assets/logo.svg``), the
workspace switcher and the account menu (on signed-in pages)."""

from __future__ import annotations

import reflex as rx

from enrichment_app import routes
from enrichment_app.state.account import AccountState
from enrichment_app.state.auth import AuthState


def callout_when(
    text: rx.Var[str], *, icon: str = "triangle_alert", color: str = "red", **props: object
) -> rx.Component:
    """A callout saying ``text``, shown while it is not empty (red, a warning sign: an error)."""
    return rx.cond(text != "", rx.callout(text, icon=icon, color_scheme=color, **props))


def _logo() -> rx.Component:
    return rx.link(
        rx.hstack(
            rx.image(src="/logo.svg", alt="", width="28px", height="28px", id="logo"),
            rx.heading("Enrichment tables", size="4"),
            align="center",
        ),
        href=routes.TABLES,
        underline="none",
        color_scheme="gray",
        high_contrast=True,
    )


def workspace_switcher() -> rx.Component:
    return rx.select.root(
        rx.select.trigger(id="workspace-switcher", placeholder="Workspace"),
        rx.select.content(
            rx.foreach(
                AccountState.workspaces,
                lambda w: rx.select.item(w["name"], value=w["id"]),
            )
        ),
        value=AccountState.workspace_id,
        on_change=AccountState.switch_workspace,
    )


def account_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.icon("circle-user", size=16),
                rx.text(AccountState.display_name, id="account-name"),
                variant="soft",
                color_scheme="gray",
                id="account-menu",
            )
        ),
        rx.menu.content(
            rx.menu.item(
                rx.text(AccountState.role, " in ", AccountState.workspace_name), disabled=True
            ),
            rx.menu.separator(),
            rx.menu.item("Tables", on_click=rx.redirect(routes.TABLES)),
            rx.menu.item(
                "Members and API tokens", on_click=rx.redirect(routes.SETTINGS), id="menu-settings"
            ),
            rx.cond(
                AccountState.can_manage,
                rx.menu.item("Audit log", on_click=rx.redirect(routes.AUDIT), id="menu-audit"),
            ),
            rx.menu.separator(),
            rx.menu.item("Sign out", on_click=AuthState.sign_out, id="sign-out"),
            rx.menu.item(
                "Sign out everywhere",
                on_click=AuthState.sign_out_everywhere,
                color="red",
                id="sign-out-everywhere",
            ),
        ),
    )


def _frame(header_right: rx.Component, *children: rx.Component) -> rx.Component:
    return rx.box(
        rx.hstack(
            _logo(),
            rx.spacer(),
            header_right,
            padding_x="24px",
            padding_y="12px",
            border_bottom="1px solid var(--gray-4)",
            width="100%",
            align="center",
        ),
        rx.vstack(
            *children,
            padding="24px",
            spacing="4",
            width="100%",
            max_width="1400px",
            margin_x="auto",
        ),
        width="100%",
    )


def page_frame(*children: rx.Component) -> rx.Component:
    """A signed-in page: the header has the workspace switcher and the account menu."""
    return _frame(
        rx.cond(
            AccountState.email != "",
            rx.hstack(workspace_switcher(), account_menu(), spacing="3", align="center"),
        ),
        *children,
    )


def public_frame(*children: rx.Component) -> rx.Component:
    """A page a signed-out browser sees (set-up, sign-in, an invitation): no account menu."""
    return _frame(rx.fragment(), *children)
