"""Personal API tokens: created on the page, shown once, stored as a keyed digest, revocable.

A token reads ``enr_<43 characters>``: 256 random bits, so a fast keyed hash
(``SecretBox.digest``, HMAC-SHA256) is the right way to store it, and argon2's deliberate
slowness (there for guessable passwords) would only slow down every API request. Each token is
scoped to one workspace and a role no higher than its creator's there; it acts with the lower
of that role and its creator's current one (``services/access.py``), so a member who is
demoted or removed takes their tokens down with them. A revoked token is refused at its next
request. ``last_used_at`` is written at most once a minute per token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from enrichment_app.db.models import ApiToken, Membership, User
from enrichment_app.errors import AccessDenied, InvalidInputError, NotFoundError
from enrichment_app.keyring import SecretBox
from enrichment_app.services.access import Role, TokenPrincipal

PREFIX = "enr_"
MAX_TOKEN_NAME = 100
TOUCH_EVERY = timedelta(seconds=60)
SHOWN_CHARS = 8


@dataclass(frozen=True, slots=True)
class TokenView:
    id: int
    name: str
    role: str
    prefix: str
    owner: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def looks_like_token(value: str) -> bool:
    return value.startswith(PREFIX)


def create_token(
    session: Session,
    *,
    box: SecretBox,
    user_id: int,
    workspace_id: int,
    member_role: Role,
    role: Role,
    name: str,
    now: datetime,
) -> tuple[str, ApiToken]:
    """A new token (returned once, never stored) and its row."""
    cleaned = " ".join(name.replace("\x00", "").split())
    if not cleaned:
        raise InvalidInputError("Give the token a name, so you can tell it apart later.")
    if len(cleaned) > MAX_TOKEN_NAME:
        raise InvalidInputError(f"A token name has at most {MAX_TOKEN_NAME} characters.")
    if not member_role.at_least(role):
        raise AccessDenied(
            f"A token's role cannot be above your own ({member_role.value}); choose"
            f" {member_role.value} or lower."
        )
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user_id,
        workspace_id=workspace_id,
        role=role.value,
        name=cleaned,
        token_digest=box.digest(token),
        prefix=token[: len(PREFIX) + SHOWN_CHARS - len(PREFIX)],
        created_at=now,
    )
    session.add(row)
    session.flush()
    return token, row


def resolve_token(
    session: Session, *, box: SecretBox, token: str, now: datetime
) -> TokenPrincipal | None:
    """The principal a bearer token stands for, or None if it is unknown or revoked.

    A token found under an older ``APP_SECRET_KEY`` key is re-digested with the newest one.
    Touches ``last_used_at``: run it in a transaction.
    """
    if not looks_like_token(token) or len(token) > 100:
        return None
    digests = box.digests(token)
    row = session.exec(select(ApiToken).where(col(ApiToken.token_digest).in_(digests))).first()
    if row is None or row.revoked_at is not None:
        return None
    member = session.exec(
        select(Membership.role, User.email)
        .join(User, col(User.id) == Membership.user_id)
        .where(Membership.workspace_id == row.workspace_id, Membership.user_id == row.user_id)
    ).first()
    if member is None:
        return None
    if row.token_digest != digests[0]:
        row.token_digest = digests[0]
        session.add(row)
    if row.last_used_at is None or now - _aware(row.last_used_at) >= TOUCH_EVERY:
        row.last_used_at = now
        session.add(row)
    assert row.id is not None
    return TokenPrincipal(
        token_id=row.id,
        user_id=row.user_id,
        workspace_id=row.workspace_id,
        role=Role(row.role),
        name=row.name,
        email=member[1],
    )


def tokens_in(session: Session, *, workspace_id: int, user_id: int | None) -> list[TokenView]:
    """The workspace's tokens: everyone's (for admins, ``user_id=None``) or one member's."""
    query = (
        select(ApiToken, User.email)
        .join(User, col(User.id) == ApiToken.user_id)
        .where(ApiToken.workspace_id == workspace_id)
        .order_by(col(ApiToken.id).desc())
    )
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return [
        TokenView(
            id=int(t.id or 0),
            name=t.name,
            role=t.role,
            prefix=t.prefix,
            owner=email,
            created_at=_aware(t.created_at),
            last_used_at=_aware(t.last_used_at) if t.last_used_at else None,
            revoked=t.revoked_at is not None,
        )
        for t, email in session.exec(query).all()
    ]


def revoke_token(
    session: Session,
    *,
    workspace_id: int,
    token_id: int,
    user_id: int,
    any_owner: bool,
    now: datetime,
) -> ApiToken:
    """Revoke a token of this workspace: one's own, or anyone's for an admin (``any_owner``)."""
    row = session.get(ApiToken, token_id)
    if (
        row is None
        or row.workspace_id != workspace_id
        or (not any_owner and row.user_id != user_id)
    ):
        raise NotFoundError(f"Token {token_id} does not exist.")
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
    return row


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
