"""Big tables: 10k, 50k and 100k rows x 8 columns in the table page, in real Chromium.

The app runs as a production build on one port (``reflex run --env prod``, its own process
group, SQLite file and ``.web`` folder under ``bench/.work/``). For each size:

* **time to interactive**: from ``page.goto`` until (1) the header shows the row count, (2) the
  grid canvas is there and the page holds its first window of rows (``#table-grid``'s
  ``data-window-rows`` > 0, i.e. the cells ``getCellContent`` draws have arrived), and (3) a click
  on a cell (row 3 of the first column) shows that cell's value in the inspector, i.e. the grid
  answers input and the server round trip works;
* **backend memory per open tab**: the backend's RSS (psutil, the whole process group minus
  the frontend server) after opening ``TABS`` more tabs of the table, minus before, divided by
  ``TABS``;
* **a batch of 1,000 cell updates**: rows 0-999 of the enrichment column are selected (click
  row 0, scroll to row ~1000, shift-click row 999) and Run starts a 1,000-cell job
  of the ``template`` enricher (instant); measured from the click on Run until the page shows
  "Enriched!" and the window's cells of that column read their new values (the poller applies
  the updates of the rows in the window; the header counts all 1,000).

    python -m bench.big_tables [--sizes 10000 50000 100000] [--tabs 5] [--label after]

``--views`` measures filtered, sorted and searched views of the largest size instead, on SQLite
and PostgreSQL side by side in one run (``bench/big_table_views.py``), into
``bench/results/big_tables_views.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import Page, sync_playwright

from bench.live_app import code_state
from enrichment_app.services.tables import ColumnSpec
from tests.support.accounts import browser_cookie, sign_in_over_http
from tests.support.database import add_table, database_session, greeting
from tests.support.machine import describe, figure, write_result
from tests.support.paths import CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.support.prod_app import ProdApp

WORK = ROOT / "bench" / ".work" / "big_tables"
TARGET_INTERACTIVE_S = 2.0
INPUTS = ["Name", "City", "Country", "Email", "Website", "Phone", "Notes"]
ROW_MARKER_WIDTH = 33
HEADER_HEIGHT = 38
ROW_HEIGHT = 34


def _make_tables(database: Path | str, sizes: list[int]) -> dict[int, int]:
    """The tables, in the SQLite file ``database`` or at the database URL ``database``."""
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    with database_session(url, migrate=True) as session:
        return {
            rows: add_table(
                session,
                name=f"Big {rows}",
                columns=[*(ColumnSpec(name) for name in INPUTS), greeting("Hi {Name} in {City}")],
                rows=(
                    [f"r{i}c{j}" if j else f"name {i}" for j in range(len(INPUTS))]
                    for i in range(rows)
                ),
            )
            for rows in sizes
        }


def _backend_rss_mib(process: subprocess.Popen[bytes]) -> float:
    """RSS of the app's Python processes (reflex and its granian workers), not bun/node."""
    root = psutil.Process(process.pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            if "python" in proc.name().lower() or "granian" in " ".join(proc.cmdline()):
                total += proc.memory_info().rss
    return total / 2**20


def _grid_box(page: Page) -> dict[str, float]:
    box = page.locator('#table-grid canvas[data-testid="data-grid-canvas"]').first.bounding_box()
    assert box is not None
    return box


def _interactive(page: Page, url: str, rows: int) -> dict[str, float]:
    start = time.perf_counter()
    page.goto(url)
    page.locator("#table-meta").filter(has_text=f"{rows} rows").wait_for()
    meta = time.perf_counter() - start
    page.wait_for_function(
        "() => { const g = document.querySelector('#table-grid');"
        " const held = g && g.getAttribute('data-window-rows');"  # absent before windowing
        " return g && g.querySelector('canvas[data-testid=\"data-grid-canvas\"]')"
        " && (held === null || Number(held) > 0); }"
    )
    drawn = time.perf_counter() - start
    box = _grid_box(page)
    page.mouse.click(
        box["x"] + ROW_MARKER_WIDTH + 90, box["y"] + HEADER_HEIGHT + ROW_HEIGHT * 3 + 17
    )
    page.locator("#inspector-value").filter(has_text="name 3").wait_for()
    return {
        "header_s": round(meta, 3),
        "window_drawn_s": round(drawn, 3),
        "interactive_s": round(time.perf_counter() - start, 3),
    }


def _update_batch(page: Page, batch: int) -> dict[str, Any]:
    box = _grid_box(page)
    # The enrichment column is the last one; the page's width may show only its left part.
    greeting_x = min(
        box["x"] + ROW_MARKER_WIDTH + 180 * len(INPUTS) + 110, box["x"] + box["width"] - 15
    )
    page.mouse.click(greeting_x, box["y"] + HEADER_HEIGHT + ROW_HEIGHT / 2)
    try:
        page.locator("#run-button").filter(has_text="Run 1 cell").wait_for(timeout=10_000)
    except Exception:
        page.screenshot(path=str(WORK / "update-batch.png"))
        raise
    last = batch - 1
    page.locator("#table-grid .dvn-scroller").first.evaluate(
        f"el => {{ el.scrollTop = {ROW_HEIGHT * (last - 5)}; }}"
    )
    page.wait_for_function(
        f"() => Number(document.querySelector('#table-grid').getAttribute('data-window-start')) > {last - 200}"
    )
    page.wait_for_timeout(300)  # let the scroll settle
    page.keyboard.down("Shift")
    page.mouse.click(greeting_x, box["y"] + HEADER_HEIGHT + ROW_HEIGHT * 5 + ROW_HEIGHT / 2)
    page.keyboard.up("Shift")
    try:
        page.locator("#run-button").filter(has_text=f"Run {batch} cells").wait_for(timeout=10_000)
    except Exception:
        text = page.locator("#run-button").text_content()
        window = page.locator("#table-grid").get_attribute("data-window-start")
        page.screenshot(path=str(WORK / "update-batch.png"))
        return {"cells": batch, "error": f"selection gave {text!r} (window at {window})"}
    start = time.perf_counter()
    page.locator("#run-button").click()
    page.locator("#job-status").filter(has_text="Enriched!").wait_for(timeout=120_000)
    shown = time.perf_counter() - start
    # The window's cells of the enrichment column carry the new values.
    page.mouse.click(greeting_x, box["y"] + HEADER_HEIGHT + ROW_HEIGHT * 5 + 17)
    page.locator("#inspector-value").filter(has_text=f"Hi name {last} in").wait_for()
    return {"cells": batch, "run_to_enriched_s": round(shown, 3)}


def run(
    sizes: list[int], tabs: int, batch: int, app_root: Path, timeout_ms: float = 60_000
) -> dict[str, Any]:
    WORK.mkdir(parents=True, exist_ok=True)
    database = WORK / "app.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    ids = _make_tables(database, sizes)
    print(f"tables created in {time.perf_counter() - started:.1f} s: {ids}")
    app = ProdApp(
        work=WORK,
        env={"DATABASE_URL": f"sqlite:///{database}", "SEED_DEMO": "false"},
        log_path=WORK / "reflex.log",
        root=app_root,
        start_timeout=300,
        poll_seconds=1.0,
    )
    out: dict[str, Any] = {"sizes": {}}
    with app:
        url, process = app.url, app.process
        assert process is not None
        out["startup_s"] = round(time.perf_counter() - started, 1)
        # Before Playwright's sync API, which runs an event loop of its own in this thread.
        owner = asyncio.run(sign_in_over_http(url, set_up=True))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1900, "height": 1000})
            context.add_cookies([browser_cookie(owner, url)])  # type: ignore[list-item]
            warm = context.new_page()
            warm.set_default_timeout(timeout_ms)
            with contextlib.suppress(Exception):  # JS and fonts cached
                _interactive(warm, f"{url}/tables/{ids[sizes[0]]}", sizes[0])
            warm.close()
            for rows in sizes:
                page = context.new_page()
                page.set_default_timeout(timeout_ms)
                try:
                    _interactive(page, f"{url}/tables/{ids[rows]}", rows)
                except Exception as exc:  # the design before windowing never got there
                    out["sizes"][rows] = {
                        "error": f"not interactive within {timeout_ms / 1000:g} s: {type(exc).__name__}"
                    }
                    print(rows, out["sizes"][rows])
                    page.close()
                    continue
                runs: list[dict[str, Any]] = []
                for _ in range(3):
                    try:
                        runs.append(_interactive(page, f"{url}/tables/{ids[rows]}", rows))
                    except Exception as exc:
                        runs.append({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"})
                ok = sorted(r["interactive_s"] for r in runs if "interactive_s" in r)
                figures: dict[str, Any] = {"runs": runs}
                if not ok:
                    figures["error"] = f"not interactive within {timeout_ms / 1000:g} s"
                    out["sizes"][rows] = figures
                    print(rows, json.dumps(figures))
                    page.close()
                    continue
                figures["interactive_s"] = ok[len(ok) // 2]
                before = _backend_rss_mib(process)
                extra = []
                for _ in range(tabs):
                    tab = context.new_page()
                    tab.set_default_timeout(timeout_ms)
                    _interactive(tab, f"{url}/tables/{ids[rows]}", rows)
                    extra.append(tab)
                time.sleep(1)
                after = _backend_rss_mib(process)
                figures["backend_rss_before_mib"] = round(before, 1)
                figures["backend_rss_after_mib"] = round(after, 1)
                figures["backend_mib_per_tab"] = round((after - before) / tabs, 2)
                for tab in extra:
                    tab.close()
                try:
                    figures["update_batch"] = _update_batch(page, batch)
                except Exception as exc:
                    figures["update_batch"] = {"cells": batch, "error": type(exc).__name__}
                page.close()
                out["sizes"][rows] = figures
                print(rows, json.dumps(figures))
            browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--views",
        action="store_true",
        help="filter, sort and search figures (SQLite and PostgreSQL)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--tabs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--label", default="")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per page step")
    parser.add_argument(
        "--app-root",
        type=Path,
        default=ROOT,
        help="run the app from another checkout (e.g. a git worktree of the commit before)",
    )
    args = parser.parse_args()
    machine = describe()
    if args.views:
        from bench.big_table_views import measure_views

        measure_views(max(args.sizes), args.app_root.resolve(), args.timeout * 1000, machine)
        return
    raw = run(args.sizes, args.tabs, args.batch, args.app_root.resolve(), args.timeout * 1000)
    raw["app_root"] = str(args.app_root)
    rows: list[dict[str, Any]] = []
    for size, fig in raw["sizes"].items():
        if "error" in fig:
            rows.append(
                figure(
                    f"{size:,} rows x 8 columns: navigation to interactive grid",
                    fig["error"],
                    "",
                    target=f"<= {TARGET_INTERACTIVE_S} s (100k rows)",
                    met=False,
                )
            )
            continue
        rows.append(
            figure(
                f"{size:,} rows x 8 columns: navigation to interactive grid (median of 3)",
                fig["interactive_s"],
                "s",
                target=f"<= {TARGET_INTERACTIVE_S} s (100k rows)",
                met=fig["interactive_s"] <= TARGET_INTERACTIVE_S,
            )
        )
        rows.append(
            figure(f"{size:,} rows: backend memory per open tab", fig["backend_mib_per_tab"], "MiB")
        )
        rows.append(
            figure(
                f"{size:,} rows: 1,000-cell job, Run to Enriched! in the page",
                fig["update_batch"].get("run_to_enriched_s", "failed"),
                "s",
            )
        )
    write_result(
        "big_tables", label=args.label, machine=machine, rows=rows, raw=raw, code=code_state()
    )


if __name__ == "__main__":
    main()
