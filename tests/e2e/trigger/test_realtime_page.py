"""The table page in Trigger.dev mode, in a real browser: every status seen live, cells filling
before the run completes, recovery from feed faults and from an outage of Realtime, and the
fallback when triggering fails."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.e2e.conftest import GatedApi
from tests.e2e.grid import open_grid, seen_statuses, watch_status
from tests.fakes.trigger import FakeTrigger, Respond, WorkerTask
from tests.support.paths import ARTIFACTS

pytestmark = pytest.mark.e2e
expect.set_options(timeout=20_000)

DEMO_WIDTHS = [180, 180, 180, 220, 220]
ROWS = 25


@dataclass
class Frames:
    """Every websocket frame the page sent or received, to look for secrets in."""

    texts: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_socket(ws: WebSocket) -> None:
            ws.on("framereceived", lambda payload: self.texts.append(str(payload)))
            ws.on("framesent", lambda payload: self.texts.append(str(payload)))

        page.on("websocket", on_socket)


@pytest.fixture(scope="session")
def lookup_column(app_url: str, app_database_url: str, gated_api: GatedApi) -> Iterator[int]:
    """A slow enrichment column (answers only when the test releases them), added once."""
    yield gated_api.add_lookup_column(app_database_url, table_id=1)


def start_run(page: Page, app_url: str, fake: FakeTrigger) -> tuple[str, Frames]:
    """Open the demo table, select the whole Industry column and click Run."""
    frames = Frames()
    frames.attach(page)
    page.goto(app_url + "/tables/1")
    grid = open_grid(page, [*DEMO_WIDTHS, 220])
    expect(page.locator("#mode")).to_have_text("Trigger.dev · live")
    page.mouse.click(*grid.cell(5, 0))
    expect(page.locator("#run-button")).to_have_text("Run 1 cell")
    page.mouse.click(*grid.header(5))
    expect(page.locator("#run-button")).to_have_text(f"Run {ROWS} cells")
    before = set(fake.run_ids())
    watch_status(page)
    page.locator("#run-button").click()
    run_ids = fake.wait_for_runs(count=len(before) + 1, within=20)
    (run_id,) = set(run_ids) - before
    return run_id, frames


def assert_no_secrets(page: Page, frames: Frames, fake: FakeTrigger) -> None:
    secret = fake.secret_key
    assert secret not in page.content()
    assert frames.texts, "no websocket frames were captured"
    assert not any(secret in text for text in frames.texts)


def test_every_status_is_seen_live_and_cells_fill_before_the_run_ends(
    page: Page,
    app_url: str,
    fake_trigger: FakeTrigger,
    worker_task: WorkerTask,
    gated_api: GatedApi,
    lookup_column: int,
) -> None:
    worker_task.gate = asyncio.Event()
    run_id, frames = start_run(page, app_url, fake_trigger)
    expect(page.locator("#job-status")).to_have_text("In Queue…")
    fake_trigger.wait_for_status(run_id, "QUEUED")
    worker_task.gate.set()
    expect(page.locator("#job-status")).to_have_text(f"Enriching… (0/{ROWS})")
    gated_api.release(3)
    expect(page.locator("#job-status")).to_have_text(f"Enriching… (3/{ROWS})")
    grid = open_grid(page, [*DEMO_WIDTHS, 220])
    page.mouse.click(*grid.cell(5, 0))
    expect(page.locator("#inspector-value")).to_have_text("Acme Robotics industry")
    assert fake_trigger.run(run_id).status != "COMPLETED_SUCCESSFULLY"
    gated_api.release(ROWS - 3)
    expect(page.locator("#job-status")).to_have_text("Enriched!")
    statuses = seen_statuses(page)
    run = statuses[statuses.index("Starting…") :]
    progress = [s for s in run if s.startswith("Enriching")]
    assert run[:2] == ["Starting…", "In Queue…"], statuses
    assert progress[0] == f"Enriching… (0/{ROWS})" and run[-1] == "Enriched!", statuses
    counts = [int(s.split("(")[1].split("/")[0]) for s in progress]
    assert counts == sorted(counts) and len(set(counts)) >= 2, statuses
    page.mouse.click(*grid.cell(5, 24))
    expect(page.locator("#inspector-value")).to_have_text("Yellowtail Fisheries industry")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "trigger-mode-enriched.png"), full_page=True)
    assert_no_secrets(page, frames, fake_trigger)


@pytest.mark.parametrize("fault", ["dropped feed", "409 rotation", "expired token"])
def test_the_live_feed_survives_faults_mid_run(
    fault: str,
    page: Page,
    app_url: str,
    fake_trigger: FakeTrigger,
    worker_task: WorkerTask,
    gated_api: GatedApi,
    lookup_column: int,
) -> None:
    worker_task.gate = None
    assert gated_api.drain() == 0, "a previous test left permits behind"
    run_id, frames = start_run(page, app_url, fake_trigger)
    expect(page.locator("#job-status")).to_have_text(f"Enriching… (0/{ROWS})")
    gated_api.release(5)
    expect(page.locator("#job-status")).to_have_text(f"Enriching… (5/{ROWS})")
    fake_trigger.wait_for_live_poll(run_id)
    if fault == "dropped feed":
        fake_trigger.drop_next("realtime_run", before_response=True)
        fake_trigger.drop_next("stream_read", after=0)
    elif fault == "409 rotation":
        fake_trigger.rotate_handle(run_id)
    else:
        fake_trigger.expire_tokens()
    gated_api.release(5)
    expect(page.locator("#job-status")).to_have_text(f"Enriching… (10/{ROWS})")
    gated_api.release(ROWS - 10)
    expect(page.locator("#job-status")).to_have_text("Enriched!")
    expect(page.locator("#job-notice")).to_have_count(0)
    expect(page.locator("#mode")).to_have_text("Trigger.dev · live")
    assert_no_secrets(page, frames, fake_trigger)


def test_a_page_that_fell_back_to_polling_goes_live_again_when_realtime_answers(
    page: Page,
    app_url: str,
    fake_trigger: FakeTrigger,
    worker_task: WorkerTask,
    gated_api: GatedApi,
    lookup_column: int,
) -> None:
    """Realtime answers 503 for a while: the page gives up on it (after
    TRIGGER_REALTIME_GIVE_UP_SECONDS), polls and says so, tries Realtime again with a
    growing wait, and is live again once Realtime answers."""
    worker_task.gate = None
    assert gated_api.drain() == 0, "a previous test left permits behind"
    run_id, frames = start_run(page, app_url, fake_trigger)
    expect(page.locator("#job-status")).to_have_text(f"Enriching… (0/{ROWS})")
    fake_trigger.wait_for_live_poll(run_id)
    outages = [
        fake_trigger.fail_next(kind, 503, times=100_000, run_id=run_id)
        for kind in ("realtime_run", "stream_read")
    ]
    gated_api.release(3)  # the held poll answers with it; every poll after fails
    expect(page.locator("#mode")).to_have_text("Trigger.dev · polling")
    expect(page.locator("#mode")).to_have_attribute("title", re.compile("HTTP 503"))
    expect(page.locator("#job-notice")).to_contain_text("trying Realtime again")
    gated_api.release(2)
    expect(page.locator("#job-status")).to_have_text(f"Enriching… (5/{ROWS})")  # polled
    for outage in outages:
        fake_trigger.withdraw(outage)
    expect(page.locator("#mode")).to_have_text("Trigger.dev · live")
    expect(page.locator("#job-notice")).to_have_count(0)
    polls_before = len(fake_trigger.requests_of("realtime_run"))
    gated_api.release(ROWS - 5)
    expect(page.locator("#job-status")).to_have_text("Enriched!")
    assert len(fake_trigger.requests_of("realtime_run")) > polls_before, "followed live"
    assert_no_secrets(page, frames, fake_trigger)


def test_trigger_down_runs_the_job_here_and_says_why(
    page: Page, app_url: str, fake_trigger: FakeTrigger, gated_api: GatedApi, lookup_column: int
) -> None:
    fake_trigger.inject("trigger", Respond(401, {"error": "Invalid API key"}), times=1)
    frames = Frames()
    frames.attach(page)
    page.goto(app_url + "/tables/1")
    grid = open_grid(page, [*DEMO_WIDTHS, 220])
    page.mouse.click(*grid.cell(3, 0))
    expect(page.locator("#run-button")).to_have_text("Run 1 cell")
    before = fake_trigger.run_ids()
    page.locator("#run-button").click()
    expect(page.locator("#job-notice")).to_contain_text("it runs locally instead")
    expect(page.locator("#mode")).to_have_text("Trigger.dev · live")  # its writes are pushed
    expect(page.locator("#job-status")).to_have_text("Enriched!")
    assert fake_trigger.run_ids() == before
    page.mouse.click(*grid.cell(3, 0))
    expect(page.locator("#inspector-value")).to_have_text("acme-robotics.example")
    assert_no_secrets(page, frames, fake_trigger)
    assert json.dumps(fake_trigger.secret_key) not in "".join(frames.texts)
