"""The table as the page's grid shows it: plain, JSON-ready data built from the database.

The page never holds a whole table: it reads the table's shape (``load_meta``), then the rows
around what is on screen (``load_window``). Row *indices* are positions in the table's order
(``TableRow.position``); ``row_ids_between`` turns an index range into row ids, so a selection
of any size can be resolved without the page knowing every row id (``selected_cells``).

The page keeps itself current with three reads: ``read_table`` (on load, and once a job ended),
``poll_job`` (while it follows a job without Realtime) and ``read_elsewhere`` (while the table
is idle, for what other tabs and the API change). Each takes its ``marker`` before reading, so
a change made while it reads is read again next time rather than missed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.db.models import Cell, TableColumn, TableRow
from enrichment_app.domain import CellRef, ColumnKind, utcnow
from enrichment_app.selection import RowSpan, merge_spans
from enrichment_app.services import views as view_service
from enrichment_app.services.jobs import JobView, job_view, latest_job
from enrichment_app.services.tables import get_table, list_columns
from enrichment_app.views import EVERYTHING, View


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
class GridMeta:
    """A table's shape: its name, its columns and how many rows it has."""

    table_id: int
    name: str
    columns: list[GridColumn]
    row_count: int
    """The rows the view shows (the table's rows when it shows them all)."""
    total_rows: int = -1
    """The table's rows, whatever the view (-1: the same as ``row_count``)."""


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
            "width": c.width or (220 if c.kind == ColumnKind.ENRICHMENT else 180),
            "column_id": c.id or 0,
        }
        for c in columns
    ]


def load_meta(
    session: Session, *, table_id: int, view: View = EVERYTHING, shown: int | None = None
) -> GridMeta:
    """The table's name, columns and row count, and how many rows ``view`` shows (``shown``
    when the caller counted them) (``NotFoundError`` if there is no such table)."""
    table = get_table(session=session, table_id=table_id)
    columns = list_columns(session=session, table_id=table_id)
    total = session.exec(
        select(sa.func.count()).select_from(TableRow).where(TableRow.table_id == table_id)
    ).one()
    if not view.is_filtered:
        shown = total
    elif shown is None:
        shown = view_service.count_rows(session, table_id=table_id, view=view)
    assert table.id is not None
    return GridMeta(
        table_id=table.id,
        name=table.name,
        columns=_grid_columns(columns),
        row_count=int(shown),
        total_rows=int(total),
    )


def row_ids_between(
    session: Session, *, table_id: int, start: int, stop: int, view: View = EVERYTHING
) -> list[int]:
    """The ids of the rows at indices ``[start, stop)`` of ``view`` (the table's order)."""
    return view_service.row_ids_between(
        session, table_id=table_id, start=start, stop=stop, view=view
    )


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
    session: Session,
    *,
    table_id: int,
    start: int,
    stop: int,
    column_ids: Sequence[int],
    view: View = EVERYTHING,
) -> GridWindow:
    """The rows at indices ``[start, stop)`` of ``view`` with their cells, in ``column_ids``
    order."""
    start = max(start, 0)
    row_ids = row_ids_between(session, table_id=table_id, start=start, stop=stop, view=view)
    return GridWindow(
        start=start,
        row_ids=row_ids,
        cells=_cells_of_rows(session, table_id, row_ids, column_ids),
    )


def read_view(
    session: Session, *, table_id: int, start: int, stop: int, view: View = EVERYTHING
) -> tuple[GridMeta, GridWindow]:
    """The table's meta and rows ``[start, stop)`` of ``view``. A filtered view's rows are read
    once, in order, for both its count and its window (one pass over the cells, not two)."""
    if not view.is_filtered:
        meta = load_meta(session, table_id=table_id, view=view)
        return meta, load_rows(session, meta, start=start, stop=stop, view=view)
    get_table(session=session, table_id=table_id)
    every = view_service.all_row_ids(session, table_id=table_id, view=view)
    meta = load_meta(session, table_id=table_id, view=view, shown=len(every))
    start = max(start, 0)
    row_ids = every[start:stop] if stop > start else []
    column_ids = [c["column_id"] for c in meta.columns]
    cells = _cells_of_rows(session, table_id, row_ids, column_ids)
    return meta, GridWindow(start=start, row_ids=row_ids, cells=cells)


Changes = list[tuple[int, int, GridCell]]
"""(row id, column id, cell) for each changed cell."""


def changed_cells_in_rows(
    session: Session, *, table_id: int, since: datetime | None, row_ids: Sequence[int]
) -> Changes:
    """(row id, column id, cell) for the given rows' cells updated after ``since`` (none before
    the page has a ``since``)."""
    if since is None or not row_ids:
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


def selected_cells(
    session: Session,
    *,
    table_id: int,
    spans_by_column: Mapping[int, Sequence[RowSpan]],
    view: View = EVERYTHING,
) -> list[CellRef]:
    """The cells of each column id's selected row spans, with row ids read by position in
    ``view``."""
    ids: dict[int, int] = {}
    for start, stop in merge_spans(s for spans in spans_by_column.values() for s in spans):
        found = row_ids_between(session, table_id=table_id, start=start, stop=stop, view=view)
        ids.update(zip(range(start, stop), found, strict=False))
    return [
        CellRef(row_id=ids[row], column_id=column_id)
        for column_id, spans in spans_by_column.items()
        for start, stop in spans
        for row in range(start, stop)
        if row in ids
    ]


def load_rows(
    session: Session, meta: GridMeta, *, start: int, stop: int, view: View = EVERYTHING
) -> GridWindow:
    """The rows ``[start, stop)`` of ``view`` of the table ``meta`` describes, with its
    columns' cells."""
    column_ids = [c["column_id"] for c in meta.columns]
    return load_window(
        session, table_id=meta.table_id, start=start, stop=stop, column_ids=column_ids, view=view
    )


@dataclass(frozen=True, slots=True)
class TableRead:
    """A table's shape, rows ``[start, stop)`` and a job, read at ``marker``."""

    meta: GridMeta
    window: GridWindow
    job: JobView | None
    marker: datetime


def read_table(
    session: Session,
    *,
    table_id: int,
    start: int,
    stop: int,
    job_id: int | None = None,
    view: View = EVERYTHING,
    check: bool = False,
) -> TableRead:
    """The table with rows ``[start, stop)`` of ``view``, and the job ``job_id`` (its newest
    if None). With ``check``, a view naming a column the table lacks is refused
    (``InvalidInputError``)."""
    if check:
        view_service.check_view(session, table_id=table_id, view=view)
    marker = utcnow()
    meta, window = read_view(session, table_id=table_id, start=start, stop=stop, view=view)
    if job_id is not None:
        return TableRead(meta, window, job_view(session, job_id=job_id), marker)
    job = latest_job(session, table_id=table_id)
    return TableRead(meta, window, JobView.of(job) if job else None, marker)


@dataclass(frozen=True, slots=True)
class JobPoll:
    """A job as it stands, and the cells of the window that changed, read at ``marker``."""

    job: JobView
    changed: Changes
    marker: datetime
    meta: GridMeta | None = None
    window: GridWindow | None = None
    """With a view other than the whole table, a re-read window (a changed cell may move a
    row in or out of the view, or elsewhere in its order) instead of ``changed``."""


def _table_changed(session: Session, *, table_id: int, since: datetime | None) -> bool:
    """Whether any cell of the table changed after ``since`` (``ix_cell_table_updated``)."""
    if since is None:
        return True
    query = sa.select(col(Cell.id)).where(
        col(Cell.table_id) == table_id, col(Cell.updated_at) > since
    )
    return session.execute(query.limit(1)).first() is not None


def poll_job(
    session: Session,
    *,
    job_id: int,
    table_id: int,
    since: datetime | None,
    row_ids: Sequence[int],
    view: View = EVERYTHING,
    span: tuple[int, int] = (0, 0),
) -> JobPoll:
    """The job, and the window's changed cells; with a view (not the whole table), the
    window's rows ``span`` of the view read again when a cell of the table changed."""
    marker = utcnow()
    job = job_view(session, job_id=job_id)
    if not view.is_default:
        if not _table_changed(session, table_id=table_id, since=since):
            return JobPoll(job, [], marker)
        meta, window = read_view(session, table_id=table_id, start=span[0], stop=span[1], view=view)
        return JobPoll(job, [], marker, meta, window)
    changed = changed_cells_in_rows(session, table_id=table_id, since=since, row_ids=row_ids)
    return JobPoll(job, changed, marker)


@dataclass(frozen=True, slots=True)
class Shown:
    """What a tab shows of its table's shape, and the rows its window spans."""

    name: str
    columns: list[GridColumn]
    row_count: int
    start: int
    stop: int
    total_rows: int = -1
    """The table's rows, whatever the view (for a view that leaves some out)."""


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """What changed in a table since a tab last read it: its newest job, and either the
    window's changed cells or, when the table's shape changed, its new meta and window."""

    job: JobView | None
    changed: Changes
    marker: datetime
    meta: GridMeta | None = None
    window: GridWindow | None = None


def read_elsewhere(
    session: Session,
    *,
    table_id: int,
    since: datetime | None,
    row_ids: Sequence[int],
    shown: Shown,
    view: View = EVERYTHING,
) -> Elsewhere:
    """What changed in the table since ``since``, compared with what a tab ``shown`` of
    ``view``. With a view other than the whole table, any changed cell re-reads the window:
    a row may have started or stopped matching, or moved in the order."""
    marker = utcnow()
    latest = latest_job(session, table_id=table_id)
    job = JobView.of(latest) if latest else None
    if not view.is_default:
        # Counting a filtered view is a pass over its cells: only when a cell changed.
        if _table_changed(session, table_id=table_id, since=since):
            meta, window = read_view(
                session, table_id=table_id, start=shown.start, stop=shown.stop, view=view
            )
            return Elsewhere(job, [], marker, meta, window)
        meta = load_meta(session, table_id=table_id, view=view, shown=shown.row_count)
        if (meta.name, meta.columns, meta.total_rows) != (
            shown.name,
            shown.columns,
            shown.total_rows,
        ):
            meta, window = read_view(
                session, table_id=table_id, start=shown.start, stop=shown.stop, view=view
            )
            return Elsewhere(job, [], marker, meta, window)
        return Elsewhere(job, [], marker)
    meta = load_meta(session, table_id=table_id)
    if (meta.name, meta.columns, meta.row_count) != (shown.name, shown.columns, shown.row_count):
        window = load_rows(session, meta, start=shown.start, stop=shown.stop)
        return Elsewhere(job, [], marker, meta, window)
    changed = changed_cells_in_rows(session, table_id=table_id, since=since, row_ids=row_ids)
    return Elsewhere(job, changed, marker)
