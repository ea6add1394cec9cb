"""A filtered or sorted tab while a job changes the table many times a second: it reads its view
again at a pace (``VIEW_READ_SECONDS``), not on every batch, and ends showing the view as the
database has it."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.runtime import get_runtime, reset_runtime
from enrichment_app.services import grid as grid_service, tables as table_service
from enrichment_app.services.jobs import cancel_job, create_job
from enrichment_app.state.table import TableJobState, TableState
from enrichment_app.state.table.pacing import VIEW_READ_SECONDS
from enrichment_app.views import parse_view
from tests.integration.db_helpers import column_refs
from tests.state.conftest import Tab
from tests.support.waiting import await_until

COMPANY = 1
FILTER = f"{COMPANY}.contains.an"
PAGE = f"/tables/1?f={FILTER}"
BATCHES = 60
BATCH_GAP_SECONDS = 0.025
"""The pace of the job's writes: 40 a second, as a big job's batches come."""


def view_reads(tab: Tab) -> int:
    """How many times the tab's view was read again and sent: each read sends the grid's
    columns with the window (a cell drawn in place sends only the window's cells)."""
    name = TableState.get_full_name()
    return sum(
        any(
            key.startswith("grid_columns")
            for key in (getattr(u, "delta", None) or {}).get(name, {})
        )
        for u in tab.namespace.updates
    )


def shown(state: Any) -> list[str]:
    return [row[0]["v"] for row in state.window_cells]


async def expected_companies() -> list[str]:
    _meta, window = await in_session(
        get_runtime().open_session,
        grid_service.read_view,
        table_id=1,
        start=0,
        stop=120,
        view=parse_view(FILTER, "", ""),
    )
    return [row[0]["v"] for row in window.cells]


async def test_a_filtered_tab_reads_its_view_at_a_pace_while_a_job_writes(tab: Tab) -> None:
    runtime = get_runtime()
    await runtime.start()  # as the app's lifespan does: the table change bus is live
    with runtime.open_session() as session:
        rows = [ref.row_id for ref in column_refs(session, 1, "Company")]
        job_cells = column_refs(session, 1, "Email domain")[:1]
    created = await in_transaction(
        runtime.open_session, create_job, table_id=1, cells=job_cells, max_cells=10
    )
    job_id = created.job.id
    loading = asyncio.create_task(tab.send(TableState, "load", path=PAGE))
    try:
        await await_until(
            lambda: _following(tab, job_id), timeout=20, message="the tab following the job"
        )
        before = view_reads(tab)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n in range(BATCHES):
            # Each batch moves a row into the filter or out of it.
            row = rows[n % len(rows)]
            name = f"Plant {n}" if n % 2 else f"Ocean {n}"
            await in_transaction(
                runtime.open_session,
                table_service.update_cell,
                table_id=1,
                row_id=row,
                column_id=COMPANY,
                value=name,
                max_cell_chars=1000,
            )
            await asyncio.sleep(BATCH_GAP_SECONDS)  # the job's pace, not a wait for a state
        elapsed = loop.time() - started
        # The changes stopped while the job runs on: the last of them is read all the same.
        expected = await expected_companies()
        await await_until(
            lambda: _shows(tab, expected),
            timeout=20,
            message=f"the window showing {expected}",
        )
        reads = view_reads(tab) - before
        allowed = elapsed / VIEW_READ_SECONDS + 2
        assert 1 <= reads <= allowed, f"{reads} view reads in {elapsed:.2f} s of {BATCHES} batches"
        assert not loading.done(), "the job still runs"
    finally:
        await in_transaction(runtime.open_session, cancel_job, job_id=job_id)
        await asyncio.wait_for(loading, 60)
    state = await tab.state(TableJobState)
    assert state.status.label.startswith("Canceled")
    assert shown(state) == await expected_companies()
    assert state.row_count == len(await expected_companies())


async def _following(tab: Tab, job_id: int | None) -> bool:
    state = await tab.state(TableJobState)
    return bool(state.job_id == job_id and not state.live and state.window_cells)


async def _shows(tab: Tab, expected: list[str]) -> bool:
    return shown(await tab.state(TableState)) == expected


async def test_an_idle_filtered_tab_reads_edits_made_elsewhere_at_a_pace(tab: Tab) -> None:
    """No job: another tab (or the API) edits the table many times a second; the idle tab's
    watcher (``watch_table``) reads its view again at the same pace, and the last edit too."""
    os.environ["TABLE_REFRESH_SECONDS"] = "2"  # the tab's idle watcher runs (see conftest)
    reset_runtime()
    runtime = get_runtime()
    await runtime.start()
    with runtime.open_session() as session:
        rows = [ref.row_id for ref in column_refs(session, 1, "Company")]
    loading = asyncio.create_task(tab.send(TableState, "load", path=PAGE))
    try:
        await await_until(
            lambda: _watching(tab), timeout=20, message="the idle tab's watcher subscribed"
        )
        before = view_reads(tab)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n in range(BATCHES):
            await in_transaction(
                runtime.open_session,
                table_service.update_cell,
                table_id=1,
                row_id=rows[n % len(rows)],
                column_id=COMPANY,
                value=f"Plant {n}" if n % 2 else f"Ocean {n}",
                max_cell_chars=1000,
            )
            await asyncio.sleep(BATCH_GAP_SECONDS)  # the edits' pace, not a wait for a state
        elapsed = loop.time() - started
        expected = await expected_companies()
        await await_until(
            lambda: _shows(tab, expected), timeout=20, message=f"the window showing {expected}"
        )
        reads = view_reads(tab) - before
        allowed = elapsed / VIEW_READ_SECONDS + 2
        assert 1 <= reads <= allowed, f"{reads} view reads in {elapsed:.2f} s of {BATCHES} edits"
        assert (await tab.state(TableState)).row_count == len(expected)
    finally:
        from enrichment_app.enrichment_app import app  # as conftest does: the registered App

        sockets = app.event_namespace
        assert sockets is not None
        gone = sockets.on_disconnect(f"sid-{tab.token}")  # the tab closes: its watcher ends
        if gone is not None:
            await gone
        await asyncio.wait_for(loading, 60)


async def _watching(tab: Tab) -> bool:
    """Whether the idle watcher is waiting on the table's feed (its first read made)."""
    state = await tab.state(TableJobState)
    return bool(state.window_cells) and get_runtime().tables.upstream_count > 0
