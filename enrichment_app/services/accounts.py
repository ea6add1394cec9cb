"""Accounts: the owner set up on first run, passwords, signing in, and slowing down guessing.

Passwords are hashed with argon2id (``argon2-cffi``'s ``PasswordHasher``, RFC 9106's
recommended parameters: 64 MiB, 3 passes). A sign-in with an unknown email still verifies a
password against a dummy hash, so the answer takes as long as for a known one, and the message
never says which of the two was wrong. Failed sign-ins are counted in the database (so across
processes): after ``LOGIN_FAILURE_LIMIT`` failures for an email, or four times that from one
address, within 15 minutes, sign-ins are refused until the window moves on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, func, select

from enrichment_app.db.models import LoginAttempt, Membership, User, Workspace
from enrichment_app.errors import InvalidInputError, TooManyAttemptsError

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256
"""argon2 takes any length; the cap keeps a megabyte "password" from costing anything."""
MAX_EMAIL_CHARS = 254
MAX_NAME_CHARS = 100
FAILURE_WINDOW = timedelta(minutes=15)
ADDRESS_FACTOR = 4
"""An address may fail this many times more than one email: a shared office, a proxy."""

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("a password that no account has, to take the same time")

COMMON_PASSWORDS = frozenset(
    {
        "password123",
        "password1234",
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "iloveyou123",
        "administrator",
        "changeme123",
        "letmein1234",
        "welcome123",
        "passw0rd123",
        "0123456789",
        "abcdefghij",
        "qwerty123456",
    }
)
"""A few of the most common passwords that are long enough to pass the length rule."""

PASSWORD_RULE = (
    f"Use at least {MIN_PASSWORD_CHARS} characters (a few unrelated words make a strong,"
    " memorable password)."
)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A user whose password was right."""

    user_id: int
    email: str


# --- rules ---------------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    """The email as stored and compared: trimmed and lower-cased; refused if it is not one."""
    cleaned = email.strip().lower()
    if not cleaned:
        raise InvalidInputError("Enter your email address.")
    if len(cleaned) > MAX_EMAIL_CHARS or "\x00" in cleaned:
        raise InvalidInputError(f"An email address has at most {MAX_EMAIL_CHARS} characters.")
    local, at, domain = cleaned.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in cleaned):
        raise InvalidInputError(f"'{cleaned[:80]}' is not an email address.")
    return cleaned


def clean_name(name: str) -> str:
    cleaned = " ".join(name.replace("\x00", "").split())
    if len(cleaned) > MAX_NAME_CHARS:
        raise InvalidInputError(f"A name has at most {MAX_NAME_CHARS} characters.")
    return cleaned


def check_password(password: str, *, email: str = "") -> None:
    """Refuse a weak password with the rule it breaks (nothing is stored)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInputError(
            f"This password is too short ({len(password)} characters). {PASSWORD_RULE}"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInputError(f"A password has at most {MAX_PASSWORD_CHARS} characters.")
    folded = password.casefold()
    if len(set(folded)) <= 2 or folded in COMMON_PASSWORDS:
        raise InvalidInputError(f"This password is too easy to guess. {PASSWORD_RULE}")
    local = email.casefold().partition("@")[0]
    if email and (folded == email.casefold() or (len(local) >= 4 and folded == local)):
        raise InvalidInputError(f"The password must not be your email address. {PASSWORD_RULE}")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


# --- first run -----------------------------------------------------------------------------


def setup_pending(session: Session) -> bool:
    """Whether no account exists yet: the app then serves only the owner set-up page."""
    return session.exec(select(User.id).limit(1)).first() is None


def create_owner(session: Session, *, email: str, name: str, password: str, now: datetime) -> User:
    """The first account: the app's administrator, owner of every workspace there is.

    Refused once any account exists. Two visitors submitting at once race on the unique email
    and on this check inside one transaction; the loser's transaction is rolled back.
    """
    email = normalise_email(email)
    check_password(password, email=email)
    if not setup_pending(session):
        raise InvalidInputError("The owner account is already set up: sign in instead.")
    user = User(
        email=email,
        name=clean_name(name),
        password_hash=hash_password(password),
        is_admin=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    assert user.id is not None
    workspace_ids: list[int | None] = list(
        session.exec(select(Workspace.id).order_by(col(Workspace.id))).all()
    )
    if not workspace_ids:
        workspace = Workspace(name="Default workspace", created_at=now)
        session.add(workspace)
        session.flush()
        workspace_ids = [workspace.id]
    for workspace_id in workspace_ids:
        assert workspace_id is not None
        session.add(Membership(workspace_id=workspace_id, user_id=user.id, role="owner"))
    user.current_workspace_id = workspace_ids[0]
    session.add(user)
    session.flush()
    return user


# --- signing in ----------------------------------------------------------------------------


def sign_in(session: Session, *, email: str, password: str) -> SignedIn:
    """Check an email and password; refuse with one message whichever of the two is wrong.

    Raises ``TooManyAttemptsError`` while the email or address is over its failure limit
    (checked before the password, so guessing stops), ``InvalidInputError`` otherwise. A
    failure is recorded by the caller in its own transaction (``record_failure``), so it
    counts even though this one is rolled back.
    """
    try:
        email = normalise_email(email)
    except InvalidInputError:
        email = email.strip().lower()[:MAX_EMAIL_CHARS]
    user = session.exec(select(User).where(User.email == email)).first()
    if not _verify(user.password_hash if user else None, password[:MAX_PASSWORD_CHARS]):
        raise InvalidInputError("The email or the password is wrong.")
    assert user is not None and user.id is not None
    return SignedIn(user.id, user.email)


def check_attempts(session: Session, *, email: str, ip: str, limit: int, now: datetime) -> None:
    """Refuse while the email or the address has failed too often lately (with a wait)."""
    since = now - FAILURE_WINDOW
    email = email.strip().lower()[:MAX_EMAIL_CHARS]
    for column, value, allowed in (
        (LoginAttempt.email, email, limit),
        (LoginAttempt.ip, ip, limit * ADDRESS_FACTOR),
    ):
        count, oldest = session.exec(
            select(func.count(), func.min(LoginAttempt.at)).where(
                column == value, col(LoginAttempt.at) > since
            )
        ).one()
        if count >= allowed and oldest is not None:
            wait = _aware(oldest) + FAILURE_WINDOW - now
            minutes = max(1, math.ceil(wait.total_seconds() / 60))
            raise TooManyAttemptsError(
                f"Too many failed sign-ins: try again in {minutes} minute"
                f"{'s' if minutes != 1 else ''}, or ask an admin to reset your password.",
                retry_after=max(1, math.ceil(wait.total_seconds())),
            )


def record_failure(session: Session, *, email: str, ip: str, now: datetime) -> None:
    session.add(LoginAttempt(email=email.strip().lower()[:MAX_EMAIL_CHARS], ip=ip[:64], at=now))
    session.execute(sa.delete(LoginAttempt).where(col(LoginAttempt.at) < now - FAILURE_WINDOW))


def change_password(session: Session, *, user_id: int, current: str, new: str) -> None:
    user = session.get(User, user_id)
    if user is None:
        raise InvalidInputError("There is no such account.")
    if user.password_hash is not None and not _verify(user.password_hash, current):
        raise InvalidInputError("The current password is wrong.")
    check_password(new, email=user.email)
    user.password_hash = hash_password(new)
    session.add(user)


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for UTC values."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
