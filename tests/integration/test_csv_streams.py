"""CSV import and export as the page and the API do them, on SQLite and on PostgreSQL.

Import: streamed in chunks, written in batches (``COPY`` on PostgreSQL); all or nothing,
cancelable, and leaving the connection as it was. Export: a batch of rows at a time, in the
table's order, formulas neutralised unless raw, cancelable.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, TableColumn, TableRow
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.errors import CanceledByUserError, CsvImportError
from enrichment_app.services import csv_export
from enrichment_app.services.bulk import BATCH_ROWS, STAGED_MAX_COLUMNS
from enrichment_app.services.csv_import import import_csv, import_csv_stream
from enrichment_app.services.grid import load_meta, load_rows
from enrichment_app.services.tables import delete_table
from enrichment_app.services.transfer import Progress
from enrichment_app.services.values import TRUNCATION_MARK
from enrichment_app.settings import Settings
from tests.integration.db_helpers import row_counts

ROWS = BATCH_ROWS * 2 + 17
AWKWARD = ["tab\there", 'quote "q"', "back\\slash \\N", "line\nbreak", "  spaced  ", "é ✦"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The same settings on SQLite and on a database of the session's PostgreSQL cluster."""
    url = (
        request.getfixturevalue("postgres_database")
        if request.param == "postgres"
        else f"sqlite:///{tmp_path}/test.db"
    )
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        max_cell_chars=50,
        seed_demo=False,
        trigger_secret_key=None,
        enrichment_api_key=None,
    )


def big_file() -> tuple[bytes, list[list[str]]]:
    rows = [
        [f"name {i}", AWKWARD[i % len(AWKWARD)], "" if i % 3 else f"note {i}"] for i in range(ROWS)
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Name", "Text", "Note"])
    writer.writerows(rows)
    return out.getvalue().encode(), rows


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def values(session: Session, table_id: int) -> list[list[str]]:
    meta = load_meta(session, table_id=table_id)
    window = load_rows(session, meta, start=0, stop=meta.row_count)
    return [[c["v"] for c in row] for row in window.cells]


def test_a_file_of_several_batches_imports_exactly(
    open_session: SessionFactory, settings: Settings
) -> None:
    data, rows = big_file()
    progress = Progress()
    with unit_of_work(open_session) as session:
        first = import_csv(session, name="first", data=b"a\n1\n", max_bytes=10, max_cell_chars=50)
        table = import_csv_stream(
            session,
            name="Big",
            chunks=chunks(data),
            max_bytes=len(data),
            max_cell_chars=settings.max_cell_chars,
            progress=progress,
        )
        assert table.id is not None and first.id is not None
    assert (progress.rows, progress.bytes) == (ROWS, len(data))
    with open_session() as session:
        assert values(session, table.id) == rows
        assert values(session, first.id) == [["1"]]
        positions = session.exec(
            select(TableRow.position)
            .where(TableRow.table_id == table.id)
            .order_by(col(TableRow.id))
        ).all()
        assert list(positions) == list(range(ROWS)), "rows keep the file's order"
        empty = session.exec(
            select(sa.func.count())
            .select_from(Cell)
            .where(Cell.table_id == table.id, col(Cell.value).is_(None))
        ).one()
        assert empty == sum(1 for r in rows for v in r if v == ""), "empty values are NULL"
        statuses = session.exec(
            select(Cell.status).where(Cell.table_id == table.id).distinct()
        ).all()
        assert list(statuses) == ["empty"]


@pytest.mark.parametrize("width", [2, STAGED_MAX_COLUMNS, STAGED_MAX_COLUMNS + 1])
def test_narrow_and_wide_files_store_every_cell_in_row_then_column_order(
    open_session: SessionFactory, settings: Settings, width: int
) -> None:
    """SQLite stages the rows of tables up to ``STAGED_MAX_COLUMNS`` wide and writes the
    cells of wider ones one by one: both store the same cells, short rows padded with NULL."""
    rows = [
        [f"r{i}c{j}" if j == 0 or (i + j) % 5 else "" for j in range(width if i % 7 else 1)]
        for i in range(BATCH_ROWS + 5)
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f"C{j}" for j in range(width)])
    writer.writerows(rows)
    data = out.getvalue().encode()
    with unit_of_work(open_session) as session:
        table = import_csv(session, name="Wide", data=data, max_bytes=len(data), max_cell_chars=50)
        assert table.id is not None
    with open_session() as session:
        assert values(session, table.id) == [r + [""] * (width - len(r)) for r in rows]
        order = session.exec(
            select(TableRow.position, TableColumn.position, Cell.value)
            .join(TableRow, col(TableRow.id) == Cell.row_id)
            .join(TableColumn, col(TableColumn.id) == Cell.column_id)
            .where(Cell.table_id == table.id)
            .order_by(col(Cell.id))
        ).all()
        assert [(r, c) for r, c, _ in order] == [
            (r, c) for r in range(len(rows)) for c in range(width)
        ], "cells are written row by row, in column order"
        assert sum(v is None for _, _, v in order) == sum(
            1 for r in rows for v in r + [""] * (width - len(r)) if v == ""
        ), "empty and missing values are NULL"


def test_long_values_are_capped_and_a_refused_file_leaves_nothing(
    open_session: SessionFactory, settings: Settings
) -> None:
    data, _ = big_file()
    with unit_of_work(open_session) as session:
        before = row_counts(session)
    bad = data + b"x,y,z,too many\r\n"
    with open_session() as session, pytest.raises(CsvImportError, match=f"Row {ROWS + 2} has 4"):
        import_csv_stream(
            session, name="Bad", chunks=chunks(bad), max_bytes=len(bad), max_cell_chars=50
        )
        session.commit()
    with open_session() as session:
        assert row_counts(session) == before
    long = b"Name\n" + b"x" * 80 + b"\n"
    with unit_of_work(open_session) as session:
        table = import_csv(session, name="Long", data=long, max_bytes=1000, max_cell_chars=50)
        assert table.id is not None
        (value,) = values(session, table.id)[0]
    assert len(value) == 50 and value.endswith(TRUNCATION_MARK)


def test_a_canceled_import_stores_nothing(open_session: SessionFactory) -> None:
    data, _ = big_file()
    progress = Progress()

    def upload() -> Iterator[bytes]:
        for n, chunk in enumerate(chunks(data)):
            if n == 50:  # half way through the file, the user presses Cancel
                progress.cancel()
            yield chunk

    with open_session() as session:
        before = row_counts(session)
        with pytest.raises(CanceledByUserError, match="nothing was stored"):
            import_csv_stream(
                session,
                name="Canceled",
                chunks=upload(),
                max_bytes=len(data),
                max_cell_chars=50,
                progress=progress,
            )
            session.commit()
        assert 0 < progress.rows < ROWS
    with open_session() as session:
        assert row_counts(session) == before


def test_foreign_keys_are_checked_again_once_the_import_ends(
    open_session: SessionFactory, settings: Settings
) -> None:
    """SQLite skips the checks for the import's own rows; every later transaction on the
    connection checks them again, whether the import committed, was refused or was dropped."""

    def checking(session: Session) -> bool:
        if session.connection().dialect.name != "sqlite":
            return True
        return bool(session.connection().exec_driver_sql("PRAGMA foreign_keys").scalar())

    good, bad = b"a\n1\n", b"a\n1,2\n"
    with open_session() as session:
        import_csv(session, name="t", data=good, max_bytes=99, max_cell_chars=9)
        session.commit()
        assert checking(session)
    with open_session() as session, pytest.raises(CsvImportError):
        import_csv(session, name="t", data=bad, max_bytes=99, max_cell_chars=9)
    with open_session() as session:
        assert checking(session)
        import_csv(session, name="t", data=good, max_bytes=99, max_cell_chars=9)
    with open_session() as session:
        assert checking(session)
        with pytest.raises(sa.exc.IntegrityError):
            session.execute(
                sa.insert(Cell).values(table_id=999, row_id=999, column_id=999, status="empty")
            )


def test_a_deleted_table_s_ids_are_not_handed_out_twice(open_session: SessionFactory) -> None:
    with unit_of_work(open_session) as session:
        one = import_csv(session, name="one", data=b"a\n1\n2\n", max_bytes=99, max_cell_chars=9)
        two = import_csv(session, name="two", data=b"a\n3\n", max_bytes=99, max_cell_chars=9)
        assert one.id is not None and two.id is not None
        delete_table(session=session, table_id=one.id)
    with unit_of_work(open_session) as session:
        three = import_csv(session, name="3", data=b"a\n4\n5\n", max_bytes=99, max_cell_chars=9)
        assert three.id is not None
        assert values(session, two.id) == [["3"]]
        assert values(session, three.id) == [["4"], ["5"]]


def test_an_export_streams_a_batch_at_a_time_in_order_and_imports_back(
    open_session: SessionFactory,
) -> None:
    data, rows = big_file()
    rows[3][2] = "=HYPERLINK(1)"
    rows[ROWS - 2][0] = "lone\rreturn"
    awkward = io.StringIO()
    csv.writer(awkward, lineterminator="\r\n").writerows([["Name", "Text", "Note"], *rows])
    data = awkward.getvalue().encode()
    with unit_of_work(open_session) as session:
        table = import_csv(session, name="t", data=data, max_bytes=len(data), max_cell_chars=50)
        assert table.id is not None
    progress = Progress()
    with open_session() as session:
        pieces = list(csv_export.iter_csv(session, table_id=table.id, raw=True, progress=progress))
        safe = csv_export.export_csv(session, table_id=table.id)
    assert len(pieces) == 1 + -(-ROWS // csv_export.BATCH_ROWS), "the header, then one per batch"
    assert progress.rows == ROWS
    raw = "".join(pieces)
    assert list(csv.reader(io.StringIO(raw, newline=""))) == [["Name", "Text", "Note"], *rows]
    assert '"lone\rreturn"' in raw, "a row holding a lone CR is quoted whole"
    parsed = list(csv.reader(io.StringIO(safe, newline="")))
    assert parsed[4][2] == "'=HYPERLINK(1)"
    assert parsed[5] == rows[4], "other rows of the same batch are unchanged"
    with unit_of_work(open_session) as session:
        again = import_csv(
            session, name="again", data=raw.encode(), max_bytes=len(data), max_cell_chars=50
        )
        assert again.id is not None
        assert values(session, again.id) == rows


def test_a_canceled_export_stops_at_the_next_batch(open_session: SessionFactory) -> None:
    data, _ = big_file()
    with unit_of_work(open_session) as session:
        table = import_csv(session, name="t", data=data, max_bytes=len(data), max_cell_chars=50)
        assert table.id is not None
    progress = Progress()
    out = io.StringIO()
    with open_session() as session:
        pieces = csv_export.iter_csv(session, table_id=table.id, progress=progress)
        out.write(next(pieces))
        out.write(next(pieces))
        progress.cancel()
        with pytest.raises(CanceledByUserError):
            out.write(next(pieces))
    assert progress.rows == csv_export.BATCH_ROWS


@pytest.mark.parametrize("width", [3, csv_export.MAX_JOINED_COLUMNS + 1])
def test_an_export_joins_or_looks_up_each_columns_cells_alike(
    open_session: SessionFactory, width: int
) -> None:
    """Up to ``MAX_JOINED_COLUMNS`` columns the export joins each column's cells, beyond it looks
    them up one by one: both write rows in the table's order, "" where a row has no cell."""
    rows = [[f"r{i}c{j}" if (i + j) % 4 else "" for j in range(width)] for i in range(40)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[f"C{j}" for j in range(width)], *rows])
    data = out.getvalue().encode()
    with unit_of_work(open_session) as session:
        table = import_csv(session, name="w", data=data, max_bytes=len(data), max_cell_chars=50)
        assert table.id is not None
        first, last = session.exec(
            select(TableRow.id).where(TableRow.table_id == table.id).order_by(TableRow.position)
        ).all()[::39]
        # The last row moves to the top, and the first row loses its second column's cell.
        session.execute(sa.update(TableRow).where(col(TableRow.id) == last).values(position=-1))
        second = session.exec(
            select(TableColumn.id).where(
                TableColumn.table_id == table.id, TableColumn.position == 1
            )
        ).one()
        session.execute(
            sa.delete(Cell).where(col(Cell.row_id) == first, col(Cell.column_id) == second)
        )
    with open_session() as session:
        exported = list(csv.reader(io.StringIO(csv_export.export_csv(session, table_id=table.id))))
    rows[0][1] = ""
    assert exported == [[f"C{j}" for j in range(width)], rows[39], *rows[:39]]
