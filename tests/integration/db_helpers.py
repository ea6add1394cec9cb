"""Small helpers for tests that look straight into the database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.db.models import (
    Cell,
    DataTable,
    EnrichmentJob,
    EnrichmentTask,
    TableColumn,
    TableRow,
)
from enrichment_app.domain import CellRef
from enrichment_app.services.demo import seed_demo
from enrichment_app.services.tables import list_columns, list_rows

ALL_MODELS = (DataTable, TableColumn, TableRow, Cell, EnrichmentJob, EnrichmentTask)


def row_counts(session: Session) -> dict[str, int]:
    """How many rows each table of the schema holds."""
    return {
        str(model.__tablename__): session.exec(select(sa.func.count()).select_from(model)).one()
        for model in ALL_MODELS
    }


def seed_demo_table(session: Session, *, max_cell_chars: int = 10_000) -> int:
    """Seed the demo table into an empty database and commit; its id."""
    table = seed_demo(session, max_cell_chars=max_cell_chars)
    session.commit()
    assert table is not None
    assert table.id is not None
    return table.id


def column_refs(session: Session, table_id: int, column_name: str) -> list[CellRef]:
    """Every cell of the named column, in row order."""
    (column,) = [
        c for c in list_columns(session=session, table_id=table_id) if c.name == column_name
    ]
    assert column.id is not None
    return [
        CellRef(row.id, column.id)
        for row in list_rows(session=session, table_id=table_id)
        if row.id is not None
    ]


def column_id(session: Session, table_id: int, column_name: str) -> int:
    (column,) = [
        c for c in list_columns(session=session, table_id=table_id) if c.name == column_name
    ]
    assert column.id is not None
    return column.id


def cells_of(session: Session, refs: list[CellRef]) -> list[Cell]:
    """The cells at ``refs``, in the same order."""
    wanted = set(refs)
    found = {
        CellRef(c.row_id, c.column_id): c
        for c in session.exec(
            select(Cell).where(col(Cell.row_id).in_({r.row_id for r in wanted}))
        ).all()
    }
    return [found[r] for r in refs]


def tasks_of(session: Session, job_id: int) -> list[EnrichmentTask]:
    query = select(EnrichmentTask).where(EnrichmentTask.job_id == job_id)
    return list(session.exec(query.order_by(col(EnrichmentTask.id))).all())


def task_row_values(session: Session, job_id: int, column_id: int) -> list[str]:
    """The value in ``column_id`` of each row the job has a task in, in the table's order."""
    rows = select(EnrichmentTask.row_id).where(EnrichmentTask.job_id == job_id)
    values = session.exec(
        select(Cell.value)
        .join(TableRow, col(TableRow.id) == col(Cell.row_id))
        .where(col(Cell.row_id).in_(rows), Cell.column_id == column_id)
        .order_by(col(TableRow.position))
    ).all()
    return [v or "" for v in values]


def task_columns(session: Session, job_id: int) -> set[int]:
    """The columns the job has tasks in."""
    query = select(EnrichmentTask.column_id).where(EnrichmentTask.job_id == job_id)
    return set(session.exec(query).all())
