"""Workspaces, their members and invitations. Callers authorize first (``services/access``).

An invitation is a link an admin copies (there is no mail server): its code is 256 random
bits, stored as a keyed digest, used once, expiring after ``INVITATION_DAYS``, and it carries
the role it grants (never above the inviter's own). Accepting it signs in an existing account
(password or SSO) or creates one, and adds the membership, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from enrichment_app.db.models import (
    ApiToken,
    DataTable,
    Invitation,
    Membership,
    User,
    Workspace,
)
from enrichment_app.errors import AccessDenied, InvalidInputError, NotFoundError
from enrichment_app.keyring import SecretBox
from enrichment_app.services.access import Role
from enrichment_app.services.accounts import (
    check_password,
    clean_name,
    hash_password,
    normalise_email,
)
from enrichment_app.services.sessions import new_secret

MAX_WORKSPACE_NAME = 100


@dataclass(frozen=True, slots=True)
class WorkspaceSummary:
    id: int
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class MemberView:
    user_id: int
    email: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class InvitationView:
    id: int
    role: str
    note: str
    expires_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class InvitationInfo:
    """What the invitation page shows before accepting."""

    workspace_id: int
    workspace: str
    role: str
    invited_by: str


def _clean_workspace_name(name: str) -> str:
    cleaned = " ".join(name.replace("\x00", "").split())
    if not cleaned:
        raise InvalidInputError("Give the workspace a name.")
    if len(cleaned) > MAX_WORKSPACE_NAME:
        raise InvalidInputError(f"A workspace name has at most {MAX_WORKSPACE_NAME} characters.")
    return cleaned


# --- workspaces ----------------------------------------------------------------------------


def workspaces_of(session: Session, *, user_id: int) -> list[WorkspaceSummary]:
    rows = session.exec(
        select(Workspace.id, Workspace.name, Membership.role)
        .join(Membership, col(Membership.workspace_id) == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(col(Workspace.name), col(Workspace.id))
    ).all()
    return [WorkspaceSummary(int(i or 0), n, r) for i, n, r in rows]


def current_workspace(session: Session, *, user_id: int) -> WorkspaceSummary | None:
    """The user's chosen workspace if still a member there, else the first one they are in."""
    mine = workspaces_of(session, user_id=user_id)
    user = session.get(User, user_id)
    chosen = user.current_workspace_id if user else None
    return next((w for w in mine if w.id == chosen), mine[0] if mine else None)


def choose_workspace(session: Session, *, user_id: int, workspace_id: int) -> None:
    """Remember the workspace the page opens in (the caller checked membership)."""
    session.execute(
        sa.update(User).where(col(User.id) == user_id).values(current_workspace_id=workspace_id)
    )


def create_workspace(session: Session, *, user_id: int, name: str) -> Workspace:
    user = session.get(User, user_id)
    if user is None or not user.is_admin:
        raise AccessDenied("Only the app's administrator may create workspaces.")
    workspace = Workspace(name=_clean_workspace_name(name))
    session.add(workspace)
    session.flush()
    assert workspace.id is not None
    session.add(Membership(workspace_id=workspace.id, user_id=user_id, role=Role.OWNER.value))
    return workspace


def rename_workspace(session: Session, *, workspace_id: int, name: str) -> Workspace:
    workspace = get_workspace(session, workspace_id=workspace_id)
    workspace.name = _clean_workspace_name(name)
    session.add(workspace)
    return workspace


def get_workspace(session: Session, *, workspace_id: int) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFoundError(f"Workspace {workspace_id} does not exist.")
    return workspace


def set_daily_cap(session: Session, *, workspace_id: int, cap: int | None, ceiling: int) -> None:
    """The workspace's own cells-per-day cap (None: the app-wide one), at most ``ceiling``."""
    if cap is not None and not 0 < cap <= ceiling:
        raise InvalidInputError(
            f"The daily cap must be between 1 and {ceiling} cells (the app-wide cap)."
        )
    workspace = get_workspace(session, workspace_id=workspace_id)
    workspace.max_cells_per_day = cap
    session.add(workspace)


def table_count(session: Session, *, workspace_id: int) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(DataTable)
            .where(DataTable.workspace_id == workspace_id)
        ).one()
    )


# --- members -------------------------------------------------------------------------------


def members(session: Session, *, workspace_id: int) -> list[MemberView]:
    rows = session.exec(
        select(User.id, User.email, User.name, Membership.role)
        .join(Membership, col(Membership.user_id) == User.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(col(User.email))
    ).all()
    return [MemberView(int(i or 0), e, n, r) for i, e, n, r in rows]


def _membership(session: Session, workspace_id: int, user_id: int) -> Membership:
    row = session.exec(
        select(Membership).where(
            Membership.workspace_id == workspace_id, Membership.user_id == user_id
        )
    ).first()
    if row is None:
        raise NotFoundError("That person is not a member of this workspace.")
    return row


def _owners(session: Session, workspace_id: int) -> int:
    return int(
        session.exec(
            select(func.count()).where(
                Membership.workspace_id == workspace_id, Membership.role == Role.OWNER.value
            )
        ).one()
    )


def change_role(
    session: Session, *, workspace_id: int, user_id: int, role: Role, by_role: Role
) -> Membership:
    """Set a member's role. Only owners touch owners; the last owner stays an owner."""
    row = _membership(session, workspace_id, user_id)
    current = Role(row.role)
    if (role is Role.OWNER or current is Role.OWNER) and by_role is not Role.OWNER:
        raise AccessDenied("Only an owner may make someone an owner, or change an owner's role.")
    if current is Role.OWNER and role is not Role.OWNER and _owners(session, workspace_id) <= 1:
        raise InvalidInputError("A workspace needs an owner: make someone else owner first.")
    row.role = role.value
    session.add(row)
    _shrink_tokens(session, workspace_id=workspace_id, user_id=user_id, role=role)
    return row


def remove_member(
    session: Session, *, workspace_id: int, user_id: int, by_role: Role, now: datetime
) -> str:
    """Remove a member (their tokens for this workspace are revoked); returns their email."""
    row = _membership(session, workspace_id, user_id)
    if Role(row.role) is Role.OWNER:
        if by_role is not Role.OWNER:
            raise AccessDenied("Only an owner may remove an owner.")
        if _owners(session, workspace_id) <= 1:
            raise InvalidInputError("A workspace needs an owner: make someone else owner first.")
    user = session.get(User, user_id)
    session.delete(row)
    session.execute(
        sa.update(ApiToken)
        .where(
            col(ApiToken.user_id) == user_id,
            col(ApiToken.workspace_id) == workspace_id,
            col(ApiToken.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )
    return user.email if user else str(user_id)


def _shrink_tokens(session: Session, *, workspace_id: int, user_id: int, role: Role) -> None:
    """A demoted member's tokens for the workspace keep at most the new role."""
    for token in session.exec(
        select(ApiToken).where(ApiToken.workspace_id == workspace_id, ApiToken.user_id == user_id)
    ).all():
        if not Role(token.role).at_least(role) or token.role == role.value:
            continue
        token.role = role.value
        session.add(token)


# --- invitations ---------------------------------------------------------------------------


def invite(
    session: Session,
    *,
    box: SecretBox,
    workspace_id: int,
    role: Role,
    by_user_id: int,
    by_role: Role,
    note: str,
    ttl: timedelta,
    now: datetime,
) -> tuple[str, Invitation]:
    """A new invitation; returns its code (shown once, in the link) and the row."""
    if role is Role.OWNER and by_role is not Role.OWNER:
        raise AccessDenied("Only an owner may invite an owner.")
    if not by_role.at_least(role):
        raise AccessDenied(f"You cannot invite someone as {role.value}, above your own role.")
    code = new_secret()
    row = Invitation(
        workspace_id=workspace_id,
        role=role.value,
        code_digest=box.digest(code),
        note=clean_name(note)[:200],
        created_by=by_user_id,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    return code, row


def open_invitations(session: Session, *, workspace_id: int, now: datetime) -> list[InvitationView]:
    rows = session.exec(
        select(Invitation, User.email)
        .join(User, col(User.id) == Invitation.created_by)
        .where(
            Invitation.workspace_id == workspace_id,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
        )
        .order_by(col(Invitation.id))
    ).all()
    return [
        InvitationView(int(i.id or 0), i.role, i.note, _aware(i.expires_at), by)
        for i, by in rows
        if _aware(i.expires_at) > now
    ]


def revoke_invitation(
    session: Session, *, workspace_id: int, invitation_id: int, now: datetime
) -> Invitation:
    row = session.get(Invitation, invitation_id)
    if row is None or row.workspace_id != workspace_id:
        raise NotFoundError(f"Invitation {invitation_id} does not exist.")
    row.revoked_at = now
    session.add(row)
    return row


def _usable_invitation(session: Session, box: SecretBox, code: str, now: datetime) -> Invitation:
    row = session.exec(
        select(Invitation).where(col(Invitation.code_digest).in_(box.digests(code[:100])))
    ).first()
    if row is None or row.revoked_at is not None:
        raise InvalidInputError("This invitation link is not valid: ask an admin for a new one.")
    if row.accepted_at is not None:
        raise InvalidInputError(
            "This invitation was already used: each link works once. Ask an admin for a new one."
        )
    if _aware(row.expires_at) <= now:
        raise InvalidInputError("This invitation has expired: ask an admin for a new link.")
    return row


def invitation_info(
    session: Session, *, box: SecretBox, code: str, now: datetime
) -> InvitationInfo:
    row = _usable_invitation(session, box, code, now)
    workspace = get_workspace(session, workspace_id=row.workspace_id)
    inviter = session.get(User, row.created_by)
    return InvitationInfo(
        workspace_id=row.workspace_id,
        workspace=workspace.name,
        role=row.role,
        invited_by=inviter.email if inviter else "",
    )


def accept_invitation(
    session: Session, *, box: SecretBox, code: str, user_id: int, now: datetime
) -> Invitation:
    """Add ``user_id`` to the invitation's workspace with its role, and use the invitation up.

    Someone already a member keeps the higher of the two roles.
    """
    row = _usable_invitation(session, box, code, now)
    existing = session.exec(
        select(Membership).where(
            Membership.workspace_id == row.workspace_id, Membership.user_id == user_id
        )
    ).first()
    if existing is None:
        session.add(Membership(workspace_id=row.workspace_id, user_id=user_id, role=row.role))
    elif Role(row.role).rank > Role(existing.role).rank:
        existing.role = row.role
        session.add(existing)
    row.accepted_by, row.accepted_at = user_id, now
    session.add(row)
    session.execute(
        sa.update(User).where(col(User.id) == user_id).values(current_workspace_id=row.workspace_id)
    )
    session.flush()
    return row


def create_invited_user(
    session: Session, *, email: str, name: str, password: str, now: datetime
) -> User:
    """A new account for someone accepting an invitation with a password."""
    email = normalise_email(email)
    if session.exec(select(User.id).where(User.email == email)).first() is not None:
        raise InvalidInputError(
            f"There is already an account for {email}: sign in with it to accept the invitation."
        )
    check_password(password, email=email)
    user = User(
        email=email, name=clean_name(name), password_hash=hash_password(password), created_at=now
    )
    session.add(user)
    session.flush()
    return user


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
