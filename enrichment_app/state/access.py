"""The access rule at the edge: ``@guard(Action.X)`` on every event handler.

A client can send any event name with any arguments over the websocket, so each handler
checks who is asking, every time, before it runs:

    @rx.event
    @guard(Action.RUN)               # the open table (``self.table_id``) by default
    async def run(self): ...

    @rx.event
    @guard(Action.EXPORT, target=table_argument("table_id"))
    async def export_csv(self, table_id: int, ...): ...

The guard reads the session token from the websocket handshake's ``Cookie`` header
(``self.router.headers.cookie``: the HttpOnly cookie the ``/auth/session`` route set; Reflex
keeps it on the server and never sends it to the browser), resolves it against the database
(``services/sessions.resolve``: revoked, idle and expired sessions stop at once) and asks the
one rule, ``services/access.authorize``, for the action on the target. Then:

* no live session: the handler does not run; the browser goes to the sign-in page (or to the
  set-up page while no account exists);
* a table or workspace that is not the user's, or a role too low: the handler does not run;
  the state's ``access_message`` says why, and its ``_refused`` hook may react (the table page
  shows "not found");
* allowed: the handler runs, and ``current_grant()`` is what was allowed (the workspace, the
  role, who, for the audit log).

``@public("why")`` marks the few handlers that must work signed out (signing in, setting up,
opening an invitation). ``tests/state/test_access_enumeration.py`` walks every handler of every
state class in ``enrichment_app.state`` and fails on one with neither decorator, then proves
each refuses a missing session, a wrong workspace and a too-low role, database unchanged.

Background loops call ``await self._still_allowed()`` on every round, so a tab whose session
was revoked stops receiving a table's data within about a second: an allowed re-check is shared
by the session's tabs for a second (``RecentlyAllowed``), so 500 tabs cost one read, not 500.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import reflex as rx
from reflex.istate.proxy import StateProxy
from sqlmodel import Session

from enrichment_app import routes
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import utcnow
from enrichment_app.errors import AccessDenied, AuthError, NotFoundError, SignInRequired
from enrichment_app.keyring import SecretBox
from enrichment_app.runtime import get_runtime
from enrichment_app.services import accounts, sessions, workspaces
from enrichment_app.services.access import (
    Action,
    Grant,
    RecentlyAllowed,
    UserPrincipal,
    authorize,
)
from enrichment_app.services.sessions import SessionPolicy

_RECENTLY_ALLOWED = RecentlyAllowed(seconds=1.0)

CURRENT_WORKSPACE = -1
"""A target naming the user's current workspace (the switcher's choice)."""

Target = Callable[[Any, Mapping[str, Any]], dict[str, int] | Awaitable[dict[str, int]]]
"""(state, the handler's arguments) -> ``authorize``'s target: table_id, job_id or workspace_id
(or an awaitable of it, for a target read from another state)."""

_GRANT: ContextVar[Grant | None] = ContextVar("enrichment_app_grant", default=None)
_PRINCIPAL: ContextVar[UserPrincipal | None] = ContextVar("enrichment_app_principal", default=None)


def current_grant() -> Grant:
    """What the guard allowed for the handler that is running."""
    grant = _GRANT.get()
    if grant is None:
        raise SignInRequired("Sign in to continue.")
    return grant


def current_principal() -> UserPrincipal:
    """The signed-in user the guard found for the handler that is running."""
    principal = _PRINCIPAL.get()
    if principal is None:
        raise SignInRequired("Sign in to continue.")
    return principal


# --- targets -------------------------------------------------------------------------------


def open_table(state: Any, _arguments: Mapping[str, Any]) -> dict[str, int]:
    """The table the page has open (``table_id``)."""
    return {"table_id": int(state.table_id)}


def open_job(state: Any, _arguments: Mapping[str, Any]) -> dict[str, int]:
    """The job the page shows (its table when there is none)."""
    job_id = int(state.job_id)
    return {"job_id": job_id} if job_id else {"table_id": int(state.table_id)}


def url_table(state: Any, _arguments: Mapping[str, Any]) -> dict[str, int]:
    """The table named in the page's URL (``/tables/<id>``), for the page's load."""
    raw = state.router.url.path.rstrip("/").rpartition("/")[2]
    return {"table_id": int(raw) if raw.isdigit() and len(raw) < 19 else 0}


def table_argument(name: str) -> Target:
    """The table whose id the handler was given as argument ``name``."""

    def target(_state: Any, arguments: Mapping[str, Any]) -> dict[str, int]:
        return {"table_id": _int(arguments.get(name))}

    return target


def workspace_argument(name: str) -> Target:
    def target(_state: Any, arguments: Mapping[str, Any]) -> dict[str, int]:
        return {"workspace_id": _int(arguments.get(name))}

    return target


def current_workspace(_state: Any, _arguments: Mapping[str, Any]) -> dict[str, int]:
    """The user's current workspace: the tables page, members, tokens, the audit log."""
    return {"workspace_id": CURRENT_WORKSPACE}


def _int(value: object) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0
    return number if 0 <= number < 2**63 else 0


# --- deciding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Decision:
    principal: UserPrincipal
    grant: Grant | None


def _decide(
    session: Session,
    *,
    box: SecretBox,
    policy: SessionPolicy,
    token: str | None,
    action: Action | None,
    where: dict[str, int],
) -> _Decision:
    """Resolve the session and ask the rule, in one transaction (``action`` None: signed in)."""
    principal = sessions.resolve(session, box=box, token=token, policy=policy, now=utcnow())
    if principal is None:
        raise SignInRequired("Your session has ended: sign in again.")
    if action is None:
        return _Decision(principal, None)
    if where.get("workspace_id") == CURRENT_WORKSPACE:
        current = workspaces.current_workspace(session, user_id=principal.user_id)
        if current is None:
            raise NotFoundError(
                "You are not a member of any workspace: ask an admin to invite you."
            )
        where = {"workspace_id": current.id}
    return _Decision(principal, authorize(session, principal, action, **where))


def session_token(state: Any) -> str | None:
    """The session token in the websocket handshake's cookies (server-side only)."""
    return sessions.token_from_cookie_header(state.router.headers.cookie)


async def decide(state: Any, action: Action | None, where: dict[str, int]) -> _Decision:
    runtime = get_runtime()
    return await in_transaction(
        runtime.open_session,
        _decide,
        box=runtime.secret_box,
        policy=runtime.session_policy,
        token=session_token(state),
        action=action,
        where=where,
    )


async def sign_in_redirect(state: Any) -> Any:
    """Where a signed-out tab goes: the set-up page on a fresh install, else the sign-in page."""
    if await in_session(get_runtime().open_session, accounts.setup_pending):
        return rx.redirect(routes.SETUP, replace=True)
    path = state.router.url.path or "/"
    return rx.redirect(routes.sign_in_url(path), replace=True)


async def _check(
    state: Any, action: Action | None, target: Target, arguments: Mapping[str, Any]
) -> _Decision | Any:
    """The decision, or the events to send instead of running the handler."""
    try:
        where = target(state, arguments) if action is not None else {}
        if inspect.isawaitable(where):
            where = await where
        return await decide(state, action, where)
    except SignInRequired:
        return await sign_in_redirect(state)
    except (NotFoundError, AccessDenied) as exc:
        return await _refuse(state, exc)


async def _refuse(state: Any, exc: AuthError | NotFoundError) -> Any:
    if isinstance(state, StateProxy):
        async with state:
            return _apply_refusal(state, exc)
    return _apply_refusal(state, exc)


def _apply_refusal(state: Any, exc: AuthError | NotFoundError) -> Any:
    state.access_message = exc.message
    hook = getattr(state, "_refused", None)
    return hook(exc) if hook is not None else None


# --- the decorators ------------------------------------------------------------------------


def guard(action: Action, *, target: Target = open_table) -> Callable[[Any], Any]:
    """Run the handler only if the signed-in user may do ``action`` on ``target``."""
    return _guarded(action, target)


def signed_in(fn: Any) -> Any:
    """Run the handler for any signed-in user (their own account: sign out, switch, tokens
    of their own); what it touches it checks with ``authorize`` itself."""
    return _guarded(None, current_workspace)(fn)


def public(reason: str) -> Callable[[Any], Any]:
    """Mark a handler that must work signed out (signing in, set-up, an invitation's page)."""

    def mark(fn: Any) -> Any:
        fn.__access__ = f"public: {reason}"
        return fn

    return mark


def _guarded(action: Action | None, target: Target) -> Callable[[Any], Any]:
    def decorate(fn: Any) -> Any:
        signature = inspect.signature(fn)

        def arguments(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            try:
                return dict(signature.bind(self, *args, **kwargs).arguments)
            except TypeError:
                return {}

        async def check(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            outcome = await _check(self, action, target, arguments(self, args, kwargs))
            if isinstance(outcome, _Decision):
                _PRINCIPAL.set(outcome.principal)
                _GRANT.set(outcome.grant)
                if getattr(self, "access_message", ""):  # the last refusal no longer holds
                    if isinstance(self, StateProxy):  # a background event: take the lock
                        async with self:
                            self.access_message = ""
                    else:
                        self.access_message = ""
            return outcome

        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            async def guarded_stream(self: Any, *args: Any, **kwargs: Any) -> Any:
                outcome = await check(self, args, kwargs)
                if not isinstance(outcome, _Decision):
                    if outcome is not None:
                        yield outcome
                    return
                async for item in fn(self, *args, **kwargs):
                    yield item

            wrapper: Any = guarded_stream
        else:

            @functools.wraps(fn)
            async def guarded_call(self: Any, *args: Any, **kwargs: Any) -> Any:
                outcome = await check(self, args, kwargs)
                if not isinstance(outcome, _Decision):
                    return outcome
                result = fn(self, *args, **kwargs)
                return await result if inspect.isawaitable(result) else result

            wrapper = guarded_call
        wrapper.__access__ = action.value if action is not None else "signed in"
        return wrapper

    return decorate


class Guarded(rx.State, mixin=True):
    """What every guarded state has: the last refusal's message, and a re-check for loops."""

    access_message: str = ""
    """Why the last event was refused (a table that is not yours, a role too low)."""

    async def _still_allowed(self, action: Action = Action.VIEW) -> bool:
        """Whether this tab may still do ``action`` on its open table (for background loops:
        call it every round; it ends a revoked session's live feed at once)."""
        try:
            async with self:
                where = open_table(self, {})
            key = RecentlyAllowed.key(session_token(self), action, where)
            now = time.monotonic()
            if _RECENTLY_ALLOWED.allowed(key, now):
                return True
            await decide(self, action, where)
            _RECENTLY_ALLOWED.remember(key, now)
        except NotFoundError as exc:  # deleted, or moved out of the user's workspaces
            async with self:
                hook = getattr(self, "_refused", None)
                if hook is not None:
                    hook(exc)
            return False
        except AuthError:
            return False
        return True
