"""A job's tasks, checked, written and closed in bulk: a whole column of 100,000 rows is one job.

This module takes cells given one by one (a selection of a few cells, the API's ``cells``);
cells chosen by position (a whole column, a page's row spans, a view) never become Python
pairs: ``services/task_ranges.py`` writes their tasks in SQL.

Every statement here is set-based or batched, so its cost per cell is a few index entries and
no Python object survives the call: cells are checked against the table with one read per
batch of row ids, tasks are written through ``services.bulk``, and the cells of a job's tasks
are marked queued, canceled or failed by one ``UPDATE`` per column that finds them from the
tasks themselves. (PostgreSQL takes at most 65,535 parameters per statement, so nothing
here binds one parameter per cell.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.db.models import Cell, EnrichmentTask, TableColumn, TableRow
from enrichment_app.domain import ACTIVE_TASK_STATUSES, CellStatus, ColumnKind, TaskStatus
from enrichment_app.errors import CellsBusyError, NotFoundError
from enrichment_app.services.bulk import driver_value, insert_many

IDS_PER_QUERY = 5000
"""Row ids checked per query (well under any database's limit on parameters)."""
TASK_COLUMNS = ("job_id", "row_id", "column_id", "status", "attempts", "created_at")

RACED = "Some selected cells were queued by another run a moment ago; try again."

Pair = tuple[int, int]
"""A cell as (row id, column id)."""


def table_columns(session: Session, *, table_id: int) -> dict[int, TableColumn]:
    """The table's columns by id."""
    query = select(TableColumn).where(TableColumn.table_id == table_id)
    return {c.id: c for c in session.exec(query).all() if c.id is not None}


def runnable_cells(
    session: Session, *, table_id: int, cells: Iterable[Pair], columns: Mapping[int, TableColumn]
) -> list[Pair]:
    """The selected cells that are in enrichment columns, in running order (row by row, left
    to right); refuses cells that are not in the table."""
    wanted = set(cells)
    if not wanted:
        return []
    rows = {row for row, _ in wanted}
    known = _rows_in_table(session, table_id, rows)
    if rows - known or {c for _, c in wanted} - columns.keys():
        unknown = sorted(p for p in wanted if p[1] not in columns or p[0] not in known)
        raise NotFoundError(
            f"{len(unknown)} selected cell(s) are not in table {table_id} "
            f"(first: row {unknown[0][0]}, column {unknown[0][1]})."
        )
    runnable = [p for p in wanted if columns[p[1]].kind == ColumnKind.ENRICHMENT]
    if len({c for _, c in runnable}) > 1:
        position = {cid: c.position for cid, c in columns.items()}
        runnable.sort(key=lambda p: (p[0], position[p[1]]))
    else:
        runnable.sort()
    return runnable


def _rows_in_table(session: Session, table_id: int, row_ids: set[int]) -> set[int]:
    if len(row_ids) > IDS_PER_QUERY:  # most of a big table: read its ids once
        everything = sa.select(col(TableRow.id)).where(col(TableRow.table_id) == table_id)
        return set(session.execute(everything).scalars()) & row_ids
    return {
        rid
        for rid in session.exec(
            select(TableRow.id).where(TableRow.table_id == table_id, col(TableRow.id).in_(row_ids))
        ).all()
        if rid is not None
    }


def without_active(session: Session, cells: list[Pair]) -> list[Pair]:
    """``cells`` minus those that already have a queued or running task (in any job)."""
    column_ids = {c for _, c in cells}
    busy = set(
        session.exec(
            select(EnrichmentTask.row_id, EnrichmentTask.column_id).where(
                col(EnrichmentTask.status).in_(ACTIVE_TASK_STATUSES),
                col(EnrichmentTask.column_id).in_(column_ids),
            )
        ).all()
    )
    return [p for p in cells if p not in busy] if busy else cells


def add_tasks(session: Session, *, job_id: int, cells: list[Pair], now: datetime) -> None:
    """One queued task per cell, in ``cells``' order (their ids ascend in it); the caller marks
    the cells (``mark_cells``). ``CellsBusyError`` if another run queued one meanwhile."""
    stamp = driver_value(session, sa.DateTime(timezone=True), now)
    queued = TaskStatus.QUEUED.value
    try:
        insert_many(
            session,
            "enrichment_task",
            TASK_COLUMNS,
            [(job_id, row, column, queued, 0, stamp) for row, column in cells],
        )
    except sa.exc.IntegrityError as exc:
        raise CellsBusyError(RACED) from exc


def mark_cells(
    session: Session,
    *,
    job_id: int,
    status: CellStatus,
    now: datetime,
    error: str | None = None,
) -> None:
    """Give the cells of the job's queued and running tasks ``status`` (and ``error``)."""
    active = select(EnrichmentTask.row_id, EnrichmentTask.column_id).where(
        EnrichmentTask.job_id == job_id, col(EnrichmentTask.status).in_(ACTIVE_TASK_STATUSES)
    )
    session.execute(
        sa.update(Cell)
        .where(sa.tuple_(col(Cell.row_id), col(Cell.column_id)).in_(active))
        .values(status=status.value, error=error, updated_at=now)
        # No ORM bookkeeping of the rows it changes: that would be per cell, as costly as
        # the update itself on a whole column.
        .execution_options(synchronize_session=False)
    )


def active_rows(session: Session, *, job_id: int, limit: int) -> list[int]:
    """The rows of up to ``limit`` of the job's queued and running tasks (for a change's hint)."""
    query = (
        select(EnrichmentTask.row_id)
        .where(
            EnrichmentTask.job_id == job_id, col(EnrichmentTask.status).in_(ACTIVE_TASK_STATUSES)
        )
        .limit(limit)
    )
    return list(session.exec(query).all())


def first_task_ids(session: Session, *, job_id: int, limit: int) -> list[int]:
    """The job's first ``limit`` task ids, in creation order."""
    query = (
        select(EnrichmentTask.id)
        .where(EnrichmentTask.job_id == job_id)
        .order_by(col(EnrichmentTask.id))
        .limit(limit)
    )
    return [task_id for task_id in session.exec(query).all() if task_id is not None]


def task_count(session: Session, *, job_id: int) -> int:
    return int(
        session.exec(
            select(sa.func.count())
            .select_from(EnrichmentTask)
            .where(EnrichmentTask.job_id == job_id)
        ).one()
    )


def columns_of(column_ids: Iterable[int], columns: Mapping[int, TableColumn]) -> list[TableColumn]:
    """The columns of these ids, left to right."""
    return sorted((columns[c] for c in set(column_ids)), key=lambda c: c.position)
