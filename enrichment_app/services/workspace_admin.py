"""The workspace settings page's units of work: members and roles, invitations, API tokens.

Each write is recorded in the audit log; the caller commits (``db/sessions.py``). The access
rule has already decided (the ``Grant``); these check only what the rule cannot, such as not
granting a role above one's own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from enrichment_app.domain import utcnow
from enrichment_app.keyring import SecretBox
from enrichment_app.services import api_tokens, audit, workspaces
from enrichment_app.services.access import Action, Grant, Role
from enrichment_app.services.audit import Audited


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def settings_view(session: Session, *, grant: Grant, user_id: int) -> dict[str, Any]:
    """What the settings page shows: members; for admins open invitations and every token,
    for others their own tokens."""
    admin = grant.allows(Action.MANAGE_MEMBERS)
    members = workspaces.members(session, workspace_id=grant.workspace_id)
    invitations = (
        workspaces.open_invitations(session, workspace_id=grant.workspace_id, now=utcnow())
        if admin
        else []
    )
    tokens = api_tokens.tokens_in(
        session, workspace_id=grant.workspace_id, user_id=None if admin else user_id
    )
    workspace = workspaces.get_workspace(session, workspace_id=grant.workspace_id)
    return {
        "workspace": workspace.name,
        "members": [
            {"user_id": str(m.user_id), "email": m.email, "name": m.name, "role": m.role}
            for m in members
        ],
        "invitations": [
            {
                "id": str(i.id),
                "role": i.role,
                "note": i.note,
                "expires": _when(i.expires_at),
                "by": i.created_by,
            }
            for i in invitations
        ],
        "tokens": [
            {
                "id": str(t.id),
                "name": t.name,
                "role": t.role,
                "prefix": t.prefix + "…",
                "owner": t.owner,
                "created": _when(t.created_at),
                "last_used": _when(t.last_used_at),
                "state": "revoked" if t.revoked else "active",
            }
            for t in tokens
        ],
    }


def invite(
    session: Session, *, grant: Grant, box: SecretBox, role: Role, note: str, days: float
) -> str:
    assert grant.actor.user_id is not None
    code, row = workspaces.invite(
        session,
        box=box,
        workspace_id=grant.workspace_id,
        role=role,
        by_user_id=grant.actor.user_id,
        by_role=grant.role,
        note=note,
        ttl=timedelta(days=days),
        now=utcnow(),
    )
    audit.record(
        session,
        actor=grant.actor,
        action=Audited.INVITE,
        workspace_id=grant.workspace_id,
        target_type="invitation",
        target_id=row.id,
        target=row.note or f"invitation {row.id}",
        detail=f"as {role.value}, expires {_when(row.expires_at)}",
    )
    return code


def revoke_invitation(session: Session, *, grant: Grant, invitation_id: int) -> None:
    row = workspaces.revoke_invitation(
        session, workspace_id=grant.workspace_id, invitation_id=invitation_id, now=utcnow()
    )
    audit.record(
        session,
        actor=grant.actor,
        action=Audited.INVITE_REVOKE,
        workspace_id=grant.workspace_id,
        target_type="invitation",
        target_id=row.id,
        target=row.note or f"invitation {row.id}",
    )


def change_role(session: Session, *, grant: Grant, user_id: int, role: Role) -> None:
    before = {m.user_id: m for m in workspaces.members(session, workspace_id=grant.workspace_id)}
    workspaces.change_role(
        session, workspace_id=grant.workspace_id, user_id=user_id, role=role, by_role=grant.role
    )
    member = before.get(user_id)
    audit.record(
        session,
        actor=grant.actor,
        action=Audited.ROLE_CHANGE,
        workspace_id=grant.workspace_id,
        target_type="user",
        target_id=user_id,
        target=member.email if member else str(user_id),
        detail=f"{member.role if member else '?'} → {role.value}",
    )


def remove_member(session: Session, *, grant: Grant, user_id: int) -> None:
    email = workspaces.remove_member(
        session,
        workspace_id=grant.workspace_id,
        user_id=user_id,
        by_role=grant.role,
        now=utcnow(),
    )
    audit.record(
        session,
        actor=grant.actor,
        action=Audited.MEMBER_REMOVE,
        workspace_id=grant.workspace_id,
        target_type="user",
        target_id=user_id,
        target=email,
    )


def create_token(session: Session, *, grant: Grant, box: SecretBox, role: Role, name: str) -> str:
    assert grant.actor.user_id is not None
    token, row = api_tokens.create_token(
        session,
        box=box,
        user_id=grant.actor.user_id,
        workspace_id=grant.workspace_id,
        member_role=grant.role,
        role=role,
        name=name,
        now=utcnow(),
    )
    audit.record(
        session,
        actor=grant.actor,
        action=Audited.TOKEN_CREATE,
        workspace_id=grant.workspace_id,
        target_type="token",
        target_id=row.id,
        target=row.name,
        detail=f"as {role.value}",
    )
    return token


def revoke_token(session: Session, *, grant: Grant, token_id: int) -> None:
    assert grant.actor.user_id is not None
    row = api_tokens.revoke_token(
        session,
        workspace_id=grant.workspace_id,
        token_id=token_id,
        user_id=grant.actor.user_id,
        any_owner=grant.allows(Action.MANAGE_MEMBERS),
        now=utcnow(),
    )
    audit.record(
        session,
        actor=grant.actor,
        action=Audited.TOKEN_REVOKE,
        workspace_id=grant.workspace_id,
        target_type="token",
        target_id=row.id,
        target=row.name,
    )
