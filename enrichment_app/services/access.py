"""The access rule: the one function that decides who may do what, for the page and the API.

``authorize(session, principal, action, table_id=…|job_id=…|workspace_id=…)`` returns a
``Grant`` or raises:

* ``SignInRequired`` when there is no principal (no session, an expired or revoked one, no
  valid token); the page sends the browser to sign in, the API answers 401;
* ``NotFoundError`` when the table, job or workspace is not in a workspace the principal
  belongs to, worded exactly as for one that does not exist (404), so a workspace learns
  nothing about another's tables;
* ``AccessDenied`` when the principal's role there is below the action's (403).

Every Reflex event handler (``state/access.py``'s ``@guard``) and every API route
(``api/callers.py``'s ``Caller.authorize``) calls it; ``tests/state/test_access_enumeration.py`` and
``tests/integration/test_api_auth.py`` enumerate them all and prove each refuses. Nothing turns
it off. Who the principal is comes from ``services/sessions.py`` (a browser's session cookie)
or ``services/api_tokens.py`` (a bearer token); this module only decides.

Roles, lowest first: viewer (read, export), editor (edit cells, add columns, create and import
tables, run, cancel), admin (delete tables, save credentials, members and invitations, limits,
the audit log), owner (rename and delete the workspace, make owners). The service key
(``ENRICHMENT_API_KEY``) is an owner of every workspace. A personal API token acts with the
lower of its own role and its creator's role today, in its one workspace.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session, select

from enrichment_app.db.models import DataTable, EnrichmentJob, Membership, Workspace
from enrichment_app.errors import AccessDenied, NotFoundError, SignInRequired


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value)
        except ValueError:
            raise NotFoundError(f"There is no role '{value[:40]}'.") from None


_RANKS = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


def lower(a: Role, b: Role) -> Role:
    return a if a.rank <= b.rank else b


class Action(StrEnum):
    """What a handler or route does, named for the role check (not for the audit log)."""

    VIEW = "view"
    """Open a table, read its rows and jobs, list a workspace's tables."""
    EXPORT = "export"
    EDIT = "edit"
    """Edit input cells, add or delete rows."""
    EDIT_COLUMNS = "edit_columns"
    CREATE_TABLE = "create_table"
    """Create a table, or import one from CSV."""
    RUN = "run"
    CANCEL = "cancel"
    DELETE_TABLE = "delete_table"
    SAVE_CREDENTIALS = "save_credentials"
    """Save a column config that holds credentials (a bearer token, a password)."""
    MANAGE_MEMBERS = "manage_members"
    """Invite, change roles, remove members."""
    MANAGE_LIMITS = "manage_limits"
    VIEW_AUDIT = "view_audit"
    MANAGE_WORKSPACE = "manage_workspace"
    """Rename or delete the workspace, make someone an owner."""


MIN_ROLE: dict[Action, Role] = {
    Action.VIEW: Role.VIEWER,
    Action.EXPORT: Role.VIEWER,
    Action.EDIT: Role.EDITOR,
    Action.EDIT_COLUMNS: Role.EDITOR,
    Action.CREATE_TABLE: Role.EDITOR,
    Action.RUN: Role.EDITOR,
    Action.CANCEL: Role.EDITOR,
    Action.DELETE_TABLE: Role.ADMIN,
    Action.SAVE_CREDENTIALS: Role.ADMIN,
    Action.MANAGE_MEMBERS: Role.ADMIN,
    Action.MANAGE_LIMITS: Role.ADMIN,
    Action.VIEW_AUDIT: Role.ADMIN,
    Action.MANAGE_WORKSPACE: Role.OWNER,
}
"""The least role each action needs (the roles table of docs/security.md)."""

_DOING = {
    Action.VIEW: "see this",
    Action.EXPORT: "export tables",
    Action.EDIT: "edit cells",
    Action.EDIT_COLUMNS: "add or change columns",
    Action.CREATE_TABLE: "create or import tables",
    Action.RUN: "run enrichments",
    Action.CANCEL: "cancel jobs",
    Action.DELETE_TABLE: "delete tables",
    Action.SAVE_CREDENTIALS: "save credentials in a column",
    Action.MANAGE_MEMBERS: "manage members and invitations",
    Action.MANAGE_LIMITS: "change the workspace's limits",
    Action.VIEW_AUDIT: "read the audit log",
    Action.MANAGE_WORKSPACE: "rename or delete the workspace",
}


# --- who is asking -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """A person signed in on the page (a live server-side session)."""

    user_id: int
    session_id: int
    email: str


@dataclass(frozen=True, slots=True)
class TokenPrincipal:
    """A personal API token: one workspace, at most ``role`` (and at most its creator's role)."""

    token_id: int
    user_id: int
    workspace_id: int
    role: Role
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    """``ENRICHMENT_API_KEY``: the deployment's own scripts, an owner of every workspace."""


Principal = UserPrincipal | TokenPrincipal | ServicePrincipal


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, for the audit log."""

    user_id: int | None
    label: str


def actor_of(principal: Principal) -> Actor:
    match principal:
        case UserPrincipal(user_id=user_id, email=email):
            return Actor(user_id, email)
        case TokenPrincipal(user_id=user_id, name=name, email=email):
            return Actor(user_id, f"API token '{name}' of {email}")
        case ServicePrincipal():
            return Actor(None, "the service key (ENRICHMENT_API_KEY)")


@dataclass(frozen=True, slots=True)
class Grant:
    """What ``authorize`` allowed: the action, where, with which role, for whom."""

    action: Action
    workspace_id: int
    role: Role
    actor: Actor
    table_id: int | None = None

    def allows(self, action: Action) -> bool:
        """Whether the same role here also allows ``action`` (to show or hide a button)."""
        return self.role.at_least(MIN_ROLE[action])


# --- the rule ------------------------------------------------------------------------------


def authorize(
    session: Session,
    principal: Principal | None,
    action: Action,
    *,
    table_id: int | None = None,
    job_id: int | None = None,
    workspace_id: int | None = None,
) -> Grant:
    """Decide whether ``principal`` may do ``action`` on the table, job or workspace given.

    Exactly one of ``table_id``, ``job_id`` and ``workspace_id`` names the target. Raises
    ``SignInRequired``, ``NotFoundError`` or ``AccessDenied`` (see the module docstring).
    """
    if sum(x is not None for x in (table_id, job_id, workspace_id)) != 1:
        raise ValueError("name exactly one of table_id, job_id and workspace_id")
    if principal is None:
        raise SignInRequired("Sign in to continue.")
    if job_id is not None:
        job = session.get(EnrichmentJob, job_id)
        if job is None or not _member_of(
            session, principal, _table_workspace(session, job.table_id)
        ):
            raise NotFoundError(f"Job {job_id} does not exist.")
        table_id = job.table_id
    if table_id is not None:
        workspace_id = _table_workspace(session, table_id)
        missing = f"Table {table_id} does not exist."
    else:
        missing = f"Workspace {workspace_id} does not exist."
    assert workspace_id is not None or table_id is not None
    role = _role_in(session, principal, workspace_id) if workspace_id is not None else None
    if role is None:
        raise NotFoundError(missing)
    assert workspace_id is not None
    needed = MIN_ROLE[action]
    if not role.at_least(needed):
        raise AccessDenied(
            f"Your role in this workspace is {role.value}: only {needed.value}s"
            f"{' and above' if needed is not Role.OWNER else ''} may {_DOING[action]}."
        )
    return Grant(action, workspace_id, role, actor_of(principal), table_id)


def role_in(session: Session, principal: Principal, workspace_id: int) -> Role | None:
    """The principal's role in the workspace (None when not a member), for showing the page."""
    return _role_in(session, principal, workspace_id)


def _table_workspace(session: Session, table_id: int) -> int | None:
    return session.exec(select(DataTable.workspace_id).where(DataTable.id == table_id)).first()


def _member_of(session: Session, principal: Principal, workspace_id: int | None) -> bool:
    return workspace_id is not None and _role_in(session, principal, workspace_id) is not None


def _role_in(session: Session, principal: Principal, workspace_id: int) -> Role | None:
    match principal:
        case ServicePrincipal():
            return Role.OWNER if session.get(Workspace, workspace_id) is not None else None
        case UserPrincipal(user_id=user_id):
            return _membership_role(session, user_id, workspace_id)
        case TokenPrincipal(user_id=user_id, workspace_id=scope, role=token_role):
            if scope != workspace_id:
                return None
            member = _membership_role(session, user_id, workspace_id)
            return None if member is None else lower(token_role, member)


def _membership_role(session: Session, user_id: int, workspace_id: int) -> Role | None:
    role = session.exec(
        select(Membership.role).where(
            Membership.user_id == user_id, Membership.workspace_id == workspace_id
        )
    ).first()
    return Role(role) if role is not None else None


class RecentlyAllowed:
    """Allowed decisions remembered for a moment, shared by every tab of a session.

    A tab's live loop re-checks its session about once a second (``_still_allowed``); with
    500 tabs of one account on one table that was 500 database reads a second, most of the
    backend's CPU in ``bench/fanout.py``. A decision is remembered under a digest of the
    session token (never the token itself), the action and the target, for ``seconds``; a
    refusal is never remembered, and handlers always decide afresh. So a revoked session's
    loops stop within ``seconds`` more than before, and its next event is refused at once.
    """

    def __init__(self, seconds: float = 1.0, *, most: int = 10_000) -> None:
        self.seconds = seconds
        self.most = most
        self._until: dict[tuple[str, str, tuple[tuple[str, int], ...]], float] = {}

    @staticmethod
    def key(
        token: str | None, action: Action, where: Mapping[str, int]
    ) -> tuple[str, str, tuple[tuple[str, int], ...]]:
        digest = hashlib.sha256((token or "").encode()).hexdigest()
        return (digest, action.value, tuple(sorted(where.items())))

    def allowed(self, key: tuple[str, str, tuple[tuple[str, int], ...]], now: float) -> bool:
        return self._until.get(key, float("-inf")) > now

    def remember(self, key: tuple[str, str, tuple[tuple[str, int], ...]], now: float) -> None:
        if len(self._until) >= self.most:
            self._until = {k: t for k, t in self._until.items() if t > now}
            if len(self._until) >= self.most:
                self._until.clear()
        self._until[key] = now + self.seconds

    def __len__(self) -> int:
        return len(self._until)
