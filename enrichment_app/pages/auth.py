"""The pages a signed-out browser sees: the owner set-up, sign-in, and an invitation.

The password inputs are not bound to any state var: their values leave the browser once, as
the form's submitted data, and are never stored in state.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from enrichment_app import routes
from enrichment_app.components.layout import callout_when, public_frame
from enrichment_app.state.auth import AuthState


def _field(label: str, name: str, kind: str = "text", **props: object) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="bold"),
        rx.input(name=name, type=kind, id=f"{name.replace('_', '-')}", width="100%", **props),
        spacing="1",
        width="100%",
    )


def _card(*children: rx.Component) -> rx.Component:
    return rx.center(
        rx.card(rx.vstack(*children, spacing="4", width="100%"), width="420px"),
        width="100%",
        padding_top="32px",
    )


def _password_fields() -> rx.Component:
    return rx.fragment(
        _field("Password", "password", "password", auto_complete="new-password", required=True),
        _field(
            "Password again",
            "password_again",
            "password",
            auto_complete="new-password",
            required=True,
        ),
        rx.text(AuthState.password_rule, size="1", color_scheme="gray", id="password-rule"),
    )


def _sso_button(label: str) -> rx.Component:
    return rx.cond(
        AuthState.oidc_enabled,
        rx.button(
            label,
            " ",
            AuthState.oidc_label,
            on_click=AuthState.start_sso,
            variant="outline",
            width="100%",
            type="button",
            id="sso-button",
        ),
    )


def _new_account_form(submit: str, submit_id: str, on_submit: Any) -> rx.Component:
    """Email, name and a password typed twice: the owner set-up and joining by invitation."""
    return rx.form(
        rx.vstack(
            _field("Email", "email", "email", auto_complete="username", required=True),
            _field("Name", "name", auto_complete="name"),
            _password_fields(),
            callout_when(AuthState.error, id="auth-error", width="100%"),
            rx.button(submit, type="submit", loading=AuthState.busy, width="100%", id=submit_id),
            spacing="3",
            width="100%",
        ),
        on_submit=on_submit,
        reset_on_submit=False,
        width="100%",
    )


def setup_page() -> rx.Component:
    return public_frame(
        _card(
            rx.heading("Set up enrichment_app", size="5"),
            rx.text(
                "Create the owner account. It owns the default workspace (and the demo table)"
                " and can invite the rest of the team.",
                size="2",
                color_scheme="gray",
            ),
            _new_account_form("Create the owner account", "setup-submit", AuthState.create_owner),
        )
    )


def sign_in_page() -> rx.Component:
    return public_frame(
        _card(
            rx.heading("Sign in", size="5"),
            rx.form(
                rx.vstack(
                    _field("Email", "email", "email", auto_complete="username", required=True),
                    _field(
                        "Password",
                        "password",
                        "password",
                        auto_complete="current-password",
                        required=True,
                    ),
                    callout_when(AuthState.error, id="auth-error", width="100%"),
                    rx.button(
                        "Sign in",
                        type="submit",
                        loading=AuthState.busy,
                        width="100%",
                        id="sign-in-submit",
                    ),
                    spacing="3",
                    width="100%",
                ),
                on_submit=AuthState.sign_in,
                reset_on_submit=False,
                width="100%",
            ),
            _sso_button("Sign in with"),
            rx.text(
                "No account? Ask an admin of your team's workspace for an invitation link.",
                size="1",
                color_scheme="gray",
            ),
        )
    )


def invitation_page() -> rx.Component:
    accept_signed_in = rx.vstack(
        rx.text("Signed in as ", rx.text.strong(AuthState.signed_in_as), size="2"),
        callout_when(AuthState.error, id="auth-error", width="100%"),
        rx.button(
            "Join the workspace",
            on_click=AuthState.accept_invitation,
            width="100%",
            id="accept-invitation",
        ),
        width="100%",
    )
    create_account = rx.vstack(
        rx.text("New here? Create your account:", size="2", weight="bold"),
        _new_account_form("Create my account and join", "join-submit", AuthState.join),
        _sso_button("Join with"),
        rx.text(
            "Already have an account? ",
            rx.link(
                "Sign in first",
                href=routes.SIGN_IN + "?next=" + AuthState.router.url.path,
                id="sign-in-to-accept",
            ),
            ", then open this link again.",
            size="2",
        ),
        width="100%",
        spacing="3",
    )
    return public_frame(
        _card(
            rx.heading("You are invited", size="5"),
            rx.cond(
                AuthState.invitation_error != "",
                callout_when(AuthState.invitation_error, id="invitation-error", width="100%"),
                rx.vstack(
                    rx.text(
                        AuthState.invitation_by,
                        " invites you to the workspace ",
                        rx.text.strong(AuthState.invitation_workspace, id="invitation-workspace"),
                        " as ",
                        rx.text.strong(AuthState.invitation_role, id="invitation-role"),
                        ".",
                        size="2",
                    ),
                    rx.cond(AuthState.signed_in_as != "", accept_signed_in, create_account),
                    width="100%",
                    spacing="3",
                ),
            ),
        )
    )
