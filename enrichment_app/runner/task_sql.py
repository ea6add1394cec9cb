"""The statements a job's batch writes run: set-based, built once, run on the connection.

Every claim and result of a job goes through these (``batches.JobStore.write``), so they skip
what the ORM would add per statement: building the statement again, and synchronising the
session's objects with each bulk UPDATE (the session holds none here). Profiled over 2,000
``http_json`` cells, the ORM's share of each batch transaction was about half of it
(bench/README.md, runner throughput).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from enrichment_app.db.models import Cell, EnrichmentJob, EnrichmentTask, TableColumn
from enrichment_app.domain import CellStatus, TaskStatus


def _table(model: type[Any]) -> sa.Table:
    return cast(sa.Table, model.__table__)


_task, _cell, _job, _column = map(_table, (EnrichmentTask, Cell, EnrichmentJob, TableColumn))

_IDS: sa.BindParameter[Any] = sa.bindparam("ids", expanding=True)
_NOW: sa.BindParameter[Any] = sa.bindparam("now")
_THIS_CELL = (_cell.c.row_id == sa.bindparam("r_id"), _cell.c.column_id == sa.bindparam("c_id"))

CLAIM_TASKS = (
    sa.update(_task)
    .where(_task.c.id.in_(_IDS), _task.c.status == TaskStatus.QUEUED.value)
    .values(status=TaskStatus.RUNNING.value, attempts=_task.c.attempts + 1, started_at=_NOW)
    .returning(_task.c.id)
)
"""Queued tasks among ``ids`` become running; returns the ids claimed (a cancelled one is not)."""

FINISH_DONE = (
    sa.update(_task)
    .where(_task.c.id.in_(_IDS), _task.c.status == TaskStatus.RUNNING.value)
    .values(status=TaskStatus.DONE.value, error=None, finished_at=_NOW)
    .returning(_task.c.id)
)
"""Running tasks among ``ids`` are done; returns the ids stored (one cancelled meanwhile is not)."""

FINISH_ERROR = (
    sa.update(_task)
    .where(_task.c.id == sa.bindparam("t_id"), _task.c.status == TaskStatus.RUNNING.value)
    .values(status=TaskStatus.ERROR.value, error=sa.bindparam("e"), finished_at=_NOW)
    .returning(_task.c.id)
)

CELLS_RUNNING = (
    sa.update(_cell).where(*_THIS_CELL).values(status=CellStatus.RUNNING.value, updated_at=_NOW)
)
CELLS_DONE = (
    sa.update(_cell)
    .where(*_THIS_CELL)
    .values(value=sa.bindparam("v"), status=CellStatus.DONE.value, error=None, updated_at=_NOW)
)
CELLS_ERROR = (
    sa.update(_cell)
    .where(*_THIS_CELL)
    .values(status=CellStatus.ERROR.value, error=sa.bindparam("e"), updated_at=_NOW)
)

JOB_COUNTS = sa.select(_job.c.done, _job.c.failed, _job.c.total).where(
    _job.c.id == sa.bindparam("job_id")
)
ADD_TO_JOB = (
    sa.update(_job)
    .where(_job.c.id == sa.bindparam("job_id"))
    .values(
        done=_job.c.done + sa.bindparam("ok", type_=sa.Integer),
        failed=_job.c.failed + sa.bindparam("errors", type_=sa.Integer),
    )
)

ROW_VALUES = (
    sa.select(_cell.c.row_id, _column.c.name, _cell.c.value)
    .join(_column, _cell.c.column_id == _column.c.id)
    .where(_cell.c.row_id.in_(sa.bindparam("rows", expanding=True)))
)


def returned_ids(connection: sa.Connection, statement: Any, params: dict[str, Any]) -> set[int]:
    """The ids an UPDATE … RETURNING id touched."""
    return set(connection.execute(statement, params).scalars())


def each_cell(
    connection: sa.Connection, statement: Any, now: datetime, cells: Sequence[dict[str, Any]]
) -> None:
    """Run a per-cell UPDATE for every cell (``r_id``, ``c_id`` and its values): one executemany."""
    if cells:
        connection.execute(statement, [{**cell, "now": now} for cell in cells])


def row_values(
    connection: sa.Connection, row_ids: Iterable[int]
) -> dict[int, dict[str, str | None]]:
    """Each row's values keyed by column name, as enrichers see them."""
    rows: dict[int, dict[str, str | None]] = {}
    for row_id, name, value in connection.execute(ROW_VALUES, {"rows": list(row_ids)}):
        rows.setdefault(row_id, {})[name] = value
    return rows
