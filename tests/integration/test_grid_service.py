"""The grid by window: a table's shape, a range of its rows, and rows resolved by position."""

from __future__ import annotations

from enrichment_app.db.engine import SessionFactory
from enrichment_app.domain import utcnow
from enrichment_app.services import grid as grid_service
from enrichment_app.services.tables import ColumnSpec, create_table, update_cell
from tests.support.database import greeting


def _table(open_session: SessionFactory, rows: int) -> int:
    with open_session() as session:
        table = create_table(
            session=session,
            name="Window",
            columns=[
                ColumnSpec("Name"),
                greeting(),
            ],
            rows=([f"n{i}"] for i in range(rows)),
            max_cell_chars=100,
        )
        session.commit()
        assert table.id is not None
        return table.id


def test_meta_counts_rows_and_window_reads_only_the_rows_asked_for(
    open_session: SessionFactory,
) -> None:
    table_id = _table(open_session, 250)
    with open_session() as session:
        meta = grid_service.load_meta(session=session, table_id=table_id)
        assert meta.row_count == 250
        assert [c["title"] for c in meta.columns] == ["Name", "Greeting ✦"]
        column_ids = [c["column_id"] for c in meta.columns]
        window = grid_service.load_window(
            session=session, table_id=table_id, start=240, stop=300, column_ids=column_ids
        )
        whole = grid_service.load_grid(session=session, table_id=table_id)
    assert window.start == 240
    assert [row[0]["v"] for row in window.cells] == [f"n{i}" for i in range(240, 250)]
    assert window.row_ids == whole.row_ids[240:]
    assert window.cells == whole.cells[240:]


def test_row_ids_between_follow_the_table_order(open_session: SessionFactory) -> None:
    table_id = _table(open_session, 30)
    with open_session() as session:
        every = grid_service.load_grid(session=session, table_id=table_id).row_ids
        assert (
            grid_service.row_ids_between(session=session, table_id=table_id, start=5, stop=9)
            == every[5:9]
        )
        assert (
            grid_service.row_ids_between(session=session, table_id=table_id, start=25, stop=99)
            == every[25:]
        )
        assert (
            grid_service.row_ids_between(session=session, table_id=table_id, start=4, stop=4) == []
        )


def test_changed_cells_in_rows_only_reports_the_rows_asked_for(
    open_session: SessionFactory,
) -> None:
    table_id = _table(open_session, 10)
    since = utcnow()
    with open_session() as session:
        meta = grid_service.load_meta(session=session, table_id=table_id)
        name_id = meta.columns[0]["column_id"]
        rows = grid_service.row_ids_between(session=session, table_id=table_id, start=0, stop=10)
        for row_id in (rows[1], rows[8]):
            update_cell(
                session=session,
                table_id=table_id,
                row_id=row_id,
                column_id=name_id,
                value="edited",
                max_cell_chars=100,
            )
        session.commit()
        changed = grid_service.changed_cells_in_rows(
            session=session, table_id=table_id, since=since, row_ids=rows[:5]
        )
    assert [(r, c, cell["v"]) for r, c, cell in changed] == [(rows[1], name_id, "edited")]
