"""The table as the page's grid shows it: plain, JSON-ready data built from the database.

The page never holds a whole table: it reads the table's shape (``load_meta``), then the rows
around what is on screen (``load_window``). Row *indices* are positions in the table's order
(``TableRow.position``); ``row_ids_between`` turns an index range into row ids, so a selection
of any size can be resolved without the page knowing every row id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.db.models import Cell, TableColumn, TableRow
from enrichment_app.domain import ColumnKind
from enrichment_app.services.tables import get_table, list_cells, list_columns, list_rows


class GridColumn(TypedDict):
    id: str
    title: str
    type: str
    kind: str
    enricher: str
    width: int
    column_id: int


class GridCell(TypedDict):
    v: str
    """The value."""
    s: str
    """The status (``CellStatus``)."""
    e: str
    """The error message, when the status is ``error``."""


@dataclass(frozen=True, slots=True)
class Grid:
    table_id: int
    name: str
    columns: list[GridColumn]
    row_ids: list[int]
    cells: list[list[GridCell]]


@dataclass(frozen=True, slots=True)
class GridMeta:
    """A table's shape: its name, its columns and how many rows it has."""

    table_id: int
    name: str
    columns: list[GridColumn]
    row_count: int


@dataclass(frozen=True, slots=True)
class GridWindow:
    """Consecutive rows of a table, from row index ``start``, with their cells."""

    start: int
    row_ids: list[int]
    cells: list[list[GridCell]]


_CELL_FIELDS = (
    col(Cell.row_id),
    col(Cell.column_id),
    col(Cell.value),
    col(Cell.status),
    col(Cell.error),
)


def _empty() -> GridCell:
    return {"v": "", "s": "empty", "e": ""}


def grid_cell(cell: Cell) -> GridCell:
    return {"v": cell.value or "", "s": cell.status, "e": cell.error or ""}


def _cell(value: str | None, status: str, error: str | None) -> GridCell:
    return {"v": value or "", "s": status, "e": error or ""}


def _grid_columns(columns: Sequence[TableColumn]) -> list[GridColumn]:
    return [
        {
            "id": f"c{c.id}",
            "title": c.name if c.kind == ColumnKind.INPUT else f"{c.name} ✦",
            "type": "str",
            "kind": c.kind,
            "enricher": c.enricher or "",
            "width": 220 if c.kind == ColumnKind.ENRICHMENT else 180,
            "column_id": c.id or 0,
        }
        for c in columns
    ]


def load_meta(*, session: Session, table_id: int) -> GridMeta:
    """The table's name, columns and row count (``NotFoundError`` if there is no such table)."""
    table = get_table(session=session, table_id=table_id)
    columns = list_columns(session=session, table_id=table_id)
    row_count = session.exec(
        select(sa.func.count()).select_from(TableRow).where(TableRow.table_id == table_id)
    ).one()
    assert table.id is not None
    return GridMeta(
        table_id=table.id,
        name=table.name,
        columns=_grid_columns(columns),
        row_count=int(row_count),
    )


def row_ids_between(*, session: Session, table_id: int, start: int, stop: int) -> list[int]:
    """The ids of the rows at indices ``[start, stop)`` in the table's order."""
    if stop <= start:
        return []
    query = (
        select(TableRow.id)
        .where(TableRow.table_id == table_id)
        .order_by(col(TableRow.position))
        .offset(max(start, 0))
        .limit(stop - max(start, 0))
    )
    return [rid for rid in session.exec(query).all() if rid is not None]


def _cells_of_rows(
    session: Session, table_id: int, row_ids: Sequence[int], column_ids: Sequence[int]
) -> list[list[GridCell]]:
    row_index = {rid: i for i, rid in enumerate(row_ids)}
    col_index = {cid: i for i, cid in enumerate(column_ids)}
    cells: list[list[GridCell]] = [[_empty() for _ in column_ids] for _ in row_ids]
    if not row_ids:
        return cells
    query = sa.select(*_CELL_FIELDS).where(
        col(Cell.table_id) == table_id, col(Cell.row_id).in_(row_ids)
    )
    for row_id, column_id, value, status, error in session.execute(query).all():
        r, c = row_index.get(row_id), col_index.get(column_id)
        if r is not None and c is not None:
            cells[r][c] = _cell(value, status, error)
    return cells


def load_window(
    *, session: Session, table_id: int, start: int, stop: int, column_ids: Sequence[int]
) -> GridWindow:
    """The rows at indices ``[start, stop)`` with their cells, in ``column_ids`` order."""
    start = max(start, 0)
    row_ids = row_ids_between(session=session, table_id=table_id, start=start, stop=stop)
    return GridWindow(
        start=start,
        row_ids=row_ids,
        cells=_cells_of_rows(session, table_id, row_ids, column_ids),
    )


def changed_cells_in_rows(
    *, session: Session, table_id: int, since: datetime, row_ids: Sequence[int]
) -> list[tuple[int, int, GridCell]]:
    """(row id, column id, cell) for the given rows' cells updated after ``since``."""
    if not row_ids:
        return []
    query = sa.select(*_CELL_FIELDS).where(
        col(Cell.table_id) == table_id,
        col(Cell.updated_at) > since,
        col(Cell.row_id).in_(row_ids),
    )
    return [
        (row_id, column_id, _cell(value, status, error))
        for row_id, column_id, value, status, error in session.execute(query).all()
    ]


def load_grid(*, session: Session, table_id: int) -> Grid:
    """The whole table at once (exports and tests; the page reads windows instead)."""
    table = get_table(session=session, table_id=table_id)
    columns = list_columns(session=session, table_id=table_id)
    rows = list_rows(session=session, table_id=table_id)
    col_index = {c.id: i for i, c in enumerate(columns)}
    row_index = {r.id: i for i, r in enumerate(rows)}
    cells: list[list[GridCell]] = [[_empty() for _ in columns] for _ in rows]
    for cell in list_cells(session=session, table_id=table_id):
        r, c = row_index.get(cell.row_id), col_index.get(cell.column_id)
        if r is not None and c is not None:
            cells[r][c] = grid_cell(cell)
    assert table.id is not None
    return Grid(
        table_id=table.id,
        name=table.name,
        columns=_grid_columns(columns),
        row_ids=[r.id for r in rows if r.id is not None],
        cells=cells,
    )
