"""Signing in and out: the owner set-up, the sign-in form, invitations, single sign-on.

Passwords arrive as the forms' submitted data (the inputs are not bound to any var) and are
never stored in state. A successful sign-in starts a server-side session holding a one-time
ticket and sends the browser to the backend's ``/auth/session`` route, which sets the
HttpOnly session cookie (``services/sessions.py``); the ticket travels once, in that
navigation, and never sits in a state var. The invitation code, read from the page's URL,
stays in a backend var.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from enrichment_app import routes
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import utcnow
from enrichment_app.errors import EnrichmentAppError, InvalidInputError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import accounts, sign_ins, workspaces
from enrichment_app.state.access import current_principal, decide, public, signed_in

MAX_FIELD = 1000
"""Form fields are clipped to this before anything looks at them."""


def _field(form: Any, name: str) -> str:
    value = form.get(name, "") if isinstance(form, dict) else ""
    return str(value)[:MAX_FIELD] if value is not None else ""


def page_origin(state: Any) -> str:
    """The origin the page is served from (the websocket handshake's ``Origin``)."""
    origin = state.router.headers.origin or ""
    return origin.rstrip("/") if origin.startswith(("http://", "https://")) else ""


def backend_origin(state: Any) -> str:
    """The backend as the browser reaches it: the handshake's ``Host``, the page's scheme."""
    host = state.router.headers.host or ""
    scheme = "https" if page_origin(state).startswith("https://") else "http"
    return f"{scheme}://{host}" if host else ""


def go_to_backend(state: Any, path: str, **params: str) -> Any:
    """A full navigation to a backend route (a client-side redirect would stay in the SPA)."""
    url = f"{backend_origin(state)}{path}?{urlencode(params)}"
    return rx.call_script(f"window.location.assign({json.dumps(url)})")


def _safe_next(path: str) -> str:
    path = path[:500]
    if not path.startswith("/") or path.startswith(("//", routes.SETUP, routes.SIGN_IN)):
        return routes.TABLES
    return path


class AuthState(rx.State):
    """The set-up, sign-in and invitation pages' forms."""

    error: str = ""
    busy: bool = False
    oidc_enabled: bool = False
    oidc_label: str = ""
    password_rule: str = accounts.PASSWORD_RULE
    invitation_workspace: str = ""
    invitation_role: str = ""
    invitation_by: str = ""
    invitation_error: str = ""
    signed_in_as: str = ""
    """The invitation page: the account that would accept it ("" when signed out)."""

    _next: str = routes.TABLES
    _invitation_code: str = ""

    def _client(self) -> tuple[str, str]:
        session = self.router.session
        return session.client_ip[:64], (self.router.headers.user_agent or "")[:200]

    def _return_to(self) -> str:
        return page_origin(self) + self._next

    def _sso_settings(self) -> None:
        settings = get_runtime().settings
        self.oidc_enabled = settings.oidc_enabled
        self.oidc_label = settings.oidc_label

    async def _signed_in_email(self) -> str:
        try:
            decision = await decide(self, None, {})
        except EnrichmentAppError:
            return ""
        return decision.principal.email

    # --- first run --------------------------------------------------------------------

    async def _new_account(self, form: dict[str, Any], work: Any, **extra: Any):
        """Create an account from the form with ``work`` (a unit of work in ``sign_ins``) and
        send the browser to redeem the new session's ticket."""
        self.error = ""
        password = _field(form, "password")
        if password != _field(form, "password_again"):
            self.error = "The two passwords differ: type the same password twice."
            return None
        runtime = get_runtime()
        ip, agent = self._client()
        try:
            ticket = await in_transaction(
                runtime.open_session,
                work,
                box=runtime.secret_box,
                policy=runtime.session_policy,
                email=_field(form, "email"),
                name=_field(form, "name"),
                password=password,
                return_to=page_origin(self) + routes.TABLES,
                ip=ip,
                user_agent=agent,
                **extra,
            )
        except EnrichmentAppError as exc:
            self.error = exc.message
            return None
        self.busy = True
        return go_to_backend(self, "/auth/session", ticket=ticket, to=self._return_to())

    @rx.event
    @public("the owner set-up page, shown only while no account exists")
    async def load_setup(self):
        self.error, self.busy = "", False
        if not await in_session(get_runtime().open_session, accounts.setup_pending):
            return rx.redirect(routes.SIGN_IN, replace=True)
        return None

    @rx.event
    @public("creates the first account; refused once any account exists")
    async def create_owner(self, form: dict[str, Any]):
        return await self._new_account(form, sign_ins.set_up_owner)

    # --- signing in -------------------------------------------------------------------

    @rx.event
    @public("the sign-in page")
    async def load_sign_in(self):
        self.busy = False
        self._sso_settings()
        query = self.router.url.query_parameters
        self._next = _safe_next(str(query.get("next", routes.TABLES)))
        error = str(query.get("error", ""))[:300]  # from /auth/* (SSO, a used sign-in link)
        self.error = f"Sign-in did not finish: {error}" if error else ""
        runtime = get_runtime()
        if await in_session(runtime.open_session, accounts.setup_pending):
            return rx.redirect(routes.SETUP, replace=True)
        if await self._signed_in_email():
            return rx.redirect(self._next, replace=True)
        return None

    @rx.event
    @public("checks a password; attempts are limited per email and address")
    async def sign_in(self, form: dict[str, Any]):
        self.error = ""
        runtime = get_runtime()
        ip, agent = self._client()
        email = _field(form, "email")
        try:
            ticket = await in_transaction(
                runtime.open_session,
                sign_ins.sign_in_with_password,
                box=runtime.secret_box,
                policy=runtime.session_policy,
                failure_limit=runtime.settings.login_failure_limit,
                email=email,
                password=_field(form, "password"),
                return_to=self._return_to(),
                ip=ip,
                user_agent=agent,
            )
        except EnrichmentAppError as exc:
            if isinstance(exc, InvalidInputError) and not hasattr(exc, "retry_after"):
                await in_transaction(
                    runtime.open_session, sign_ins.record_failure, email=email, ip=ip
                )
            self.error = exc.message
            return None
        self.busy = True
        return go_to_backend(self, "/auth/session", ticket=ticket, to=self._return_to())

    @rx.event
    @public("sends the browser to the single sign-on provider")
    def start_sso(self):
        if not get_runtime().settings.oidc_enabled:
            self.error = "Single sign-on is not configured on this server."
            return None
        params = {"to": self._return_to()}
        if self._invitation_code:
            params["invitation"] = self._invitation_code
        self.busy = True
        return go_to_backend(self, "/auth/oidc/start", **params)

    # --- invitations ------------------------------------------------------------------

    @rx.event
    @public("the invitation page: shows the workspace and role an invitation grants")
    async def load_invitation(self):
        self.busy, self.error, self.invitation_error = False, "", ""
        self._sso_settings()
        code = self.router.url.path.rstrip("/").rpartition("/")[2][:100]
        self._invitation_code = code
        self._next = routes.TABLES
        runtime = get_runtime()
        try:
            info = await in_session(
                runtime.open_session,
                workspaces.invitation_info,
                box=runtime.secret_box,
                code=code,
                now=utcnow(),
            )
        except EnrichmentAppError as exc:
            self.invitation_error = exc.message
            self.invitation_workspace = self.invitation_role = self.invitation_by = ""
            return
        self.invitation_workspace = info.workspace
        self.invitation_role = info.role
        self.invitation_by = info.invited_by
        self.signed_in_as = await self._signed_in_email()

    @rx.event
    @signed_in
    async def accept_invitation(self):
        """Join the invitation's workspace with the account this browser is signed in as."""
        principal = current_principal()
        runtime = get_runtime()
        try:
            await in_transaction(
                runtime.open_session,
                sign_ins.accept_invitation,
                box=runtime.secret_box,
                code=self._invitation_code,
                user_id=principal.user_id,
                email=principal.email,
            )
        except EnrichmentAppError as exc:
            self.error = exc.message
            return None
        return rx.redirect(routes.TABLES)

    @rx.event
    @public("creates an account with an invitation (the invitation is checked first)")
    async def join(self, form: dict[str, Any]):
        return await self._new_account(
            form, sign_ins.join_by_invitation, code=self._invitation_code
        )

    # --- signing out ------------------------------------------------------------------

    async def _sign_out(self, everywhere: bool):
        principal = current_principal()
        await in_transaction(
            get_runtime().open_session,
            sign_ins.sign_out,
            session_id=principal.session_id,
            user_id=principal.user_id,
            email=principal.email,
            everywhere=everywhere,
        )
        return go_to_backend(self, "/auth/signed-out", to=page_origin(self) + routes.SIGN_IN)

    @rx.event
    @signed_in
    async def sign_out(self):
        return await self._sign_out(everywhere=False)

    @rx.event
    @signed_in
    async def sign_out_everywhere(self):
        """Revoke every session of this account: every tab stops at its next event."""
        return await self._sign_out(everywhere=True)
