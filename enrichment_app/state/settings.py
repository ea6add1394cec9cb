"""The workspace's settings page: members and their roles, invitation links, API tokens.

A new invitation link or API token is shown once: it is put straight into a read-only field
of the page (``rx.set_value``), never into a state var, so it is not kept in the tab's state
(nor in Redis) and not sent again.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import workspace_admin
from enrichment_app.services.access import Action, Role
from enrichment_app.state.access import (
    Guarded,
    current_grant,
    current_principal,
    current_workspace,
    guard,
)
from enrichment_app.state.auth import page_origin

ROLES = [r.value for r in Role]
NEW_SECRET_FIELD = "new-secret"
"""The read-only field a new invitation link or token is shown in, once."""


def _role(value: object) -> Role:
    return Role.parse(str(value)[:20])


def _int(value: object) -> int:
    try:
        return int(str(value)[:20])
    except ValueError:
        return 0


class SettingsState(Guarded, rx.State):
    """Members, invitations and tokens of the current workspace."""

    workspace: str = ""
    members: list[dict[str, str]] = []
    invitations: list[dict[str, str]] = []
    tokens: list[dict[str, str]] = []
    can_manage: bool = False
    my_role: str = ""
    error: str = ""
    notice: str = ""
    new_secret_label: str = ""
    """What the read-only field shows once ("Invitation link", "API token"); "" hides it."""

    @rx.var
    def grantable_roles(self) -> list[str]:
        """The roles this member may give (to an invitation or a token): up to their own."""
        if not self.my_role:
            return []
        return ROLES[: ROLES.index(self.my_role) + 1]

    async def _reload(self) -> None:
        grant = current_grant()
        self.can_manage = grant.allows(Action.MANAGE_MEMBERS)
        self.my_role = grant.role.value
        found = await in_session(
            get_runtime().open_session,
            workspace_admin.settings_view,
            grant=grant,
            user_id=current_principal().user_id,
        )
        self.workspace = found["workspace"]
        self.members, self.invitations = found["members"], found["invitations"]
        self.tokens = found["tokens"]

    async def _write(self, work: Any, notice: str, **kwargs: Any) -> Any:
        """Run ``work`` as one unit of work; say what happened, or why not."""
        self.error = self.notice = ""
        runtime = get_runtime()
        try:
            result = await in_transaction(
                runtime.open_session, work, grant=current_grant(), **kwargs
            )
        except EnrichmentAppError as exc:
            self.error = exc.message
            return None
        self.notice = notice
        await self._reload()
        return result if result is not None else True

    @rx.event
    @guard(Action.VIEW, target=current_workspace)
    async def load(self):
        self.error = self.notice = self.new_secret_label = ""
        await self._reload()

    # --- members and invitations (admins) ---------------------------------------------

    @rx.event
    @guard(Action.MANAGE_MEMBERS, target=current_workspace)
    async def create_invitation(self, form: dict[str, Any]):
        runtime = get_runtime()
        try:
            role = _role(form.get("role", Role.VIEWER.value))
        except EnrichmentAppError as exc:
            self.error = exc.message
            return None
        code = await self._write(
            workspace_admin.invite,
            "Invitation created: copy the link now, it is shown only once.",
            box=runtime.secret_box,
            role=role,
            note=str(form.get("note", ""))[:200],
            days=runtime.settings.invitation_days,
        )
        if not code:
            return None
        self.new_secret_label = f"Invitation link ({role.value}, works once)"
        return rx.set_value(NEW_SECRET_FIELD, f"{page_origin(self)}/invite/{code}")

    @rx.event
    @guard(Action.MANAGE_MEMBERS, target=current_workspace)
    async def revoke_invitation(self, invitation_id: str):
        await self._write(
            workspace_admin.revoke_invitation,
            "Invitation revoked.",
            invitation_id=_int(invitation_id),
        )

    @rx.event
    @guard(Action.MANAGE_MEMBERS, target=current_workspace)
    async def change_role(self, user_id: str, role: str):
        try:
            new_role = _role(role)
        except EnrichmentAppError as exc:
            self.error = exc.message
            return
        await self._write(
            workspace_admin.change_role, "Role changed.", user_id=_int(user_id), role=new_role
        )

    @rx.event
    @guard(Action.MANAGE_MEMBERS, target=current_workspace)
    async def remove_member(self, user_id: str):
        await self._write(workspace_admin.remove_member, "Member removed.", user_id=_int(user_id))

    # --- API tokens (every member, up to their own role) ------------------------------

    @rx.event
    @guard(Action.VIEW, target=current_workspace)
    async def create_token(self, form: dict[str, Any]):
        try:
            role = _role(form.get("role", Role.VIEWER.value))
        except EnrichmentAppError as exc:
            self.error = exc.message
            return None
        token = await self._write(
            workspace_admin.create_token,
            "Token created: copy it now, it is shown only once.",
            box=get_runtime().secret_box,
            role=role,
            name=str(form.get("name", ""))[:200],
        )
        if not token:
            return None
        self.new_secret_label = f"API token ({role.value})"
        return rx.set_value(NEW_SECRET_FIELD, token)

    @rx.event
    @guard(Action.VIEW, target=current_workspace)
    async def revoke_token(self, token_id: str):
        """Revoke a token: one's own, or anyone's in the workspace for an admin."""
        await self._write(workspace_admin.revoke_token, "Token revoked.", token_id=_int(token_id))

    @rx.event
    @guard(Action.VIEW, target=current_workspace)
    def hide_secret(self):
        self.new_secret_label = ""
        return rx.set_value(NEW_SECRET_FIELD, "")
