"""Processing jobs end to end on SQLite: values, errors, timeouts, limits, restarts, the runner.

Test enrichers are plugins registered through the public ``register(..., replace=True)`` API.
They never sleep: a "slow" cell waits on an event that never fires, and the tests wait for
conditions (with timeouts), never for time to pass.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellRef, CellStatus, ColumnKind, JobBackend, JobStatus
from enrichment_app.enrichers import EnrichContext, Enricher, register, unregister
from enrichment_app.errors import EnrichError
from enrichment_app.runner.local import LocalRunner
from enrichment_app.runner.processing import CellResult, EnricherLimits, process_job
from enrichment_app.services.csv_import import import_csv
from enrichment_app.services.jobs import cancel_job, create_job, get_job
from enrichment_app.services.tables import ColumnSpec, add_column
from enrichment_app.services.values import TRUNCATION_MARK
from enrichment_app.settings import Settings
from tests.integration.db_helpers import cells_of, column_refs, seed_demo_table, tasks_of
from tests.support.waiting import await_until

WAIT = 10.0
"""How long a test waits for something that should happen at once before giving up."""


class ProbeEnricher(Enricher):
    """Records every call and how many run at once; cells can be held, hung or failed."""

    label = "Probe"
    hang: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate: asyncio.Event | None = None
        """When set to an event, every call waits for it before returning."""
        self.hang_rows: set[str] = set()
        """Rows whose call waits forever (until cancelled or timed out)."""
        self.fail_rows: set[str] = set()
        self.value: Callable[[str], str] = lambda name: f"<{name}>"
        self._changed = asyncio.Event()

    async def enrich(self, ctx: EnrichContext) -> str:
        name = ctx.row.get("name") or ""
        self.calls.append(name)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._changed.set()
        try:
            if name in self.hang_rows:
                await asyncio.Event().wait()
            if self.gate is not None:
                await self.gate.wait()
            if name in self.fail_rows:
                raise EnrichError(f"no luck for {name}")
            return self.value(name)
        finally:
            self.in_flight -= 1
            self._changed.set()

    async def until(self, predicate: Callable[[], bool], within: float = WAIT) -> None:
        """Wait until ``predicate()`` holds; it is checked after every call starts or ends."""
        await await_until(
            predicate,
            timeout=within,
            message="the probe's calls to match",
            found=lambda: {"calls": self.calls, "in_flight": self.in_flight},
            wake=self._changed,
        )


@pytest.fixture
def make_probe() -> Iterator[Callable[..., ProbeEnricher]]:
    """Registers probe enrichers under fresh names and removes them after the test."""
    names: list[str] = []

    def make(*, concurrency: int = 4, timeout: float = WAIT) -> ProbeEnricher:
        name = f"test_probe_{len(names)}"
        cls = type(
            f"Probe{len(names)}",
            (ProbeEnricher,),
            {"name": name, "concurrency": concurrency, "timeout_seconds": timeout},
        )
        names.append(name)
        enricher = register(cls(), replace=True)
        assert isinstance(enricher, ProbeEnricher)
        return enricher

    yield make
    for name in names:
        unregister(name)


def _probe_table(
    open_session: SessionFactory, probe: Enricher, n_rows: int, *, columns: int = 1
) -> tuple[int, list[list[CellRef]]]:
    """A table with a ``name`` input column and ``columns`` probe columns; returns their cells."""
    names = "\n".join(f"r{i}" for i in range(n_rows))
    with open_session() as session:
        table = import_csv(
            session=session,
            name="Probe table",
            data=f"name\n{names}\n".encode(),
            max_bytes=1 << 20,
            max_cell_chars=1000,
        )
        assert table.id is not None
        for i in range(columns):
            add_column(
                session=session,
                table_id=table.id,
                spec=ColumnSpec(name=f"P{i}", kind=ColumnKind.ENRICHMENT, enricher=probe.name),
            )
        session.commit()
        return table.id, [column_refs(session, table.id, f"P{i}") for i in range(columns)]


def _job(open_session: SessionFactory, table_id: int, cells: list[CellRef]) -> int:
    with unit_of_work(open_session) as session:
        job = create_job(session=session, table_id=table_id, cells=cells, max_cells=5000).job
    assert job.id is not None
    return job.id


def _job_row(open_session: SessionFactory, job_id: int) -> EnrichmentJob:
    with open_session() as session:
        return get_job(session=session, job_id=job_id)


def _cell_states(open_session: SessionFactory, refs: list[CellRef]) -> list[tuple[str, Any]]:
    with open_session() as session:
        return [
            (c.status, c.value if c.status != "error" else c.error) for c in cells_of(session, refs)
        ]


# --- the demo, end to end ---------------------------------------------------------------


async def test_the_demo_job_fills_every_cell_and_reports_each_once(
    open_session: SessionFactory, settings: Settings, http: httpx.AsyncClient
) -> None:
    with open_session() as session:
        table_id = seed_demo_table(session, max_cell_chars=settings.max_cell_chars)
        domains = column_refs(session, table_id, "Email domain")
        intros = column_refs(session, table_id, "Intro line")
    job_id = _job(open_session, table_id, domains + intros)
    results: list[CellResult] = []

    summary = await process_job(
        job_id, session_factory=open_session, http=http, settings=settings, on_result=results.append
    )

    assert (summary.status, summary.total, summary.done, summary.failed) == ("completed", 50, 49, 1)
    job = _job_row(open_session, job_id)
    assert (job.status, job.done, job.failed) == ("completed", 49, 1)
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.finished_at >= job.started_at
    # One report per cell; the counters in the reports climb to the totals.
    assert Counter(CellRef(r.row_id, r.column_id) for r in results) == Counter(domains + intros)
    assert sorted(r.done + r.failed for r in results) == list(range(1, 51))
    assert {r.total for r in results} == {50}

    domain_states = _cell_states(open_session, domains)
    assert domain_states[0] == ("done", "acme-robotics.example")
    assert domain_states[3] == ("done", "deltagrid.example")  # lowercased
    # Redwood Legal's contact is "not an email address": that cell fails, the rest go on.
    assert domain_states[17] == (
        "error",
        "Not a valid email address: 'not an email address' (contains spaces)",
    )
    assert all(status == "done" for status, _ in domain_states[:17] + domain_states[18:])
    assert _cell_states(open_session, intros)[2] == (
        "done",
        "Hi Cedar & Pine Studio team, we noticed cedarpine.example and would love to talk.",
    )
    (failed,) = [r for r in results if r.status == "error"]
    assert (failed.value, failed.error) == (None, domain_states[17][1])
    with open_session() as session:
        assert {t.status for t in tasks_of(session, job_id)} == {"done", "error"}
        assert {t.attempts for t in tasks_of(session, job_id)} == {1}

    # Processing a finished job again changes nothing and reports nothing.
    again = await process_job(
        job_id, session_factory=open_session, http=http, settings=settings, on_result=results.append
    )
    assert again == summary
    assert len(results) == 50


async def test_an_async_result_callback_is_awaited(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    probe = make_probe()
    table_id, [cells] = _probe_table(open_session, probe, 3)
    seen: list[int] = []

    async def report(result: CellResult) -> None:
        await asyncio.sleep(0)
        seen.append(result.task_id)

    job_id = _job(open_session, table_id, cells)
    await process_job(
        job_id, session_factory=open_session, http=http, settings=settings, on_result=report
    )
    with open_session() as session:
        assert sorted(seen) == sorted(t.id for t in tasks_of(session, job_id))


async def test_failures_of_every_kind_are_recorded_per_cell(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    probe = make_probe()
    probe.fail_rows = {"r1"}
    probe.value = lambda name: "x" * 5_000 if name == "r3" else f"<{name}>"
    table_id, [cells] = _probe_table(open_session, probe, 5)

    class Crashing(ProbeEnricher):
        name = "test_crashing"

        async def enrich(self, ctx: EnrichContext) -> str:
            raise RuntimeError("kaboom")

    register(Crashing(), replace=True)
    try:
        with open_session() as session:
            add_column(
                session=session,
                table_id=table_id,
                spec=ColumnSpec(name="Crash", kind=ColumnKind.ENRICHMENT, enricher="test_crashing"),
            )
            session.commit()
            crash_cells = column_refs(session, table_id, "Crash")[:1]
        job_id = _job(open_session, table_id, cells + crash_cells)
    finally:
        unregister("test_crashing")
    # The crashing enricher is gone by the time the job runs: that is an error too.
    summary = await process_job(
        job_id,
        session_factory=open_session,
        http=http,
        settings=settings.model_copy(update={"max_cell_chars": 100}),
    )
    assert (summary.status, summary.done, summary.failed) == ("completed", 4, 2)
    states = _cell_states(open_session, cells)
    assert states[1] == ("error", "no luck for r1")
    assert states[3][0] == "done"
    assert len(states[3][1]) == 100
    assert states[3][1].endswith(TRUNCATION_MARK)
    assert [s for i, s in enumerate(states) if i not in (1, 3)] == [
        ("done", "<r0>"),
        ("done", "<r2>"),
        ("done", "<r4>"),
    ]
    [(status, error)] = _cell_states(open_session, crash_cells)
    assert status == "error"
    assert "Unknown enricher 'test_crashing'" in error


async def test_an_unexpected_exception_in_an_enricher_is_a_cell_error(
    open_session: SessionFactory, settings: Settings, http: httpx.AsyncClient
) -> None:
    class Crashing(ProbeEnricher):
        name = "test_crashing_live"

        async def enrich(self, ctx: EnrichContext) -> str:
            raise RuntimeError("kaboom")

    crashing = register(Crashing(), replace=True)
    try:
        table_id, [cells] = _probe_table(open_session, crashing, 2)
        job_id = _job(open_session, table_id, cells)
        summary = await process_job(
            job_id, session_factory=open_session, http=http, settings=settings
        )
    finally:
        unregister("test_crashing_live")
    assert (summary.status, summary.failed) == ("completed", 2)
    assert (
        _cell_states(open_session, cells)
        == [("error", "Unexpected error in test_crashing_live: RuntimeError: kaboom")] * 2
    )


# --- timeouts and concurrency ------------------------------------------------------------


async def test_a_slow_cell_times_out_and_the_others_finish(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    probe = make_probe(timeout=0.2)
    probe.hang_rows = {"r0", "r2"}
    table_id, [cells] = _probe_table(open_session, probe, 4)
    job_id = _job(open_session, table_id, cells)
    summary = await asyncio.wait_for(
        process_job(job_id, session_factory=open_session, http=http, settings=settings), WAIT
    )
    assert (summary.status, summary.done, summary.failed) == ("completed", 2, 2)
    assert _cell_states(open_session, cells) == [
        ("error", "Timed out after 0.2 s."),
        ("done", "<r1>"),
        ("error", "Timed out after 0.2 s."),
        ("done", "<r3>"),
    ]
    assert probe.in_flight == 0


async def test_an_enricher_never_runs_more_cells_at_once_than_its_limit(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    probe = make_probe(concurrency=2)
    probe.gate = asyncio.Event()
    table_id, [first, second] = _probe_table(open_session, probe, 6, columns=2)
    limits = EnricherLimits()
    # Two jobs sharing one process's limits (as the local runner shares them).
    jobs = [_job(open_session, table_id, first), _job(open_session, table_id, second)]
    running = [
        asyncio.create_task(
            process_job(
                j, session_factory=open_session, http=http, settings=settings, limits=limits
            )
        )
        for j in jobs
    ]
    await probe.until(lambda: probe.in_flight == 2)
    # A broken limit would let the other ten cells in now; give them the chance to show up.
    with pytest.raises(TimeoutError):
        await probe.until(lambda: probe.in_flight > 2, within=0.5)
    probe.gate.set()
    summaries = await asyncio.wait_for(asyncio.gather(*running), WAIT)
    assert [(s.status, s.done) for s in summaries] == [("completed", 6), ("completed", 6)]
    assert probe.max_in_flight == 2
    assert Counter(probe.calls) == Counter({f"r{i}": 2 for i in range(6)})


async def test_an_enricher_claims_at_most_its_limit_of_cells_ahead_of_its_calls(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    probe = make_probe(concurrency=2)
    probe.gate = asyncio.Event()
    table_id, [cells] = _probe_table(open_session, probe, 8)
    job_id = _job(open_session, table_id, cells)
    running = asyncio.create_task(
        process_job(job_id, session_factory=open_session, http=http, settings=settings)
    )

    def claimed() -> int:
        with open_session() as session:
            return sum(t.status == "running" for t in tasks_of(session, job_id))

    # Two calls in flight, and the next two cells claimed, so a slot that frees up starts at once.
    await probe.until(lambda: probe.in_flight == 2)
    await await_until(lambda: claimed() == 4, timeout=WAIT, message="4 claimed", found=claimed)
    # An unbounded claim would mark the other four running too; give them the chance to.
    with pytest.raises(TimeoutError):
        await await_until(lambda: claimed() > 4, timeout=0.5, message="more claimed")
    assert probe.max_in_flight == 2
    probe.gate.set()
    summary = await asyncio.wait_for(running, WAIT)
    assert (summary.status, summary.done, probe.max_in_flight) == ("completed", 8, 2)


# --- restarts, cancellation and the local runner ------------------------------------------


async def test_a_restarted_job_runs_only_its_unfinished_tasks(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    probe = make_probe(concurrency=1)
    table_id, [cells] = _probe_table(open_session, probe, 6)
    job_id = _job(open_session, table_id, cells)
    # The first process gets through two cells and is killed while working on the third.
    probe.hang_rows = {"r2"}
    probe.value = lambda name: f"first run {name}"
    first_run = asyncio.create_task(
        process_job(job_id, session_factory=open_session, http=http, settings=settings)
    )
    await probe.until(lambda: "r2" in probe.calls)
    first_run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first_run
    assert probe.calls == ["r0", "r1", "r2"]
    with open_session() as session:
        assert [t.status for t in tasks_of(session, job_id)] == [
            "done",
            "done",
            "running",
            "queued",
            "queued",
            "queued",
        ]
        assert session.get(EnrichmentJob, job_id).status == "running"  # type: ignore[union-attr]

    probe.hang_rows = set()
    probe.calls.clear()
    probe.value = lambda name: f"second run {name}"
    summary = await asyncio.wait_for(
        process_job(job_id, session_factory=open_session, http=http, settings=settings), WAIT
    )
    assert sorted(probe.calls) == ["r2", "r3", "r4", "r5"]
    assert (summary.status, summary.done, summary.failed, summary.total) == ("completed", 6, 0, 6)
    assert _cell_states(open_session, cells) == [
        ("done", "first run r0"),
        ("done", "first run r1"),
        *[("done", f"second run r{i}") for i in range(2, 6)],
    ]
    with open_session() as session:
        assert [t.attempts for t in tasks_of(session, job_id)] == [1, 1, 2, 1, 1, 1]


async def test_a_job_cancelled_in_the_database_writes_nothing_more(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    """Cancelling from another process: the worker finds out when it writes its results."""
    probe = make_probe(concurrency=2)
    probe.gate = asyncio.Event()
    table_id, [cells] = _probe_table(open_session, probe, 5)
    job_id = _job(open_session, table_id, cells)
    results: list[CellResult] = []
    running = asyncio.create_task(
        process_job(
            job_id,
            session_factory=open_session,
            http=http,
            settings=settings,
            on_result=results.append,
        )
    )
    await probe.until(lambda: probe.in_flight == 2)
    with unit_of_work(open_session) as session:
        cancel_job(session=session, job_id=job_id)
    probe.gate.set()
    summary = await asyncio.wait_for(running, WAIT)
    assert summary.status == "canceled"
    assert results == []
    assert len(probe.calls) == 2
    assert _cell_states(open_session, cells) == [("canceled", None)] * 5
    job = _job_row(open_session, job_id)
    assert (job.status, job.done, job.failed) == ("canceled", 0, 0)


async def test_a_cancelled_job_leaves_no_task_of_its_own_behind(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
    tmp_path: Path,
) -> None:
    """Cancelled while its results wait to be written (the database is locked by another
    writer), the job must take its batch writer down with it, not leave it running."""
    probe = make_probe(concurrency=2)
    probe.gate = asyncio.Event()
    table_id, [cells] = _probe_table(open_session, probe, 4)
    job_id = _job(open_session, table_id, cells)
    before = asyncio.all_tasks()
    running = asyncio.create_task(
        process_job(job_id, session_factory=open_session, http=http, settings=settings)
    )
    await probe.until(lambda: probe.in_flight == 2)
    other_writer = sqlite3.connect(tmp_path / "test.db", isolation_level=None)
    try:
        other_writer.execute("BEGIN IMMEDIATE")  # the job's next writes wait for this one
        probe.gate.set()
        await probe.until(lambda: probe.in_flight == 0 and len(probe.calls) == 2)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        left = asyncio.all_tasks() - before - {asyncio.current_task()}
        assert left == set(), "tasks the cancelled job left running"
    finally:
        other_writer.rollback()
        other_writer.close()


async def test_a_crashed_job_is_marked_failed_off_the_event_loop(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    engine: sa.Engine,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    """The runner's crash path writes the failure from a worker thread, as every other write."""
    with open_session() as session:
        demo_id = seed_demo_table(session, max_cell_chars=settings.max_cell_chars)
        foreign = column_refs(session, demo_id, "Intro line")[0]
    probe = make_probe()
    table_id, [cells] = _probe_table(open_session, probe, 2)
    job_id = _job(open_session, table_id, cells)
    with unit_of_work(open_session) as session:
        # A task pointing at a column of another table: processing it crashes the job.
        session.execute(
            sa.update(EnrichmentTask)
            .where(col(EnrichmentTask.job_id) == job_id)
            .values(column_id=foreign.column_id)
        )
    loop_thread = threading.get_ident()
    writers: list[int] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE ENRICHMENT_JOB"):
            writers.append(threading.get_ident())

    sa.event.listen(engine, "before_cursor_execute", record)
    runner = LocalRunner(session_factory=open_session, http=http, settings=settings)
    try:
        await runner.dispatch(job_id)
        assert await asyncio.wait_for(runner.wait(job_id), WAIT) is None
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
        await runner.aclose()
    failed = _job_row(open_session, job_id)
    assert failed.status == "failed" and (failed.error or "").startswith("The job crashed")
    assert writers and loop_thread not in writers, "a database write ran on the event loop"


async def test_the_local_runner_runs_a_dispatched_job(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    probe = make_probe()
    table_id, [cells] = _probe_table(open_session, probe, 4)
    job_id = _job(open_session, table_id, cells)
    runner = LocalRunner(session_factory=open_session, http=http, settings=settings)
    try:
        dispatched = await runner.dispatch(job_id)
        assert (dispatched.backend, dispatched.run_id, dispatched.public_access_token) == (
            JobBackend.LOCAL,
            None,
            None,
        )
        assert runner.active_jobs == [job_id]
        await runner.dispatch(job_id)  # a second dispatch does not start a second run
        summary = await asyncio.wait_for(runner.wait(job_id), WAIT)
    finally:
        await runner.aclose()
    assert summary is not None
    assert (summary.status, summary.done) == ("completed", 4)
    assert sorted(probe.calls) == ["r0", "r1", "r2", "r3"]
    assert runner.active_jobs == []
    assert _cell_states(open_session, cells) == [("done", f"<r{i}>") for i in range(4)]


async def test_cancelling_through_the_local_runner_stops_the_job(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    probe = make_probe(concurrency=2)
    probe.hang_rows = {f"r{i}" for i in range(6)}
    table_id, [cells] = _probe_table(open_session, probe, 6)
    job_id = _job(open_session, table_id, cells)
    runner = LocalRunner(session_factory=open_session, http=http, settings=settings)
    try:
        await runner.dispatch(job_id)
        await probe.until(lambda: probe.in_flight == 2)
        # What the page does: cancel in the database, then stop the in-process run.
        with unit_of_work(open_session) as session:
            cancel_job(session=session, job_id=job_id)
            stamps = {c.id: c.updated_at for c in cells_of(session, cells)}
        await asyncio.wait_for(runner.cancel(job_id), WAIT)
        assert runner.active_jobs == []
        assert probe.in_flight == 0
    finally:
        await runner.aclose()
    assert len(probe.calls) == 2
    job = _job_row(open_session, job_id)
    assert (job.status, job.done, job.failed) == ("canceled", 0, 0)
    with open_session() as session:
        after = cells_of(session, cells)
        assert {(c.status, c.value) for c in after} == {(CellStatus.CANCELED, None)}
        assert {c.id: c.updated_at for c in after} == stamps
        assert {t.status for t in tasks_of(session, job_id)} == {"canceled"}


async def test_the_local_runner_resumes_unfinished_local_jobs(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    make_probe: Callable[..., ProbeEnricher],
) -> None:
    probe = make_probe()
    table_id, [a, b, c] = _probe_table(open_session, probe, 3, columns=3)
    queued = _job(open_session, table_id, a)
    running = _job(open_session, table_id, b)
    with open_session() as session:
        job = get_job(session=session, job_id=running)
        job.status = JobStatus.RUNNING.value
        session.add(job)
        session.commit()
    with unit_of_work(open_session) as session:  # a Trigger.dev job is not this runner's to resume
        trigger_job = create_job(
            session=session, table_id=table_id, cells=c, max_cells=100, backend=JobBackend.TRIGGER
        ).job
    runner = LocalRunner(session_factory=open_session, http=http, settings=settings)
    try:
        resumed = await runner.resume_unfinished()
        assert resumed == [queued, running]
        summaries = await asyncio.wait_for(asyncio.gather(*(runner.wait(j) for j in resumed)), WAIT)
    finally:
        await runner.aclose()
    assert [(s.status, s.done) for s in summaries if s is not None] == [("completed", 3)] * 2
    assert _cell_states(open_session, a + b) == [("done", f"<r{i}>") for i in range(3)] * 2
    assert trigger_job.id is not None
    assert _job_row(open_session, trigger_job.id).status == "queued"
    assert _cell_states(open_session, c) == [("queued", None)] * 3
    assert sorted(probe.calls) == ["r0", "r0", "r1", "r1", "r2", "r2"]
    # Nothing is left to resume.
    again = LocalRunner(session_factory=open_session, http=http, settings=settings)
    assert await again.resume_unfinished() == []


# --- chained columns -------------------------------------------------------------------------


async def test_a_template_column_sees_the_value_another_task_of_the_job_fills(
    open_session: SessionFactory, settings: Settings, http: httpx.AsyncClient
) -> None:
    with open_session() as session:
        table_id = seed_demo_table(session, max_cell_chars=settings.max_cell_chars)
        add_column(
            session=session,
            table_id=table_id,
            spec=ColumnSpec(
                name="Domain note",
                kind=ColumnKind.ENRICHMENT,
                enricher="template",
                config={"template": "{Company} uses {Email domain}"},
            ),
        )
        session.commit()
        domains = column_refs(session, table_id, "Email domain")[:5]
        notes = column_refs(session, table_id, "Domain note")[:5]
    # Both columns in one job: each note must wait for its row's domain.
    job_id = _job(open_session, table_id, notes + domains)
    summary = await asyncio.wait_for(
        process_job(job_id, session_factory=open_session, http=http, settings=settings), WAIT
    )
    assert (summary.status, summary.done) == ("completed", 10)
    assert _cell_states(open_session, notes) == [
        ("done", "Acme Robotics uses acme-robotics.example"),
        ("done", "Blue Harbor Logistics uses blueharbor.example"),
        ("done", "Cedar & Pine Studio uses cedarpine.example"),
        ("done", "Delta Grid Energy uses deltagrid.example"),
        ("done", "Evergreen Health uses evergreen-health.example"),
    ]
    # And a later job over the note column alone reads the stored domains.
    with open_session() as session:
        cells = session.exec(select(Cell).where(Cell.column_id == notes[0].column_id)).all()
        assert len(cells) == 25
