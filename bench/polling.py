"""Polling fallback cost: database queries per second per tab watching a running job.

The app runs in this process under Reflex's AppHarness (uvicorn backend thread plus the vite
dev server), in local-runner mode, so a SQLAlchemy ``before_cursor_execute`` listener (on every
engine of the process) sees the backend's queries. Each query is attributed by the stack it was
issued from: the page's watchers (``enrichment_app/state/table.py``, i.e. ``watch_job``'s polls)
or the runner (``enrichment_app/runner/``); the runner's are reported apart, not counted.

A job of ``http_json`` cells runs against bench/slow_api.py answering in 1 s (the built-in
enricher's concurrency of 4: about 4 cells/s, slow enough to watch), started through the REST
API. Then N = 1, 10, 50 Playwright tabs (one Chromium) open the table page, each re-attaching to
the job and polling; after they settle, queries are counted over ``WINDOW`` seconds.

    python -m bench.polling [--tabs 1 10 50] [--window 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from typing import Any

import httpx
import sqlalchemy as sa
from playwright.sync_api import sync_playwright

from bench.slow_api import serve
from enrichment_app.domain import ColumnKind
from enrichment_app.services.tables import ColumnSpec, list_columns, list_rows
from tests.support.accounts import browser_cookie, sign_in_over_http
from tests.support.database import add_table, database_session
from tests.support.live_server import allowance
from tests.support.machine import describe, figure, write_result
from tests.support.paths import CHROMIUM, CHROMIUM_ARGS, ROOT

WORK = ROOT / "bench" / ".work" / "polling"
ROWS = 3000


class QueryCounter:
    """Counts SQL statements by where they came from (the page's watchers, the runner, other)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, *_args: Any) -> None:
        source = "other"
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_code.co_filename
            if name.endswith("enrichment_app/state/table.py"):
                source = "page"
                break
            if "enrichment_app/runner/" in name:
                source = "runner"
                break
            frame = frame.f_back  # type: ignore[assignment]
        with self.lock:
            self.counts[source] += 1

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)


def _table(database_url: str, api: str) -> tuple[int, list[dict[str, int]]]:
    with database_session(database_url, migrate=True) as session:
        table_id = add_table(
            session,
            name="Polling bench",
            columns=[
                ColumnSpec("Name"),
                ColumnSpec(
                    "Lookup",
                    kind=ColumnKind.ENRICHMENT,
                    enricher="http_json",
                    config={"url": api + "/lookup?q={Name}", "path": "data.value"},
                ),
            ],
            rows=([f"name {i}"] for i in range(ROWS)),
        )
        lookup = next(c for c in list_columns(session=session, table_id=table_id) if c.enricher)
        cells = [
            {"rowId": r.id or 0, "columnId": lookup.id or 0}
            for r in list_rows(session=session, table_id=table_id)
        ]
        return table_id, cells


def run(tab_counts: list[int], window: float) -> dict[str, Any]:
    from reflex.testing import AppHarness

    from enrichment_app.settings import get_settings

    WORK.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"window_s": window, "by_tabs": {}}
    counter = QueryCounter()
    sa.event.listen(sa.Engine, "before_cursor_execute", counter)
    with tempfile.TemporaryDirectory(prefix="bench-polling-") as tmp, serve(delay=1.0) as api:
        database_url = f"sqlite:///{tmp}/app.db"
        table_id, cells = _table(database_url, api)
        api_key = secrets.token_urlsafe(16)
        for key in ("TRIGGER_SECRET_KEY", "TRIGGER_API_URL", "LLM_API_KEY", "OPENAI_API_KEY"):
            os.environ.pop(key, None)
        os.environ.update(
            {
                "DATABASE_URL": database_url,
                "SEED_DEMO": "false",
                "ENRICHMENT_API_KEY": api_key,
                "MAX_CELLS_PER_JOB": str(ROWS),
                "ENRICHER_ALLOWED_NETWORKS": allowance(api),
            }
        )
        get_settings.cache_clear()
        with AppHarness.create(root=ROOT, app_name="enrichment_app") as harness:
            assert harness.frontend_url is not None and harness.backend is not None
            frontend = harness.frontend_url.rstrip("/").replace("//localhost:", "//127.0.0.1:")
            host, port = harness.backend.servers[0].sockets[0].getsockname()[:2]
            backend = f"http://{host}:{port}"
            owner = asyncio.run(sign_in_over_http(backend, set_up=True, origin=frontend))
            job = httpx.post(
                f"{backend}/api/tables/{table_id}/enrich",
                json={"cells": cells},
                headers={"authorization": f"Bearer {api_key}"},
                timeout=60,
            )
            job.raise_for_status()
            job_id = job.json()["job"]["id"]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1200, "height": 800})
                context.add_cookies([browser_cookie(owner, frontend)])  # type: ignore[list-item]
                pages = []
                for n in tab_counts:
                    while len(pages) < n:
                        page = context.new_page()
                        page.set_default_timeout(60_000)
                        page.goto(f"{frontend}/tables/{table_id}")
                        page.locator("#job-status").filter(has_text="Enriching").wait_for()
                        pages.append(page)
                    time.sleep(3)  # let every tab's watcher settle into its rhythm
                    before, started = counter.snapshot(), time.perf_counter()
                    time.sleep(window)
                    after, seconds = counter.snapshot(), time.perf_counter() - started
                    delta = {k: after[k] - before[k] for k in ("page", "runner", "other")}
                    figures = {
                        "tabs": n,
                        "seconds": round(seconds, 2),
                        "queries": delta,
                        "page_queries_per_s": round(delta["page"] / seconds, 2),
                        "per_tab_queries_per_s": round(delta["page"] / seconds / n, 3),
                        "runner_queries_per_s": round(delta["runner"] / seconds, 2),
                        "load_average": os.getloadavg(),
                    }
                    out["by_tabs"][n] = figures
                    print(json.dumps(figures))
                browser.close()
            httpx.post(
                f"{backend}/api/jobs/{job_id}/cancel",
                headers={"authorization": f"Bearer {api_key}"},
                timeout=30,
            )
    sa.event.remove(sa.Engine, "before_cursor_execute", counter)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--window", type=float, default=15.0)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    machine = describe()
    raw = run(sorted(args.tabs), args.window)
    rows = [
        figure(
            f"polling fallback, {n} watching tab(s): DB queries/s per tab",
            fig["per_tab_queries_per_s"],
            "queries/s/tab",
            target="report (no target in issue 5)",
        )
        for n, fig in raw["by_tabs"].items()
    ]
    write_result("polling", label=args.label, machine=machine, rows=rows, raw=raw)


if __name__ == "__main__":
    main()
