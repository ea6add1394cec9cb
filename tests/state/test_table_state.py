"""The table page's state handlers, driven through Reflex's event processor (no browser)."""

from __future__ import annotations

from typing import Any

from enrichment_app.db.sessions import in_transaction
from enrichment_app.runtime import get_runtime
from enrichment_app.services.jobs import create_job
from enrichment_app.state.table import TableJobState, TableState, cursor_at
from tests.integration.db_helpers import column_refs
from tests.state.conftest import Tab

PAGE = "/tables/1"
EMAIL_DOMAIN, INTRO = 3, 4


def rect(x: int, y: int, width: int, height: int) -> dict[str, object]:
    selection = cursor_at(x, y)
    selection["current"]["range"] = {"x": x, "y": y, "width": width, "height": height}  # type: ignore[index]
    return selection


async def test_selection_counts_only_enrichment_cells(tab: Tab) -> None:
    await tab.send(TableState, "load", path=PAGE)
    await tab.send(
        TableState, "select", path=PAGE, selection=rect(2, 0, 3, 4)
    )  # email, domain, intro
    state = await tab.state(TableState)
    assert state.run_count == 8 and state.run_label == "Run 8 cells"

    await tab.send(
        TableState, "select", path=PAGE, selection=rect(0, 0, 3, 25)
    )  # input columns only
    state = await tab.state(TableState)
    assert state.run_count == 0 and state.run_label == "Run 0 cells"
    await tab.send(TableJobState, "run", path=PAGE)
    state = await tab.state(TableJobState)
    assert "enrichment column" in state.message and state.job_id == 0


async def test_run_starts_a_job_and_a_reload_shows_how_it_ended(tab: Tab) -> None:
    await tab.send(TableState, "load", path=PAGE)
    await tab.send(TableState, "select", path=PAGE, selection=rect(EMAIL_DOMAIN, 15, 1, 5))
    await tab.send(TableJobState, "run", path=PAGE)
    started = await tab.state(TableJobState)
    assert started.job_id > 0 and started.message == ""
    # Run chains the job's watcher, and the tab's events end only when it has seen the job end.
    assert started.status.label == "Enriched! (1 failed)"

    await get_runtime().runner.wait(started.job_id)  # returns at once if it already finished
    await tab.send(TableState, "load", path=PAGE)
    state = await tab.state(TableJobState)
    assert state.job_id == started.job_id
    assert state.status.label == "Enriched! (1 failed)"  # row 18's contact email is not an email
    assert (state.job_done, state.job_failed, state.job_total) == (4, 1, 5)


async def test_an_edit_the_database_cannot_store_is_refused_and_the_cell_kept(tab: Tab) -> None:
    await tab.send(TableState, "load", path=PAGE)
    before = (await tab.state(TableState)).window_cells[0][0]
    await tab.send(
        TableState,
        "edit_cell",
        path=PAGE,
        pos=(0, 0),
        new_cell={"kind": "text", "data": "Acme\x00 Robotics"},
    )
    state = await tab.state(TableState)
    assert "contains a NUL character" in state.message
    assert state.window_cells[0][0] == before and before["v"]
    await tab.send(TableState, "edit_cell", path=PAGE, pos=(0, 0), new_cell={"data": "Acme Two"})
    state = await tab.state(TableState)
    assert state.message == "" and state.window_cells[0][0]["v"] == "Acme Two"


def test_the_names_the_websocket_clients_use_still_resolve() -> None:
    """The soak and the benchmarks speak to the page over Reflex's websocket by name: the
    states' full names, their handlers and their vars must survive the split into mixins."""
    full_name = "reflex___state____state.enrichment_app___state___table____table_state"
    assert TableState.get_full_name() == full_name  # what tests/soak sends events to
    job_name = f"{full_name}.enrichment_app___state___table____table_job_state"
    assert TableJobState.get_full_name() == job_name
    assert TableJobState.get_parent_state() is TableState
    table, job = TableState.event_handlers, TableJobState.event_handlers
    assert {"load", "select", "view", "edit_cell", "clear_selection"} <= table.keys()
    assert {"run", "cancel", "follow_run", "watch_job", "watch_table"} <= job.keys()
    # Run and Cancel await Trigger.dev outside the tab's state (test_table_state_trigger.py).
    assert all(job[name].is_background for name in ("follow_run", "watch_job", "watch_table"))
    assert job["run"].is_background and job["cancel"].is_background
    assert not table["select"].is_background
    assert {"window_cells", "run_count", "table_id"} <= TableState.vars.keys()
    assert {"job_id", "job_status", "status", "live"} <= set(TableJobState.base_vars) | set(
        TableJobState.computed_vars
    )


def test_a_status_change_sends_only_the_header() -> None:
    """The job's vars live in the substate, apart from the grid's: a run's status change
    dirties (and so sends and redraws) the header alone."""
    table_vars = set(TableState.base_vars) | set(TableState.computed_vars)
    header = {"job_status", "run_status", "job_done", "status", "live"}
    assert not header & table_vars
    assert {"window_cells", "grid_columns", "focused_cell"} <= table_vars


async def test_a_run_the_database_refuses_says_why_and_starts_nothing(tab: Tab) -> None:
    """Run awaits the database outside the tab's state: a refusal still reaches the page."""
    await tab.send(TableState, "load", path=PAGE)
    await tab.send(TableState, "select", path=PAGE, selection=rect(EMAIL_DOMAIN, 0, 1, 2))
    runtime = get_runtime()
    with runtime.open_session() as session:
        cells = column_refs(session, 1, "Email domain")[:2]
    await in_transaction(runtime.open_session, create_job, table_id=1, cells=cells, max_cells=10)
    await tab.send(TableJobState, "run", path=PAGE)
    state = await tab.state(TableJobState)
    assert "already queued or running" in state.message
    assert not state.starting and state.status.label != "Starting…"


def pushed_selections_in(update: Any) -> list[str]:
    """The selections an update told the tab's grid to show (the scripts that set them)."""
    return [
        str(event.payload.get("function"))
        for event in update.events
        if event.name == "_call_function" and "setGrid_selection" in str(event.payload)
    ]


def pushed_selections(tab: Tab) -> list[str]:
    return [f for update in tab.namespace.updates for f in pushed_selections_in(update)]


async def test_the_load_shows_the_first_cell_with_the_rows_and_an_empty_selection_keeps_it(
    tab: Tab,
) -> None:
    """A new page's grid has no rows until the load's read arrives: a cursor pushed before it
    is one Glide drops, sending a selection of nothing. The load pushes the cursor with the
    rows, and a selection of nothing keeps the active cell (the inspector keeps showing it)."""
    await tab.send(TableState, "load", path=PAGE)
    assert pushed_selections(tab)[-1:] and '["cell"] : [0, 0]' in pushed_selections(tab)[-1]
    updates = tab.namespace.updates
    first_push = next(i for i, u in enumerate(updates) if pushed_selections_in(u))
    before = [u.delta.get(TableState.get_full_name(), {}) for u in updates[:first_push]]
    assert any(d.get("table_meta_rx_state_", "").startswith("25 rows") for d in before), (
        "the cursor goes out after the rows, not before them"
    )
    await tab.send(TableState, "select", path=PAGE, selection=rect(1, 4, 1, 1))
    tab.namespace.updates.clear()
    nothing = {"current": None, "columns": {"items": []}, "rows": {"items": []}}
    await tab.send(TableState, "select", path=PAGE, selection=nothing)
    state = await tab.state(TableState)
    assert state.focus == [1, 4] and state.focused_cell["row"] == "5"
    assert '["cell"] : [1, 4]' in pushed_selections(tab)[-1]
    whole_column = {"current": None, "columns": {"items": [[2, 3]]}, "rows": {"items": []}}
    await tab.send(TableState, "select", path=PAGE, selection=whole_column)
    assert (await tab.state(TableState)).focus == []  # a column selected: no active cell


async def test_a_reload_of_the_same_table_shows_its_kept_selection_in_the_grid(tab: Tab) -> None:
    await tab.send(TableState, "load", path=PAGE)
    await tab.send(TableState, "select", path=PAGE, selection=rect(2, 3, 2, 2))
    tab.namespace.updates.clear()
    await tab.send(TableState, "load", path=PAGE)  # a refreshed page: its grid starts empty
    assert '["width"] : 2, ["height"] : 2' in pushed_selections(tab)[-1]
    assert (await tab.state(TableState)).focus == [2, 3]
