"""The table as the page's grid shows it: plain, JSON-ready data built from the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from sqlmodel import Session

from enrichment_app.db.models import Cell
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


def grid_cell(cell: Cell) -> GridCell:
    return {"v": cell.value or "", "s": cell.status, "e": cell.error or ""}


def load_grid(*, session: Session, table_id: int) -> Grid:
    table = get_table(session=session, table_id=table_id)
    columns = list_columns(session=session, table_id=table_id)
    rows = list_rows(session=session, table_id=table_id)
    col_index = {c.id: i for i, c in enumerate(columns)}
    row_index = {r.id: i for i, r in enumerate(rows)}
    cells: list[list[GridCell]] = [
        [{"v": "", "s": "empty", "e": ""} for _ in columns] for _ in rows
    ]
    for cell in list_cells(session=session, table_id=table_id):
        r, c = row_index.get(cell.row_id), col_index.get(cell.column_id)
        if r is not None and c is not None:
            cells[r][c] = grid_cell(cell)
    grid_columns: list[GridColumn] = [
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
    assert table.id is not None
    return Grid(
        table_id=table.id,
        name=table.name,
        columns=grid_columns,
        row_ids=[r.id for r in rows if r.id is not None],
        cells=cells,
    )
