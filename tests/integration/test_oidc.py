"""Single sign-on against a loopback OpenID Connect provider that speaks the real wire format.

The browser's part is played by an httpx client that keeps cookies and follows the app's and
the provider's redirects one by one: ``/auth/oidc/start`` → the provider's ``/authorize`` →
``/auth/oidc/callback`` → the page, with the HttpOnly session cookie set. Then what must be
refused is: a token signed with a key the provider's JWKS does not list, a wrong nonce,
another audience, an expired token, a callback in another browser, an unknown identity
without an invitation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from enrichment_app.api import build_api
from enrichment_app.db.models import Membership, User
from enrichment_app.domain import utcnow
from enrichment_app.runtime import Runtime
from enrichment_app.services import sessions, workspaces
from enrichment_app.services.access import Role
from enrichment_app.settings import Settings
from tests.fakes.oidc_provider import FakeOidcProvider
from tests.integration.runtimes import closing
from tests.support.accounts import add_user
from tests.support.live_server import serve_in_thread

PAGE = "http://127.0.0.1:3000"
"""Where the page is (the dev server's port; the app's routes check the host name)."""


@pytest.fixture
def provider() -> Iterator[FakeOidcProvider]:
    fake = FakeOidcProvider()
    with serve_in_thread(fake.app()) as url:
        fake.issuer = url
        yield fake


@pytest.fixture
async def runtime(settings: Settings, provider: FakeOidcProvider) -> AsyncIterator[Runtime]:
    sso = settings.model_copy(
        update={
            "oidc_issuer": provider.issuer,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": SecretStr(provider.client_secret),
        }
    )
    async with closing(Runtime(settings=sso)) as runtime:
        yield runtime


class Browser:
    """Cookies per host, redirects followed by hand (across the app and the provider)."""

    def __init__(self, runtime: Runtime) -> None:
        self.app = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_api(lambda: runtime)),
            base_url="http://127.0.0.1:8000",
        )
        self.web = httpx.AsyncClient()
        self.visited: list[str] = []

    async def go(self, url: str, *, until: str = PAGE) -> httpx.Response:
        while True:
            self.visited.append(url)
            client = self.app if url.startswith("http://127.0.0.1:8000") else self.web
            response = await client.get(url)
            location = response.headers.get("location")
            if (
                response.status_code not in (302, 303)
                or location is None
                or location.startswith(until)
            ):
                return response
            url = location

    @property
    def session_token(self) -> str | None:
        return self.app.cookies.get(sessions.COOKIE_NAME)

    async def aclose(self) -> None:
        await self.app.aclose()
        await self.web.aclose()


@pytest.fixture
async def browser(runtime: Runtime) -> AsyncIterator[Browser]:
    browser = Browser(runtime)
    yield browser
    await browser.aclose()


def start_url(invitation: str = "") -> str:
    url = f"http://127.0.0.1:8000/auth/oidc/start?to={PAGE}/tables"
    return url + (f"&invitation={invitation}" if invitation else "")


def live_user(runtime: Runtime, token: str | None) -> str | None:
    with runtime.open_session() as session:
        found = sessions.resolve(
            session,
            box=runtime.secret_box,
            token=token,
            policy=runtime.session_policy,
            now=utcnow(),
        )
        return found.email if found else None


async def test_an_existing_account_signs_in_with_sso(
    runtime: Runtime, provider: FakeOidcProvider, browser: Browser
) -> None:
    with runtime.open_session() as session:
        add_user(session, email="sso.user@example.com", role=Role.EDITOR)
    response = await browser.go(start_url())
    assert response.status_code == 303
    assert response.headers["location"] == f"{PAGE}/tables"
    assert browser.visited[1].startswith(provider.issuer + "/authorize?")
    authorize = httpx.URL(browser.visited[1]).params
    assert authorize["code_challenge_method"] == "S256" and authorize["nonce"]
    assert authorize["scope"] == "openid email profile"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert live_user(runtime, browser.session_token) == "sso.user@example.com"
    request = provider.token_requests[-1]
    assert request["grant_type"] == "authorization_code" and len(request["code_verifier"]) >= 43
    with runtime.open_session() as session:
        user = session.exec(select(User).where(User.email == "sso.user@example.com")).one()
        assert (user.oidc_issuer, user.oidc_subject) == (provider.issuer, "user-123")


@pytest.mark.parametrize(
    ("knob", "reason"),
    [
        ("sign_with_rogue_key", "The ID token was refused"),
        ("wrong_nonce", "The ID token was refused"),
        ("audience", "The ID token was refused"),
        ("expired", "The ID token was refused"),
    ],
)
async def test_an_id_token_that_does_not_verify_is_refused(
    runtime: Runtime, provider: FakeOidcProvider, browser: Browser, knob: str, reason: str
) -> None:
    with runtime.open_session() as session:
        add_user(session, email="sso.user@example.com", role=Role.EDITOR)
    if knob == "audience":
        provider.audience = "another-client"
    elif knob == "expired":
        provider.lifetime = -600
    else:
        setattr(provider, knob, True)
    response = await browser.go(start_url())
    location = response.headers["location"]
    assert location.startswith(f"{PAGE}/signin?error=")
    assert reason in httpx.URL(location).params["error"]
    assert browser.session_token is None


async def test_a_callback_in_another_browser_is_refused(
    runtime: Runtime, provider: FakeOidcProvider, browser: Browser
) -> None:
    with runtime.open_session() as session:
        add_user(session, email="sso.user@example.com", role=Role.EDITOR)
    started = await browser.app.get(start_url())
    at_provider = await browser.web.get(started.headers["location"])
    callback = at_provider.headers["location"]
    other = Browser(runtime)  # an attacker's link opened in the victim's browser: no cookie
    try:
        response = await other.go(callback)
        assert "another browser" in httpx.URL(response.headers["location"]).params["error"]
        assert other.session_token is None
    finally:
        await other.aclose()


async def test_someone_new_needs_an_invitation_and_joins_with_it(
    runtime: Runtime, provider: FakeOidcProvider, browser: Browser
) -> None:
    with runtime.open_session() as session:
        owner = add_user(session, email="owner@example.com", role=Role.OWNER)
    response = await browser.go(start_url())
    error = httpx.URL(response.headers["location"]).params["error"]
    assert "There is no account for sso.user@example.com here yet" in error
    with runtime.open_session() as session:
        code, _ = workspaces.invite(
            session,
            box=runtime.secret_box,
            workspace_id=1,
            role=Role.VIEWER,
            by_user_id=owner,
            by_role=Role.OWNER,
            note="",
            ttl=timedelta(days=1),
            now=utcnow(),
        )
        session.commit()
    response = await browser.go(start_url(code))
    assert response.headers["location"] == f"{PAGE}/tables"
    assert live_user(runtime, browser.session_token) == "sso.user@example.com"
    with runtime.open_session() as session:
        user = session.exec(select(User).where(User.email == "sso.user@example.com")).one()
        assert user.password_hash is None
        member = session.exec(select(Membership).where(Membership.user_id == user.id)).one()
        assert member.role == "viewer"
