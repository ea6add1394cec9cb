"""Every event handler of every state refuses who may not use it, and changes nothing.

The handlers are not listed by hand: they are read from the app (every ``rx.State`` subclass
defined in ``enrichment_app.state``, every name in its ``event_handlers``, Reflex's own
``setvar`` included). Each must carry the access rule's mark (``@guard``, ``@signed_in`` or
``@public``, ``state/access.py``): a new handler without one fails
``test_every_handler_goes_through_the_access_rule``, and one with no sample arguments below
fails ``test_every_handler_has_sample_arguments``.

Then each handler is sent through Reflex's own event processor, as the websocket would:

* **signed out** (no session cookie): the tab is sent to the sign-in page, nothing changes;
* **wrong workspace**: the owner of workspace B sends it about workspace A's table: refused
  ("does not exist"), A's data unchanged;
* **role too low**: a viewer of A sends a handler that needs more (run, edit, delete…):
  refused ("Your role…"), nothing changes;
* and the owner of A then sends it and is not refused, so the refusals were about who asked.

"Nothing changes" is a fingerprint of every row of every table in the database.
"""

from __future__ import annotations

from typing import Any

import pytest
import reflex as rx
from reflex.state import State
from sqlmodel import SQLModel, select, text

import enrichment_app.enrichment_app  # noqa: F401  (registers every page and state)
from enrichment_app.db.models import DataTable, Workspace
from enrichment_app.runtime import get_runtime
from enrichment_app.services.access import MIN_ROLE, Action, Role
from enrichment_app.state.account import AccountState
from enrichment_app.state.add_column import AddColumnState
from enrichment_app.state.audit import AuditState
from enrichment_app.state.auth import AuthState
from enrichment_app.state.settings import SettingsState
from enrichment_app.state.table import TableJobState, TableState, cursor_at
from enrichment_app.state.tables import IndexState, TablesState
from tests.state.conftest import Tab
from tests.support.accounts import add_user, session_cookie

TABLE_PAGE = "/tables/1"
ENRICHMENT_COLUMN = 3  # "Email domain" of the demo table


def app_states() -> list[type[rx.State]]:
    found: list[type[rx.State]] = []

    def walk(cls: type[rx.State]) -> None:
        for sub in cls.get_substates():
            if sub.__module__.startswith("enrichment_app.state"):
                found.append(sub)
            walk(sub)

    walk(State)
    return sorted(found, key=lambda c: c.get_full_name())


STATES = app_states()
HANDLERS = [(cls, name) for cls in STATES for name in sorted(cls.event_handlers)]

Sample = tuple[str, dict[str, Any]]
"""(page path, payload)."""

SAMPLES: dict[tuple[type[rx.State], str], Sample] = {
    (TableState, "load"): (TABLE_PAGE, {}),
    (TableState, "view"): (TABLE_PAGE, {"region": {"x": 0, "y": 0, "width": 5, "height": 20}}),
    (TableState, "select"): (TABLE_PAGE, {"selection": cursor_at(ENRICHMENT_COLUMN, 2)}),
    (TableState, "clear_selection"): (TABLE_PAGE, {}),
    (TableState, "edit_cell"): (TABLE_PAGE, {"pos": [0, 0], "new_cell": {"data": "Changed"}}),
    (TableJobState, "run"): (TABLE_PAGE, {}),
    (TableJobState, "cancel"): (TABLE_PAGE, {}),
    (TableJobState, "watch_table"): (TABLE_PAGE, {}),
    (TableJobState, "watch_job"): (TABLE_PAGE, {}),
    (TableJobState, "follow_run"): (TABLE_PAGE, {}),
    (TableState, "setvar"): (TABLE_PAGE, {"var_name": "table_id", "value": 2}),
    (TableJobState, "setvar"): (TABLE_PAGE, {"var_name": "job_id", "value": 2}),
    (TableState, "add_condition"): (
        TABLE_PAGE,
        {"form": {"column": "1", "op": "contains", "value": "a"}},
    ),
    (TableState, "remove_condition"): (f"{TABLE_PAGE}?f=1.not_empty", {"index": 0}),
    (TableState, "sort_changed"): (TABLE_PAGE, {"choice": "-1"}),
    (TableState, "search_changed"): (TABLE_PAGE, {"text": "a"}),
    (TableState, "clear_view"): (f"{TABLE_PAGE}?q=a", {}),
    (TableState, "choose_run_column"): (TABLE_PAGE, {"value": str(ENRICHMENT_COLUMN + 1)}),
    (TableJobState, "run_view"): (f"{TABLE_PAGE}?f=1.not_empty", {}),
    (TableState, "add_row"): (TABLE_PAGE, {}),
    (TableState, "paste"): (TABLE_PAGE, {"text": "Pasted\tpasted.example\n"}),
    (TableState, "clear_cells"): (TABLE_PAGE, {}),
    (TableState, "ask_delete_rows"): (TABLE_PAGE, {}),
    (TableState, "close_delete_rows"): (TABLE_PAGE, {}),
    (TableState, "delete_rows"): (TABLE_PAGE, {}),
    (TableState, "undo_delete"): (TABLE_PAGE, {}),
    (TableState, "dismiss_undo"): (TABLE_PAGE, {}),
    (TableState, "toggle_shortcuts"): (TABLE_PAGE, {"value": True}),
    (TableState, "open_column_menu"): (TABLE_PAGE, {"index": 0}),
    (TableState, "close_column_menu"): (TABLE_PAGE, {"value": False}),
    (TableState, "column_rename_changed"): (TABLE_PAGE, {"value": "Firm"}),
    (TableState, "rename_column"): (TABLE_PAGE, {}),
    (TableState, "move_column_by"): (TABLE_PAGE, {"step": 1}),
    (TableState, "ask_delete_column"): (TABLE_PAGE, {}),
    (TableState, "delete_column"): (TABLE_PAGE, {}),
    (TableState, "column_moved"): (TABLE_PAGE, {"start": 0, "end": 1}),
    (TableState, "column_resized"): (TABLE_PAGE, {"column": {"id": "c1"}, "width": 300}),
    (TableState, "save_column_width"): (TABLE_PAGE, {"column": {"id": "c1"}, "width": 300}),
    (AddColumnState, "open_changed"): (TABLE_PAGE, {"value": True}),
    (AddColumnState, "name_changed"): (TABLE_PAGE, {"value": "New column"}),
    (AddColumnState, "config_changed"): (TABLE_PAGE, {"value": '{"template": "Hi {Company}"}'}),
    (AddColumnState, "choose_enricher"): (TABLE_PAGE, {"value": "template"}),
    (AddColumnState, "submit"): (TABLE_PAGE, {}),
    (AddColumnState, "field_changed"): (TABLE_PAGE, {"key": "template", "value": "Hi {Company}"}),
    (AddColumnState, "insert_column"): (TABLE_PAGE, {"key": "template", "column": "Company"}),
    (AddColumnState, "open_edit"): (TABLE_PAGE, {}),
    (AddColumnState, "toggle_json"): (TABLE_PAGE, {}),
    (AddColumnState, "setvar"): (TABLE_PAGE, {"var_name": "name", "value": "x"}),
    (TablesState, "load"): ("/tables", {}),
    (TablesState, "table_name_changed"): ("/tables", {"value": "Name"}),
    (TablesState, "import_csv"): ("/tables", {"chunks": []}),
    (TablesState, "upload_progress"): ("/tables", {"progress": {"loaded": 1, "total": 9}}),
    (TablesState, "cancel_import"): ("/tables", {}),
    (TablesState, "export_csv"): ("/tables", {"table_id": 1, "name": "Demo", "raw": False}),
    (TablesState, "cancel_export"): ("/tables", {}),
    (TablesState, "delete_table"): ("/tables", {"table_id": 1}),
    (TablesState, "setvar"): ("/tables", {"var_name": "new_table_name", "value": "x"}),
    (IndexState, "open_first_table"): ("/", {}),
    (IndexState, "setvar"): ("/", {"var_name": "access_message", "value": "x"}),
    (AccountState, "load"): ("/tables", {}),
    (AccountState, "switch_workspace"): ("/tables", {"workspace_id": "1"}),
    (AccountState, "create_workspace"): ("/settings", {"form": {"name": "Another"}}),
    (AccountState, "setvar"): ("/tables", {"var_name": "email", "value": "x"}),
    (SettingsState, "load"): ("/settings", {}),
    (SettingsState, "create_invitation"): ("/settings", {"form": {"role": "editor", "note": "x"}}),
    (SettingsState, "revoke_invitation"): ("/settings", {"invitation_id": "1"}),
    (SettingsState, "change_role"): ("/settings", {"user_id": "USER", "role": "viewer"}),
    (SettingsState, "remove_member"): ("/settings", {"user_id": "USER"}),
    (SettingsState, "create_token"): ("/settings", {"form": {"role": "viewer", "name": "ci"}}),
    (SettingsState, "revoke_token"): ("/settings", {"token_id": "1"}),
    (SettingsState, "hide_secret"): ("/settings", {}),
    (SettingsState, "setvar"): ("/settings", {"var_name": "error", "value": "x"}),
    (AuditState, "load"): ("/audit", {}),
    (AuditState, "filter_changed"): ("/audit", {"name": "action", "value": "table"}),
    (AuditState, "go_to_page"): ("/audit", {"page": 2}),
    (AuditState, "setvar"): ("/audit", {"var_name": "page", "value": 3}),
    (AuthState, "load_setup"): ("/setup", {}),
    (AuthState, "create_owner"): (
        "/setup",
        {"form": {"email": "new@example.com", "password": "x"}},
    ),
    (AuthState, "load_sign_in"): ("/signin", {}),
    (AuthState, "sign_in"): ("/signin", {"form": {"email": "owner@example.com", "password": "no"}}),
    (AuthState, "start_sso"): ("/signin", {}),
    (AuthState, "load_invitation"): ("/invite/not-a-code", {}),
    (AuthState, "accept_invitation"): ("/invite/not-a-code", {}),
    (AuthState, "join"): ("/invite/not-a-code", {"form": {"email": "j@example.com"}}),
    (AuthState, "sign_out"): ("/tables", {}),
    (AuthState, "sign_out_everywhere"): ("/tables", {}),
    (AuthState, "setvar"): ("/signin", {"var_name": "error", "value": "x"}),
}

PUBLIC = {
    (AuthState, "load_setup"),
    (AuthState, "create_owner"),
    (AuthState, "load_sign_in"),
    (AuthState, "sign_in"),
    (AuthState, "start_sso"),
    (AuthState, "load_invitation"),
    (AuthState, "join"),
}
"""Handlers that must work signed out: they sign in. Each refuses its sample (a wrong
password, an unknown invitation, set-up after the owner exists) and changes no data."""

SIGNED_IN_ONLY = {
    (AccountState, "load"),
    (AuthState, "accept_invitation"),
    (AuthState, "sign_out"),
    (AuthState, "sign_out_everywhere"),
}
"""Handlers about the user's own account: any signed-in user (no workspace, no role)."""

NEEDS = {
    (TableState, "edit_cell"): Role.EDITOR,
    (TableJobState, "run"): Role.EDITOR,
    (TableJobState, "run_view"): Role.EDITOR,
    (TableJobState, "cancel"): Role.EDITOR,
    (TableState, "add_row"): Role.EDITOR,
    (TableState, "paste"): Role.EDITOR,
    (TableState, "clear_cells"): Role.EDITOR,
    (TableState, "ask_delete_rows"): Role.EDITOR,
    (TableState, "close_delete_rows"): Role.EDITOR,
    (TableState, "delete_rows"): Role.EDITOR,
    (TableState, "undo_delete"): Role.EDITOR,
    (TableState, "open_column_menu"): Role.EDITOR,
    (TableState, "close_column_menu"): Role.EDITOR,
    (TableState, "column_rename_changed"): Role.EDITOR,
    (TableState, "rename_column"): Role.EDITOR,
    (TableState, "move_column_by"): Role.EDITOR,
    (TableState, "ask_delete_column"): Role.EDITOR,
    (TableState, "delete_column"): Role.EDITOR,
    (TableState, "column_moved"): Role.EDITOR,
    (TableState, "save_column_width"): Role.EDITOR,
    (AddColumnState, "open_changed"): Role.EDITOR,
    (AddColumnState, "name_changed"): Role.EDITOR,
    (AddColumnState, "config_changed"): Role.EDITOR,
    (AddColumnState, "choose_enricher"): Role.EDITOR,
    (AddColumnState, "submit"): Role.EDITOR,
    (AddColumnState, "field_changed"): Role.EDITOR,
    (AddColumnState, "insert_column"): Role.EDITOR,
    (AddColumnState, "open_edit"): Role.EDITOR,
    (AddColumnState, "toggle_json"): Role.EDITOR,
    (TablesState, "table_name_changed"): Role.EDITOR,
    (TablesState, "import_csv"): Role.EDITOR,
    (TablesState, "upload_progress"): Role.EDITOR,
    (TablesState, "cancel_import"): Role.EDITOR,
    (TablesState, "delete_table"): Role.ADMIN,
    (SettingsState, "create_invitation"): Role.ADMIN,
    (SettingsState, "revoke_invitation"): Role.ADMIN,
    (SettingsState, "change_role"): Role.ADMIN,
    (SettingsState, "remove_member"): Role.ADMIN,
    (AuditState, "load"): Role.ADMIN,
    (AuditState, "filter_changed"): Role.ADMIN,
    (AuditState, "go_to_page"): Role.ADMIN,
}
"""The least role each handler needs, when more than a viewer's (the roles table of
docs/security.md, written here independently of the code, so a handler whose declared
action is lowered fails)."""

DESTRUCTIVE = {
    (TablesState, "delete_table"),
    (SettingsState, "remove_member"),
    (TableState, "delete_rows"),
    (TableState, "column_moved"),
}
"""Not sent by the owner at the end (they would take the fixtures away)."""


def action_of(cls: type[rx.State], name: str) -> str | None:
    return getattr(cls.event_handlers[name].fn, "__access__", None)


def test_every_handler_goes_through_the_access_rule() -> None:
    assert len(STATES) >= 8 and len(HANDLERS) >= 40
    unmarked = [
        f"{cls.__name__}.{name}"
        for cls, name in HANDLERS
        if name != "setvar" and action_of(cls, name) is None
    ]
    assert unmarked == [], f"handlers without @guard/@signed_in/@public: {unmarked}"
    public = {(c, n) for c, n in HANDLERS if str(action_of(c, n)).startswith("public")}
    assert public == PUBLIC
    signed_in = {(c, n) for c, n in HANDLERS if action_of(c, n) == "signed in"}
    assert signed_in == SIGNED_IN_ONLY


def test_each_handler_needs_the_role_the_roles_table_says() -> None:
    declared = {
        (c, n): MIN_ROLE[Action(a)]
        for c, n in HANDLERS
        if (a := action_of(c, n)) is not None and a in Action.__members__.values()
    }
    wrong = {
        f"{c.__name__}.{n}": (role.value, NEEDS.get((c, n), Role.VIEWER).value)
        for (c, n), role in declared.items()
        if role is not NEEDS.get((c, n), Role.VIEWER)
    }
    assert wrong == {}, f"(declared, expected): {wrong}"


def test_every_handler_has_sample_arguments() -> None:
    missing = [f"{c.__name__}.{n}" for c, n in HANDLERS if (c, n) not in SAMPLES]
    assert missing == [], f"add sample arguments for {missing} to SAMPLES"


# --- the database, before and after ---------------------------------------------------------


def fingerprint(workspace_id: int | None = None) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """Every row of every table (login attempts and the audit log aside: a refused sign-in
    is counted and logged on purpose); with ``workspace_id``, only that workspace's tables."""
    runtime = get_runtime()
    skip = {"login_attempt", "audit_event"}
    rows = []
    with runtime.open_session() as session:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in skip:
                continue
            query = f"SELECT * FROM {table.name}"
            if workspace_id is not None and "table_id" in table.c:
                query += f" WHERE table_id IN (SELECT id FROM data_table WHERE workspace_id = {workspace_id})"
            elif workspace_id is not None and "workspace_id" in table.c:
                query += f" WHERE workspace_id = {workspace_id}"
            found = session.exec(text(query + " ORDER BY 1")).all()  # type: ignore[call-overload]
            rows.append((table.name, tuple(tuple(r) for r in found)))
    return tuple(rows)


class People:
    """The owner and a viewer of workspace A (the default, with the demo table), and the
    owner of workspace B."""

    def __init__(self) -> None:
        runtime = get_runtime()
        with runtime.open_session() as session:
            b = Workspace(name="Workspace B")
            session.add(b)
            session.commit()
            assert b.id is not None
            self.b = b.id
            self.owner = add_user(session, email="owner@example.com", role=Role.OWNER, admin=True)
            self.viewer = add_user(session, email="viewer@example.com", role=Role.VIEWER)
            self.other = add_user(
                session, email="b-owner@example.com", role=Role.OWNER, workspace_id=self.b
            )
            box = runtime.secret_box
            self.owner_cookie = session_cookie(session, box=box, user_id=self.owner)
            self.viewer_cookie = session_cookie(session, box=box, user_id=self.viewer)
            self.other_cookie = session_cookie(session, box=box, user_id=self.other)
            assert session.exec(select(DataTable.workspace_id)).all() == [1]


def redirects(tab: Tab) -> list[str]:
    return [
        str(event.payload.get("path"))
        for update in tab.namespace.updates
        for event in update.events
        if event.name == "_redirect"
    ]


def payload_for(people: People, cls: type[rx.State], name: str) -> Sample:
    path, payload = SAMPLES[(cls, name)]
    payload = {k: (str(people.viewer) if v == "USER" else v) for k, v in payload.items()}
    return path, payload


async def prepare(tab: Tab, people: People) -> None:
    """As the owner: the table open with enrichment cells selected (so Run would run)."""
    tab.cookie = people.owner_cookie
    await tab.send(TableState, "load", path=TABLE_PAGE)
    await tab.send(TableState, "select", path=TABLE_PAGE, selection=cursor_at(ENRICHMENT_COLUMN, 2))
    await tab.send(SettingsState, "load", path="/settings")
    state = await tab.state(TableState)
    assert state.table_id == 1 and state.run_count == 1 and state.access_message == ""


async def setvar_sets_nothing(
    tab: Tab, people: People, cls: type[rx.State], path: str, payload: dict[str, Any]
) -> None:
    """Reflex's own ``setvar`` calls ``set_<var>``; no state here has such a setter (its
    handlers are named otherwise, and guarded), so even the owner sets nothing with it."""
    assert not [a for a in dir(cls) if a.startswith("set_") and a != "set_is_hydrated"]
    for cookie in ("", people.viewer_cookie, people.owner_cookie):
        tab.cookie = cookie
        before, vars_before = fingerprint(), dict((await tab.state(cls)).dict())
        with pytest.raises(AttributeError):
            await tab.send(cls, "setvar", path=path, **payload)
        assert fingerprint() == before
        assert dict((await tab.state(cls)).dict()) == vars_before


@pytest.mark.parametrize(("cls", "name"), HANDLERS, ids=[f"{c.__name__}.{n}" for c, n in HANDLERS])
async def test_each_handler_refuses_and_changes_nothing(
    signed_out_tab: Tab, cls: type[rx.State], name: str
) -> None:
    tab = signed_out_tab
    people = People()
    await prepare(tab, people)
    path, payload = payload_for(people, cls, name)
    action = action_of(cls, name)

    if name == "setvar":
        await setvar_sets_nothing(tab, people, cls, path, payload)
        return

    # Signed out: sent to sign in (a public handler refuses its sample with a message).
    before = fingerprint()
    tab.cookie = ""
    tab.namespace.updates.clear()
    await tab.send(cls, name, path=path, **payload)
    assert fingerprint() == before, "a signed-out event changed the database"
    if (cls, name) in PUBLIC:
        state = await tab.state(cls)
        if not name.startswith("load_"):  # a page that shows a form refuses nothing
            assert state.error, f"{name} did not say why it refused its sample"
    else:
        assert any(p.startswith("/signin") for p in redirects(tab)), redirects(tab)

    if (cls, name) in PUBLIC | SIGNED_IN_ONLY:
        return

    # Another workspace's owner, about workspace A's table: A's data stays as it was.
    before_a = fingerprint(1)
    tab.cookie = people.other_cookie
    await tab.send(cls, name, path=path, **payload)
    state = await tab.state(cls)
    assert fingerprint(1) == before_a, "another workspace's owner changed workspace A"
    targets_current_workspace = path in ("/tables", "/settings", "/audit", "/") and name not in (
        "export_csv",
        "delete_table",
        "switch_workspace",
    )
    if not targets_current_workspace:  # those act on B's own workspace, which is theirs
        assert "does not exist" in state.access_message, state.access_message

    # A viewer of workspace A, for what needs more than a viewer.
    assert action is not None
    if MIN_ROLE[Action(action)] is not Role.VIEWER:
        await prepare(tab, people)
        before = fingerprint()
        tab.cookie = people.viewer_cookie
        await tab.send(cls, name, path=path, **payload)
        state = await tab.state(cls)
        assert fingerprint() == before, "a viewer's refused event changed the database"
        assert "Your role in this workspace is viewer" in state.access_message

    # The owner of A is not refused: the refusals above were about who asked.
    if (cls, name) not in DESTRUCTIVE:
        await prepare(tab, people)
        tab.namespace.updates.clear()
        await tab.send(cls, name, path=path, **payload)
        state = await tab.state(cls)
        assert state.access_message == "", state.access_message
        assert not any(p.startswith("/signin") for p in redirects(tab))
