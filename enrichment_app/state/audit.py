"""The audit log page (admins): who did what, to what, when; paged, filtered by table, user and
action."""

from __future__ import annotations

from typing import Any

import reflex as rx
from sqlmodel import Session

from enrichment_app.db.sessions import in_session
from enrichment_app.runtime import get_runtime
from enrichment_app.services import audit, tables as table_service, workspaces
from enrichment_app.services.access import Action, Grant
from enrichment_app.services.audit import Audited, AuditFilter
from enrichment_app.state.access import Guarded, current_grant, current_workspace, guard

ACTIONS = sorted({a.value.partition(".")[0] for a in Audited} | {a.value for a in Audited})
"""Filter choices: a whole kind ("table") or one action ("table.delete")."""


def _read(session: Session, *, grant: Grant, where: AuditFilter, page: int) -> dict[str, Any]:
    found = audit.read(session, workspace_id=grant.workspace_id, where=where, page=page)
    tables = table_service.list_tables(session, workspace_id=grant.workspace_id)
    members = workspaces.members(session, workspace_id=grant.workspace_id)
    return {
        "events": [
            {
                "at": e.at.strftime("%Y-%m-%d %H:%M:%S"),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            }
            for e in found.events
        ],
        "total": found.total,
        "page": found.page,
        "pages": found.pages,
        "tables": [{"id": str(t.id), "name": t.name} for t in tables],
        "users": [{"id": str(m.user_id), "email": m.email} for m in members],
    }


def _int_or_none(value: object) -> int | None:
    text = str(value)[:20]
    return int(text) if text.isdigit() else None


class AuditState(Guarded, rx.State):
    events: list[dict[str, str]] = []
    total: int = 0
    page: int = 1
    pages: int = 1
    table_filter: str = ""
    user_filter: str = ""
    action_filter: str = ""
    tables: list[dict[str, str]] = []
    users: list[dict[str, str]] = []
    actions: list[str] = ACTIONS

    async def _reload(self) -> None:
        where = AuditFilter(
            table_id=_int_or_none(self.table_filter),
            user_id=_int_or_none(self.user_filter),
            action=self.action_filter if self.action_filter in ACTIONS else "",
        )
        found = await in_session(
            get_runtime().open_session, _read, grant=current_grant(), where=where, page=self.page
        )
        self.events, self.total = found["events"], found["total"]
        self.page, self.pages = found["page"], found["pages"]
        self.tables, self.users = found["tables"], found["users"]

    @rx.event
    @guard(Action.VIEW_AUDIT, target=current_workspace)
    async def load(self):
        self.page = 1
        await self._reload()

    @rx.event
    @guard(Action.VIEW_AUDIT, target=current_workspace)
    async def filter_changed(self, name: str, value: str):
        """One filter changed ("table", "user" or "action"; "all" clears it)."""
        value = "" if value == "all" else str(value)[:40]
        if name == "table":
            self.table_filter = value
        elif name == "user":
            self.user_filter = value
        elif name == "action":
            self.action_filter = value
        self.page = 1
        await self._reload()

    @rx.event
    @guard(Action.VIEW_AUDIT, target=current_workspace)
    async def go_to_page(self, page: int):
        try:
            self.page = max(1, min(int(page), 10**6))
        except (TypeError, ValueError):
            self.page = 1
        await self._reload()
