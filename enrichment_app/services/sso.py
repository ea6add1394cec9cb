"""Single sign-on bookkeeping: the sign-in under way, and which account an identity is.

The protocol itself is ``enrichment_app/oidc.py``. Here: ``begin`` stores what the callback
needs (the state's digest, the nonce, the PKCE verifier, where to go back to, and the digest of
a cookie set on the browser that started, so a callback in another browser is refused);
``finish`` takes it back, once, within ten minutes; ``account_for`` matches the identity to an
account: by the provider's subject, else by a verified email (linking the two the first time),
else, with an invitation, a new account that signs in with SSO only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from enrichment_app.db.models import OidcLogin, User
from enrichment_app.errors import InvalidInputError
from enrichment_app.keyring import SecretBox
from enrichment_app.oidc import Identity
from enrichment_app.services import workspaces
from enrichment_app.services.accounts import clean_name, normalise_email

LOGIN_TTL = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Begun:
    state: str
    nonce: str
    code_verifier: str
    browser_secret: str


@dataclass(frozen=True, slots=True)
class Pending:
    nonce: str
    code_verifier: str
    return_to: str
    invitation_code: str


def begin(
    session: Session, *, box: SecretBox, return_to: str, invitation_code: str, now: datetime
) -> Begun:
    begun = Begun(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(48),
        browser_secret=secrets.token_urlsafe(32),
    )
    session.add(
        OidcLogin(
            state_digest=box.digest(begun.state),
            browser_digest=box.digest(begun.browser_secret),
            nonce=begun.nonce,
            code_verifier=begun.code_verifier,
            return_to=return_to[:500],
            invitation_code=invitation_code[:100],
            created_at=now,
            expires_at=now + LOGIN_TTL,
        )
    )
    return begun


def return_to_of(session: Session, *, box: SecretBox, state: str) -> str | None:
    """Where a sign-in under way goes back to (for sending an error there)."""
    row = session.exec(
        select(OidcLogin).where(col(OidcLogin.state_digest).in_(box.digests(state[:100])))
    ).first()
    return row.return_to if row is not None else None


def finish(
    session: Session, *, box: SecretBox, state: str, browser_secret: str, now: datetime
) -> Pending:
    """Take back the sign-in ``state`` names, once; refused from another browser or late."""
    row = session.exec(
        select(OidcLogin).where(col(OidcLogin.state_digest).in_(box.digests(state[:100])))
    ).first()
    if row is None or row.used_at is not None:
        raise InvalidInputError("This sign-in was already finished or is unknown: sign in again.")
    if row.browser_digest not in box.digests(browser_secret[:100]):
        raise InvalidInputError(
            "This sign-in was started in another browser (or its cookie was lost): sign in again."
        )
    if _aware(row.expires_at) <= now:
        raise InvalidInputError("This sign-in took more than ten minutes: sign in again.")
    row.used_at = now
    session.add(row)
    return Pending(row.nonce, row.code_verifier, row.return_to, row.invitation_code)


def account_for(
    session: Session, *, box: SecretBox, identity: Identity, invitation_code: str, now: datetime
) -> User:
    """The account ``identity`` signs in to (created with an invitation); refused otherwise."""
    user = session.exec(
        select(User).where(
            User.oidc_issuer == identity.issuer, User.oidc_subject == identity.subject
        )
    ).first()
    email = ""
    if identity.email and identity.email_verified:
        try:
            email = normalise_email(identity.email)
        except InvalidInputError:
            email = ""
    if user is None and email:
        user = session.exec(select(User).where(User.email == email)).first()
        if user is not None and user.oidc_subject is not None:
            raise InvalidInputError(
                f"The account {email} is linked to another single sign-on identity."
            )
        if user is not None:
            user.oidc_issuer, user.oidc_subject = identity.issuer, identity.subject
            session.add(user)
    if user is None:
        if not invitation_code:
            shown = email or "this identity"
            raise InvalidInputError(
                f"There is no account for {shown} here yet: ask an admin for an invitation"
                " link, and open it to join."
            )
        if not email:
            raise InvalidInputError(
                "The sign-in provider did not give a verified email address, which a new"
                " account needs: ask your provider's admin, or join with a password instead."
            )
        user = User(
            email=email,
            name=clean_name(identity.name)[:100],
            password_hash=None,
            oidc_issuer=identity.issuer,
            oidc_subject=identity.subject,
            created_at=now,
        )
        session.add(user)
        session.flush()
    assert user.id is not None
    if invitation_code:
        workspaces.accept_invitation(
            session, box=box, code=invitation_code, user_id=user.id, now=now
        )
    return user


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
