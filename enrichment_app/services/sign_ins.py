"""The sign-in flows as units of work: owner set-up, password sign-in, joining by invitation,
signing out. Each records itself in the audit log; the caller commits (``db/sessions.py``).

The Reflex page (``state/auth.py``) calls these on a worker thread; a sign-in returns the
session's one-time ticket, which the browser redeems at ``/auth/session`` for the cookie.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from enrichment_app.domain import utcnow
from enrichment_app.keyring import SecretBox
from enrichment_app.services import accounts, audit, sessions, workspaces
from enrichment_app.services.access import Actor
from enrichment_app.services.audit import Audited
from enrichment_app.services.sessions import SessionPolicy


def _start_session(
    session: Session,
    *,
    box: SecretBox,
    policy: SessionPolicy,
    user_id: int,
    email: str,
    return_to: str,
    ip: str,
    user_agent: str,
    detail: str,
) -> str:
    now = utcnow()
    ticket = sessions.start(
        session,
        box=box,
        user_id=user_id,
        method="password",
        return_to=return_to,
        policy=policy,
        now=now,
        ip=ip,
        user_agent=user_agent,
    )
    audit.record(
        session,
        actor=Actor(user_id, email),
        action=Audited.SIGN_IN,
        workspace_id=None,
        detail=detail,
        now=now,
    )
    return ticket


def set_up_owner(session: Session, *, email: str, name: str, password: str, **kw: Any) -> str:
    """Create the first account (the owner) and start its session; the one-time ticket."""
    user = accounts.create_owner(session, email=email, name=name, password=password, now=utcnow())
    assert user.id is not None
    audit.record(
        session,
        actor=Actor(user.id, user.email),
        action=Audited.OWNER_SETUP,
        workspace_id=user.current_workspace_id,
        target_type="user",
        target_id=user.id,
        target=user.email,
    )
    return _start_session(session, user_id=user.id, email=user.email, detail="owner set-up", **kw)


def sign_in_with_password(
    session: Session, *, email: str, password: str, failure_limit: int, **kw: Any
) -> str:
    """Check the attempts allowed and the password, then start a session; the ticket."""
    now = utcnow()
    accounts.check_attempts(session, email=email, ip=kw["ip"], limit=failure_limit, now=now)
    user = accounts.sign_in(session, email=email, password=password)
    return _start_session(session, user_id=user.user_id, email=user.email, detail="password", **kw)


def record_failure(session: Session, *, email: str, ip: str) -> None:
    accounts.record_failure(session, email=email, ip=ip, now=utcnow())


def join_by_invitation(
    session: Session,
    *,
    code: str,
    email: str,
    name: str,
    password: str,
    **kw: Any,
) -> str:
    """Create an account with an invitation, join its workspace, start a session; the ticket."""
    now = utcnow()
    box: SecretBox = kw["box"]
    workspaces.invitation_info(session, box=box, code=code, now=now)
    user = workspaces.create_invited_user(
        session, email=email, name=name, password=password, now=now
    )
    assert user.id is not None
    invitation = workspaces.accept_invitation(session, box=box, code=code, user_id=user.id, now=now)
    audit.record(
        session,
        actor=Actor(user.id, user.email),
        action=Audited.INVITE_ACCEPT,
        workspace_id=invitation.workspace_id,
        target_type="user",
        target_id=user.id,
        target=user.email,
        detail=f"as {invitation.role} (new account)",
    )
    return _start_session(session, user_id=user.id, email=user.email, detail="new account", **kw)


def accept_invitation(
    session: Session, *, box: SecretBox, code: str, user_id: int, email: str
) -> None:
    """Join the invitation's workspace with an existing account."""
    invitation = workspaces.accept_invitation(
        session, box=box, code=code, user_id=user_id, now=utcnow()
    )
    audit.record(
        session,
        actor=Actor(user_id, email),
        action=Audited.INVITE_ACCEPT,
        workspace_id=invitation.workspace_id,
        target_type="user",
        target_id=user_id,
        target=email,
        detail=f"as {invitation.role}",
    )


def sign_out(
    session: Session, *, session_id: int, user_id: int, email: str, everywhere: bool
) -> None:
    now = utcnow()
    if everywhere:
        count = sessions.revoke_all(session, user_id=user_id, now=now)
        detail = f"{count} session{'s' if count != 1 else ''}"
    else:
        sessions.revoke(session, session_id=session_id, now=now)
        detail = ""
    audit.record(
        session,
        actor=Actor(user_id, email),
        action=Audited.SIGN_OUT_EVERYWHERE if everywhere else Audited.SIGN_OUT,
        workspace_id=None,
        detail=detail,
        now=now,
    )
