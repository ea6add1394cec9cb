"""Jobs on cells chosen by position (a page's row spans, a whole column, a view), written by the
database in one ``INSERT … SELECT``, on SQLite and PostgreSQL: the right cells, in running
order, busy cells left out, the caps kept, and a change note that stays small."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.bus import CELLS, JOB, TableChange
from enrichment_app.bus.changes import MAX_ROW_IDS
from enrichment_app.bus.recorder import publishing
from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellRef, ColumnKind, TaskStatus, utcnow
from enrichment_app.errors import (
    CellsBusyError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
)
from enrichment_app.services import usage
from enrichment_app.services.jobs import JobCreated, create_job
from enrichment_app.services.tables import ColumnSpec, create_table, list_columns, list_rows
from enrichment_app.services.task_ranges import RowRanges
from enrichment_app.services.view_runs import view_cells
from enrichment_app.settings import Settings
from enrichment_app.views import Condition, Op, Sort, View
from tests.support.database import greeting

NAMES = ["delta", "alpha", "", "charlie", "bravo", "echo", "", "foxtrot"]
ROWS = MAX_ROW_IDS + 30
"""Rows of the big table: more than a change note lists."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = (
        f"sqlite:///{tmp_path}/ranges.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    return Settings(_env_file=None, database_url=url, seed_demo=False)  # type: ignore[call-arg]


class Table:
    """Name (input), Greeting and Shout (enrichment), one row per name."""

    def __init__(self, open_session: SessionFactory, names: list[str]) -> None:
        shout = ColumnSpec(
            "Shout", kind=ColumnKind.ENRICHMENT, enricher="template", config={"template": "!"}
        )
        with unit_of_work(open_session) as session:
            table = create_table(
                session=session,
                name="Ranges",
                columns=[ColumnSpec("Name"), greeting("Hi {Name}"), shout],
                rows=([n] for n in names),
                max_cell_chars=100,
            )
            assert table.id is not None
            self.id = table.id
            self.name, self.greeting, self.shout = (
                c.id for c in list_columns(session, table_id=table.id)
            )
            self.rows = [r.id for r in list_rows(session, table_id=table.id)]

    def create(self, open_session: SessionFactory, *ranges: RowRanges, **kw: int) -> JobCreated:
        with unit_of_work(open_session) as session:
            return create_job(
                session, table_id=self.id, cells=(), ranges=ranges, max_cells=kw.get("max", 1000)
            )

    def tasks(self, session: Session, job_id: int | None) -> list[tuple[int, int]]:
        """The job's tasks in id order, as (row index, column id)."""
        found = session.exec(
            select(EnrichmentTask.row_id, EnrichmentTask.column_id)
            .where(EnrichmentTask.job_id == job_id)
            .order_by(col(EnrichmentTask.id))
        ).all()
        return [(self.rows.index(r), c) for r, c in found]


@pytest.fixture
def table(open_session: SessionFactory) -> Table:
    return Table(open_session, NAMES)


def test_row_spans_of_a_sorted_filtered_view_queue_those_rows_row_by_row(
    open_session: SessionFactory, table: Table
) -> None:
    # Names not empty, A to Z: alpha(1) bravo(4) charlie(3) delta(0) echo(5) foxtrot(7).
    view = View((Condition(table.name, Op.NOT_EMPTY),), Sort(table.name))
    spans = {table.greeting: [(1, 3)], table.shout: [(2, 4), (3, 5)], table.name: [(0, 6)]}
    created = table.create(open_session, RowRanges(spans, view))
    assert (created.task_count, created.skipped_active, created.job.total) == (5, 0, 5)
    with open_session() as session:
        # Row by row (in row id order, as cells given one by one run), left to right; the
        # input column is left out and the overlapping spans queue each cell once.
        g, s = table.greeting, table.shout
        assert table.tasks(session, created.job.id) == [(0, s), (3, g), (3, s), (4, g), (5, s)]
        assert created.task_ids == sorted(created.task_ids)
        queued = session.exec(
            select(Cell.row_id, Cell.column_id).where(Cell.status == "queued")
        ).all()
        assert sorted((table.rows.index(r), c) for r, c in queued) == sorted(
            table.tasks(session, created.job.id)
        )


def test_spans_past_the_views_end_are_cut_and_an_empty_one_is_refused(
    open_session: SessionFactory, table: Table
) -> None:
    view = View((Condition(table.name, Op.EMPTY),))  # rows 2 and 6
    created = table.create(open_session, RowRanges({table.greeting: [(1, 50)]}, view))
    with open_session() as session:
        assert table.tasks(session, created.job.id) == [(6, table.greeting)]
    with pytest.raises(InvalidInputError, match="no cells in an enrichment column"):
        table.create(open_session, RowRanges({table.greeting: [(2, 50)]}, view))
    with pytest.raises(InvalidInputError, match="no cells in an enrichment column"):
        table.create(open_session, RowRanges({table.name: [(0, 2)]}, view))
    with pytest.raises(InvalidInputError, match="Select one or more cells"):
        table.create(open_session, RowRanges({}, view))
    with pytest.raises(NotFoundError, match="Column 99999 is not in table"):
        table.create(open_session, RowRanges({99_999: [(0, 2)]}, view))


def test_busy_cells_are_skipped_and_counted_against_the_cap_per_job(
    open_session: SessionFactory, table: Table
) -> None:
    first = table.create(open_session, RowRanges({table.greeting: [(0, 3)]}))
    again = table.create(open_session, RowRanges({table.greeting: [(0, 6)]}))
    assert (again.task_count, again.skipped_active) == (3, 3)
    with open_session() as session:
        assert [r for r, _ in table.tasks(session, again.job.id)] == [3, 4, 5]
    with pytest.raises(CellsBusyError, match="already queued or running"):
        table.create(open_session, RowRanges({table.greeting: [(2, 6)]}))
    # The cap on cells per job counts the whole selection, busy cells included.
    with pytest.raises(InvalidInputError, match="8 cells selected; one job can run at most 7"):
        table.create(open_session, RowRanges.whole_columns([table.greeting]), max=7)
    with unit_of_work(open_session) as session:  # the first job ends: its cells may run again
        session.execute(
            sa.update(EnrichmentTask)
            .where(col(EnrichmentTask.job_id) == first.job.id)
            .values(status=TaskStatus.DONE.value)
        )
    whole = table.create(open_session, RowRanges.whole_columns([table.greeting]))
    assert (whole.task_count, whole.skipped_active) == (5, 3)
    with open_session() as session:
        assert [r for r, _ in table.tasks(session, whole.job.id)] == [0, 1, 2, 6, 7]


def test_the_daily_cap_refuses_a_whole_column_and_leaves_nothing_behind(
    open_session: SessionFactory, table: Table
) -> None:
    with unit_of_work(open_session) as session:
        jobs_before = session.exec(select(sa.func.count()).select_from(EnrichmentJob)).one()
        with pytest.raises(QuotaExceededError):
            create_job(
                session,
                table_id=table.id,
                cells=(),
                ranges=[RowRanges.whole_columns([table.greeting, table.shout])],
                max_cells=100,
                max_cells_per_day=15,
            )
    with open_session() as session:
        assert session.exec(select(sa.func.count()).select_from(EnrichmentJob)).one() == jobs_before
        assert session.exec(select(sa.func.count()).select_from(EnrichmentTask)).one() == 0
        assert usage.used_today(session, now=utcnow(), scope=workspace_scope(session, table)) == 0
    with unit_of_work(open_session) as session:
        created = create_job(
            session,
            table_id=table.id,
            cells=(),
            ranges=[RowRanges.whole_columns([table.greeting, table.shout])],
            max_cells=100,
            max_cells_per_day=16,
        )
    assert created.task_count == 16
    with open_session() as session:
        assert usage.used_today(session, now=utcnow(), scope=workspace_scope(session, table)) == 16


def workspace_scope(session: Session, table: Table) -> str:
    return usage.workspace_cap(session, table_id=table.id, app_cap=1)[0]


def test_a_whole_column_notes_any_row_and_a_small_selection_its_rows(
    open_session: SessionFactory,
) -> None:
    big = Table(open_session, [f"n{i}" for i in range(ROWS)])
    seen: list[TableChange] = []
    telling = publishing(open_session, lambda _table_id, change: seen.append(change))
    few = big.create(telling, RowRanges({big.greeting: [(5, 8)]}))
    assert few.task_count == 3
    assert seen[-1] == TableChange.of(JOB, CELLS, rows=big.rows[5:8])
    whole = big.create(telling, RowRanges.whole_columns([big.shout]))
    assert whole.task_count == ROWS
    assert seen[-1].row_ids is None and seen[-1].kinds == {JOB, CELLS}
    assert seen[-1].touches_rows([big.rows[-1]])


def test_run_the_view_queues_the_views_rows_of_its_column(
    open_session: SessionFactory, table: Table
) -> None:
    view = View((Condition(table.name, Op.EMPTY),))
    with open_session() as session:
        run = view_cells(session, table_id=table.id, view=view, column_id=table.shout, max_cells=5)
    assert run.row_count == 2
    created = table.create(open_session, run.ranges)
    with open_session() as session:
        assert table.tasks(session, created.job.id) == [(2, table.shout), (6, table.shout)]


def test_cells_one_by_one_and_whole_columns_of_the_api_still_mix(
    open_session: SessionFactory, table: Table
) -> None:
    refs = [CellRef(row_id=table.rows[1], column_id=c) for c in (table.greeting, table.shout)]
    with unit_of_work(open_session) as session:
        created = create_job(
            session, table_id=table.id, cells=refs, columns=[table.greeting], max_cells=100
        )
    assert (created.task_count, created.skipped_active) == (len(NAMES) + 1, 0)
    with open_session() as session:
        tasks = table.tasks(session, created.job.id)
    assert sorted(tasks) == sorted([(1, table.shout)] + [(r, table.greeting) for r in range(8)])
