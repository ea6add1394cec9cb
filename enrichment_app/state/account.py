"""Who is signed in, for the header: their email, their workspaces and the switcher.

These vars are for showing; nothing is decided on them (every handler asks the access rule
again, ``state/access.py``).
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from sqlmodel import Session

from enrichment_app import routes
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import accounts, audit, workspaces
from enrichment_app.services.access import Action, Actor, Grant, Role
from enrichment_app.services.audit import Audited
from enrichment_app.state.access import (
    Guarded,
    current_grant,
    current_principal,
    current_workspace,
    guard,
    signed_in,
    workspace_argument,
)


def _account(session: Session, *, user_id: int) -> dict[str, Any]:
    user = accounts.get_user(session, user_id=user_id)
    mine = workspaces.workspaces_of(session, user_id=user_id)
    current = workspaces.current_workspace(session, user_id=user_id)
    return {
        "email": user.email if user else "",
        "name": user.name if user else "",
        "is_admin": bool(user and user.is_admin),
        "workspaces": [{"id": str(w.id), "name": w.name, "role": w.role} for w in mine],
        "current": current,
    }


def _create_workspace(session: Session, *, user_id: int, email: str, name: str) -> int:
    workspace = workspaces.create_workspace(session, user_id=user_id, name=name)
    assert workspace.id is not None
    workspaces.choose_workspace(session, user_id=user_id, workspace_id=workspace.id)
    audit.record(
        session,
        actor=Actor(user_id, email),
        action=Audited.WORKSPACE_CREATE,
        workspace_id=workspace.id,
        target_type="workspace",
        target_id=workspace.id,
        target=workspace.name,
    )
    return workspace.id


def _choose(session: Session, *, grant: Grant, user_id: int) -> None:
    workspaces.choose_workspace(session, user_id=user_id, workspace_id=grant.workspace_id)


class AccountState(Guarded, rx.State):
    """The signed-in user and their workspaces (the header's menu and switcher)."""

    email: str = ""
    name: str = ""
    is_admin: bool = False
    workspace_id: str = ""
    workspace_name: str = ""
    role: str = ""
    workspaces: list[dict[str, str]] = []
    new_workspace_error: str = ""

    @rx.var
    def can_manage(self) -> bool:
        """Whether the role here opens the workspace's settings for members and the audit log."""
        return self.role in (Role.ADMIN.value, Role.OWNER.value)

    @rx.var
    def display_name(self) -> str:
        return self.name or self.email

    @rx.event
    @signed_in
    async def load(self):
        """Every signed-in page loads this: who is signed in, and where."""
        principal = current_principal()
        found = await in_session(get_runtime().open_session, _account, user_id=principal.user_id)
        self.email, self.name, self.is_admin = found["email"], found["name"], found["is_admin"]
        self.workspaces = found["workspaces"]
        current = found["current"]
        self.workspace_id = str(current.id) if current else ""
        self.workspace_name = current.name if current else ""
        self.role = current.role if current else ""

    @rx.event
    @guard(Action.VIEW, target=workspace_argument("workspace_id"))
    async def switch_workspace(self, workspace_id: str):  # noqa: ARG002 (the guard's target)
        """Open another of the user's workspaces (its tables page)."""
        await in_transaction(
            get_runtime().open_session,
            _choose,
            grant=current_grant(),
            user_id=current_principal().user_id,
        )
        return rx.redirect(routes.TABLES)

    @rx.event
    @guard(Action.VIEW, target=current_workspace)
    async def create_workspace(self, form: dict[str, Any]):
        """A new workspace, owned by its creator (the app's administrator only)."""
        principal = current_principal()
        name = str(form.get("name", ""))[:500] if isinstance(form, dict) else ""
        try:
            await in_transaction(
                get_runtime().open_session,
                _create_workspace,
                user_id=principal.user_id,
                email=principal.email,
                name=name,
            )
        except EnrichmentAppError as exc:  # a bad name, or not the app's administrator
            self.new_workspace_error = exc.message
            return None
        self.new_workspace_error = ""
        return rx.redirect(routes.TABLES)
