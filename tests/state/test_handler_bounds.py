"""Every event handler that takes client arguments keeps the state bounded, whatever it is sent.

The handlers are read from the page's state classes, so a new handler with arguments fails
``test_every_handler_with_arguments_has_hostile_cases`` until it has cases here. Each case goes
through Reflex's real event processor (tests/state/conftest.py), as a websocket event would,
on a table of 5,000 rows; afterwards every state's public vars must still fit in
``MAX_STATE_CHARS`` (what the browser would be sent), the window must hold no more rows than a
screen and its buffers, and the page must still answer an ordinary event.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
import reflex as rx

from enrichment_app.db.sessions import unit_of_work
from enrichment_app.runtime import get_runtime
from enrichment_app.selection import MAX_RANGES
from enrichment_app.services.tables import ColumnSpec, create_table
from enrichment_app.state.add_column import AddColumnState
from enrichment_app.state.table import TableState, cursor_at
from enrichment_app.state.table.window import MAX_VISIBLE_ROWS, WINDOW_BUFFER_ROWS
from enrichment_app.state.tables import IndexState, TablesState
from tests.state.conftest import Tab

STATES: tuple[type[rx.State], ...] = (TableState, TablesState, AddColumnState, IndexState)
BIG_ROWS = 5000
MAX_STATE_CHARS = 120_000
"""Far above what any state holds for a screenful (the table state's window of 520 rows of
three short cells is about 60,000 characters) and far below what an unbounded one reaches."""
HUGE = "x" * 1_000_000
HUGE_INT = 10**30


def _rects(n: int) -> list[dict[str, int]]:
    return [{"x": 0, "y": i, "width": 3, "height": 1} for i in range(n)]


def _selection(**current: Any) -> dict[str, Any]:
    selection = cursor_at(0, 0)
    selection["current"].update(current)  # type: ignore[union-attr]
    return selection


HOSTILE: dict[str, list[dict[str, Any]]] = {
    "TableState.view": [
        {"region": {"x": 0, "y": 0, "width": 3, "height": 10**9}},
        {"region": {"x": 0, "y": 10**9, "width": 3, "height": HUGE_INT}},
        {"region": {"x": 0, "y": -(10**9), "width": 3, "height": BIG_ROWS}},
        {"region": {"y": "zero", "height": [1]}},
        {"region": HUGE},
    ],
    "TableState.select": [
        {"selection": _selection(rangeStack=_rects(100_000))},
        {"selection": {**cursor_at(0, 0), "columns": {"items": [[0, 3]] * 100_000}}},
        {"selection": {**cursor_at(0, 0), "rows": {"items": [[0, HUGE_INT]] * 100_000}}},
        {"selection": _selection(cell=[HUGE_INT, -HUGE_INT], range={"x": 0, "height": 10**9})},
        {"selection": {**cursor_at(0, 0), "junk": HUGE}},
        {"selection": HUGE},
    ],
    "TableState.edit_cell": [
        {"pos": [0, 0], "new_cell": {"kind": "text", "data": HUGE}},
        {"pos": [0, 0], "new_cell": {"data": {"nested": HUGE}}},
        {"pos": [0, 0], "new_cell": {"data": 10**4000}},
        {"pos": [HUGE_INT, 0], "new_cell": {"data": "x"}},
        {"pos": ["a", "b"], "new_cell": HUGE},
        {"pos": HUGE, "new_cell": None},
    ],
    "TableState.add_condition": [
        {"form": {"column": "1", "op": "contains", "value": HUGE}},
        {"form": {"column": HUGE, "op": HUGE, "value": HUGE}},
        {"form": {"column": str(HUGE_INT), "op": "empty"}},
        {"form": {"column": "1", "op": "status:" + HUGE}},
        {"form": {"column": ["1"], "op": {"x": HUGE}, "value": [HUGE]}},
        {"form": HUGE},
    ],
    "TableState.remove_condition": [{"index": HUGE_INT}, {"index": HUGE}, {"index": -1}],
    "TableState.sort_changed": [{"choice": HUGE}, {"choice": str(HUGE_INT)}, {"choice": None}],
    "TableState.search_changed": [{"text": HUGE}, {"text": None}, {"text": ["x"] * 1000}],
    "TableState.choose_run_column": [{"value": HUGE}, {"value": str(HUGE_INT)}, {"value": 3}],
    "TableState.paste": [
        {"text": HUGE},
        {"text": ("a\tb\n" * 200_000)},
        {"text": '"' + HUGE},
        {"text": {"html": HUGE}},
        {"text": None},
    ],
    "TableState.clear_cells": [
        {"selection": HUGE},
        {"selection": None},
        {"selection": _selection(rangeStack=_rects(100_000))},
    ],
    "TableState.toggle_shortcuts": [{"value": HUGE}, {"value": [True]}],
    "TableState.open_column_menu": [
        {"index": HUGE_INT, "_bounds": HUGE},
        {"index": [HUGE_INT, 0]},
        {"index": HUGE},
        {"index": -1},
    ],
    "TableState.close_column_menu": [{"value": HUGE}],
    "TableState.column_rename_changed": [{"value": HUGE}, {"value": {"a": HUGE}}],
    "TableState.move_column_by": [{"step": HUGE_INT}, {"step": HUGE}],
    "TableState.column_moved": [
        {"start": HUGE_INT, "end": 0},
        {"start": 0, "end": HUGE},
        {"start": -5, "end": 1.5},
    ],
    "TableState.column_resized": [
        {"column": {"id": "c1"}, "width": HUGE_INT},
        {"column": HUGE, "width": 10},
        {"column": {"id": HUGE}, "width": 1e308},
    ],
    "TableState.save_column_width": [
        {"column": {"id": "c1"}, "width": HUGE_INT},
        {"column": {"id": "c1"}, "width": float("nan")},
        {"column": HUGE, "width": "wide"},
    ],
    "TablesState.table_name_changed": [{"value": HUGE}, {"value": 5}, {"value": None}],
    "TablesState.import_csv": [{"chunks": []}, {"chunks": HUGE}, {"chunks": [HUGE]}],
    "TablesState.upload_progress": [
        {"progress": HUGE},
        {"progress": {"total": HUGE_INT, "loaded": HUGE}},
        {"progress": {"total": "9" * 5000}},
        {"progress": {"total": True}},
    ],
    "TablesState.export_csv": [
        {"table_id": HUGE_INT, "name": HUGE, "raw": HUGE},
        {"table_id": "1", "name": None, "raw": True},
        {"table_id": -1, "name": HUGE, "raw": False},
    ],
    "TablesState.delete_table": [{"table_id": HUGE_INT}, {"table_id": "1"}, {"table_id": 1.5}],
    "AddColumnState.open_changed": [{"value": HUGE}, {"value": [True]}],
    "AddColumnState.name_changed": [{"value": HUGE}, {"value": {"a": HUGE}}],
    "AddColumnState.config_changed": [{"value": HUGE}, {"value": 7}],
    "AddColumnState.choose_enricher": [{"value": HUGE}, {"value": None}],
    "AddColumnState.field_changed": [
        {"key": "template", "value": HUGE},
        {"key": HUGE, "value": "x"},
        {"key": ["template"], "value": {"a": HUGE}},
    ],
    "AddColumnState.insert_column": [
        {"key": "template", "column": HUGE},
        {"key": HUGE, "column": None},
    ],
}
SETVAR = [
    {"var_name": "window_cells", "value": HUGE},
    {"var_name": "selection", "value": {"current": {"rangeStack": _rects(100_000)}}},
    {"var_name": "is_hydrated", "value": HUGE},
    {"var_name": "new_table_name", "value": HUGE},
    {"var_name": "name", "value": HUGE},
    {"var_name": HUGE, "value": HUGE},
]
"""Reflex gives every state ``setvar(var_name, value)``, which calls the var's ``set_`` handler:
the explicit ones above, and Reflex's own ``set_is_hydrated``."""
ROOT_STATE_CHARS = 1_100_000
"""Reflex's own root state keeps whatever ``set_is_hydrated`` is sent (it is Reflex's handler,
not ours); what bounds it is Reflex's cap on one websocket message, 1,000,000 bytes
(``REFLEX_SOCKET_MAX_HTTP_BUFFER_SIZE``)."""
for state in ("TableState", "TablesState", "AddColumnState", "IndexState"):
    HOSTILE[f"{state}.setvar"] = SETVAR


def _with_arguments() -> list[str]:
    found = []
    for state in STATES:
        for name, handler in state.event_handlers.items():
            params = list(inspect.signature(handler.fn).parameters)[1:]
            if params:
                found.append(f"{state.__name__}.{name}")
    return sorted(found)


def test_every_handler_with_arguments_has_hostile_cases() -> None:
    assert _with_arguments() == sorted(HOSTILE)


def _size(state: rx.State) -> int:
    public = {name: getattr(state, name) for name in type(state).base_vars}
    return len(json.dumps(public, default=str))


@pytest.fixture
async def big_table(tab: Tab) -> int:
    with unit_of_work(get_runtime().open_session) as session:
        table = create_table(
            session=session,
            name="Big",
            columns=[ColumnSpec("Company"), ColumnSpec("Website"), ColumnSpec("Notes")],
            rows=([f"Company {i}", f"c{i}.example", "note"] for i in range(BIG_ROWS)),
            max_cell_chars=10_000,
        )
        session.flush()
        assert table.id is not None
        return table.id


@pytest.mark.parametrize("handler", sorted(HOSTILE))
async def test_hostile_arguments_leave_the_state_bounded(
    tab: Tab, big_table: int, handler: str
) -> None:
    page = f"/tables/{big_table}"
    await tab.send(TableState, "load", path=page)
    await tab.send(AddColumnState, "open_changed", path=page, value=True)
    state_name, method = handler.split(".")
    state = next(s for s in STATES if s.__name__ == state_name)
    for payload in HOSTILE[handler]:
        if method == "setvar" and not hasattr(state, f"set_{payload['var_name']}"):
            # Reflex refuses a var with no setter before anything is stored.
            with pytest.raises(AttributeError, match="has no attribute 'set_"):
                await tab.send(state, method, path=page, **payload)
        else:
            await tab.send(state, method, path=page, **payload)
        for each in STATES:
            current = await tab.state(each)
            assert _size(current) < MAX_STATE_CHARS, (handler, each.__name__, payload.keys())
        assert _size(await tab.state(rx.State)) < ROOT_STATE_CHARS
        table = await tab.state(TableState)
        assert len(table.window_cells) <= MAX_VISIBLE_ROWS + 2 * WINDOW_BUFFER_ROWS
        current = table.selection["current"] or {"rangeStack": []}
        assert len(current["rangeStack"]) <= MAX_RANGES
        assert table.row_count == BIG_ROWS and table.table_name == "Big"

    # The page still works: an ordinary selection counts what it covers.
    selection = cursor_at(0, 3)
    selection["current"]["range"] = {"x": 0, "y": 3, "width": 2, "height": 4}  # type: ignore[index]
    await tab.send(TableState, "select", path=page, selection=selection)
    table = await tab.state(TableState)
    assert table.selected_count == 8 and table.focus == [0, 3]
    tables = await tab.state(TablesState)
    assert len(tables.new_table_name) <= 200
