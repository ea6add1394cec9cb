"""Big jobs on SQLite and PostgreSQL: a whole column is one job, created, run and canceled in
bulk, with a bounded number of tasks in memory however many cells it has.

PostgreSQL takes at most 65,535 parameters per statement, so a job of more cells than that
would fail wherever a statement binds one per cell; these jobs are smaller, but larger than
every batch the code works in, so each batched path runs more than once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, EnrichmentTask, TableRow
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellRef, ColumnKind, TaskStatus
from enrichment_app.enrichers import EnrichContext, Enricher, register, unregister
from enrichment_app.runner.processing import FETCH, IN_FLIGHT, process_job
from enrichment_app.services.jobs import TASK_IDS_SHOWN, cancel_job, create_job
from enrichment_app.services.tables import ColumnSpec
from enrichment_app.settings import Settings
from tests.support.database import add_table

ROWS = 2 * IN_FLIGHT + FETCH + 7


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = (
        request.getfixturevalue("postgres_database")
        if request.param == "postgres"
        else f"sqlite:///{tmp_path}/test.db"
    )
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        seed_demo=False,
        trigger_secret_key=None,
        enrichment_api_key=None,
    )


class TaskCounter(Enricher):
    """Instant, and notes how many asyncio tasks are alive whenever it runs."""

    name = "test_task_counter"
    label = "Task counter"
    concurrency = 50
    most_tasks: ClassVar[int] = 0

    async def enrich(self, ctx: EnrichContext) -> str:
        TaskCounter.most_tasks = max(TaskCounter.most_tasks, len(asyncio.all_tasks()))
        return f"counted {ctx.row.get('Name')}"


@pytest.fixture
def counter() -> Iterator[type[TaskCounter]]:
    TaskCounter.most_tasks = 0
    register(TaskCounter(), replace=True)
    yield TaskCounter
    unregister(TaskCounter.name)


def column_cells(open_session: SessionFactory, table_id: int, name: str) -> list[CellRef]:
    with open_session() as session:
        column_id = session.exec(
            sa.text("SELECT id FROM table_column WHERE table_id = :t AND name = :n"),
            params={"t": table_id, "n": name},
        ).one()[0]
        rows = session.exec(
            select(TableRow.id).where(TableRow.table_id == table_id).order_by(TableRow.position)
        ).all()
    return [CellRef(row_id=r, column_id=column_id) for r in rows if r is not None]


def statuses(open_session: SessionFactory, refs: list[CellRef]) -> dict[str, int]:
    column_id = refs[0].column_id
    with open_session() as session:
        found = session.exec(
            select(Cell.status, sa.func.count())
            .where(Cell.column_id == column_id)
            .group_by(col(Cell.status))
        ).all()
    return dict(found)


def chained_table(open_session: SessionFactory) -> int:
    """Rows with a Name, a Greeting from it and a Shout from the Greeting (a chain)."""
    with unit_of_work(open_session) as session:
        return add_table(
            session,
            name="Big",
            columns=[
                ColumnSpec("Name"),
                ColumnSpec(
                    "Greeting",
                    kind=ColumnKind.ENRICHMENT,
                    enricher="template",
                    config={"template": "Hi {Name}"},
                ),
                ColumnSpec(
                    "Shout",
                    kind=ColumnKind.ENRICHMENT,
                    enricher="template",
                    config={"template": "{Greeting}!"},
                ),
            ],
            rows=([f"n{i}"] for i in range(ROWS)),
        )


async def test_a_whole_column_is_one_job_run_with_bounded_tasks_in_memory(
    open_session: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    counter: type[TaskCounter],
) -> None:
    with unit_of_work(open_session) as session:
        table_id = add_table(
            session,
            name="Counted",
            columns=[
                ColumnSpec("Name"),
                ColumnSpec("Count", kind=ColumnKind.ENRICHMENT, enricher=counter.name),
            ],
            rows=([f"n{i}"] for i in range(ROWS)),
        )
    cells = column_cells(open_session, table_id, "Count")
    with unit_of_work(open_session) as session:
        created = create_job(session, table_id=table_id, cells=cells, max_cells=100_000)
        job_id = created.job.id
        assert job_id is not None
    assert created.task_count == created.job.total == ROWS
    assert len(created.task_ids) == TASK_IDS_SHOWN
    assert created.task_ids == sorted(created.task_ids)
    assert statuses(open_session, cells) == {"queued": ROWS}

    summary = await process_job(job_id, session_factory=open_session, http=http, settings=settings)
    assert (summary.status, summary.done, summary.failed) == ("completed", ROWS, 0)
    assert statuses(open_session, cells) == {"done": ROWS}
    # The job's tasks wait in the database, not as asyncio tasks: at most IN_FLIGHT of its
    # cells, plus the few tasks a test process runs anyway.
    assert counter.most_tasks <= IN_FLIGHT + 20, counter.most_tasks


async def test_chained_columns_run_in_order_across_every_batch(
    open_session: SessionFactory, settings: Settings, http: httpx.AsyncClient
) -> None:
    """Each row's Shout reads its Greeting: both columns in one job, more cells than the
    runner holds or reads at once, and every Shout still sees its own row's Greeting."""
    table_id = chained_table(open_session)
    greetings = column_cells(open_session, table_id, "Greeting")
    shouts = column_cells(open_session, table_id, "Shout")
    with unit_of_work(open_session) as session:
        job = create_job(
            session, table_id=table_id, cells=shouts + greetings, max_cells=100_000
        ).job
    assert job.id is not None and job.total == 2 * ROWS
    summary = await process_job(job.id, session_factory=open_session, http=http, settings=settings)
    assert (summary.done, summary.failed) == (2 * ROWS, 0)
    with open_session() as session:
        values = dict(
            session.exec(
                select(Cell.row_id, Cell.value).where(Cell.column_id == shouts[0].column_id)
            ).all()
        )
    names = {ref.row_id: f"n{i}" for i, ref in enumerate(shouts)}
    assert values == {row: f"Hi {name}!" for row, name in names.items()}


def test_cancel_closes_every_open_task_and_cell_of_a_big_job(
    open_session: SessionFactory, settings: Settings
) -> None:
    table_id = chained_table(open_session)
    greetings = column_cells(open_session, table_id, "Greeting")
    with unit_of_work(open_session) as session:
        job = create_job(session, table_id=table_id, cells=greetings, max_cells=100_000).job
        assert job.id is not None
        first = session.exec(
            select(EnrichmentTask)
            .where(EnrichmentTask.job_id == job.id)
            .order_by(col(EnrichmentTask.id))
        ).first()
        assert first is not None
        first.status = TaskStatus.DONE.value  # finished before the cancel: stays finished
        session.add(first)
    with unit_of_work(open_session) as session:
        canceled = cancel_job(session, job_id=job.id)
    assert canceled.status == "canceled"
    assert statuses(open_session, greetings) == {"queued": 1, "canceled": ROWS - 1}
    with open_session() as session:
        tasks = dict(
            session.exec(
                select(EnrichmentTask.status, sa.func.count())
                .where(EnrichmentTask.job_id == job.id)
                .group_by(col(EnrichmentTask.status))
            ).all()
        )
    assert tasks == {"done": 1, "canceled": ROWS - 1}


class Gated(Enricher):
    """Instant for the rows before ``HELD``; the rest wait for ``gate`` (a process that dies
    half way through a big job), and every call is noted."""

    name = "test_gated"
    label = "Gated"
    concurrency = 50
    HELD: ClassVar[int] = IN_FLIGHT + FETCH + 3
    gate: ClassVar[asyncio.Event]
    calls: ClassVar[list[int]]
    run: ClassVar[str] = "first"

    async def enrich(self, ctx: EnrichContext) -> str:
        row = int(str(ctx.row.get("Name"))[1:])
        Gated.calls.append(row)
        if row >= Gated.HELD:
            await Gated.gate.wait()
        return f"{Gated.run} {row}"


async def test_a_big_job_restarted_half_way_runs_only_what_was_left(
    open_session: SessionFactory, settings: Settings, http: httpx.AsyncClient
) -> None:
    """A process killed after the runner read past its first batches: the next one finishes
    the job, running the cells left queued or running, and none that were done."""
    Gated.gate, Gated.calls, Gated.run = asyncio.Event(), [], "first"
    register(Gated(), replace=True)
    try:
        with unit_of_work(open_session) as session:
            table_id = add_table(
                session,
                name="Gated",
                columns=[
                    ColumnSpec("Name"),
                    ColumnSpec("Out", kind=ColumnKind.ENRICHMENT, enricher=Gated.name),
                ],
                rows=([f"n{i}"] for i in range(ROWS)),
            )
        cells = column_cells(open_session, table_id, "Out")
        with unit_of_work(open_session) as session:
            job_id = create_job(session, table_id=table_id, cells=cells, max_cells=100_000).job.id
        assert job_id is not None
        first = asyncio.create_task(
            process_job(job_id, session_factory=open_session, http=http, settings=settings)
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while statuses(open_session, cells).get("done", 0) < Gated.HELD:
            assert loop.time() < deadline, statuses(open_session, cells)
            await asyncio.sleep(0.05)  # polling the database for the condition
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        left = statuses(open_session, cells)
        assert left.get("done") == Gated.HELD and left.get("running", 0) > 0, left

        Gated.calls, Gated.run = [], "second"
        Gated.gate.set()
        summary = await asyncio.wait_for(
            process_job(job_id, session_factory=open_session, http=http, settings=settings), 120
        )
    finally:
        unregister(Gated.name)
    assert (summary.status, summary.done, summary.failed) == ("completed", ROWS, 0)
    assert sorted(Gated.calls) == list(range(Gated.HELD, ROWS))
    with open_session() as session:
        values = dict(
            session.exec(
                select(Cell.row_id, Cell.value).where(Cell.column_id == cells[0].column_id)
            ).all()
        )
    assert [values[ref.row_id] for ref in cells] == [
        f"{'first' if i < Gated.HELD else 'second'} {i}" for i in range(ROWS)
    ]
