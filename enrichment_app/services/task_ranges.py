"""Tasks for cells chosen by position, written by the database: a whole column of 100,000 rows
costs a few statements and no Python object per cell.

A page selects cells as row spans of its view (rows ``[start, stop)`` as it shows them), and
"Run the view" and the API's ``columns`` take every row. ``RowRanges`` says that, and the
functions here count the cells, find the busy ones and write the tasks with one
``INSERT … SELECT`` from ``table_row`` (the view compiled by ``services/views.py``), leaving
out cells that already have a queued or running task. Nothing binds one parameter per cell,
so PostgreSQL's 65,535-parameter limit never applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from enrichment_app.db.models import EnrichmentTask, TableColumn
from enrichment_app.domain import ACTIVE_TASK_STATUSES, ColumnKind, TaskStatus
from enrichment_app.errors import CellsBusyError, NotFoundError
from enrichment_app.selection import RowSpan, merge_spans
from enrichment_app.services import views as view_service
from enrichment_app.services.job_tasks import RACED
from enrichment_app.views import EVERYTHING, View

EVERY_ROW: tuple[RowSpan, ...] = ()
"""A column's spans when it runs for every row of the view."""


@dataclass(frozen=True, slots=True)
class RowRanges:
    """Cells by position: each column id's row spans of ``view``, or ``EVERY_ROW``."""

    spans_by_column: Mapping[int, Sequence[RowSpan]]
    view: View = EVERYTHING

    @classmethod
    def whole_columns(cls, column_ids: Iterable[int], view: View = EVERYTHING) -> RowRanges:
        return cls(dict.fromkeys(column_ids, EVERY_ROW), view)


@dataclass(frozen=True, slots=True)
class _Part:
    column_id: int
    position: int
    """The column's place in the table (tasks run row by row, left to right)."""
    view: View
    spans: tuple[RowSpan, ...]
    """Merged spans, or ``EVERY_ROW``."""


@dataclass(slots=True)
class Ranged:
    """The enrichment columns' parts of some ``RowRanges``, checked against the table."""

    table_id: int
    parts: list[_Part]
    counts: dict[View, int] = field(default_factory=dict)

    @property
    def column_ids(self) -> set[int]:
        return {p.column_id for p in self.parts}


def resolve(
    session: Session,
    *,
    table_id: int,
    ranges: Sequence[RowRanges],
    columns: Mapping[int, TableColumn],
) -> Ranged:
    """The enrichment columns of ``ranges`` (input columns are left out, as input cells are),
    with each view's row count; ``NotFoundError`` for a column not in the table."""
    parts: list[_Part] = []
    for chosen in ranges:
        for column_id, spans in chosen.spans_by_column.items():
            column = columns.get(column_id)
            if column is None:
                raise NotFoundError(f"Column {column_id} is not in table {table_id}.")
            if column.kind != ColumnKind.ENRICHMENT:
                continue
            merged = tuple(merge_spans(spans)) if spans else EVERY_ROW
            if spans and not merged:
                continue
            parts.append(_Part(column_id, column.position, chosen.view, merged))
    ranged = Ranged(table_id, parts)
    for view in {p.view for p in parts}:
        ranged.counts[view] = view_service.count_rows(session, table_id=table_id, view=view)
    clipped = [_clipped(p, ranged.counts[p.view]) for p in parts]
    ranged.parts = [p for p in clipped if p is not None]
    return ranged


def _clipped(part: _Part, rows: int) -> _Part | None:
    """The part with spans past the view's end cut off (None if nothing is left); spans
    covering the whole view become ``EVERY_ROW``, read without ordering the rows."""
    if rows == 0:
        return None
    if part.spans == EVERY_ROW:
        return part
    spans = tuple((start, min(stop, rows)) for start, stop in part.spans if start < rows)
    if not spans:
        return None
    if spans[0][0] <= 0 and spans[0][1] >= rows:
        spans = EVERY_ROW
    return _Part(part.column_id, part.position, part.view, spans)


def cell_count(ranged: Ranged) -> int:
    """How many cells the parts cover."""
    total = 0
    for part in ranged.parts:
        rows = ranged.counts[part.view]
        total += rows if part.spans == EVERY_ROW else sum(b - a for a, b in part.spans)
    return total


def _cells(ranged: Ranged, dialect: str) -> sa.Subquery:
    """(row_id, column_id, ord) of every cell of the parts."""
    pieces: list[sa.Select[Any]] = []
    for part in ranged.parts:
        spans: Sequence[RowSpan | None] = part.spans or (None,)
        for span in spans:
            if span is None:
                rows = view_service.filtered_rows(ranged.table_id, part.view, dialect)
            else:
                start, stop = span
                ordered = view_service.ordered_rows(ranged.table_id, part.view, dialect)
                rows = ordered.offset(start).limit(stop - start)
            found = rows.subquery()
            pieces.append(
                sa.select(
                    found.c.id.label("row_id"),
                    sa.literal(part.column_id, sa.Integer).label("column_id"),
                    sa.literal(part.position, sa.Integer).label("ord"),
                )
            )
    if len(pieces) == 1:
        return pieces[0].subquery()
    return sa.union_all(*pieces).subquery()


def _is_active(status: Any) -> sa.ColumnElement[bool]:
    """``status IN ('queued', 'running')`` written out, not bound: SQLite uses the partial
    index of active tasks (``uq_task_active_cell``) only for a condition that matches its own,
    and a bound parameter does not, which makes the check a scan of every task per cell."""
    return cast(
        "sa.ColumnElement[bool]",
        status.in_([sa.literal_column(f"'{s}'") for s in ACTIVE_TASK_STATUSES]),
    )


def _active(cells: sa.Subquery) -> sa.Exists:
    task = aliased(EnrichmentTask)
    return sa.exists().where(
        col(task.row_id) == cells.c.row_id,
        col(task.column_id) == cells.c.column_id,
        _is_active(col(task.status)),
    )


def busy_count(session: Session, ranged: Ranged) -> int:
    """How many of the cells already have a queued or running task (in any job)."""
    if not ranged.parts:
        return 0
    any_active = sa.select(col(EnrichmentTask.id)).where(
        _is_active(col(EnrichmentTask.status)),
        col(EnrichmentTask.column_id).in_(ranged.column_ids),
    )
    if session.execute(any_active.limit(1)).first() is None:
        return 0  # the usual case, read from the active tasks' own index
    cells = _cells(ranged, session.get_bind().dialect.name)
    query = sa.select(sa.func.count()).select_from(cells).where(_active(cells))
    return int(session.execute(query).scalar_one())


def add_tasks(session: Session, ranged: Ranged, *, job_id: int, now: datetime) -> None:
    """One queued task per cell that has no active task, row by row and left to right (their
    ids ascend in that order). The cells are not marked here. (The statement's rowcount is not
    reported on PostgreSQL with psycopg: count the job's tasks to know how many it wrote.)"""
    if not ranged.parts:
        return
    cells = _cells(ranged, session.get_bind().dialect.name)
    rows = (
        sa.select(
            sa.literal(job_id, sa.Integer),
            cells.c.row_id,
            cells.c.column_id,
            sa.literal(TaskStatus.QUEUED.value, sa.String),
            sa.literal(0, sa.Integer),
            sa.literal(now, sa.DateTime(timezone=True)),
        )
        .where(~_active(cells))
        .order_by(cells.c.row_id, cells.c.ord)
    )
    target = EnrichmentTask.__table__  # type: ignore[attr-defined]
    names = ("job_id", "row_id", "column_id", "status", "attempts", "created_at")
    insert = sa.insert(target).from_select([target.c[n] for n in names], rows)
    try:
        session.execute(insert)
    except sa.exc.IntegrityError as exc:  # a cell queued by another run since the check
        raise CellsBusyError(RACED) from exc
