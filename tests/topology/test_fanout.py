"""Fan-out on the production topology: many tabs over 3 workers watch one run.

30 socket clients (tests/support/reflex_socket.py, Reflex's own protocol) open the demo table while
a job's run waits in the queue; they land on the 3 backend workers as the kernel hands out
connections. The run then goes through every status, one change at a time, and each client
must receive every change and every finished cell. Upstream, the fake Trigger.dev server
must see one subscription to the run per worker process, never one per tab.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from tests.e2e.conftest import GatedApi
from tests.support.reflex_socket import EVENT_PREFIX, ReflexSocket
from tests.support.secret_scan import assert_no_leaks
from tests.support.waiting import await_until
from tests.topology.conftest import (
    TABLE,
    WORKERS,
    PeerPids,
    ThreadGate,
    Topology,
    log_text,
    read_table,
    run_async,
)

pytestmark = pytest.mark.postgres

CLIENTS = 30
CELLS = 10
WITHIN = 30.0
QUEUED = "In Queue…"
DONE = "Enriched!"


class Tab:
    """A socket client on the table page, following its status label and Industry cells."""

    def __init__(self, port: int, cookie: str, column: int = 5) -> None:
        self.column = column
        self.labels: list[tuple[float, str]] = []
        """Each label shown, with when it arrived (consecutive repeats dropped)."""
        self.pending: set[int] = set()
        """Rows whose cell in the column this tab has seen queued or running."""
        self.cells: dict[int, tuple[float, str]] = {}
        """Row index → (arrival, value) of each pending cell's result (its first ``done``)."""
        self.socket = ReflexSocket(
            "127.0.0.1",
            port,
            path=f"/tables/{TABLE}",
            query={"table_id": str(TABLE)},
            on_text=self._on_text,
            record=True,
            headers={"Cookie": cookie},
        )

    def _on_text(self, text: str, now: float) -> None:
        if not text.startswith(EVENT_PREFIX):
            return
        packet = json.loads(text[len(EVENT_PREFIX) :])
        delta = packet[1].get("delta") if len(packet) > 1 and isinstance(packet[1], dict) else None
        for state in (delta or {}).values():
            label = (state.get("status_rx_state_") or {}).get("label")
            if label is not None and (not self.labels or self.labels[-1][1] != label):
                self.labels.append((now, label))
            for row, cells in enumerate(state.get("window_cells_rx_state_") or []):
                cell = cells[self.column] if len(cells) > self.column else {}
                if cell.get("s") in ("queued", "running"):
                    self.pending.add(row)
                elif cell.get("s") == "done" and row in self.pending and row not in self.cells:
                    self.cells[row] = (now, cell.get("v", ""))

    @property
    def label(self) -> str | None:
        return self.labels[-1][1] if self.labels else None


async def until(
    what: str,
    check: Callable[[], bool],
    within: float = WITHIN,
    show: Callable[[], object] | None = None,
) -> None:
    """Wait for ``check``; on timeout say what was awaited and (``show``) what there was."""
    await await_until(check, timeout=within, interval=0.02, message=what, found=show)


def expected_labels() -> list[str]:
    return [QUEUED, *(f"Enriching… ({k}/{CELLS})" for k in range(CELLS)), DONE]


def companies(database_url: str) -> list[tuple[int, str]]:
    """(row id, company) of the demo table, in row order."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT cell.row_id, cell.value FROM cell JOIN table_column c"
                    " ON c.id = cell.column_id AND c.name = 'Company'"
                    " WHERE cell.table_id = :table ORDER BY cell.row_id"
                ),
                {"table": TABLE},
            ).all()
    finally:
        engine.dispose()
    return [(r[0], r[1]) for r in rows]


@dataclass
class Watched:
    """What ``watch_one_run`` saw."""

    run_id: str
    tabs: list[Tab]
    per_worker: Counter[int | None]
    most_at_once: tuple[int, int]
    """The most held live polls, and the most stream readers, the run had at one time."""


async def watch_one_run(
    topology: Topology, cells: list[dict[str, int]], gate: ThreadGate, gated_api: GatedApi
) -> Watched:
    """Start a run held in the queue, open the tabs, then let it go one cell at a time."""
    fake = topology.fake
    tabs = [Tab(topology.app.port, topology.cookie) for _ in range(CLIENTS)]
    most_at_once = [0, 0]

    async def sample(run_id: str) -> None:
        while True:
            polls, readers = fake.live_readers(run_id)
            most_at_once[0] = max(most_at_once[0], polls)
            most_at_once[1] = max(most_at_once[1], readers)
            await asyncio.sleep(0.01)

    job = await asyncio.to_thread(topology.start_job, cells)
    run_id = job["runId"]
    assert run_id and job["fallbackReason"] is None, job
    await fake.await_status(run_id, "QUEUED")
    sampler = asyncio.create_task(sample(run_id))
    try:
        limit = asyncio.Semaphore(10)

        async def open_tab(tab: Tab) -> None:
            async with limit:
                await tab.socket.connect()
                await until("a tab shows the queued run", lambda: tab.label == QUEUED)

        await asyncio.gather(*(open_tab(t) for t in tabs))
        owners = [topology.pid_of_client_port(tab.socket.local_port or 0) for tab in tabs]
        # Steady state: each worker holds one live poll and one stream read for the run.
        await until(
            f"{WORKERS} live polls and stream readers",
            lambda: fake.live_readers(run_id) == (WORKERS, WORKERS),
            show=lambda: fake.live_readers(run_id),
        )
        gate.set()
        for k in range(len(cells) + 1):
            label = f"Enriching… ({k}/{len(cells)})" if k < len(cells) else DONE
            await until(
                f"every tab shows {label}",
                lambda label=label: all(t.label == label for t in tabs),
                show=lambda: Counter(t.label for t in tabs),
            )
            if k < len(cells):
                gated_api.release(1)
        await until(
            "every tab's grid reloaded with every cell",
            lambda: all(len(t.cells) == len(cells) for t in tabs),
        )
    finally:
        sampler.cancel()
        for tab in tabs:
            await tab.socket.close()
    return Watched(run_id, tabs, Counter(owners), (most_at_once[0], most_at_once[1]))


def test_every_tab_gets_every_change_over_one_subscription_per_worker(
    topology: Topology, lookup_column: int, gated_api: GatedApi
) -> None:
    assert gated_api.drain() == 0, "a previous test left permits behind"
    gate = ThreadGate()
    topology.worker_task.gate = gate  # the run waits in the queue until the tabs are open
    rows = companies(topology.database_url)[:CELLS]
    cells = [{"rowId": r, "columnId": lookup_column} for r, _ in rows]
    with PeerPids(topology.pids, int(topology.fake.url.rpartition(":")[2])) as peers:
        watched = run_async(watch_one_run(topology, cells, gate, gated_api))
        subscriptions = topology.subscriptions(watched.run_id, peers)
    run_id, tabs = watched.run_id, watched.tabs

    assert set(watched.per_worker) == set(topology.pids), watched.per_worker
    # Every tab saw every change, in order, and each cell before the run ended.
    for tab in tabs:
        shown = [label for _, label in tab.labels]
        shown = shown[shown.index(QUEUED) :]
        assert [s for s in shown if s != f"Enriching… ({CELLS}/{CELLS})"] == expected_labels()
        done_at = tab.labels[-1][0]
        for row, (_, company) in enumerate(rows):
            arrived, value = tab.cells[row]
            assert value == f"{company} industry"
            # Live, before the run ended; the last cell and the run's end race on two feeds.
            assert arrived <= done_at or row == len(rows) - 1, f"row {row} came after {DONE}"
    # Upstream: one subscription per worker process, and no more readers at once than workers.
    assert Counter(subscriptions["shapes"]) == dict.fromkeys(topology.pids, 1), subscriptions
    assert set(subscriptions["streams"]) == set(topology.pids), subscriptions
    assert watched.most_at_once == (WORKERS, WORKERS)
    # Every tab's state lived in Redis; PostgreSQL holds the results.
    assert all(topology.redis.keys(f"{tab.socket.token}_*") for tab in tabs)
    table = read_table(topology.database_url, lookup_column)
    assert table["job"]["run_id"] == run_id
    assert (table["job"]["status"], table["job"]["done"], table["job"]["failed"]) == (
        "completed",
        CELLS,
        0,
    )
    assert table["open_tasks"] == 0
    filled = {company: (value, status) for company, value, status in table["cells"]}
    for _, company in rows:
        assert filled[company] == (f"{company} industry", "done")
    # Nothing secret left the backend: every frame every tab got, and the app's log.
    sources: dict[str, Any] = {
        f"frames of tab {i}": "\n".join(tab.socket.frames) for i, tab in enumerate(tabs)
    }
    sources["app log"] = log_text(topology)
    assert_no_leaks(topology.secrets, sources)
