"""The table page's view (filter, sort, search) and Run the view, through Reflex's event
processor: the URL carries the view, a bad one falls back, and Run the view queues exactly the
rows shown."""

from __future__ import annotations

from enrichment_app.runtime import get_runtime
from enrichment_app.state.table import TableJobState, TableState, cursor_at
from tests.integration.db_helpers import task_columns, task_row_values
from tests.state.conftest import Tab

PAGE = "/tables/1"
COMPANY, WEBSITE, EMAIL, EMAIL_DOMAIN, INTRO = 1, 2, 3, 4, 5  # the demo table's column ids


def companies(state: TableState) -> list[str]:
    return [row[0]["v"] for row in state.window_cells]


async def test_the_url_view_filters_sorts_and_searches_the_window(tab: Tab) -> None:
    await tab.send(TableState, "load", path=f"{PAGE}?f={COMPANY}.contains.an&s=-{COMPANY}")
    state = await tab.state(TableState)
    assert state.view_notice == ""
    assert companies(state) == [
        "Willow Insurance", "Vertex Manufacturing", "Meridian Bank", "Granite Security",
        "Fjord Analytics",
    ]  # fmt: skip
    assert state.row_count == 5 and state.total_rows == 25
    assert state.table_meta == "5 of 25 rows · 5 columns"
    assert state.view_chips == [{"text": 'Company contains "an"'}]
    assert state.sort_choice == f"-{COMPANY}"

    await tab.send(TableState, "search_changed", path=PAGE, text="BANK")
    state = await tab.state(TableState)
    assert companies(state) == ["Meridian Bank"]
    assert (state.view_f, state.view_s, state.view_q) == (
        f"{COMPANY}.contains.an",
        f"-{COMPANY}",
        "BANK",
    )

    await tab.send(TableState, "clear_view", path=PAGE)
    state = await tab.state(TableState)
    assert state.row_count == 25 and companies(state)[0] == "Acme Robotics"
    assert state.table_meta == "25 rows · 5 columns"


async def test_a_bad_view_in_the_url_says_why_and_shows_the_whole_table(tab: Tab) -> None:
    await tab.send(TableState, "load", path=f"{PAGE}?f={COMPANY}.bigger.3")
    state = await tab.state(TableState)
    assert "Unknown filter operator 'bigger'" in state.view_notice
    assert state.row_count == 25 and state.view_f == ""

    await tab.send(TableState, "load", path=f"{PAGE}?f=999.empty")
    state = await tab.state(TableState)
    assert "column 999, which is not in this table" in state.view_notice
    assert state.row_count == 25 and state.view_f == ""


async def test_the_filter_bar_adds_and_removes_conditions(tab: Tab) -> None:
    await tab.send(TableState, "load", path=PAGE)
    form = {"column": str(EMAIL), "op": "not_contains", "value": "@"}
    await tab.send(TableState, "add_condition", path=PAGE, form=form)
    state = await tab.state(TableState)
    assert companies(state) == ["Redwood Legal"]
    await tab.send(
        TableState, "add_condition", path=PAGE, form={"column": str(INTRO), "op": "status:failed"}
    )
    state = await tab.state(TableState)
    assert state.row_count == 0 and len(state.view_chips) == 2
    assert state.view_chips[1] == {"text": 'Intro line status is "failed"'}
    await tab.send(
        TableState,
        "add_condition",
        path=PAGE,
        form={"column": "1", "op": "equals", "value": "x" * 501},
    )
    assert "at most 500" in (await tab.state(TableState)).view_notice
    await tab.send(TableState, "remove_condition", path=PAGE, index=1)
    state = await tab.state(TableState)
    assert companies(state) == ["Redwood Legal"] and state.view_notice == ""


async def test_a_selection_in_a_filtered_view_runs_the_rows_it_shows(tab: Tab) -> None:
    await tab.send(TableState, "load", path=f"{PAGE}?f={COMPANY}.contains.an&s={COMPANY}")
    selection = cursor_at(3, 1)  # the second row shown, in "Email domain"
    await tab.send(TableState, "select", path=PAGE, selection=selection)
    await tab.send(TableJobState, "run", path=PAGE)
    state = await tab.state(TableJobState)
    assert state.job_id > 0
    await get_runtime().runner.wait(state.job_id)
    assert task_companies(state.job_id) == ["Granite Security"]


def task_companies(job_id: int) -> list[str]:
    with get_runtime().open_session() as session:
        return task_row_values(session, job_id, COMPANY)


async def test_run_the_view_runs_the_chosen_column_for_every_row_shown(tab: Tab) -> None:
    await tab.send(TableState, "load", path=f"{PAGE}?f={COMPANY}.contains.an")
    state = await tab.state(TableState)
    assert state.run_view_label == "Run Email domain for 5 rows"
    await tab.send(TableState, "choose_run_column", path=PAGE, value=str(INTRO))
    assert (await tab.state(TableState)).run_view_label == "Run Intro line for 5 rows"
    await tab.send(TableJobState, "run_view", path=PAGE)
    state = await tab.state(TableJobState)
    assert state.job_id > 0 and state.message == ""
    await get_runtime().runner.wait(state.job_id)
    assert task_companies(state.job_id) == [
        "Fjord Analytics", "Granite Security", "Meridian Bank", "Vertex Manufacturing",
        "Willow Insurance",
    ]  # fmt: skip
    with get_runtime().open_session() as session:
        assert task_columns(session, state.job_id) == {INTRO}
