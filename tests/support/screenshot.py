"""The README's screenshot: the demo table mid-run, taken in Debian Chromium from the real app.

``take`` starts the app the way the README's first command does (``bash scripts/run.sh``,
``DevApp``) on a fresh SQLite file with the demo table and an ``Industry`` column that looks
each company up in a loopback API. The API answers the first ``answered`` lookups at once and
holds the rest, so the job stops at a known point: the page shows "Enriching… (8/25)" for as
long as it takes to capture it, with cells done, running and queued, and the inspector showing
one intro line in full. The two offline columns are filled first, through the REST
API, so the table looks used. Then the held lookups are answered, the job ends, and everything
stops.

``python scripts/screenshot.py`` writes ``assets/table-mid-run.png`` with it;
tests/docs/test_screenshot.py runs that same script into test-artifacts/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from enrichment_app.db.models import TableColumn, TableRow
from enrichment_app.domain import ColumnKind
from enrichment_app.services.demo import seed_demo
from enrichment_app.services.sessions import COOKIE_NAME
from enrichment_app.services.tables import ColumnSpec, add_column
from tests.support.accounts import SignedIn, sign_in_over_http
from tests.support.database import database_session
from tests.support.live_server import serve_in_thread
from tests.support.paths import CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.support.prod_app import DevApp
from tests.support.waiting import wait_until

OUT = ROOT / "assets" / "table-mid-run.png"
VIEWPORT = {"width": 1360, "height": 800}
ANSWERED = 8
"""Lookups answered before the capture; the page then shows Enriching… (8/25)."""
FINAL = {"completed", "failed", "canceled"}
TIMEOUT = 120.0


@dataclass(frozen=True)
class Shot:
    path: str
    status: str
    """The job status the page showed as it was captured (read from the DOM before and after)."""
    width: int
    height: int


class HeldLookups:
    """A company lookup API that answers ``answered`` requests at once and holds the rest."""

    def __init__(self, answered: int) -> None:
        self.answered = answered
        self.seen = 0
        self.released = threading.Event()
        self._lock = threading.Lock()

    async def lookup(self, request: Request) -> JSONResponse:
        with self._lock:
            self.seen += 1
            hold = self.seen > self.answered
        if hold:
            await asyncio.to_thread(self.released.wait)
        company = request.query_params.get("company", "")
        return JSONResponse({"data": {"industry": industry_of(company)}})

    @contextmanager
    def serving(self) -> Iterator[str]:
        with serve_in_thread(Starlette(routes=[Route("/lookup", self.lookup)])) as url:
            try:
                yield url
            finally:
                self.released.set()


INDUSTRIES = {
    "Acme": "Industrial robotics",
    "Blue": "Freight and logistics",
    "Cedar": "Design studio",
    "Delta": "Energy",
    "Evergreen": "Healthcare",
    "Fjord": "Data analytics",
    "Granite": "Cybersecurity",
    "Helios": "Solar power",
    "Iris": "Biotechnology",
}
"""What the lookup API says of the companies it answers before the capture (by first word)."""


def industry_of(company: str) -> str:
    return INDUSTRIES.get(company.split(" ")[0], "Other")


@dataclass(frozen=True)
class DemoCells:
    table_id: int
    offline: list[dict[str, int]]
    """The cells of the demo's two offline enrichment columns."""
    lookups: list[dict[str, int]]
    """The cells of the Industry column."""


def prepare(database_url: str, lookup_url: str) -> DemoCells:
    """The demo table plus an ``Industry`` column calling ``lookup_url``; its cells to run."""
    with database_session(database_url, migrate=True) as session:
        table = seed_demo(session, max_cell_chars=10_000)
        assert table is not None and table.id is not None
        spec = ColumnSpec(
            name="Industry",
            kind=ColumnKind.ENRICHMENT,
            enricher="http_json",
            config={"url": lookup_url + "/lookup?company={Company}", "path": "data.industry"},
        )
        add_column(session=session, table_id=table.id, spec=spec)
        session.commit()
        rows = session.exec(
            select(TableRow.id)
            .where(TableRow.table_id == table.id)
            .order_by(col(TableRow.position))
        ).all()
        columns = session.exec(
            select(TableColumn).where(
                TableColumn.table_id == table.id, TableColumn.kind == ColumnKind.ENRICHMENT
            )
        ).all()
        cells = {
            c.name: [{"rowId": r, "columnId": c.id} for r in rows if c.id is not None]
            for c in columns
        }
        return DemoCells(
            table_id=table.id,
            offline=cells["Email domain"] + cells["Intro line"],
            lookups=cells["Industry"],
        )


SERVICE_KEY = "screenshot-" + secrets.token_urlsafe(24)
"""The app's ENRICHMENT_API_KEY for this run: the script's REST calls use it."""
AUTH = {"Authorization": f"Bearer {SERVICE_KEY}"}


def enrich(api: str, table_id: int, cells: list[dict[str, int]]) -> int:
    """Start a job through the REST API; its id."""
    response = httpx.post(
        f"{api}/api/tables/{table_id}/enrich", json={"cells": cells}, headers=AUTH, timeout=30
    )
    assert response.status_code == 202, response.text
    return int(response.json()["job"]["id"])


def wait_final(api: str, job_id: int) -> None:
    def final() -> bool:
        job = httpx.get(f"{api}/api/jobs/{job_id}", headers=AUTH, timeout=30).json()["job"]
        return job["status"] in FINAL

    wait_until(final, timeout=TIMEOUT, interval=0.2, message=f"job {job_id} to end")


def capture(page_url: str, table_id: int, out: Path, cookie: SignedIn) -> Shot:
    """Open the table signed in, wait for the held job's progress, and capture the viewport."""
    status = f"Enriching… ({ANSWERED}/25)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            context.add_cookies(
                [{"name": COOKIE_NAME, "value": cookie.token, "url": page_url, "httpOnly": True}]
            )
            page = context.new_page()
            page.set_default_timeout(TIMEOUT * 1000)
            page.goto(f"{page_url}/tables/{table_id}")
            page.locator("#table-name").filter(has_text="Demo").wait_for()
            page.locator("#job-status").filter(has_text=status).wait_for()
            inspect_intro_line(page)
            # Let the grid's canvas draw the cells that came with that status.
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")
            before = page.locator("#job-status").inner_text()
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
            after = page.locator("#job-status").inner_text()
        finally:
            browser.close()
    if before != after:
        raise RuntimeError(f"the status changed while capturing: {before!r} → {after!r}")
    return Shot(str(out), before, VIEWPORT["width"], VIEWPORT["height"])


def inspect_intro_line(page: Page) -> None:
    """Click the second row's intro line, so the inspector shows it whole.

    The grid is a canvas: its row markers are 33 px wide, its header 38 px and its rows 34 px
    high, and the demo's three input columns are 180 px wide and its enrichment columns 220.
    """
    box = page.locator('#table-grid canvas[data-testid="data-grid-canvas"]').first.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 33 + 3 * 180 + 220 + 110, box["y"] + 38 + 34 + 17)
    page.locator("#inspector-value").filter(has_text="Hi Blue Harbor Logistics team").wait_for()


def take(out: Path, *, work: Path) -> Shot:
    """Start the app with ``bash scripts/run.sh``, run the demo, and capture it mid-run."""
    lookups = HeldLookups(ANSWERED)
    database_url = f"sqlite:///{work / 'screenshot.db'}"
    with lookups.serving() as lookup_url:
        demo = prepare(database_url, lookup_url)
        app = DevApp(
            work=work / "app",
            env={
                "DATABASE_URL": database_url,
                "ENRICHMENT_API_KEY": SERVICE_KEY,
                # The lookup API is on loopback, which the egress guard refuses unless allowed.
                "ENRICHER_ALLOWED_NETWORKS": lookup_url.removeprefix("http://"),
            },
            log_path=work / "app.log",
            ready_path=f"/tables/{demo.table_id}",
        )
        with app:
            owner = asyncio.run(sign_in_over_http(app.url, set_up=True, origin=app.page_url))
            wait_final(app.url, enrich(app.url, demo.table_id, demo.offline))
            job = enrich(app.url, demo.table_id, demo.lookups)
            shot = capture(app.page_url, demo.table_id, out, owner)
            lookups.released.set()
            wait_final(app.url, job)
    return shot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the PNG to write ({OUT})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="screenshot-") as work:
        shot = take(args.out.resolve(), work=Path(work))
    print(json.dumps(asdict(shot), ensure_ascii=False))
    return 0
