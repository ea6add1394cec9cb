"""The account tables: users, memberships, sessions, invitations, API tokens, the audit log.

Every secret a browser or a script holds (a session, a sign-in ticket, an invitation code, an API
token, an OIDC state) is stored here only as its keyed digest (``services/digests.py``), never
as itself: whoever reads the database cannot use what they read. (An SSO sign-in under way keeps
its PKCE verifier and nonce for ten minutes; they are useless without the code the provider sends
to the browser.) Passwords are argon2id hashes.
Roles and actions are plain strings (``services/access.py`` gives them their order).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from enrichment_app.domain import utcnow

_DIGEST = 64
"""A hex SHA-256 digest."""


def _when(**kwargs: Any) -> Any:
    return Field(sa_type=sa.DateTime(timezone=True), **kwargs)


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    __table_args__ = (
        sa.UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_user_oidc"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    """Lower-cased; the sign-in name."""
    name: str = Field(default="", max_length=100)
    password_hash: str | None = Field(default=None, max_length=200)
    """argon2id; None for an account that signs in with SSO only."""
    is_admin: bool = False
    """The app's administrator (the owner set up on first run): may create workspaces."""
    current_workspace_id: int | None = None
    """The workspace the page opens in (the switcher's choice)."""
    oidc_issuer: str | None = Field(default=None, max_length=500)
    oidc_subject: str | None = Field(default=None, max_length=255)
    created_at: datetime = _when(default_factory=utcnow)


class Membership(SQLModel, table=True):
    __tablename__ = "membership"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "user_id", name="uq_membership"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    role: str = Field(max_length=20)
    created_at: datetime = _when(default_factory=utcnow)


class AuthSession(SQLModel, table=True):
    """A signed-in browser. Its token lives in an HttpOnly cookie; here only its digest.

    A session starts as a sign-in ticket (``ticket_digest``), redeemed once by the browser at
    ``/auth/session``, which sets the cookie; only then does it get its ``token_digest``.
    """

    __tablename__ = "auth_session"
    __table_args__ = {"extend_existing": True}

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    token_digest: str | None = Field(default=None, max_length=_DIGEST, unique=True)
    ticket_digest: str | None = Field(default=None, max_length=_DIGEST, unique=True)
    ticket_expires_at: datetime | None = _when(default=None)
    return_to: str = Field(default="/", max_length=500)
    """Where the browser goes once the ticket is redeemed (decided by the server)."""
    method: str = Field(default="password", max_length=20)
    created_at: datetime = _when(default_factory=utcnow)
    last_seen_at: datetime = _when(default_factory=utcnow)
    expires_at: datetime = _when()
    """The absolute end of the session, however active it is."""
    revoked_at: datetime | None = _when(default=None)
    user_agent: str = Field(default="", max_length=200)
    ip: str = Field(default="", max_length=64)


class Invitation(SQLModel, table=True):
    """A link an admin copies: single-use, expiring, carrying the role it grants."""

    __tablename__ = "invitation"
    __table_args__ = {"extend_existing": True}

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    role: str = Field(max_length=20)
    code_digest: str = Field(max_length=_DIGEST, unique=True)
    note: str = Field(default="", max_length=200)
    """Who it is for, as the admin wrote it (shown in the list of open invitations)."""
    created_by: int = Field(foreign_key="app_user.id")
    created_at: datetime = _when(default_factory=utcnow)
    expires_at: datetime = _when()
    accepted_by: int | None = Field(default=None, foreign_key="app_user.id")
    accepted_at: datetime | None = _when(default=None)
    revoked_at: datetime | None = _when(default=None)


class ApiToken(SQLModel, table=True):
    """A personal API token: one workspace, a role no higher than its creator's."""

    __tablename__ = "api_token"
    __table_args__ = {"extend_existing": True}

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    role: str = Field(max_length=20)
    name: str = Field(max_length=100)
    token_digest: str = Field(max_length=_DIGEST, unique=True)
    prefix: str = Field(max_length=16)
    """The token's first characters, shown in lists so a person can tell tokens apart."""
    created_at: datetime = _when(default_factory=utcnow)
    last_used_at: datetime | None = _when(default=None)
    revoked_at: datetime | None = _when(default=None)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_workspace_at", "workspace_id", "at"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(default_factory=utcnow, index=True)
    workspace_id: int | None = Field(default=None)
    """None for events outside any workspace (a sign-in)."""
    actor_user_id: int | None = Field(default=None, index=True)
    actor: str = Field(max_length=300)
    """Who, in words: an email, "API token 'ci' of ann@…", "the service key (ENRICHMENT_API_KEY)"."""
    action: str = Field(max_length=40, index=True)
    target_type: str = Field(default="", max_length=20)
    target_id: int | None = None
    target: str = Field(default="", max_length=300)
    """What, in words (a table's name, a member's email), kept after the thing is deleted."""
    detail: str = Field(default="", sa_type=sa.Text)


class LoginAttempt(SQLModel, table=True):
    """A failed sign-in, counted per email and per address to slow down guessing."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        sa.Index("ix_login_attempt_email_at", "email", "at"),
        sa.Index("ix_login_attempt_ip_at", "ip", "at"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    ip: str = Field(max_length=64)
    at: datetime = _when(default_factory=utcnow)


class OidcLogin(SQLModel, table=True):
    """One SSO sign-in under way: what the callback needs to finish it, for ten minutes."""

    __tablename__ = "oidc_login"
    __table_args__ = {"extend_existing": True}

    id: int | None = Field(default=None, primary_key=True)
    state_digest: str = Field(max_length=_DIGEST, unique=True)
    browser_digest: str = Field(max_length=_DIGEST)
    """The digest of a cookie set on the browser that started it: the callback must carry it."""
    nonce: str = Field(max_length=100)
    code_verifier: str = Field(max_length=200)
    return_to: str = Field(max_length=500)
    invitation_code: str = Field(default="", max_length=100)
    """An invitation to accept on success (its code, which is what the link carried)."""
    created_at: datetime = _when(default_factory=utcnow)
    expires_at: datetime = _when()
    used_at: datetime | None = _when(default=None)
