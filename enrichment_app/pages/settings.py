"""The workspace settings page: members and roles, invitation links, API tokens."""

from __future__ import annotations

import reflex as rx

from enrichment_app.components.layout import callout_when, page_frame
from enrichment_app.state.account import AccountState
from enrichment_app.state.settings import NEW_SECRET_FIELD, ROLES, SettingsState


def _role_select(name: str, roles: rx.Var, trigger_id: str) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(id=trigger_id),
        rx.select.content(rx.foreach(roles, lambda r: rx.select.item(r, value=r))),
        name=name,
        default_value="viewer",
    )


def member_row(member: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(member["email"]),
        rx.table.cell(member["name"]),
        rx.table.cell(
            rx.cond(
                SettingsState.can_manage,
                rx.select.root(
                    rx.select.trigger(),
                    rx.select.content(*[rx.select.item(r, value=r) for r in ROLES]),
                    value=member["role"],
                    on_change=lambda role: SettingsState.change_role(member["user_id"], role),
                ),
                rx.text(member["role"]),
            )
        ),
        rx.table.cell(
            rx.cond(
                SettingsState.can_manage & (member["email"] != AccountState.email),
                rx.button(
                    "Remove",
                    size="1",
                    color_scheme="red",
                    variant="soft",
                    on_click=SettingsState.remove_member(member["user_id"]),
                ),
            )
        ),
    )


def members_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Members", size="4"),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Email"),
                        rx.table.column_header_cell("Name"),
                        rx.table.column_header_cell("Role"),
                        rx.table.column_header_cell(""),
                    )
                ),
                rx.table.body(rx.foreach(SettingsState.members, member_row)),
                width="100%",
                id="members",
            ),
            rx.cond(SettingsState.can_manage, invitations_section()),
            width="100%",
        ),
        width="100%",
    )


def invitations_section() -> rx.Component:
    return rx.vstack(
        rx.heading("Invite someone", size="3"),
        rx.text(
            "An invitation is a link you copy and send yourself. It works once, for the role"
            " you choose, and expires.",
            size="2",
            color_scheme="gray",
        ),
        rx.form(
            rx.hstack(
                _role_select("role", SettingsState.grantable_roles, "invite-role"),
                rx.input(name="note", placeholder="Who it is for (optional)", id="invite-note"),
                rx.button("Create invitation link", type="submit", id="invite-submit"),
                spacing="2",
            ),
            on_submit=SettingsState.create_invitation,
            reset_on_submit=True,
        ),
        rx.foreach(
            SettingsState.invitations,
            lambda i: rx.hstack(
                rx.badge(i["role"]),
                rx.text(i["note"], size="2"),
                rx.text("expires ", i["expires"], size="1", color_scheme="gray"),
                rx.button(
                    "Revoke",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=SettingsState.revoke_invitation(i["id"]),
                ),
                align="center",
            ),
        ),
        width="100%",
        spacing="2",
    )


def token_row(token: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(token["name"]),
        rx.table.cell(rx.code(token["prefix"])),
        rx.table.cell(token["role"]),
        rx.table.cell(token["owner"]),
        rx.table.cell(token["created"]),
        rx.table.cell(token["last_used"]),
        rx.table.cell(
            rx.cond(
                token["state"] == "active",
                rx.button(
                    "Revoke",
                    size="1",
                    color_scheme="red",
                    variant="soft",
                    on_click=SettingsState.revoke_token(token["id"]),
                ),
                rx.badge("revoked", color_scheme="gray"),
            )
        ),
    )


def tokens_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("API tokens", size="4"),
            rx.text(
                "A token lets a script use the REST API as you, in this workspace, with the role"
                " you give it (at most your own). It is shown once; revoke it when it is no"
                " longer needed.",
                size="2",
                color_scheme="gray",
            ),
            rx.form(
                rx.hstack(
                    rx.input(
                        name="name", placeholder="Token name (e.g. nightly import)", id="token-name"
                    ),
                    _role_select("role", SettingsState.grantable_roles, "token-role"),
                    rx.button("Create token", type="submit", id="token-submit"),
                    spacing="2",
                ),
                on_submit=SettingsState.create_token,
                reset_on_submit=True,
            ),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h)
                            for h in ("Name", "Starts", "Role", "Owner", "Created", "Last used", "")
                        ]
                    )
                ),
                rx.table.body(rx.foreach(SettingsState.tokens, token_row)),
                width="100%",
                id="tokens",
            ),
            width="100%",
        ),
        width="100%",
    )


def new_secret_box() -> rx.Component:
    """Where a new invitation link or token is shown, once (filled by ``rx.set_value``)."""
    return rx.card(
        rx.vstack(
            rx.text(SettingsState.new_secret_label, weight="bold", size="2"),
            rx.hstack(
                rx.input(
                    id=NEW_SECRET_FIELD, read_only=True, width="100%", font_family="monospace"
                ),
                rx.button(
                    rx.icon("copy", size=14),
                    "Copy",
                    on_click=rx.call_script(
                        f"navigator.clipboard.writeText(document.getElementById('{NEW_SECRET_FIELD}').value)"
                    ),
                    variant="soft",
                ),
                rx.button(
                    "Done", on_click=SettingsState.hide_secret, variant="soft", color_scheme="gray"
                ),
                width="100%",
            ),
            width="100%",
        ),
        width="100%",
        display=rx.cond(SettingsState.new_secret_label != "", "block", "none"),
        id="new-secret-card",
    )


def new_workspace_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("New workspace", size="4"),
            rx.text(
                "Each workspace has its own tables and members; nobody sees another's tables.",
                size="2",
                color_scheme="gray",
            ),
            rx.form(
                rx.hstack(
                    rx.input(name="name", placeholder="Workspace name", id="workspace-name"),
                    rx.button("Create workspace", type="submit", id="workspace-submit"),
                ),
                on_submit=AccountState.create_workspace,
                reset_on_submit=True,
            ),
            callout_when(AccountState.new_workspace_error),
        ),
        width="100%",
    )


def settings_page() -> rx.Component:
    return page_frame(
        rx.heading(SettingsState.workspace, " · members and API tokens", size="6"),
        callout_when(SettingsState.access_message, id="access-message"),
        callout_when(SettingsState.error, id="settings-error"),
        callout_when(SettingsState.notice, icon="check", color="green", id="settings-notice"),
        new_secret_box(),
        members_card(),
        tokens_card(),
        rx.cond(AccountState.is_admin, new_workspace_card()),
    )
