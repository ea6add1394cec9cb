"""Big runs: a whole column of a 100,000-row table as one Run, from the click to Enriched!.

(1) **Job creation**: what the page does when Run is pressed on a whole column, in this
process: ``create_job`` with the column's selected row span (the database finds the rows) in
one transaction, committed; on SQLite and on a throwaway PostgreSQL cluster. Target <= 2 s.

(2) **Run to Enriched!** in real Chromium: the app as a production build (``reflex run --env
prod``, one port, its own SQLite file under ``bench/.work/big_runs/``), a table of ``--rows``
rows with a Greeting column of the built-in ``template`` enricher (instant, offline). The
benchmark clicks the column's header, checks the button says ``Run 100000 cells``, clicks it
and times until the header says ``Enriched!``; then it counts the column's done cells in the
database. Local mode (the in-process runner) and Trigger.dev mode (the fake Trigger.dev server
in this process, whose task runs the real worker as a subprocess and relays its lines, as
``trigger/`` does). The backend's RSS (and the worker's, in Trigger.dev mode) is sampled every
50 ms during the run, with psutil; the figure is the peak. The same run on a table a tenth the
size shows whether memory grows with the job.

    python -m bench.big_runs [--rows 100000] [--runs 3] [--modes local trigger] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa
from playwright.sync_api import Page, TimeoutError as PlaywrightTimeoutError, sync_playwright
from sqlmodel import Session, select

from bench.live_app import code_state
from enrichment_app.db.engine import create_db_engine, session_factory
from enrichment_app.db.migrate import upgrade_database
from enrichment_app.db.models import Cell, TableColumn
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.services.grid import load_meta
from enrichment_app.services.jobs import create_job
from enrichment_app.services.tables import ColumnSpec
from enrichment_app.services.task_ranges import RowRanges
from tests.fakes.trigger import FakeTrigger, WorkerTask
from tests.support.accounts import browser_cookie, sign_in_over_http
from tests.support.database import add_table, greeting
from tests.support.machine import describe, figure, write_result
from tests.support.paths import CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.support.prod_app import ProdApp
from tests.support.servers import ServerUnavailable, postgres_bindir, postgres_cluster

WORK = ROOT / "bench" / ".work" / "big_runs"
CREATE_TARGET_S = 2.0
ROW_MARKER_WIDTH = 33
HEADER_HEIGHT = 38
WIDTHS = [180, 180, 220]


def make_table(session: Session, rows: int) -> int:
    return add_table(
        session,
        name=f"Run {rows}",
        columns=[ColumnSpec("Name"), ColumnSpec("City"), greeting("Hi {Name} in {City}")],
        rows=([f"name {i}", f"city {i % 97}"] for i in range(rows)),
    )


def greeting_column(session: Session, table_id: int) -> int:
    column_id = session.exec(
        select(TableColumn.id).where(
            TableColumn.table_id == table_id, TableColumn.name == "Greeting"
        )
    ).one()
    assert column_id is not None
    return column_id


def done_cells(url: str, table_id: int) -> int:
    engine = create_db_engine(url)
    try:
        with session_factory(engine)() as session:
            column_id = greeting_column(session, table_id)
            return session.exec(
                select(sa.func.count())
                .select_from(Cell)
                .where(Cell.column_id == column_id, Cell.status == "done")
            ).one()
    finally:
        engine.dispose()


# --- (1) job creation ----------------------------------------------------------------------


def creation_seconds(url: str, rows: int, runs: int) -> list[float]:
    """Run pressed on the whole Greeting column, ``runs`` times (each job finished, in effect,
    by marking its tasks done, so the next can queue the same cells)."""
    engine = create_db_engine(url)
    upgrade_database(engine)
    open_session = session_factory(engine)
    try:
        with unit_of_work(open_session) as session:
            table_id = make_table(session, rows)
            column_id = greeting_column(session, table_id)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            with unit_of_work(open_session) as session:
                meta = load_meta(session, table_id=table_id)
                selected = RowRanges({column_id: [(0, meta.row_count)]})
                created = create_job(
                    session, table_id=table_id, cells=(), ranges=[selected], max_cells=rows
                )
            times.append(time.perf_counter() - start)
            assert created.task_count == rows
            with unit_of_work(open_session) as session:
                session.execute(
                    sa.text("UPDATE enrichment_task SET status = 'done' WHERE job_id = :j"),
                    {"j": created.job.id},
                )
        return times
    finally:
        engine.dispose()


# --- (2) Run to Enriched! in the page --------------------------------------------------------


class PeakRss:
    """Samples the RSS of some processes every 50 ms in a thread; keeps each one's peak."""

    def __init__(self, processes: Any) -> None:
        self._processes = processes  # a callable: the processes to sample now, by name
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, procs in self._processes().items():
                rss = 0
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        rss += proc.memory_info().rss
                self.peaks[name] = max(self.peaks.get(name, 0.0), rss / 2**20)
            self._stop.wait(0.05)


def workers() -> list[psutil.Process]:
    """The Trigger.dev task's workers (``python -m enrichment_app.worker``), children of this
    process (the fake's task spawns them)."""
    found = []
    for child in psutil.Process(os.getpid()).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "enrichment_app.worker" in " ".join(child.cmdline()):
                found.append(child)
    return found


def run_in_page(page: Page, url: str, table_id: int, rows: int, app: ProdApp) -> dict[str, Any]:
    page.goto(f"{url}/tables/{table_id}")
    page.locator("#table-name").filter(has_text=f"Run {rows}").wait_for()
    canvas = page.locator('#table-grid canvas[data-testid="data-grid-canvas"]').first
    canvas.wait_for()
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.click(
        box["x"] + ROW_MARKER_WIDTH + WIDTHS[0] + WIDTHS[1] + WIDTHS[2] / 2,
        box["y"] + HEADER_HEIGHT / 2,
    )
    page.locator("#run-button").filter(has_text=f"Run {rows} cells").wait_for()
    idle = app.backend_rss_mib()
    with PeakRss(lambda: {"backend": app.backend_processes(), "worker": workers()}) as peak:
        start = time.perf_counter()
        page.locator("#run-button").click()
        done = page.locator("#job-status").filter(has_text="Enriched!")
        refused = page.locator("#message")
        notes: list[str | None] = []
        while True:
            done.or_(refused).first.wait_for(timeout=900_000)
            if done.is_visible():
                break
            # A refusal stays; a passing note (seen once in Trigger.dev mode at load 16) goes.
            try:
                note = refused.text_content(timeout=2_000)
                refused.wait_for(state="hidden", timeout=5_000)
            except PlaywrightTimeoutError:
                if refused.is_visible():
                    raise RuntimeError(f"the Run was refused: {refused.inner_text()}") from None
                note = None
            notes.append(note)
        seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        "cells_per_s": round(rows / seconds, 1),
        "backend_idle_rss_mib": round(idle, 1),
        "backend_peak_rss_mib": round(peak.peaks.get("backend", 0.0), 1),
        "worker_peak_rss_mib": round(peak.peaks.get("worker", 0.0), 1),
        "load_average": os.getloadavg()[0],
        "passing_messages": notes,
    }


def page_runs(mode: str, sizes: list[int], runs: int) -> dict[str, Any]:
    folder = WORK / mode
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "app.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    engine = create_db_engine(url)
    upgrade_database(engine)
    with unit_of_work(session_factory(engine)) as session:
        # A table of its own for each Run: a page open on a finished job already says
        # Enriched!, and its cells would count as done before the Run.
        tables = {
            rows: [make_table(session, rows) for _ in range(runs if rows == max(sizes) else 1)]
            for rows in sizes
        }
    engine.dispose()
    # Every run of the benchmark queues cells: the daily cap (100,000 by default) would refuse
    # the second 100k-cell Run of the day.
    env = {"DATABASE_URL": url, "SEED_DEMO": "false", "MAX_CELLS_PER_DAY": "100000000"}
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if mode == "trigger":
            task = WorkerTask(database_url=url, queue_delay=0.3)
            fake = stack.enter_context(FakeTrigger(executor=task))
            env |= {"TRIGGER_SECRET_KEY": fake.secret_key, "TRIGGER_API_URL": fake.url}
        app = ProdApp(work=WORK / "web", env=env, log_path=folder / "reflex.log", start_timeout=600)
        stack.enter_context(app)
        # Before Playwright's sync API, which runs an event loop of its own in this thread.
        owner = asyncio.run(sign_in_over_http(app.url, set_up=True))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1600, "height": 900})
            context.add_cookies([browser_cookie(owner, app.url)])  # type: ignore[list-item]
            page = context.new_page()
            page.set_default_timeout(60_000)
            for rows in sizes:
                results = []
                for n, table_id in enumerate(tables[rows]):
                    result = run_in_page(page, app.url, table_id, rows, app)
                    result["done_cells"] = done_cells(url, table_id)
                    if result["done_cells"] != rows:
                        raise RuntimeError(f"{result['done_cells']} of {rows} cells are done")
                    print(mode, rows, n, result, flush=True)
                    results.append(result)
                out[str(rows)] = {
                    "runs": results,
                    "median_s": statistics.median(r["seconds"] for r in results),
                    "median_backend_peak_rss_mib": statistics.median(
                        r["backend_peak_rss_mib"] for r in results
                    ),
                    "median_worker_peak_rss_mib": statistics.median(
                        r["worker_peak_rss_mib"] for r in results
                    ),
                }
            browser.close()
    return out


@contextlib.contextmanager
def postgres() -> Iterator[str | None]:
    try:
        postgres_bindir()
    except ServerUnavailable:
        yield None
        return
    with postgres_cluster(durable=True) as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["local", "trigger"])
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    machine = describe()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    raw: dict[str, Any] = {"commit": commit, "rows": args.rows, "creation": {}, "page": {}}
    WORK.mkdir(parents=True, exist_ok=True)
    raw["creation"]["SQLite"] = creation_seconds(
        f"sqlite:///{WORK / 'create.db'}", args.rows, args.runs
    )
    (WORK / "create.db").unlink(missing_ok=True)
    if not args.no_postgres:
        with postgres() as url:
            if url is not None:
                raw["creation"]["PostgreSQL"] = creation_seconds(url, args.rows, args.runs)
    print("creation", raw["creation"], flush=True)
    sizes = [args.rows // 10, args.rows]
    for mode in args.modes:
        raw["page"][mode] = page_runs(mode, sizes, args.runs)
    raw["load_average_at_end"] = os.getloadavg()
    write_result(
        "big_runs", label=args.label, machine=machine, rows=rows_of(raw), raw=raw, code=code_state()
    )


def rows_of(raw: dict[str, Any]) -> list[dict[str, object]]:
    rows = raw["rows"]
    out: list[dict[str, object]] = []
    for database, times in raw["creation"].items():
        value = round(statistics.median(times), 2)
        sqlite = database == "SQLite"
        out.append(
            figure(
                f"Run on a whole column of {rows:,} rows: job and tasks created, {database}",
                value,
                "s",
                target=f"<= {CREATE_TARGET_S:g} s" + ("" if sqlite else " (SQLite's target)"),
                met=value <= CREATE_TARGET_S if sqlite else None,
            )
        )
    for mode, sizes in raw["page"].items():
        full, tenth = sizes[str(rows)], sizes[str(rows // 10)]
        where = "local runner" if mode == "local" else "Trigger.dev mode (fake, real worker)"
        out.append(
            figure(
                f"{rows:,} instant cells, Run to Enriched! in the page, {where}",
                round(full["median_s"], 1),
                "s",
            )
        )
        memory = (
            f"{tenth['median_backend_peak_rss_mib']:g} / {full['median_backend_peak_rss_mib']:g}"
        )
        label = f"backend peak RSS during the run, {rows // 10:,} / {rows:,} cells, {where}"
        if mode == "trigger":
            memory += (
                f" (worker: {tenth['median_worker_peak_rss_mib']:g} /"
                f" {full['median_worker_peak_rss_mib']:g})"
            )
        grown = full["median_backend_peak_rss_mib"] - tenth["median_backend_peak_rss_mib"]
        out.append(
            figure(
                label,
                memory,
                "MiB",
                target="flat as the job grows (10x the cells: <= 25 MiB more)",
                met=grown <= 25,
            )
        )
    return out


if __name__ == "__main__":
    main()
