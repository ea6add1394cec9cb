"""The routes that set and clear the session cookie, and the single sign-on round trip.

These are the app's only public routes besides the pages: they are how a browser signs in.
None reads or changes a table. (``tests/integration/test_api_auth.py`` lists them as public
and checks that every other route refuses.)

* ``GET /auth/session?ticket=…``: redeem a sign-in ticket (``services/sessions.py``), set the
  HttpOnly session cookie, go back to the page the server recorded with the ticket.
* ``GET /auth/signed-out?to=…``: clear the cookie after the page signed out (the session was
  revoked by the handler already), go to ``to``.
* ``GET /auth/oidc/start?to=…&invitation=…``: begin an SSO sign-in: a browser-binding
  cookie, then the provider's authorization page (code flow, PKCE S256).
* ``GET /auth/oidc/callback?code=…&state=…``: finish it: the code is exchanged, the ID token
  verified, the account found (or created with an invitation), the session cookie set.

Where a route sends the browser back to comes from the server (the ticket, the SSO sign-in
record) or is checked: an absolute http(s) URL on the same host name as the request (the
dev server serves the pages on another port than the backend; the loopback names count as
one host), never anywhere else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import utcnow
from enrichment_app.errors import EnrichmentAppError, InvalidInputError
from enrichment_app.oidc import Identity, OidcError
from enrichment_app.runtime import Runtime
from enrichment_app.services import audit, sessions, sso
from enrichment_app.services.access import Actor
from enrichment_app.services.audit import Audited

logger = logging.getLogger(__name__)

BINDING_COOKIE = "enrichment_oidc"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def checked_return(request: Request, to: str, *, fallback_path: str = "/") -> str:
    """``to`` if it is an http(s) URL on the request's own host name, else the fallback path
    on the request's own origin."""
    host = request.url.hostname or ""
    try:
        parts = urlsplit(to)
    except ValueError:
        parts = urlsplit("")
    if (
        parts.scheme in ("http", "https")
        and not parts.username
        and _same_host(parts.hostname, host)
    ):
        return to
    return str(request.url.replace(path=fallback_path, query="", fragment=""))


LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _same_host(a: str | None, b: str) -> bool:
    """The same host name; the loopback names count as one (the dev server's page may be on
    ``localhost`` and its backend on ``127.0.0.1``)."""
    return a is not None and (a == b or (a in LOOPBACK and b in LOOPBACK))


def _set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        sessions.COOKIE_NAME,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def _clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        sessions.COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=_secure(request)
    )


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = (parts.query + "&" if parts.query else "") + urlencode(params)
    return parts._replace(query=query).geturl()


def _sign_in_page(return_to: str, error: str) -> str:
    """The sign-in page on the origin of ``return_to``, with a message to show."""
    parts = urlsplit(return_to)
    return parts._replace(path="/signin", query=urlencode({"error": error}), fragment="").geturl()


class AuthRoutes:
    def __init__(self, runtime_provider: Callable[[], Runtime]) -> None:
        self.runtime_provider = runtime_provider

    async def session(self, request: Request) -> Response:
        runtime = self.runtime_provider()
        ticket = request.query_params.get("ticket", "")
        try:
            redeemed = await in_transaction(
                runtime.open_session,
                sessions.redeem,
                box=runtime.secret_box,
                ticket=ticket,
                now=utcnow(),
            )
        except InvalidInputError as exc:
            back = checked_return(request, request.query_params.get("to", ""), fallback_path="/")
            return RedirectResponse(_sign_in_page(back, exc.message), 303, headers=NO_STORE)
        response = RedirectResponse(
            checked_return(request, redeemed.return_to), 303, headers=NO_STORE
        )
        _set_session_cookie(response, request, redeemed.token, redeemed.max_age_seconds)
        return response

    async def signed_out(self, request: Request) -> Response:
        to = checked_return(request, request.query_params.get("to", ""), fallback_path="/signin")
        response = RedirectResponse(to, 303, headers=NO_STORE)
        _clear_session_cookie(response, request)
        return response

    def _redirect_uri(self, runtime: Runtime, request: Request) -> str:
        configured = runtime.settings.oidc_redirect_url
        return configured or str(request.url.replace(path="/auth/oidc/callback", query=""))

    async def oidc_start(self, request: Request) -> Response:
        runtime = self.runtime_provider()
        to = checked_return(request, request.query_params.get("to", ""), fallback_path="/")
        client = runtime.oidc
        if client is None:
            return RedirectResponse(
                _sign_in_page(to, "Single sign-on is not configured on this server."), 303
            )
        begun = await in_transaction(
            runtime.open_session,
            sso.begin,
            box=runtime.secret_box,
            return_to=to,
            invitation_code=request.query_params.get("invitation", "")[:100],
            now=utcnow(),
        )
        try:
            url = await client.authorization_url(
                redirect_uri=self._redirect_uri(runtime, request),
                state=begun.state,
                nonce=begun.nonce,
                code_verifier=begun.code_verifier,
            )
        except OidcError as exc:
            logger.warning("SSO: %s", exc.message)
            return RedirectResponse(_sign_in_page(to, exc.message), 303, headers=NO_STORE)
        response = RedirectResponse(url, 302, headers=NO_STORE)
        response.set_cookie(
            BINDING_COOKIE,
            begun.browser_secret,
            max_age=int(sso.LOGIN_TTL.total_seconds()),
            path="/auth/oidc",
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
        return response

    async def oidc_callback(self, request: Request) -> Response:
        runtime = self.runtime_provider()
        params = request.query_params
        state = params.get("state", "")
        box = runtime.secret_box
        recorded = await in_session(runtime.open_session, sso.return_to_of, box=box, state=state)
        back = checked_return(request, recorded or "", fallback_path="/")
        client = runtime.oidc
        try:
            if client is None:
                raise InvalidInputError("Single sign-on is not configured on this server.")
            if "error" in params:
                reason = params.get("error_description") or params.get("error", "")
                raise InvalidInputError(f"The sign-in provider said: {reason[:200]}")
            pending = await in_transaction(
                runtime.open_session,
                sso.finish,
                box=box,
                state=state,
                browser_secret=request.cookies.get(BINDING_COOKIE, ""),
                now=utcnow(),
            )
            identity = await client.exchange(
                code=params.get("code", "")[:2000],
                redirect_uri=self._redirect_uri(runtime, request),
                code_verifier=pending.code_verifier,
                nonce=pending.nonce,
                now=time.time(),
            )
            redeemed, back = await in_transaction(
                runtime.open_session, self._sign_in, runtime, request, identity, pending
            )
        except EnrichmentAppError as exc:
            if isinstance(exc, OidcError):
                logger.warning("SSO sign-in failed: %s", exc.message)
            response = RedirectResponse(_sign_in_page(back, exc.message), 303, headers=NO_STORE)
            response.delete_cookie(BINDING_COOKIE, path="/auth/oidc")
            return response
        response = RedirectResponse(back, 303, headers=NO_STORE)
        response.delete_cookie(BINDING_COOKIE, path="/auth/oidc")
        _set_session_cookie(response, request, redeemed.token, redeemed.max_age_seconds)
        return response

    @staticmethod
    def _sign_in(
        session: Session,
        runtime: Runtime,
        request: Request,
        identity: Identity,
        pending: sso.Pending,
    ) -> tuple[sessions.Redeemed, str]:
        """The account, a session for it and the audit entry, in one transaction."""
        now = utcnow()
        user = sso.account_for(
            session,
            box=runtime.secret_box,
            identity=identity,
            invitation_code=pending.invitation_code,
            now=now,
        )
        assert user.id is not None
        redeemed = sessions.open_now(
            session,
            box=runtime.secret_box,
            user_id=user.id,
            method="oidc",
            policy=runtime.session_policy,
            now=now,
            ip=request.client.host if request.client else "",
            user_agent=request.headers.get("user-agent", ""),
        )
        audit.record(
            session,
            actor=Actor(user.id, user.email),
            action=Audited.SIGN_IN,
            workspace_id=None,
            detail="single sign-on",
            now=now,
        )
        return redeemed, checked_return(request, pending.return_to)


def auth_routes(runtime_provider: Callable[[], Runtime]) -> list[BaseRoute]:
    routes = AuthRoutes(runtime_provider)
    return [
        Route("/session", routes.session, methods=["GET"]),
        Route("/signed-out", routes.signed_out, methods=["GET"]),
        Route("/oidc/start", routes.oidc_start, methods=["GET"]),
        Route("/oidc/callback", routes.oidc_callback, methods=["GET"]),
    ]
