"""The table page's handlers in Trigger.dev mode, against the fake Trigger.dev server."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask
from enrichment_app.domain import utcnow
from enrichment_app.runtime import get_runtime, reset_runtime
from enrichment_app.state.table import TableJobState, TableState
from enrichment_app.state.table.pacing import VIEW_READ_SECONDS
from tests.fakes.trigger import FakeTrigger, Hold
from tests.state.conftest import Tab
from tests.state.test_table_live_views import view_reads
from tests.state.test_table_state import EMAIL_DOMAIN, PAGE, rect
from tests.support.waiting import await_until

PROMPTLY = 10.0
"""Far longer than an event takes, far shorter than the held call."""


def progress(done: int, total: int) -> dict[str, Any]:
    """The metadata operation the Trigger.dev task sends as cells finish."""
    return {"type": "set", "key": "progress", "value": {"done": done, "failed": 0, "total": total}}


@pytest.fixture
def fake() -> Iterator[FakeTrigger]:
    with FakeTrigger(live_poll_timeout=1.0, stream_timeout=2.0) as server:
        yield server


@pytest.fixture
def app_environment(app_environment: None, fake: FakeTrigger) -> Iterator[None]:
    """The app in Trigger.dev mode, on the fake (its runs are never executed)."""
    os.environ.update({"TRIGGER_SECRET_KEY": fake.secret_key, "TRIGGER_API_URL": fake.url})
    reset_runtime()
    yield


async def test_the_tab_s_other_events_go_on_while_trigger_dev_holds_the_run(
    tab: Tab, fake: FakeTrigger
) -> None:
    """Run waits for Trigger.dev (up to 5 attempts of 30 s); meanwhile the tab's other events,
    a selection and Cancel, must be handled at once, not queued behind it."""
    released = threading.Event()
    fake.inject("trigger", Hold(released))
    await tab.send(TableState, "load", path=PAGE)
    await tab.send(TableState, "select", path=PAGE, selection=rect(EMAIL_DOMAIN, 0, 1, 3))
    running = asyncio.create_task(tab.send(TableJobState, "run", path=PAGE))
    try:
        await await_until(
            lambda: fake.requests_of("trigger"), timeout=PROMPTLY, message="the trigger call"
        )
        await asyncio.wait_for(
            tab.send(TableState, "select", path=PAGE, selection=rect(EMAIL_DOMAIN, 5, 1, 1)),
            PROMPTLY,
        )
        state = await tab.state(TableJobState)
        assert (state.status.label, state.run_count) == ("Starting…", 1)
        assert state.job_id, "the job exists while Trigger.dev is called"

        await asyncio.wait_for(tab.send(TableJobState, "cancel", path=PAGE), PROMPTLY)
        state = await tab.state(TableJobState)
        assert state.status.label == "Canceled"
        with get_runtime().open_session() as session:
            job = session.get(EnrichmentJob, state.job_id)
            assert job is not None and job.status == "canceled"
        assert not released.is_set() and not running.done(), "Trigger.dev still holds the run"
    finally:
        released.set()
    await asyncio.wait_for(running, 60)
    state = await tab.state(TableJobState)
    assert state.status.label == "Canceled", "the run that Trigger.dev let go stays canceled"
    (run_id,) = fake.run_ids()
    await fake.await_status(run_id, "CANCELED", within=PROMPTLY)


async def test_a_run_s_progress_reaches_the_tab_as_the_header_alone(
    tab: Tab, fake: FakeTrigger
) -> None:
    """What the browser gets for a progress change: the job substate's changed vars, never the
    table's (its grid would redraw) and never the vars that did not change."""
    await tab.send(TableState, "load", path=PAGE)
    await tab.send(TableState, "select", path=PAGE, selection=rect(EMAIL_DOMAIN, 0, 1, 3))
    running = asyncio.create_task(tab.send(TableJobState, "run", path=PAGE))
    (run_id,) = await fake.await_runs(1, within=PROMPTLY)
    try:
        fake.set_status(run_id, "EXECUTING")
        fake.update_metadata(run_id, [progress(1, 3)])

        def delta_showing(label: str) -> dict[str, Any] | None:
            for update in tab.namespace.updates:
                if label in repr(getattr(update, "delta", None)):
                    return dict(update.delta)
            return None

        await await_until(lambda: delta_showing("(1/3)"), timeout=PROMPTLY, message="(1/3)")
        fake.update_metadata(run_id, [progress(2, 3)])
        await await_until(lambda: delta_showing("(2/3)"), timeout=PROMPTLY, message="(2/3)")
        delta = delta_showing("(2/3)")
        assert delta is not None
        assert list(delta) == [TableJobState.get_full_name()]
        sent = {name.removesuffix("_rx_state_") for name in delta[TableJobState.get_full_name()]}
        # The header's status and count, and the browser tab's title, which shows the progress.
        assert sent == {"job_done", "status", "tab_title"}, "only what the progress changed"
    finally:
        fake.set_status(run_id, "COMPLETED")
        await asyncio.wait_for(running, 60)


async def test_a_filtered_tab_re_reads_its_view_while_the_run_writes(
    tab: Tab, fake: FakeTrigger
) -> None:
    """The run's cells are drawn in place as its ``cells`` stream brings them; with a filter,
    the view is read again during the run too (rows that stopped matching leave), at most once
    per ``VIEW_READ_SECONDS``, and once more when the cells stop coming."""
    email_domain_id = 4
    page = f"/tables/1?f={email_domain_id}.empty"
    await tab.send(TableState, "load", path=page)
    assert (await tab.state(TableState)).row_count == 25
    await tab.send(TableState, "select", path=page, selection=rect(EMAIL_DOMAIN, 0, 1, 25))
    running = asyncio.create_task(tab.send(TableJobState, "run", path=page))
    (run_id,) = await fake.await_runs(1, within=PROMPTLY)
    try:
        fake.set_status(run_id, "EXECUTING")
        job_id = (await tab.state(TableJobState)).job_id
        runtime = get_runtime()
        with runtime.open_session() as session:
            tasks = session.exec(
                select(EnrichmentTask).where(EnrichmentTask.job_id == job_id)
            ).all()
            tasks = sorted(tasks, key=lambda t: t.row_id)[:FILLED]
        before = view_reads(tab)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for task in tasks:  # as the worker does: store the cell, then stream it
            with runtime.open_session() as session:
                session.execute(
                    sa.update(Cell)
                    .where(col(Cell.row_id) == task.row_id, col(Cell.column_id) == task.column_id)
                    .values(
                        value=f"filled{task.row_id}.example", status="done", updated_at=utcnow()
                    )
                )
                session.commit()
            chunk = {
                "taskId": task.id, "rowId": task.row_id, "columnId": task.column_id,
                "status": "done", "value": f"filled{task.row_id}.example", "error": None,
            }  # fmt: skip
            fake.append_chunk(run_id, "cells", {"cells": [chunk]})
            await asyncio.sleep(BATCH_GAP_SECONDS)  # the run's pace, not a wait for a state
        elapsed = loop.time() - started
        await await_until(
            lambda: _rows_left(tab, 25 - FILLED),
            timeout=PROMPTLY,
            message=f"{25 - FILLED} rows left in the view while the run goes on",
        )
        reads = view_reads(tab) - before
        assert 1 <= reads <= elapsed / VIEW_READ_SECONDS + 2, f"{reads} reads in {elapsed:.2f} s"
        assert not running.done(), "the run goes on"
    finally:
        fake.set_status(run_id, "COMPLETED")
        await asyncio.wait_for(running, 60)
    state = await tab.state(TableState)
    assert state.row_count == 25 - FILLED
    assert all(row[EMAIL_DOMAIN]["v"] == "" for row in state.window_cells)


FILLED = 20
BATCH_GAP_SECONDS = 0.05


async def _rows_left(tab: Tab, count: int) -> bool:
    state = await tab.state(TableState)
    return state.row_count == count and len(state.window_cells) == count
