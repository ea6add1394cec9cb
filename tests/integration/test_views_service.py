"""Views compiled to SQL, on SQLite and PostgreSQL: which rows, in which order, by position,
the grid's reads through a view, and Run the view's cells."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, EnrichmentTask
from enrichment_app.domain import CellStatus
from enrichment_app.errors import InvalidInputError, NotFoundError
from enrichment_app.services import grid as grid_service, views as view_service
from enrichment_app.services.jobs import create_job
from enrichment_app.services.tables import ColumnSpec, create_table, list_columns, list_rows
from enrichment_app.services.view_runs import view_cells
from enrichment_app.settings import Settings
from enrichment_app.views import EVERYTHING, Condition, Op, Sort, View
from tests.support.database import greeting

NAMES = ["Acme", "beta", "", "ÉCOLE", "acme labs", "Zeta", "", "école", "50%_off", "Beta"]
INDUSTRIES = ["Bank", "", "Bank", "Retail", "", "Bank", "Retail", "", "Bank", "Bank"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Each test once on SQLite and once on a fresh PostgreSQL database."""
    url = (
        f"sqlite:///{tmp_path}/views.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    return Settings(_env_file=None, database_url=url, seed_demo=False)  # type: ignore[call-arg]


class Table:
    def __init__(self, open_session: SessionFactory) -> None:
        with open_session() as session:
            table = create_table(
                session=session,
                name="Views",
                columns=[ColumnSpec("Name"), ColumnSpec("Industry"), greeting()],
                rows=([n, i] for n, i in zip(NAMES, INDUSTRIES, strict=True)),
                max_cell_chars=100,
            )
            session.commit()
            assert table.id is not None
            self.id = table.id
            self.name, self.industry, self.greeting = (
                c.id for c in list_columns(session, table_id=table.id)
            )
            self.rows = [r.id for r in list_rows(session, table_id=table.id)]

    def index(self, row_ids: list[int]) -> list[int]:
        """Row ids as their indices in the table (0 = the first row)."""
        return [self.rows.index(r) for r in row_ids]


@pytest.fixture
def table(open_session: SessionFactory) -> Iterator[Table]:
    yield Table(open_session)


def rows_of(session: Session, table: Table, view: View) -> list[int]:
    found = view_service.all_row_ids(session, table_id=table.id, view=view)
    assert view_service.count_rows(session, table_id=table.id, view=view) == len(found)
    return table.index(found)


def test_each_condition_picks_the_rows_it_names(open_session: SessionFactory, table: Table) -> None:
    i = table.industry
    with open_session() as s:
        assert rows_of(s, table, EVERYTHING) == list(range(10))
        assert rows_of(s, table, View((Condition(i, Op.EMPTY),))) == [1, 4, 7]
        assert rows_of(s, table, View((Condition(i, Op.NOT_EMPTY),))) == [0, 2, 3, 5, 6, 8, 9]
        assert rows_of(s, table, View((Condition(i, Op.EQUALS, "Bank"),))) == [0, 2, 5, 8, 9]
        assert rows_of(s, table, View((Condition(i, Op.EQUALS, "bank"),))) == []
        assert rows_of(s, table, View((Condition(i, Op.NOT_EQUALS, "Bank"),))) == [1, 3, 4, 6, 7]
        assert rows_of(s, table, View((Condition(i, Op.CONTAINS, "AN"),))) == [0, 2, 5, 8, 9]
        assert rows_of(s, table, View((Condition(i, Op.NOT_CONTAINS, "an"),))) == [1, 3, 4, 6, 7]
        both = View((Condition(i, Op.EQUALS, "Bank"), Condition(table.name, Op.NOT_EMPTY)))
        assert rows_of(s, table, both) == [0, 5, 8, 9]


def test_contains_ignores_ascii_case_and_treats_wildcards_as_text(
    open_session: SessionFactory, table: Table
) -> None:
    n = table.name
    with open_session() as s:
        assert rows_of(s, table, View((Condition(n, Op.CONTAINS, "ACME"),))) == [0, 4]
        assert rows_of(s, table, View((Condition(n, Op.CONTAINS, "%_"),))) == [8]
        assert rows_of(s, table, View((Condition(n, Op.CONTAINS, "_"),))) == [8]
        # Non-ASCII: the database's lower() decides. SQLite's folds ASCII only; PostgreSQL's
        # follows the database's LC_CTYPE (a UTF-8 locale folds É to é, the tests' C-locale
        # cluster does not). docs/architecture.md says so.
        accented = rows_of(s, table, View((Condition(n, Op.CONTAINS, "école"),)))
        folds = s.execute(sa.text("SELECT lower('É') = 'é'")).scalar_one()
        assert folds == (s.get_bind().dialect.name == "postgresql" and folds)
        assert accented == ([3, 7] if folds else [7])


def test_status_filter_and_search(open_session: SessionFactory, table: Table) -> None:
    g = table.greeting
    with open_session() as s:
        statuses = {1: CellStatus.ERROR, 2: CellStatus.DONE, 3: CellStatus.RUNNING}
        for index, status in {**statuses, 4: CellStatus.QUEUED}.items():
            s.execute(
                sa.update(Cell)
                .where(Cell.row_id == table.rows[index], Cell.column_id == g)
                .values(status=status.value)
            )
        s.commit()
        assert rows_of(s, table, View((Condition(g, Op.STATUS, "failed"),))) == [1]
        assert rows_of(s, table, View((Condition(g, Op.STATUS, "done"),))) == [2]
        assert rows_of(s, table, View((Condition(g, Op.STATUS, "queued"),))) == [3, 4]
        assert rows_of(s, table, View((Condition(g, Op.STATUS, "empty"),))) == [0, 5, 6, 7, 8, 9]
        assert rows_of(s, table, View(search="ETA")) == [1, 3, 5, 6, 9]  # Retail too
        assert rows_of(s, table, View(search="BETA")) == [1, 9]
        assert rows_of(s, table, View(search="retail")) == [3, 6]
        assert rows_of(s, table, View(search="nothing like it")) == []


def test_sort_is_stable_with_empty_values_last_both_ways(
    open_session: SessionFactory, table: Table
) -> None:
    i = table.industry
    with open_session() as s:
        # Ties keep the table's order; empty cells go last, ascending or descending.
        assert rows_of(s, table, View(sort=Sort(i))) == [0, 2, 5, 8, 9, 3, 6, 1, 4, 7]
        assert rows_of(s, table, View(sort=Sort(i, descending=True))) == [
            3, 6, 0, 2, 5, 8, 9, 1, 4, 7,
        ]  # fmt: skip
        # A filter keeps the sort's order (text order is the database's collation).
        by_name = rows_of(s, table, View(sort=Sort(table.name, descending=True)))
        assert by_name[-2:] == [2, 6]  # the two empty names, in table order
        filtered = View((Condition(i, Op.EQUALS, "Bank"),), Sort(table.name, descending=True))
        assert rows_of(s, table, filtered) == [r for r in by_name if INDUSTRIES[r] == "Bank"]


def test_the_grid_reads_a_window_of_the_view_by_position(
    open_session: SessionFactory, table: Table
) -> None:
    view = View((Condition(table.industry, Op.EQUALS, "Bank"),), Sort(table.name))
    with open_session() as s:
        meta = grid_service.load_meta(s, table_id=table.id, view=view)
        assert (meta.row_count, meta.total_rows) == (5, 10)
        every = view_service.all_row_ids(s, table_id=table.id, view=view)
        window = grid_service.load_rows(s, meta, start=1, stop=4, view=view)
        assert window.row_ids == every[1:4]
        assert [row[0]["v"] for row in window.cells] == [NAMES[r] for r in table.index(every[1:4])]
        refs = grid_service.selected_cells(
            s, table_id=table.id, spans_by_column={table.greeting: [(3, 5)]}, view=view
        )
        assert [r.row_id for r in refs] == every[3:5]


def test_a_changed_cell_moves_a_row_out_of_the_view_for_a_tab_showing_it(
    open_session: SessionFactory, table: Table
) -> None:
    view = View((Condition(table.industry, Op.EMPTY),))
    with open_session() as s:
        read = grid_service.read_table(s, table_id=table.id, start=0, stop=120, view=view)
        meta = read.meta
        shown = grid_service.Shown("Views", meta.columns, meta.row_count, 0, 120, meta.total_rows)
        same = grid_service.read_elsewhere(
            s,
            table_id=table.id,
            since=read.marker,
            row_ids=read.window.row_ids,
            shown=shown,
            view=view,
        )
        assert same.window is None
        cell = s.exec(
            sa.select(Cell).where(Cell.row_id == table.rows[4], Cell.column_id == table.industry)
        ).scalar_one()
        cell.value = "Bank now"
        cell.updated_at = grid_service.utcnow()
        s.add(cell)
        s.commit()
        moved = grid_service.read_elsewhere(
            s,
            table_id=table.id,
            since=read.marker,
            row_ids=read.window.row_ids,
            shown=shown,
            view=view,
        )
        assert moved.meta is not None and moved.window is not None
        assert moved.meta.row_count == 2
        assert table.index(moved.window.row_ids) == [1, 7]


def test_run_the_view_takes_the_views_rows_of_an_enrichment_column(
    open_session: SessionFactory, table: Table
) -> None:
    view = View((Condition(table.industry, Op.EMPTY),))
    with open_session() as s:
        run = view_cells(s, table_id=table.id, view=view, column_id=table.greeting, max_cells=10)
        assert (run.row_count, run.column_id) == (3, table.greeting)
        created = create_job(s, table_id=table.id, cells=(), ranges=[run.ranges], max_cells=10)
        tasks = s.execute(
            sa.select(EnrichmentTask.row_id, EnrichmentTask.column_id)
            .where(EnrichmentTask.job_id == created.job.id)
            .order_by(EnrichmentTask.id)
        ).all()
        assert table.index([r for r, _ in tasks]) == [1, 4, 7]
        assert {c for _, c in tasks} == {table.greeting}
        s.rollback()
        with pytest.raises(InvalidInputError, match="input column"):
            view_cells(s, table_id=table.id, view=view, column_id=table.name, max_cells=10)
        with pytest.raises(InvalidInputError, match="shows 3 rows; one job can run at most 2"):
            view_cells(s, table_id=table.id, view=view, column_id=table.greeting, max_cells=2)
        nothing = View((Condition(table.industry, Op.EQUALS, "none"),))
        with pytest.raises(InvalidInputError, match="shows no rows"):
            view_cells(s, table_id=table.id, view=nothing, column_id=table.greeting, max_cells=10)
        with pytest.raises(NotFoundError):
            view_cells(s, table_id=table.id, view=view, column_id=10_000, max_cells=10)
        elsewhere = View((Condition(10_000, Op.EMPTY),))
        with pytest.raises(InvalidInputError, match="not in this table"):
            view_cells(s, table_id=table.id, view=elsewhere, column_id=table.greeting, max_cells=10)


AMOUNTS = ["10", "apple", "2", "", "-3.5", "1e5", " 7 ", "+4", "2 kg", ".5", "10.0", "1.2.3"]


def test_a_sort_puts_numbers_first_in_numeric_order_then_text(
    open_session: SessionFactory,
) -> None:
    with open_session() as session:
        table = create_table(
            session=session,
            name="Amounts",
            columns=[ColumnSpec("Amount")],
            rows=([a] for a in AMOUNTS),
            max_cell_chars=100,
        )
        session.commit()
        assert table.id is not None
        (amount,) = (c.id for c in list_columns(session, table_id=table.id))
        assert amount is not None
        rows = [r.id for r in list_rows(session, table_id=table.id)]

        def sorted_values(descending: bool) -> list[str]:
            view = View(sort=Sort(amount, descending))
            found = view_service.all_row_ids(session, table_id=table.id, view=view)
            return [AMOUNTS[rows.index(r)] for r in found]

        numbers = ["-3.5", ".5", "2", "+4", " 7 ", "10", "10.0"]  # equal numbers: text order
        text = ["1.2.3", "1e5", "2 kg", "apple"]  # not numbers: text order
        assert sorted_values(False) == [*numbers, *text, ""]
        assert sorted_values(True) == [*text[::-1], *numbers[::-1], ""]
