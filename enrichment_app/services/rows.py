"""Rows by column name, as the REST API and webhooks send them: append, edit, read a page.

The page edits one cell at a time (``tables.update_cell``); these take a row as
``{"Company": "Acme", "Website": "acme.com"}`` and go through the same rules: input columns
only, NUL refused, long values cut to ``MAX_CELL_CHARS``. A request with one bad name or value
changes nothing: every row is checked before the first is written, and the caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.bus import SHAPE, TableChange, note_change
from enrichment_app.db.models import Cell, TableColumn, TableRow
from enrichment_app.domain import ColumnKind
from enrichment_app.errors import InvalidInputError, NotFoundError
from enrichment_app.services import views as view_service
from enrichment_app.services.tables import get_table, insert_rows, list_columns, update_cell
from enrichment_app.services.values import refuse_nul
from enrichment_app.views import EVERYTHING, View

MAX_ROWS_PER_REQUEST = 1000
MAX_PAGE_ROWS = 1000

RowValues = Mapping[str, str | None]
"""A row as sent: column name → value (None or "" leaves the cell empty)."""


@dataclass(frozen=True, slots=True)
class RowCells:
    id: int
    cells: dict[str, tuple[str | None, str, str | None]]
    """Column name → (value, status, error)."""


@dataclass(frozen=True, slots=True)
class RowsPage:
    rows: list[RowCells]
    total: int


def _names(columns: Sequence[TableColumn]) -> dict[str, TableColumn]:
    return {c.name.casefold(): c for c in columns}


def _column_for(name: str, by_name: Mapping[str, TableColumn], *, where: str) -> TableColumn:
    column = by_name.get(name.casefold())
    if column is None:
        known = ", ".join(repr(c.name) for c in by_name.values()) or "none"
        raise InvalidInputError(
            f"{where}: this table has no column named {name!r} (its columns: {known})."
        )
    if column.kind != ColumnKind.INPUT:
        raise InvalidInputError(
            f"{where}: '{column.name}' is an enrichment column; run it instead of typing into it."
        )
    return column


def append_rows(
    session: Session, *, table_id: int, rows: Sequence[RowValues], max_cell_chars: int
) -> list[int]:
    """Add ``rows`` at the end of the table; their ids, in order. All or nothing."""
    get_table(session=session, table_id=table_id)
    if not rows:
        raise InvalidInputError("Send at least one row.")
    if len(rows) > MAX_ROWS_PER_REQUEST:
        raise InvalidInputError(
            f"{len(rows)} rows sent; at most {MAX_ROWS_PER_REQUEST} fit in one request. "
            "Send them in batches."
        )
    columns = list_columns(session=session, table_id=table_id)
    by_name = _names(columns)
    inputs = [c for c in columns if c.kind == ColumnKind.INPUT]
    position = {c.id: i for i, c in enumerate(inputs)}
    values: list[list[str | None]] = []
    for n, row in enumerate(rows):
        where = f"Row {n + 1}"
        line: list[str | None] = [None] * len(inputs)
        for name, value in row.items():
            column = _column_for(name, by_name, where=where)
            if line[position[column.id]] is not None:
                raise InvalidInputError(f"{where} names the column '{column.name}' twice.")
            if value:
                refuse_nul(value, where=f"{where}, column '{column.name}',")
            line[position[column.id]] = value or ""
        values.append(line)
    start = session.exec(
        select(sa.func.coalesce(sa.func.max(TableRow.position), -1)).where(
            TableRow.table_id == table_id
        )
    ).one()
    insert_rows(
        session=session,
        table_id=table_id,
        columns=columns,
        inputs=inputs,
        rows=values,
        max_cell_chars=max_cell_chars,
    )
    session.flush()
    note_change(session, table_id, TableChange.of(SHAPE))  # open pages show the new rows
    query = (
        select(TableRow.id)
        .where(TableRow.table_id == table_id, col(TableRow.position) > start)
        .order_by(col(TableRow.position))
    )
    return [rid for rid in session.exec(query).all() if rid is not None]


def edit_row(
    session: Session, *, table_id: int, row_id: int, values: RowValues, max_cell_chars: int
) -> RowCells:
    """Edit input cells of one row by column name, as the page's cell edits do. All or nothing."""
    get_table(session=session, table_id=table_id)
    row = session.get(TableRow, row_id)
    if row is None or row.table_id != table_id:
        raise NotFoundError(f"Row {row_id} is not in table {table_id}.")
    if not values:
        raise InvalidInputError('Name at least one column to change, like {"Company": "Acme"}.')
    by_name = _names(list_columns(session=session, table_id=table_id))
    chosen = [
        (_column_for(name, by_name, where="The row"), value) for name, value in values.items()
    ]
    if len({c.id for c, _ in chosen}) != len(chosen):
        raise InvalidInputError("The row names a column twice.")
    for column, value in chosen:
        assert column.id is not None
        update_cell(
            session,
            table_id=table_id,
            row_id=row_id,
            column_id=column.id,
            value=value or "",
            max_cell_chars=max_cell_chars,
        )
    session.flush()
    return _row_cells(session, table_id, [row_id])[0]


def read_rows(
    session: Session, *, table_id: int, offset: int, limit: int, view: View = EVERYTHING
) -> RowsPage:
    """Rows ``[offset, offset + limit)`` of ``view`` (the table's order), with every cell, and
    how many the view shows."""
    get_table(session=session, table_id=table_id)
    if offset < 0 or not 1 <= limit <= MAX_PAGE_ROWS:
        raise InvalidInputError(f"offset must be 0 or more, and limit from 1 to {MAX_PAGE_ROWS}.")
    view_service.check_view(session, table_id=table_id, view=view)
    total = view_service.count_rows(session, table_id=table_id, view=view)
    row_ids = view_service.row_ids_between(
        session, table_id=table_id, start=offset, stop=offset + limit, view=view
    )
    return RowsPage(rows=_row_cells(session, table_id, row_ids), total=int(total))


def _row_cells(session: Session, table_id: int, row_ids: Sequence[int]) -> list[RowCells]:
    names = {c.id: c.name for c in list_columns(session=session, table_id=table_id)}
    found: dict[int, dict[str, tuple[str | None, str, str | None]]] = {r: {} for r in row_ids}
    if row_ids:
        query = sa.select(
            col(Cell.row_id),
            col(Cell.column_id),
            col(Cell.value),
            col(Cell.status),
            col(Cell.error),
        ).where(col(Cell.table_id) == table_id, col(Cell.row_id).in_(row_ids))
        for row_id, column_id, value, status, error in session.execute(query).all():
            found[row_id][names[column_id]] = (value, status, error)
    order = list(names.values())
    return [RowCells(id=r, cells={n: found[r][n] for n in order if n in found[r]}) for r in row_ids]
