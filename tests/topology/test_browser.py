"""The Trigger.dev-mode browser flow on the production topology, in Debian Chromium.

One tab selects the Industry column and clicks Run; while the run waits in Trigger.dev's
queue, more tabs open the table until every backend worker serves at least one of them
(each tab's worker is read from Reflex's socket record in Redis). Every tab must then see
the live statuses (In Queue…, Enriching… with rising counts, Enriched!) and the cells filling
before the run ends, PostgreSQL must agree, and each worker holds one upstream subscription.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocket, expect

from enrichment_app.services.sessions import COOKIE_NAME
from tests.e2e.conftest import GatedApi
from tests.e2e.grid import open_grid, seen_statuses, watch_status
from tests.support.secret_scan import assert_no_leaks
from tests.topology.conftest import (
    OUT,
    ROWS,
    TABLE,
    PeerPids,
    ThreadGate,
    Topology,
    log_text,
    read_table,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
expect.set_options(timeout=30_000)

WIDTHS = [180, 180, 180, 220, 220, 220]
"""The demo table's columns, then Industry (column 5)."""
INDUSTRY = 5
TABS = 4
"""More tabs than workers, so that (once each worker serves one) some worker serves two."""
MOST_OPENED = 30
"""The kernel hands each new connection to a worker; after this many tabs, one was never
handed a tab, which fails the test."""


class Tabs:
    """The open browser tabs of the test, each with the worker serving its websocket.

    Every websocket frame of every tab, closed ones too, is kept to scan for secrets.
    """

    def __init__(self, context: BrowserContext, topology: Topology) -> None:
        self.context = context
        self.topology = topology
        self.pages: list[Page] = []
        self.pids: list[int] = []
        self.frames: dict[str, list[str]] = {}
        self.opened = 0

    def open(self) -> Page:
        page = self.context.new_page()
        frames = self.frames.setdefault(f"tab {self.opened}", [])
        self.opened += 1

        def on_socket(ws: WebSocket) -> None:
            ws.on("framereceived", lambda payload: frames.append(str(payload)))
            ws.on("framesent", lambda payload: frames.append(str(payload)))

        page.on("websocket", on_socket)
        page.goto(f"{self.topology.url}/tables/{TABLE}")
        open_grid(page, WIDTHS)
        expect(page.locator("#mode")).to_have_text("Trigger.dev · live")
        token = page.evaluate("() => window.sessionStorage.getItem('token')")
        pid = self.topology.pid_of_token(token)
        assert pid is not None, f"no worker holds the websocket of tab {self.opened - 1}"
        self.pages.append(page)
        self.pids.append(pid)
        return page

    def close_one_on_busiest_worker(self) -> None:
        """Close a tab (never the first) of the worker serving the most; it keeps the others."""
        counts = Counter(self.pids)
        busiest = max(counts, key=counts.__getitem__)
        assert counts[busiest] > 1, counts
        i = max(i for i, pid in enumerate(self.pids) if pid == busiest)
        self.pages.pop(i).close()
        self.pids.pop(i)

    def screenshots(self, prefix: str) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        for i, page in enumerate(self.pages):
            page.screenshot(path=str(OUT / f"{prefix}-tab{i}.png"), full_page=True)


def cover_every_worker(tabs: Tabs, workers: set[int]) -> None:
    """Open tabs on the running job until there are ``TABS`` and every worker serves one.

    Which worker gets a connection is the kernel's choice, and with tabs opened one by one on
    a loaded machine it can favour some; a tab of the busiest worker is then closed and
    another opened, until every worker has one.
    """
    while set(tabs.pids) != workers or len(tabs.pages) < TABS:
        assert tabs.opened < MOST_OPENED, f"tabs by worker: {Counter(tabs.pids)} of {workers}"
        if len(tabs.pages) >= TABS:
            tabs.close_one_on_busiest_worker()
        page = tabs.open()  # re-attaches to the running job, on whichever worker
        expect(page.locator("#job-status")).to_have_text("In Queue…")
        watch_status(page)


@pytest.fixture
def tabs(browser: Browser, topology: Topology) -> Iterator[Tabs]:
    context = browser.new_context(viewport={"width": 1400, "height": 1700})
    assert topology.owner is not None
    context.add_cookies(
        [
            {
                "name": COOKIE_NAME,
                "value": topology.owner.token,
                "url": topology.url,
                "httpOnly": True,
            }
        ]
    )
    context.set_default_timeout(30_000)
    yield Tabs(context, topology)
    context.close()


def test_every_tab_on_every_worker_follows_the_run_live(
    topology: Topology, lookup_column: int, gated_api: GatedApi, tabs: Tabs
) -> None:
    fake = topology.fake
    assert gated_api.drain() == 0, "a previous test left permits behind"
    gate = ThreadGate()
    topology.worker_task.gate = gate  # the run waits in the queue until the tabs are open
    peers = PeerPids(topology.pids, int(fake.url.rpartition(":")[2]))
    with peers:
        try:
            first = tabs.open()
            grid = open_grid(first, WIDTHS)
            first.mouse.click(*grid.cell(INDUSTRY, 0))
            expect(first.locator("#run-button")).to_have_text("Run 1 cell")
            first.mouse.click(*grid.header(INDUSTRY))
            expect(first.locator("#run-button")).to_have_text(f"Run {ROWS} cells")
            before = set(fake.run_ids())
            watch_status(first)
            first.locator("#run-button").click()
            (run_id,) = set(fake.wait_for_runs(count=len(before) + 1, within=20)) - before
            expect(first.locator("#job-status")).to_have_text("In Queue…")
            cover_every_worker(tabs, set(topology.pids))
            per_worker = Counter(tabs.pids)

            gate.set()
            for page in tabs.pages:
                expect(page.locator("#job-status")).to_have_text(f"Enriching… (0/{ROWS})")
            gated_api.release(3)
            for page in tabs.pages:
                expect(page.locator("#job-status")).to_have_text(f"Enriching… (3/{ROWS})")
            for page in tabs.pages:  # the first cells are in every tab before the run ends
                grid = open_grid(page, WIDTHS)
                page.mouse.click(*grid.cell(INDUSTRY, ROWS - 1))
                expect(page.locator("#inspector-status")).to_have_text("queued")
                page.mouse.click(*grid.cell(INDUSTRY, 0))
                expect(page.locator("#inspector-status")).to_have_text("done")
                expect(page.locator("#inspector-value")).to_have_text("Acme Robotics industry")
            assert fake.run(run_id).status != "COMPLETED_SUCCESSFULLY"
            gated_api.release(ROWS - 3)
            for page in tabs.pages:
                expect(page.locator("#job-status")).to_have_text("Enriched!")
            for page in tabs.pages:
                page.mouse.click(*open_grid(page, WIDTHS).cell(INDUSTRY, ROWS - 1))
                expect(page.locator("#inspector-status")).to_have_text("done")
                expect(page.locator("#inspector-value")).to_have_text(
                    "Yellowtail Fisheries industry"
                )
            subscriptions = topology.subscriptions(run_id, peers)
        except BaseException:
            tabs.screenshots("failed")
            raise

    for i, page in enumerate(tabs.pages):
        statuses = seen_statuses(page)
        run = statuses[statuses.index("In Queue…") :]
        progress = [s for s in run if s.startswith("Enriching")]
        counts = [int(s.split("(")[1].split("/")[0]) for s in progress]
        assert run[-1] == "Enriched!" and progress[0] == f"Enriching… (0/{ROWS})", (i, statuses)
        assert counts == sorted(counts) and 3 in counts, (i, statuses)
        if i == 0:
            assert statuses[statuses.index("Starting…") + 1] == "In Queue…", statuses
    # One upstream subscription per worker process, not one per tab.
    assert max(per_worker.values()) > 1 and len(per_worker) == len(topology.pids), per_worker
    assert Counter(subscriptions["shapes"]) == dict.fromkeys(topology.pids, 1), subscriptions
    assert set(subscriptions["streams"]) == set(topology.pids), subscriptions
    # PostgreSQL agrees with what the tabs show.
    table = read_table(topology.database_url, lookup_column)
    assert table["job"]["run_id"] == run_id
    assert table["job"]["backend"] == "trigger"
    assert (table["job"]["status"], table["job"]["done"], table["job"]["failed"]) == (
        "completed",
        ROWS,
        0,
    )
    assert table["open_tasks"] == 0
    assert [(v, s) for c, v, s in table["cells"]] == [
        (f"{c} industry", "done") for c, _, _ in table["cells"]
    ]
    assert len(table["cells"]) == ROWS
    tabs.screenshots("enriched")
    # Nothing secret in any frame, any page or the app's log.
    sources: dict[str, str] = {}
    for name, frames in tabs.frames.items():
        sources[f"frames of {name}"] = "\n".join(frames)
    for i, page in enumerate(tabs.pages):
        sources[f"page of open tab {i}"] = page.content()
    sources["app log"] = log_text(topology)
    assert_no_leaks(topology.secrets, sources)
