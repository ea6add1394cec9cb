"""Signed-in users for tests and benchmarks: through the services, or through the real flow.

The access rule has no off switch, so every test that drives the page or the API signs in:

* in the test's own process (state tests, integration tests): ``add_user`` creates an account
  and its membership with the services, ``session_cookie`` opens a server-side session for it
  and returns the ``Cookie`` header a browser would send;
* against a running app (the soak, the fan-out bench, the topology, browser tests):
  ``sign_in_over_http`` runs the real flow: the set-up (on a fresh database) or sign-in handler
  over Reflex's websocket, then the ``/auth/session`` route that sets the HttpOnly cookie. The
  cookie it returns goes into ``ReflexSocket(headers=...)`` or a Playwright context.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import Session, select

from enrichment_app.db.models import Membership, User
from enrichment_app.domain import utcnow
from enrichment_app.keyring import SecretBox
from enrichment_app.services import accounts, sessions
from enrichment_app.services.access import Role
from enrichment_app.services.api_tokens import create_token
from enrichment_app.services.sessions import COOKIE_NAME, SessionPolicy
from tests.support.reflex_socket import ROOT_STATE, ReflexSocket

OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "owner password for tests"
POLICY = SessionPolicy(idle=timedelta(hours=24), max_age=timedelta(days=14))
AUTH_STATE = f"{ROOT_STATE}.enrichment_app___state___auth____auth_state"


@functools.lru_cache(maxsize=8)
def _hash(password: str) -> str:
    """argon2id takes a quarter of a second here: hash each test password once per process."""
    return accounts.hash_password(password)


def add_user(
    session: Session,
    *,
    email: str,
    role: Role | str | None = Role.OWNER,
    workspace_id: int | None = 1,
    password: str = OWNER_PASSWORD,
    admin: bool = False,
) -> int:
    """An account (or the existing one with that email) with ``role`` in ``workspace_id``."""
    user = session.exec(select(User).where(User.email == email)).first()
    if user is None:
        user = User(
            email=email,
            name=email.partition("@")[0],
            password_hash=_hash(password),
            is_admin=admin,
            current_workspace_id=workspace_id,
        )
        session.add(user)
        session.flush()
    assert user.id is not None
    if role is not None and workspace_id is not None:
        member = session.exec(
            select(Membership).where(
                Membership.user_id == user.id, Membership.workspace_id == workspace_id
            )
        ).first()
        if member is None:
            session.add(
                Membership(workspace_id=workspace_id, user_id=user.id, role=str(Role(role)))
            )
        else:
            member.role = str(Role(role))
            session.add(member)
    session.commit()
    return user.id


def session_cookie(session: Session, *, box: SecretBox, user_id: int) -> str:
    """A live server-side session for ``user_id``, as the ``Cookie`` header carrying it."""
    redeemed = sessions.open_now(
        session, box=box, user_id=user_id, method="password", policy=POLICY, now=utcnow()
    )
    session.commit()
    return f"{COOKIE_NAME}={redeemed.token}"


def api_token(
    session: Session, *, box: SecretBox, user_id: int, workspace_id: int, role: Role
) -> str:
    """A personal API token for ``user_id`` (whose role in the workspace must allow ``role``)."""
    member = session.exec(
        select(Membership.role).where(
            Membership.user_id == user_id, Membership.workspace_id == workspace_id
        )
    ).one()
    token, _ = create_token(
        session,
        box=box,
        user_id=user_id,
        workspace_id=workspace_id,
        member_role=Role(member),
        role=role,
        name=f"test {role.value}",
        now=utcnow(),
    )
    session.commit()
    return token


@dataclass(frozen=True)
class SignedIn:
    cookie: str
    """``enrichment_session=<token>``: the Cookie header for sockets and requests."""
    token: str


_NAVIGATION = re.compile(r"window\.location\.assign\((\"[^\"]*\")\)")


async def sign_in_over_http(
    base_url: str,
    *,
    email: str = OWNER_EMAIL,
    password: str = OWNER_PASSWORD,
    set_up: bool = False,
    origin: str | None = None,
    within: float = 60.0,
) -> SignedIn:
    """Sign in to a running app the way a browser does; ``set_up`` creates the owner first.

    Sends ``AuthState.set_up`` (or ``sign_in``) over a websocket, follows the navigation it
    answers with to ``/auth/session`` and keeps the HttpOnly cookie that route sets.
    """
    url = httpx.URL(base_url)
    host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
    page = "/setup" if set_up else "/signin"
    headers: Mapping[str, str] = {"Origin": origin or f"{url.scheme}://{host}:{port}"}
    socket = ReflexSocket(host=host, port=port, path=page, headers=dict(headers), record=True)
    await socket.connect()
    try:
        await socket.until(lambda: socket.joined.is_set(), within=within, message="the socket")
        form = {"email": email, "password": password}
        if set_up:
            form |= {"password_again": password, "name": "Owner"}
        handler = "create_owner" if set_up else "sign_in"
        socket.send_event(f"{AUTH_STATE}.{handler}", {"form": form})

        def navigation() -> str | None:
            for frame in socket.frames:
                found = _NAVIGATION.search(frame.replace('\\"', '"'))
                if found:
                    return str(json.loads(found.group(1)))
            return None

        def answered() -> bool:
            return navigation() is not None or bool(socket.vars(AUTH_STATE).get("error"))

        await socket.until(answered, within=within, message=f"the {handler} handler's answer")
        target = navigation()
        error = str(socket.vars(AUTH_STATE).get("error"))
    finally:
        await socket.close()
    if target is None and set_up and "already set up" in error:  # another run set it up
        return await sign_in_over_http(
            base_url, email=email, password=password, origin=origin, within=within
        )
    if target is None:
        raise AssertionError(f"{handler} refused: {error}")
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as client:
        response = await client.get(target)
    token = response.cookies.get(COOKIE_NAME)
    if response.status_code != 303 or not token:
        raise AssertionError(f"/auth/session answered {response.status_code}: {response.text}")
    return SignedIn(cookie=f"{COOKIE_NAME}={token}", token=token)


def browser_cookie(signed_in: SignedIn, url: str) -> dict[str, Any]:
    """The session as a Playwright cookie for the app at ``url`` (``context.add_cookies``)."""
    return {"name": COOKIE_NAME, "value": signed_in.token, "url": url, "httpOnly": True}
