"""Server-side sessions: how a browser stays signed in, and how it stops.

A session is a row in ``auth_session``. Its token (256 random bits) lives in the browser only,
in the HttpOnly cookie ``enrichment_session`` set by the ``/auth/session`` route; the database
keeps its keyed digest (``SecretBox.digest``). Signing in is two steps, because a Reflex event
handler cannot set an HttpOnly cookie:

1. the sign-in handler checks the password and ``start`` s a session holding a one-time
   *ticket* (its digest), valid for a minute, and sends the browser to ``/auth/session?ticket=…``;
2. that route ``redeem`` s the ticket once: the session gets its token, the browser the cookie,
   and a redirect to the page it came from.

Every event handler and every page read ``resolve`` s the cookie again (``state/access.py``):
a session that is revoked (signed out, "sign out everywhere", the user removed), idle for
longer than ``SESSION_IDLE_HOURS`` or older than ``SESSION_MAX_DAYS`` stops at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.db.models import AuthSession, User
from enrichment_app.errors import InvalidInputError
from enrichment_app.keyring import SecretBox
from enrichment_app.services.access import UserPrincipal

COOKIE_NAME = "enrichment_session"
TICKET_TTL = timedelta(seconds=60)
TOUCH_EVERY = timedelta(seconds=60)
"""``last_seen_at`` is written at most this often per session, not on every event."""


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta
    max_age: timedelta


@dataclass(frozen=True, slots=True)
class Redeemed:
    token: str
    return_to: str
    max_age_seconds: int


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def token_from_cookie_header(header: str) -> str | None:
    """The session token in a ``Cookie`` header (None if absent).

    Read pair by pair rather than with ``http.cookies``, whose parser silently stops at the
    first cookie it finds malformed, so that another app's odd cookie on the same host cannot
    hide ours. Our token is URL-safe base64: it needs no unquoting.
    """
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME:
            return value.strip().strip('"') or None
    return None


def start(
    session: Session,
    *,
    box: SecretBox,
    user_id: int,
    method: str,
    return_to: str,
    policy: SessionPolicy,
    now: datetime,
    ip: str = "",
    user_agent: str = "",
) -> str:
    """A new session for ``user_id``, waiting for its ticket (returned) to be redeemed."""
    ticket = new_secret()
    session.add(
        AuthSession(
            user_id=user_id,
            ticket_digest=box.digest(ticket),
            ticket_expires_at=now + TICKET_TTL,
            return_to=return_to[:500],
            method=method,
            created_at=now,
            last_seen_at=now,
            expires_at=now + policy.max_age,
            user_agent=user_agent[:200],
            ip=ip[:64],
        )
    )
    session.flush()
    return ticket


def open_now(
    session: Session,
    *,
    box: SecretBox,
    user_id: int,
    method: str,
    policy: SessionPolicy,
    now: datetime,
    ip: str = "",
    user_agent: str = "",
) -> Redeemed:
    """A session started and redeemed at once: for a route, which can set the cookie itself."""
    ticket = start(
        session,
        box=box,
        user_id=user_id,
        method=method,
        return_to="",
        policy=policy,
        now=now,
        ip=ip,
        user_agent=user_agent,
    )
    return redeem(session, box=box, ticket=ticket, now=now)


def redeem(session: Session, *, box: SecretBox, ticket: str, now: datetime) -> Redeemed:
    """Turn a sign-in ticket into the session's token, once."""
    row = session.exec(
        select(AuthSession).where(col(AuthSession.ticket_digest).in_(box.digests(ticket[:100])))
    ).first()
    if row is None or row.revoked_at is not None or row.ticket_expires_at is None:
        raise InvalidInputError(
            "This sign-in link was already used or is not valid: sign in again."
        )
    if _aware(row.ticket_expires_at) < now:
        raise InvalidInputError("This sign-in link has expired: sign in again.")
    token = new_secret()
    row.token_digest = box.digest(token)
    row.ticket_digest = None
    row.ticket_expires_at = None
    row.last_seen_at = now
    session.add(row)
    session.flush()
    seconds = int((_aware(row.expires_at) - now).total_seconds())
    return Redeemed(token=token, return_to=row.return_to, max_age_seconds=max(seconds, 0))


def resolve(
    session: Session, *, box: SecretBox, token: str | None, policy: SessionPolicy, now: datetime
) -> UserPrincipal | None:
    """The signed-in user for a session token, or None when it is not a live session.

    Touches ``last_seen_at`` (at most once a minute): run it in a transaction.
    """
    if not token:
        return None
    found = session.exec(
        select(AuthSession, User)
        .join(User, col(User.id) == AuthSession.user_id)
        .where(col(AuthSession.token_digest).in_(box.digests(token[:100])))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or _aware(row.expires_at) <= now:
        return None
    if _aware(row.last_seen_at) + policy.idle <= now:
        return None
    if now - _aware(row.last_seen_at) >= TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    assert row.id is not None and user.id is not None
    return UserPrincipal(user_id=user.id, session_id=row.id, email=user.email)


def revoke(session: Session, *, session_id: int, now: datetime) -> None:
    session.execute(
        sa.update(AuthSession)
        .where(col(AuthSession.id) == session_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )


def revoke_all(session: Session, *, user_id: int, now: datetime) -> int:
    """Sign a user out everywhere: every browser stops at its next event. How many."""
    result = session.execute(
        sa.update(AuthSession)
        .where(col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def live_sessions(session: Session, *, user_id: int, policy: SessionPolicy, now: datetime) -> int:
    """How many browsers the user is signed in on."""
    rows = session.exec(
        select(AuthSession.last_seen_at, AuthSession.expires_at).where(
            AuthSession.user_id == user_id,
            col(AuthSession.revoked_at).is_(None),
            col(AuthSession.token_digest).is_not(None),
        )
    ).all()
    return sum(1 for seen, ends in rows if _aware(ends) > now and _aware(seen) + policy.idle > now)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
