"""Writing many rows and their cells at once: the fast path of CSV imports and new tables.

A table of 100,000 rows x 8 columns is 800,000 cells, so the per-cell cost is what counts:
no ORM objects and no per-value type processing. Row ids are handed out before the rows are
written, so rows and cells go to the database in one pass each:

* **SQLite**: the transaction first writes the table's ``updated_at``, which takes SQLite's
  write lock until it commits; no other connection can add rows meanwhile, so the new rows'
  ids follow the highest one. A batch's rows go into a temporary table, one line per row, and
  SQLite makes the rows and their cells from it (``_SqliteStage``): a row's values are bound
  once, not six parameters per cell. Wider tables go through the driver's ``executemany``.
* **PostgreSQL**: the ids come from the rows' sequence (``nextval``), and rows and cells go
  through ``COPY … FROM STDIN`` (psycopg 3).
* any other database: SQLAlchemy's multi-row ``INSERT … RETURNING``.

Everything stays in the caller's transaction, so a refused file still leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import chain, islice
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, select

from enrichment_app.db.models import DataTable, TableRow
from enrichment_app.domain import CellStatus, utcnow
from enrichment_app.services.values import cap_value, refuse_nul

BATCH_ROWS = 2000
"""Rows written per round trip: enough to amortise it, few enough to keep memory flat."""
ROWS_PER_STATEMENT = 50
"""Rows in one SQLite ``INSERT``'s ``VALUES`` (300 parameters for a cell: far below the
32,766 SQLite allows)."""

STAGED_MAX_COLUMNS = 32
"""The widest table whose rows SQLite stages (each cell picks its value with a ``CASE`` over
the columns, so the cost per cell grows with the width)."""

_CELL_COLUMNS = ("table_id", "row_id", "column_id", "value", "status", "updated_at")


def insert_rows(
    session: Session,
    *,
    table_id: int,
    column_ids: Sequence[int],
    inputs: Sequence[int],
    names: Sequence[str],
    rows: Iterable[Sequence[str | None]],
    max_cell_chars: int,
) -> int:
    """Append ``rows`` to the table, with a cell for every column; the number of rows.

    ``column_ids`` are every column of the table and ``names`` their names (for messages);
    ``inputs`` are the positions in ``column_ids`` that the values of each row fill, in order.
    Empty values are stored as NULL, long ones truncated (``cap_value``); a NUL is refused.
    """
    now = utcnow()
    # Also takes SQLite's write lock (see the module's docstring) and says the table changed.
    session.execute(
        sa.update(DataTable).where(col(DataTable.id) == table_id).values(updated_at=now)
    )
    start = session.exec(
        select(sa.func.coalesce(sa.func.max(TableRow.position), -1)).where(
            TableRow.table_id == table_id
        )
    ).one()
    writer = _writer(session, now)
    cells = _Cells(table_id, column_ids, inputs, names, max_cell_chars, writer.stamp)
    stage = None
    if isinstance(writer, _SqliteWriter) and 0 < len(column_ids) <= STAGED_MAX_COLUMNS:
        stage = _SqliteStage(session, writer, table_id, column_ids)
    position = start + 1
    source = iter(rows)
    while batch := list(islice(source, BATCH_ROWS)):
        values = cells.aligned(batch, first_position=position)
        positions = [(table_id, position + i) for i in range(len(batch))]
        if stage is not None:
            stage.write(positions, values)
        else:
            writer.cells(cells.params(writer.rows(positions), values))
        position += len(batch)
    if stage is not None:
        stage.close()
    return position - (start + 1)


CellParams = tuple[int, int, int, str | None, str, Any]
"""(table id, row id, column id, value, status, updated_at), in ``_CELL_COLUMNS`` order."""


class _Cells:
    """The cells of new rows: one per column, the row's values in the input columns.

    Built a row at a time with C-speed checks (a NUL, a value over the cap), since the
    per-cell Python cost is most of an import's time outside the database.
    """

    def __init__(
        self,
        table_id: int,
        column_ids: Sequence[int],
        inputs: Sequence[int],
        names: Sequence[str],
        max_cell_chars: int,
        stamp: Any,
    ) -> None:
        self.table_id = table_id
        self.column_ids = list(column_ids)
        self.names = names
        slot = {column_index: i for i, column_index in enumerate(inputs)}
        self.slots = [slot.get(n) for n in range(len(column_ids))]
        self.identity = self.slots == list(range(len(column_ids)))
        self.max_cell_chars = max_cell_chars
        self.stamp = stamp

    def aligned(
        self, batch: Sequence[Sequence[str | None]], *, first_position: int
    ) -> list[Sequence[str | None]]:
        """Each row's values, one per column of the table (None where a row gives none)."""
        width, limit = len(self.column_ids), self.max_cell_chars
        out: list[Sequence[str | None]] = []
        for n, values in enumerate(batch):
            if self.identity and len(values) == width:
                aligned = values
            else:
                size = len(values)
                aligned = [values[i] if i is not None and i < size else None for i in self.slots]
            text = "".join(filter(None, aligned))
            if "\x00" in text or len(text) > limit:
                aligned = self._checked(aligned, first_position + n + 1)
            out.append(aligned)
        return out

    def params(
        self, row_ids: Sequence[int], rows: Sequence[Sequence[str | None]]
    ) -> list[CellParams]:
        """The cells of ``rows`` (from ``aligned``) as ``_CELL_COLUMNS`` parameters."""
        table_id, stamp = self.table_id, self.stamp
        empty = CellStatus.EMPTY.value
        out: list[CellParams] = []
        for row_id, aligned in zip(row_ids, rows, strict=True):
            out.extend(
                [
                    (table_id, row_id, column_id, value or None, empty, stamp)
                    for column_id, value in zip(self.column_ids, aligned, strict=True)
                ]
            )
        return out

    def _checked(self, values: Sequence[str | None], line: int) -> list[str | None]:
        """The values of row ``line``, a NUL refused and long values truncated."""
        for value, name in zip(values, self.names, strict=True):
            if value:
                refuse_nul(value, where=f"Row {line}, column '{name}',")
        return [cap_value(v, self.max_cell_chars) if v else v for v in values]


class _Writer(Protocol):
    stamp: Any
    """``updated_at`` as the writer hands it to the driver."""

    def rows(self, rows: list[tuple[int, int]]) -> list[int]:
        """Write rows given as (table id, position); their ids, in order."""
        ...

    def cells(self, params: list[CellParams]) -> None: ...


class _SqliteWriter:
    def __init__(self, session: Session, now: datetime) -> None:
        self._session = session
        self.stamp: Any = driver_value(session, sa.DateTime(timezone=True), now)
        self._next_id: int | None = None

    def ids(self, count: int) -> int:
        """The first of ``count`` new row ids (the next ones after the highest)."""
        if self._next_id is None:
            highest = self._session.execute(sa.select(sa.func.max(col(TableRow.id)))).scalar()
            self._next_id = int(highest or 0) + 1
        first, self._next_id = self._next_id, self._next_id + count
        return first

    def rows(self, rows: list[tuple[int, int]]) -> list[int]:
        first = self.ids(len(rows))
        insert_many(
            self._session,
            "table_row",
            ("id", "table_id", "position"),
            [(first + i, table_id, position) for i, (table_id, position) in enumerate(rows)],
        )
        return list(range(first, first + len(rows)))

    def cells(self, params: list[CellParams]) -> None:
        insert_many(self._session, "cell", _CELL_COLUMNS, params)


class _SqliteStage:
    """SQLite's fast path: a batch of rows in a temporary table, one line per row (its id, its
    position, one value per column), from which one ``INSERT … SELECT`` writes the rows and one
    their cells, in row then column order. Binding a row's values once instead of six
    parameters per cell is most of the saving; the temporary table lives in the transaction
    and goes with it, committed or rolled back."""

    def __init__(
        self, session: Session, writer: _SqliteWriter, table_id: int, column_ids: Sequence[int]
    ) -> None:
        self._connection = session.connection()
        self._writer = writer
        width = len(column_ids)
        self._columns = ("id", "position", *(f"v{n}" for n in range(width)))
        self._connection.exec_driver_sql("DROP TABLE IF EXISTS temp.import_stage")
        self._connection.exec_driver_sql(
            "CREATE TEMP TABLE import_stage (id INTEGER PRIMARY KEY, position INTEGER, "
            + ", ".join(self._columns[2:])
            + ")"
        )
        keys = " UNION ALL ".join(
            f"SELECT {n} AS n, {int(column_id)} AS column_id"
            for n, column_id in enumerate(column_ids)
        )
        pick = " ".join(f"WHEN {n} THEN s.v{n}" for n in range(width))
        self._rows_sql = (
            f"INSERT INTO table_row (id, table_id, position) SELECT id, {int(table_id)}, position"
            " FROM import_stage ORDER BY id"
        )
        self._cells_sql = (
            f"INSERT INTO cell ({', '.join(_CELL_COLUMNS)})"
            f" SELECT {int(table_id)}, s.id, k.column_id, nullif(CASE k.n {pick} END, ''), ?, ?"
            f" FROM import_stage AS s CROSS JOIN ({keys}) AS k ORDER BY s.id, k.n"
        )

    def write(self, positions: list[tuple[int, int]], rows: Sequence[Sequence[str | None]]) -> None:
        first = self._writer.ids(len(positions))
        staged = [
            (first + n, position, *values)
            for n, ((_table, position), values) in enumerate(zip(positions, rows, strict=True))
        ]
        insert_many_sqlite(self._connection, "import_stage", self._columns, staged)
        self._connection.exec_driver_sql(self._rows_sql)
        self._connection.exec_driver_sql(
            self._cells_sql, (CellStatus.EMPTY.value, self._writer.stamp)
        )
        self._connection.exec_driver_sql("DELETE FROM import_stage")

    def close(self) -> None:
        self._connection.exec_driver_sql("DROP TABLE temp.import_stage")


class _PostgresWriter:
    def __init__(self, session: Session, now: datetime) -> None:
        self._session = session
        self.stamp: Any = now

    def rows(self, rows: list[tuple[int, int]]) -> list[int]:
        ids = [
            int(row_id)
            for (row_id,) in self._session.execute(
                sa.text(
                    "SELECT nextval(pg_get_serial_sequence('table_row', 'id'))"
                    " FROM generate_series(1, :n)"
                ),
                {"n": len(rows)},
            ).all()
        ]
        insert_many(
            self._session,
            "table_row",
            ("id", "table_id", "position"),
            [(row_id, t, position) for row_id, (t, position) in zip(ids, rows, strict=True)],
        )
        return ids

    def cells(self, params: list[CellParams]) -> None:
        insert_many(self._session, "cell", _CELL_COLUMNS, params)


class _CoreWriter:
    """Any other database, through SQLAlchemy Core (multi-row ``INSERT … RETURNING``)."""

    def __init__(self, session: Session, now: datetime) -> None:
        self._session = session
        self.stamp: Any = now

    def rows(self, rows: list[tuple[int, int]]) -> list[int]:
        result = self._session.execute(
            sa.insert(TableRow).returning(col(TableRow.id), sort_by_parameter_order=True),
            [{"table_id": table_id, "position": position} for table_id, position in rows],
        )
        return [row_id for (row_id,) in result.all()]

    def cells(self, params: list[CellParams]) -> None:
        insert_many(self._session, "cell", _CELL_COLUMNS, params)


def _writer(session: Session, now: datetime) -> _Writer:
    dialect = session.connection().dialect
    if dialect.name == "sqlite":
        return _SqliteWriter(session, now)
    if _copies(dialect):
        return _PostgresWriter(session, now)
    return _CoreWriter(session, now)


def _copies(dialect: sa.Dialect) -> bool:
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def driver_value(session: Session, type_: sa.types.TypeEngine[Any], value: Any) -> Any:
    """``value`` as SQLAlchemy would hand it to this session's driver (``insert_many`` hands
    values over as they are): on SQLite a datetime becomes the text SQLAlchemy stores."""
    dialect = session.connection().dialect
    if dialect.name != "sqlite":
        return value
    bind = type_.dialect_impl(dialect).bind_processor(dialect)
    return bind(value) if bind is not None else value


def insert_many(
    session: Session, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Write ``rows`` (values in ``columns`` order, as the driver takes them: see
    ``driver_value``) into ``table`` in as few statements as the database allows.

    SQLite: ``ROWS_PER_STATEMENT`` rows per ``INSERT``, a third less work than one row per
    statement (most of it the driver's per-statement cost). PostgreSQL: ``COPY … FROM STDIN``.
    Others: SQLAlchemy's executemany. A unique or foreign key refused raises SQLAlchemy's
    ``IntegrityError``, as any statement would.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        insert_many_sqlite(connection, table, columns, rows)
    elif _copies(connection.dialect):
        _copy(connection, table, columns, rows)
    else:
        target = sa.table(table, *(sa.column(c) for c in columns))
        connection.execute(sa.insert(target), [dict(zip(columns, r, strict=True)) for r in rows])


def insert_many_sqlite(
    connection: sa.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """``insert_many`` on SQLite: ``ROWS_PER_STATEMENT`` rows per ``INSERT``."""
    width, per = len(columns), ROWS_PER_STATEMENT
    values = list(chain.from_iterable(rows))
    whole = len(rows) // per * per
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    one = "(" + ", ".join("?" * width) + ")"
    if whole:
        step = per * width
        connection.exec_driver_sql(
            head + ", ".join([one] * per),
            [tuple(values[i : i + step]) for i in range(0, whole * width, step)],
        )
    if whole < len(rows):
        connection.exec_driver_sql(
            head + ", ".join([one] * (len(rows) - whole)), tuple(values[whole * width :])
        )


def _copy(
    connection: sa.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    driver: Any = connection.connection.driver_connection
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except connection.dialect.loaded_dbapi.IntegrityError as exc:
        raise sa.exc.IntegrityError(statement, None, exc) from exc


def skip_foreign_key_checks(session: Session) -> None:
    """On SQLite, skip foreign key checks for the rest of this session's transaction.

    ``insert_rows`` writes rows and cells whose parents it has just created, in a transaction
    that holds SQLite's write lock, so the checks cannot fail; they are three index searches
    per cell, an eighth of a large import. SQLite takes the setting only between transactions,
    so it must be the session's first statement (otherwise nothing changes), and it is turned
    back on as soon as the transaction ends, committed or not.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    driver: Any = connection.connection.driver_connection
    if driver.in_transaction:
        return

    def restore(_session: Session, transaction: SessionTransaction) -> None:
        if (
            transaction.parent is None
        ):  # the outermost transaction: committed, rolled back or closed
            driver.execute("PRAGMA foreign_keys=ON")

    driver.execute("PRAGMA foreign_keys=OFF")
    sa.event.listen(session, "after_transaction_end", restore)
