"""The soak itself: jobs through the real app while faults strike, then every cell accounted for.

One ``Soak`` runs one mode (Trigger.dev against the fake, or the local runner) against one
backend process and one SQLite database:

1. ``prepare`` migrates the database, installs a test-only audit trigger on ``cell`` (every
   UPDATE of a cell's value or status appends a row to ``soak_cell_audit``: how many times a
   cell's final result was written, and in which order), and creates one table per job: a
   ``Key`` column (the oracle's row key) and two ``http_json`` columns (A, B) asking the oracle.
2. ``run`` drives the jobs, ``concurrency`` at a time. Each job has its own page: a
   ``ReflexSocket`` on ``/tables/<id>``, that is the state the browser renders (the header's
   status line, the grid's cells). A job is started by the page's Run event (select, then run)
   or by ``POST /api/tables/{id}/enrich`` with an ``Idempotency-Key`` (retried after a crash),
   and its faults strike at their planned points. The driver then waits for the job to be
   final in the database, and for the page to show what the database holds.
3. ``verify`` accounts for every cell of every job against the oracle's request log and the
   audit table (``JobOutcome``).

Definitions (per cell of a job):

* **lost**: the cell ended final but not with what it should hold: an oracle answer computed
  for this very row and column (``key|col#seq`` with ``seq`` one of the oracle's successful
  answers for it) when the oracle answers it, or an error saying why when the oracle refuses
  it (HTTP 500) or is too slow (timeout). A job that was never created counts all its cells.
* **duplicated**: the cell's final state was written more than once (two audit rows with a
  final status), or the same cells got a second job. **older**: a later final write carries an
  older answer (a lower ``seq``) than an earlier one: a result overwritten by an older one.
* **stuck**: the job, one of its tasks or one of its cells is not final ``STUCK_SECONDS`` after
  the job's last fault (or the backend's last restart).
* **page≠db**: the page's status line, job or cells differ from the database once the job is
  final, ``PAGE_SECONDS`` later.
* **retries** (information, not a failure): requests to the oracle beyond one per cell. A cell
  may legitimately be asked twice: its request was in flight when the process was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col, select

from enrichment_app.db.engine import create_db_engine, session_factory
from enrichment_app.db.migrate import upgrade_database
from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask, TableColumn, TableRow
from enrichment_app.domain import ColumnKind
from enrichment_app.live.status import describe_job
from enrichment_app.services import grid as grid_service
from enrichment_app.services.tables import ColumnSpec, create_table
from tests.fakes.trigger import FakeTrigger, PendingFault, WorkerTask
from tests.soak import oracle
from tests.soak.backend import Backend
from tests.soak.plan import TRIGGER, Fault, JobPlan
from tests.support.accounts import sign_in_over_http
from tests.support.live_server import allowance
from tests.support.reflex_socket import ReflexSocket, state_name
from tests.support.secret_scan import find_leaks

logger = logging.getLogger(__name__)

TABLE_STATE = state_name("enrichment_app.state.table", "TableState")
JOB_STATE = state_name("enrichment_app.state.table", "TableJobState", parent=TABLE_STATE)
"""The table page's job: its status, Run and Cancel (a substate of the table's)."""
FINAL_JOB = ("completed", "failed", "canceled")
FINAL_CELL = ("done", "error", "canceled")
ENRICHER_TIMEOUT = 2.0
"""The http_json columns' ``timeout_seconds``; the oracle holds ``-slow`` rows longer."""
TRIGGER_TIMEOUT = 3.0
REALTIME_TIMEOUT = 5.0
LIVE_POLL_HOLD = 2.0
STUCK_SECONDS = 45.0
PAGE_SECONDS = 20.0
DISPATCH_SECONDS = 30.0

AUDIT_SQL = (
    """CREATE TABLE IF NOT EXISTS soak_cell_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        row_id INTEGER NOT NULL, column_id INTEGER NOT NULL,
        old_status TEXT, new_status TEXT, value TEXT, error TEXT,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')))""",
    """CREATE TRIGGER IF NOT EXISTS soak_cell_audit_update AFTER UPDATE OF value, status ON cell
    BEGIN
        INSERT INTO soak_cell_audit (row_id, column_id, old_status, new_status, value, error)
        VALUES (NEW.row_id, NEW.column_id, OLD.status, NEW.status, NEW.value, NEW.error);
    END""",
)


@dataclass
class JobRun:
    """One planned job as it went: its table, its job and run, its page, its faults' handles."""

    plan: JobPlan
    table_id: int
    row_ids: list[int]
    key_column: int
    a_column: int
    b_column: int
    job_id: int | None = None
    run_id: str | None = None
    page: ReflexSocket | None = None
    keeper: asyncio.Task[None] | None = None
    started_at: float = 0.0
    dispatched_at: float = 0.0
    final_at: float = 0.0
    page_at: float = 0.0
    quiet_since: float = 0.0
    """When the job's last fault struck (stuck is measured from here)."""
    handles: list[tuple[Fault, PendingFault]] = field(default_factory=list)
    witness_from: dict[str, int] = field(default_factory=dict)
    page_ok: bool = False
    page_detail: str = ""
    notes: list[str] = field(default_factory=list)
    final_status: str = ""
    page_label: str = ""
    page_live: bool | None = None

    def cells(self) -> list[tuple[int, int]]:
        """The (row id, column id) of every cell the job runs."""
        a = [(r, self.a_column) for r in self.row_ids]
        b = [(r, self.b_column) for r in self.row_ids[: self.plan.b_rows]]
        return a + b

    def selection(self) -> dict[str, Any]:
        """The grid selection a user makes for this job: column A, and the top of column B."""
        rows, b_rows = self.plan.rows, self.plan.b_rows
        stack = [{"x": 2, "y": 0, "width": 1, "height": b_rows}] if b_rows else []
        return {
            "current": {
                "cell": [1, 0],
                "range": {"x": 1, "y": 0, "width": 1, "height": rows},
                "rangeStack": stack,
            },
            "columns": {"items": []},
            "rows": {"items": []},
        }


@dataclass
class JobOutcome:
    index: int
    mode: str
    size: int
    via: str
    faults: list[str]
    fired: list[str]
    job_id: int | None
    status: str
    unfired: dict[str, str] = field(default_factory=dict)
    """Planned faults that did not strike, and why (when the harness knows)."""
    lost: int = 0
    duplicated: int = 0
    older: int = 0
    stuck: int = 0
    page_mismatch: int = 0
    retries: int = 0
    reattempted_tasks: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    """When the job was started, dispatched, final in the database and on the page (from the
    start of its mode's soak)."""
    details: list[str] = field(default_factory=list)


class Soak:
    def __init__(
        self,
        *,
        mode: str,
        plans: list[JobPlan],
        work: Path,
        oracle_url: str,
        secrets: Mapping[str, str],
        concurrency: int = 4,
        seed: int = 0,
    ) -> None:
        self.mode = mode
        self.plans = plans
        self.work = work
        self.oracle_url = oracle_url
        self.secrets = dict(secrets)
        self.concurrency = concurrency
        self.seed = seed
        self.db_path = work / "app.db"
        self.database_url = f"sqlite:///{self.db_path}"
        self.jobs: list[JobRun] = []
        self.fake: FakeTrigger | None = None
        self.worker: WorkerTask | None = None
        self.backend: Backend | None = None
        self.http: httpx.AsyncClient | None = None
        self.api_bodies: list[str] = []
        self.leaks: list[str] = []
        self.scanned_frames = 0
        self.kill_lock = asyncio.Lock()
        self.backend_up = asyncio.Event()
        self._cookie = ""
        self._sign_in_lock = asyncio.Lock()
        self.last_restart = 0.0
        self.requests_at_restart = 0
        """How many requests the fake had seen when the backend last started."""
        self.restarts = 0
        self.engine = create_db_engine(self.database_url)
        self.open_session = session_factory(self.engine)
        self.wall_seconds = 0.0
        self.started_at = 0.0

    # -- setup ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Migrate, install the audit trigger, and create one table per job."""
        upgrade_database(self.engine)
        with self.engine.begin() as connection:
            for statement in AUDIT_SQL:
                connection.exec_driver_sql(statement)
        config = {"path": "value", "timeout_seconds": ENRICHER_TIMEOUT}
        with self.open_session() as session:
            for plan in self.plans:
                keys = [
                    [oracle.row_key(plan.index, r, plan.delay_ms, plan.row_mode(r))]
                    for r in range(plan.rows)
                ]
                table = create_table(
                    session=session,
                    name=f"soak {plan.mode} job {plan.index}",
                    columns=[
                        ColumnSpec("Key"),
                        *(
                            ColumnSpec(
                                name,
                                ColumnKind.ENRICHMENT,
                                "http_json",
                                {"url": f"{self.oracle_url}/cell?key={{Key}}&col={tag}", **config},
                            )
                            for name, tag in (("A", "a"), ("B", "b"))
                        ),
                    ],
                    rows=keys,
                    max_cell_chars=10_000,
                )
                session.flush()
                assert table.id is not None
                columns = session.exec(
                    select(TableColumn)
                    .where(TableColumn.table_id == table.id)
                    .order_by(col(TableColumn.position))
                ).all()
                row_ids = session.exec(
                    select(TableRow.id)
                    .where(TableRow.table_id == table.id)
                    .order_by(col(TableRow.position))
                ).all()
                self.jobs.append(
                    JobRun(
                        plan=plan,
                        table_id=table.id,
                        row_ids=[r for r in row_ids if r is not None],
                        key_column=columns[0].id or 0,
                        a_column=columns[1].id or 0,
                        b_column=columns[2].id or 0,
                    )
                )
            session.commit()

    def app_env(self) -> dict[str, str]:
        env = {
            "DATABASE_URL": self.database_url,
            "SEED_DEMO": "false",
            "ENRICHMENT_API_KEY": self.secrets["ENRICHMENT_API_KEY"],
            "LLM_API_KEY": self.secrets["LLM_API_KEY"],
            "LLM_BASE_URL": self.oracle_url + "/v1",
            "ENRICHER_ALLOWED_NETWORKS": allowance(self.oracle_url),
        }
        if self.fake is not None:
            env.update(
                {
                    "TRIGGER_SECRET_KEY": self.fake.secret_key,
                    "TRIGGER_API_URL": self.fake.url,
                    "TRIGGER_TIMEOUT_SECONDS": str(TRIGGER_TIMEOUT),
                    "TRIGGER_REALTIME_TIMEOUT_SECONDS": str(REALTIME_TIMEOUT),
                }
            )
        return env

    # -- the run ------------------------------------------------------------------------------

    async def run(self, budget: float) -> None:
        started = self.started_at = time.monotonic()
        with contextlib.ExitStack() as stack:
            if self.mode == TRIGGER:
                self.worker = WorkerTask(
                    database_url=self.database_url,
                    queue_delay=0.2,
                    env={"ENRICHER_ALLOWED_NETWORKS": allowance(self.oracle_url)},
                )
                self.fake = FakeTrigger(
                    secret_key=self.secrets["TRIGGER_SECRET_KEY"],
                    live_poll_timeout=LIVE_POLL_HOLD,
                    ping_interval=1.0,
                    executor=self.worker,
                )
                stack.enter_context(self.fake)
            self.backend = Backend(
                work=self.work / "reflex", env=self.app_env(), log_path=self.work / "backend.log"
            )
            stack.callback(self.backend.stop)
            await asyncio.to_thread(self.backend.start)
            self.backend_up.set()
            headers = {"authorization": f"Bearer {self.secrets['ENRICHMENT_API_KEY']}"}
            async with httpx.AsyncClient(base_url=self.backend.url, headers=headers) as http:
                self.http = http
                limit = asyncio.Semaphore(self.concurrency)

                async def bounded(job: JobRun) -> None:
                    async with limit:
                        await self._drive(job)

                try:
                    async with asyncio.timeout(budget):
                        await asyncio.gather(*(bounded(j) for j in self.jobs))
                except TimeoutError:
                    for job in self.jobs:
                        if not job.page_detail and not job.page_ok:
                            job.notes.append(f"the soak's budget of {budget:.0f} s ran out")
                finally:
                    for job in self.jobs:
                        await self._close_page(job)
            await asyncio.to_thread(self.backend.stop)
        self.wall_seconds = time.monotonic() - started

    async def _drive(self, job: JobRun) -> None:
        plan = job.plan
        job.started_at = job.quiet_since = time.monotonic()
        try:
            if plan.via == "page":
                await self._open_page(job)
            await self._start(job)
            if plan.via == "api":
                await self._open_page(job)
            await self._mid_job_faults(job)
            await self._wait_final(job)
            await self._wait_page(job)
        except Exception as exc:  # recorded, and the job is judged from the database anyway
            logger.exception("job %s: driver failed", plan.index)
            job.notes.append(f"driver error: {type(exc).__name__}: {exc}")
        finally:
            self._settle_faults(job)
            await self._close_page(job)

    # -- pages --------------------------------------------------------------------------------

    async def _open_page(self, job: JobRun) -> None:
        assert self.backend is not None
        await self.backend_up.wait()
        page = ReflexSocket(
            "127.0.0.1",
            self.backend.port,
            path=f"/tables/{job.table_id}",
            query={"table_id": str(job.table_id)},
            record=True,
            headers={"Cookie": await self._signed_in()},
        )
        job.page = page
        await page.reconnect(within=60)
        job.keeper = asyncio.create_task(
            self._keep_connected(job, page), name=f"page-{job.plan.index}"
        )
        await page.until(
            lambda: self._page_loaded(job),
            within=30,
            message=f"the page of table {job.table_id} to load",
        )

    async def _signed_in(self) -> str:
        """The owner's session cookie: set up through the real flow by the first page opened
        (the session lives in the database, so it outlives backend restarts)."""
        assert self.backend is not None
        async with self._sign_in_lock:
            if not self._cookie:
                url = f"http://127.0.0.1:{self.backend.port}"
                self._cookie = (await sign_in_over_http(url, set_up=True)).cookie
        return self._cookie

    async def _keep_connected(self, job: JobRun, page: ReflexSocket) -> None:
        """Reconnect after the backend went away, as the frontend's socket does."""
        while job.page is page:
            await page.ended.wait()
            if job.page is not page:
                return
            await self.backend_up.wait()
            try:
                await page.reconnect(within=60)
            except Exception as exc:  # keep trying while the job's driver needs the page
                job.notes.append(f"page reconnect: {type(exc).__name__}: {exc}")

    def _page_vars(self, job: JobRun) -> dict[str, Any]:
        if job.page is None:
            return {}
        return {**job.page.vars(TABLE_STATE), **job.page.vars(JOB_STATE)}

    def _page_loaded(self, job: JobRun) -> bool:
        v = self._page_vars(job)
        return v.get("table_id") == job.table_id and v.get("row_count") == job.plan.rows

    async def _close_page(self, job: JobRun) -> None:
        page, job.page = job.page, None
        keeper, job.keeper = job.keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        if page is None:
            return
        await page.close()
        self.scanned_frames += len(page.frames)
        self.leaks += find_leaks(
            self.secrets, {f"page of job {job.plan.index}": "\n".join(page.frames)}
        )
        page.frames.clear()

    # -- starting -----------------------------------------------------------------------------

    async def _start(self, job: JobRun) -> None:
        """Aim the trigger and run-start faults at this job's run (by its table tag), start it."""
        plan = job.plan
        trigger_handles = [
            (f, self._inject_start_fault(job, f))
            for f in plan.faults
            if f.when in ("trigger", "start", "run-start")
        ]
        trigger_handles = [(f, h) for f, h in trigger_handles if h is not None]
        job.handles += trigger_handles
        kill = next((f for f in plan.faults if f.when == "start"), None)
        killer = None
        if kill is not None:
            delay = 1.0 if kill.variant.startswith("dispatch") else 0.05
            killer = asyncio.create_task(self._kill_later(job, kill, delay))
        if plan.via == "api":
            await self._api_start(job)
        else:
            await self._page_start(job)
        await self._wait_dispatched(job)
        job.dispatched_at = time.monotonic()
        if killer is not None:
            await killer

    def _inject_start_fault(self, job: JobRun, fault: Fault) -> PendingFault | None:
        fake = self.fake
        if fake is None:
            return None
        tag = f"table:{job.table_id}"  # the app tags each run with its table
        if fault.kind == "stream_drop":
            after = int(fault.at * job.plan.size)
            return fake.drop_next("stream_read", after=after, mid_event=True, tag=tag)
        if fault.kind == "server_5xx" and fault.variant == "stream_read":
            return fake.fail_next("stream_read", fault.status, times=fault.times, tag=tag)
        if fault.kind == "trigger_unreachable":
            if fault.variant.startswith("lost"):
                return fake.drop_next("trigger", before_response=True, times=fault.times, tag=tag)
            return fake.refuse_next("trigger", times=fault.times, tag=tag)
        if fault.kind == "burst_429":
            return fake.rate_limit_next(
                "trigger", times=fault.times, reset_in=fault.seconds, tag=tag
            )
        if fault.kind == "server_5xx":
            return fake.fail_next("trigger", fault.status, times=fault.times, tag=tag)
        if fault.kind == "slow_server":
            return fake.delay_next("trigger", TRIGGER_TIMEOUT + 1.5, tag=tag)
        if fault.kind == "backend_kill" and fault.variant == "dispatch-held":
            return fake.delay_next("trigger", 2.5, tag=tag)
        if fault.kind == "backend_kill" and fault.variant == "dispatch-refused":
            return fake.refuse_next("trigger", times=5, tag=tag)
        return None

    async def _kill_later(self, job: JobRun, fault: Fault, delay: float) -> None:
        await asyncio.sleep(delay)  # the planned instant of the crash, not a wait for a state
        await self._kill(job, fault)

    async def _api_start(self, job: JobRun) -> None:
        assert self.http is not None
        body = {"cells": [{"rowId": r, "columnId": c} for r, c in job.cells()]}
        headers = {"Idempotency-Key": f"soak-{self.seed}-{job.plan.mode}-{job.plan.index}"}
        deadline = time.monotonic() + DISPATCH_SECONDS + 30
        while time.monotonic() < deadline:
            try:
                response = await self.http.post(
                    f"/api/tables/{job.table_id}/enrich", json=body, headers=headers, timeout=60
                )
            except httpx.TransportError as exc:
                job.notes.append(f"POST enrich: {type(exc).__name__}; retried with the same key")
                await asyncio.sleep(0.2)
                await self.backend_up.wait()
                continue
            self.api_bodies.append(response.text)
            if response.status_code == 202:
                data = response.json()
                job.job_id, job.run_id = data["job"]["id"], data["runId"]
                return
            code = response.json().get("error", {}).get("code")
            job.notes.append(f"POST enrich answered {response.status_code} {code}")
            if response.status_code == 409 and code == "idempotency_key_in_progress":
                await asyncio.sleep(1.0)  # Retry-After: 1
                continue
            return
        job.notes.append("POST enrich never answered 202")

    async def _page_start(self, job: JobRun) -> None:
        """Select the job's cells and press Run, as a user does; press again if the backend
        died before the job existed, as a user would once the page is back."""
        page = job.page
        assert page is not None and self.backend is not None
        presses = 0
        deadline = time.monotonic() + DISPATCH_SECONDS + 30
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self._job_row, job) is not None:
                return
            await self.backend_up.wait()
            starts = self.backend.starts
            if not await page.wait_for(lambda: page.joined.is_set() and self._page_loaded(job), 10):
                continue
            page.send_event(f"{TABLE_STATE}.select", {"selection": job.selection()})
            counted = await page.wait_for(
                lambda: self._page_vars(job).get("run_count") == job.plan.size, 10
            )
            if not counted or not page.joined.is_set():
                continue
            page.send_event(f"{JOB_STATE}.run", {})
            presses += 1
            if presses > 1:
                job.notes.append("pressed Run again: the first press was lost with the backend")
            pressed = time.monotonic()
            while time.monotonic() < pressed + 10 and self.backend.starts == starts:
                if await asyncio.to_thread(self._job_row, job) is not None:
                    return
                await asyncio.sleep(0.1)
        job.notes.append("the page never started the job")

    def _job_row(self, job: JobRun) -> tuple[Any, ...] | None:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.text(
                    "select id, status, done, failed, total, run_id, backend, dispatch_error"
                    " from enrichment_job where table_id = :t order by id limit 1"
                ),
                {"t": job.table_id},
            ).first()

    async def _wait_dispatched(self, job: JobRun) -> None:
        """Until the job exists and was handed to Trigger.dev or to the local runner."""
        deadline = time.monotonic() + DISPATCH_SECONDS
        while time.monotonic() < max(deadline, self.last_restart + DISPATCH_SECONDS):
            row = await asyncio.to_thread(self._job_row, job)
            if row is not None:
                job.job_id = row[0]
                if row[5] is not None or row[6] == "local" or row[1] in FINAL_JOB:
                    job.run_id = row[5]
                    return
            await asyncio.sleep(0.1)
        job.notes.append(f"the job was not dispatched within {DISPATCH_SECONDS:.0f} s")

    # -- mid-job faults -----------------------------------------------------------------------

    async def _progress(self, job: JobRun) -> tuple[str, int]:
        row = await asyncio.to_thread(self._job_row, job)
        if row is None:
            return "", 0
        return row[1], row[2] + row[3]

    async def _mid_job_faults(self, job: JobRun) -> None:
        for fault in sorted(
            (f for f in job.plan.faults if f.when == "mid-job"), key=lambda f: f.at
        ):
            target = max(1, int(fault.at * job.plan.size))
            while True:
                status, finished = await self._progress(job)
                if status in FINAL_JOB or finished >= target:
                    break
                await asyncio.sleep(0.05)
            if status in FINAL_JOB:
                fault.note = "the job ended before the fault's point"
                continue
            await self._strike(job, fault)
            job.quiet_since = time.monotonic()

    async def _strike(self, job: JobRun, fault: Fault) -> None:
        fake, run_id = self.fake, job.run_id
        if fault.kind == "backend_kill":
            await self._kill(job, fault)
            return
        if fault.kind == "db_locked":
            await asyncio.to_thread(self._lock_database, fault.seconds)
            fault.fired = True
            return
        if fake is None or run_id is None:
            fault.note = "no Trigger.dev run to aim at (the job runs locally)"
            return
        if fault.kind == "handle_409":
            await self._rotate_until_seen(job, fault, fake, run_id)
            return
        if not await self._following(job, within=15.0):
            fault.note = "the app held no shape handle for the run when it struck"
        requests = len(fake.requests)
        if fault.kind == "feed_drop":
            job.handles.append(
                (fault, fake.drop_next("realtime_run", times=fault.times, run_id=run_id))
            )
        elif fault.kind == "burst_429":
            handle = fake.rate_limit_next(
                "realtime_run", times=fault.times, reset_in=fault.seconds, run_id=run_id
            )
            job.handles.append((fault, handle))
        elif fault.kind == "server_5xx":
            handle = fake.fail_next("realtime_run", fault.status, times=fault.times, run_id=run_id)
            job.handles.append((fault, handle))
        elif fault.kind == "slow_server":
            handle = fake.delay_next("realtime_run", REALTIME_TIMEOUT + 2.0, run_id=run_id)
            job.handles.append((fault, handle))
        elif fault.kind == "token_expiry":
            job.witness_from["token_expiry"] = requests
            fake.expire_tokens()

    async def _rotate_until_seen(
        self, job: JobRun, fault: Fault, fake: FakeTrigger, run_id: str
    ) -> None:
        """Rotate the run's handle until the app polls with the old one and gets its 409.

        A backend restarted after the rotation subscribes afresh to the new handle, where no
        409 is due, so rotate again once the new process holds a handle.
        """
        for _ in range(3):
            if not await self._following(job, within=15.0):
                fault.note = "the app held no shape handle for the run when it struck"
            restarts, since = self.restarts, len(fake.requests)
            job.witness_from.setdefault("handle_409", since)
            fake.rotate_handle(run_id)
            deadline = time.monotonic() + LIVE_POLL_HOLD + 3.0
            while time.monotonic() < deadline:
                if any(
                    r.run_id == run_id and "expired_handle=" in r.query
                    for r in fake.requests[since:]
                ):
                    return
                if (await self._progress(job))[0] in FINAL_JOB:
                    return
                if self.restarts != restarts or not self.backend_up.is_set():
                    break
                await asyncio.sleep(0.05)
            else:
                return
            await self.backend_up.wait()

    async def _following(self, job: JobRun, *, within: float) -> bool:
        """Until the running backend process has polled the run's feed with a shape handle.

        Then its next poll meets the fault. Strike at once after that: waiting for a poll held
        at the latest row can outlast a short job, whose feed changes with every batch, and a
        fault after the run's last poll strikes nothing. A process started after the fault
        subscribes afresh, to the rotated handle, and would never see a 409.
        """
        fake = self.fake
        assert fake is not None
        await self.backend_up.wait()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if any(
                r.run_id == job.run_id and r.kind == "realtime_run" and "handle=" in r.query
                for r in fake.requests[self.requests_at_restart :]
            ):
                return True
            if (await self._progress(job))[0] in FINAL_JOB:
                return False
            await asyncio.sleep(0.02)
        return False

    async def _kill(self, job: JobRun, fault: Fault) -> None:
        assert self.backend is not None
        async with self.kill_lock:
            status, _ = await self._progress(job)
            self.backend_up.clear()
            self.restarts += 1
            try:
                await asyncio.to_thread(self.backend.kill)
                await asyncio.to_thread(self.backend.start)
            finally:
                self.last_restart = time.monotonic()
                self.requests_at_restart = len(self.fake.requests) if self.fake else 0
                self.backend_up.set()
        fault.fired = status not in FINAL_JOB
        if not fault.fired:
            fault.note = "the job had ended before the kill"
        job.quiet_since = time.monotonic()

    def _lock_database(self, seconds: float) -> None:
        connection = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            connection.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)  # the fault: how long the database stays locked
            connection.execute("COMMIT")
        finally:
            connection.close()

    # -- the end of a job ---------------------------------------------------------------------

    async def _wait_final(self, job: JobRun) -> None:
        while True:
            status, _ = await self._progress(job)
            if status in FINAL_JOB:
                job.final_status = status
                job.final_at = time.monotonic()
                return
            quiet = max(job.quiet_since, self.last_restart)
            if time.monotonic() - quiet > STUCK_SECONDS:
                job.final_status = status or "(no job)"
                job.notes.append(f"not final {STUCK_SECONDS:.0f} s after its last fault")
                return
            await asyncio.sleep(0.1)

    def _db_view(self, job: JobRun) -> tuple[dict[str, Any], list[list[dict[str, str]]]]:
        with self.open_session() as session:
            db_job = session.exec(
                select(EnrichmentJob)
                .where(EnrichmentJob.table_id == job.table_id)
                .order_by(col(EnrichmentJob.id))
            ).first()
            window = grid_service.load_window(
                session=session,
                table_id=job.table_id,
                start=0,
                stop=job.plan.rows,
                column_ids=[job.key_column, job.a_column, job.b_column],
            )
        cells = [[dict(c) for c in row] for row in window.cells]
        if db_job is None:
            return {}, cells
        line = describe_job(
            db_job.status,
            done=db_job.done,
            failed=db_job.failed,
            total=db_job.total,
            error=db_job.error,
        )
        return {"id": db_job.id, "status": db_job.status, "label": line.label}, cells

    def _page_differs(
        self, job: JobRun, db: dict[str, Any], cells: list[list[dict[str, str]]]
    ) -> str:
        v = self._page_vars(job)
        if not db:
            return "no job in the database"
        if v.get("job_id") != db["id"] or v.get("job_status") != db["status"]:
            return (
                f"page job {v.get('job_id')}/{v.get('job_status')} != db {db['id']}/{db['status']}"
            )
        if (v.get("status") or {}).get("label") != db["label"]:
            return f"page status {(v.get('status') or {}).get('label')!r} != db {db['label']!r}"
        page_cells = (v.get("window_cells") or [])[: job.plan.rows]
        if v.get("window_start") != 0 or page_cells != cells:
            wrong = [
                (r, c, pc, dc)
                for r, (p, d) in enumerate(zip(page_cells, cells, strict=False))
                for c, (pc, dc) in enumerate(zip(p, d, strict=False))
                if pc != dc
            ]
            first = (
                f"; first: row {wrong[0][0]} col {wrong[0][1]}: page {wrong[0][2]} db {wrong[0][3]}"
                if wrong
                else ""
            )
            return f"{len(wrong)} cell(s) on the page differ from the database{first}"
        return ""

    async def _wait_page(self, job: JobRun) -> None:
        """Until the page shows what the database holds (final jobs no longer change)."""
        if job.final_status not in FINAL_JOB:
            return
        db, cells = await asyncio.to_thread(self._db_view, job)
        page = job.page
        if page is not None:
            await page.wait_for(lambda: not self._page_differs(job, db, cells), PAGE_SECONDS)
        db, cells = await asyncio.to_thread(self._db_view, job)
        difference = self._page_differs(job, db, cells) if page is not None else "no page"
        job.page_ok = not difference
        job.page_detail = difference
        job.page_at = time.monotonic()
        v = self._page_vars(job)
        job.page_label = str((v.get("status") or {}).get("label", ""))
        job.page_live = v.get("live")

    def _settle_faults(self, job: JobRun) -> None:
        fake = self.fake
        for fault, handle in job.handles:
            if fake is not None:
                fake.withdraw(handle)
            fault.fired = fault.fired or handle.fired > 0
        if fake is None or job.run_id is None:
            return
        run_requests = [
            r
            for r in fake.requests[min(job.witness_from.values(), default=0) :]
            if r.run_id == job.run_id and r.kind in ("realtime_run", "stream_read")
        ]
        for fault in job.plan.faults:
            if fault.kind == "handle_409" and "handle_409" in job.witness_from:
                fault.fired = any("expired_handle=" in r.query for r in run_requests)
            if fault.kind == "token_expiry" and "token_expiry" in job.witness_from:
                # every token the run's feed held was expired: any later request met that
                fault.fired = any(
                    r.run_id == job.run_id and r.kind in ("realtime_run", "stream_read")
                    for r in fake.requests[job.witness_from["token_expiry"] :]
                )

    # -- accounting ---------------------------------------------------------------------------

    def verify(self, oracle_log: list[dict[str, Any]]) -> list[JobOutcome]:
        answers: dict[tuple[str, str], set[int]] = defaultdict(set)
        asked: Counter[tuple[str, str]] = Counter()
        for entry in oracle_log:
            asked[(entry["key"], entry["col"])] += 1
            if entry["status"] == 200:
                answers[(entry["key"], entry["col"])].add(entry["seq"])
        for job in self.jobs:
            for fault in job.plan.faults:
                if fault.rows:
                    keys = {
                        oracle.row_key(job.plan.index, r, job.plan.delay_ms, job.plan.row_mode(r))
                        for r in fault.rows
                    }
                    fault.fired = any(k in keys for k, _ in asked)
        with self.open_session() as session:
            return [self._verify_job(session, job, answers, asked) for job in self.jobs]

    def _verify_job(
        self,
        session: Any,
        job: JobRun,
        answers: Mapping[tuple[str, str], set[int]],
        asked: Counter[tuple[str, str]],
    ) -> JobOutcome:
        plan = job.plan
        outcome = JobOutcome(
            index=plan.index,
            mode=plan.mode,
            size=plan.size,
            via=plan.via,
            faults=[f.label() for f in plan.faults],
            fired=[f.kind for f in plan.faults if f.fired],
            unfired={f.kind: f.note or "not witnessed" for f in plan.faults if not f.fired},
            job_id=None,
            status="",
            details=list(job.notes),
            seconds={
                name: round(at - self.started_at, 2)
                for name, at in (
                    ("start", job.started_at),
                    ("dispatched", job.dispatched_at),
                    ("final", job.final_at),
                    ("page", job.page_at),
                )
                if at
            },
        )
        jobs = session.exec(
            select(EnrichmentJob)
            .where(EnrichmentJob.table_id == job.table_id)
            .order_by(col(EnrichmentJob.id))
        ).all()
        if not jobs:
            outcome.lost = plan.size
            outcome.details.append("no job was created")
            return outcome
        db_job = jobs[0]
        outcome.job_id, outcome.status = db_job.id, db_job.status
        if len(jobs) > 1:
            outcome.duplicated += sum(j.total for j in jobs[1:])
            outcome.details.append(f"{len(jobs)} jobs for one start: {[j.id for j in jobs]}")
        if db_job.status not in FINAL_JOB:
            outcome.details.append(f"job {db_job.id} is {db_job.status}")
        tasks = session.exec(select(EnrichmentTask).where(EnrichmentTask.job_id == db_job.id)).all()
        open_tasks = [t for t in tasks if t.status in ("queued", "running")]
        outcome.reattempted_tasks = sum(1 for t in tasks if t.attempts > 1)
        keys = dict(
            session.exec(
                select(Cell.row_id, Cell.value).where(Cell.column_id == job.key_column)
            ).all()
        )
        tags = {job.a_column: "a", job.b_column: "b"}
        cells = {
            (c.row_id, c.column_id): c
            for c in session.exec(
                select(Cell).where(col(Cell.column_id).in_([job.a_column, job.b_column]))
            ).all()
        }
        audit: dict[tuple[int, int], list[tuple[str, str | None]]] = defaultdict(list)
        for row_id, column_id, status, value in session.execute(
            sa.text(
                "select row_id, column_id, new_status, value from soak_cell_audit"
                " where column_id in (:a, :b) order by id"
            ),
            {"a": job.a_column, "b": job.b_column},
        ).all():
            if status in FINAL_CELL:
                audit[(row_id, column_id)].append((status, value))
        stuck_cells = 0
        for row_id, column_id in job.cells():
            cell = cells[(row_id, column_id)]
            key, tag = keys[row_id] or "", tags[column_id]
            outcome.retries += max(0, asked[(key, tag)] - 1)
            writes = audit[(row_id, column_id)]
            if len(writes) > 1:
                outcome.duplicated += 1
                outcome.details.append(f"cell {key}/{tag} written {len(writes)} times: {writes}")
                seqs = [a.seq for _, v in writes if (a := oracle.parse_value(v)) is not None]
                if any(later < earlier for earlier, later in itertools.pairwise(seqs)):
                    outcome.older += 1
            if cell.status not in FINAL_CELL:
                stuck_cells += 1
                continue
            problem = self._wrong_result(cell, key, tag, answers)
            if problem:
                outcome.lost += 1
                if len(outcome.details) < 20:
                    outcome.details.append(f"cell {key}/{tag}: {problem}")
        if db_job.status not in FINAL_JOB or open_tasks or stuck_cells:
            outcome.stuck = max(1, stuck_cells, len(open_tasks))
            outcome.details.append(
                f"{len(open_tasks)} open task(s), {stuck_cells} cell(s) not final"
            )
        if not job.page_ok:
            outcome.page_mismatch = 1
            outcome.details.append(f"page: {job.page_detail or 'not compared'}")
        return outcome

    @staticmethod
    def _wrong_result(
        cell: Cell, key: str, tag: str, answers: Mapping[tuple[str, str], set[int]]
    ) -> str:
        mode = oracle.KEY.match(key)
        expected = mode["mode"] if mode else None
        if expected == "slow":
            ok = cell.status == "error" and "Timed out" in (cell.error or "")
            return "" if ok else f"expected a timeout error, got {cell.status} {cell.error!r}"
        if expected == "fail":
            ok = cell.status == "error" and "HTTP 500" in (cell.error or "")
            return "" if ok else f"expected an HTTP 500 error, got {cell.status} {cell.error!r}"
        if cell.status != "done":
            return f"expected a value, got {cell.status} {cell.error!r}"
        answer = oracle.parse_value(cell.value)
        if answer is None or answer.key != key or answer.col != tag:
            return f"value {cell.value!r} was not computed for this cell"
        if answer.seq not in answers[(key, tag)]:
            return f"value {cell.value!r} is no answer the oracle gave"
        return ""

    def unplanned_jobs(self) -> list[str]:
        """Jobs in the database that no planned start explains, and jobs left running."""
        tables = {j.table_id for j in self.jobs}
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text("select id, table_id, status from enrichment_job")
            ).all()
        problems = [f"job {i} on table {t} ({s})" for i, t, s in rows if t not in tables]
        problems += [f"job {i} left {s}" for i, _, s in rows if s not in FINAL_JOB]
        return problems

    def scan_sources(self) -> dict[str, str]:
        assert self.backend is not None
        sources = {
            f"{self.mode} backend log": self.backend.log_path.read_text(errors="replace"),
            f"{self.mode} API responses": "\n".join(self.api_bodies),
        }
        if self.worker is not None:
            sources[f"{self.mode} worker output"] = "".join(self.worker.output)
        return sources


async def fetch_oracle_log(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/log", timeout=30)
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return entries


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
