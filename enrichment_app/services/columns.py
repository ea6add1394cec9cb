"""Deleting a column, as a spreadsheet user expects: refused while something still needs it.

A column that another column's config reads (a template's ``{Company}``, a website column, a
URL template) is not deleted out from under it: the refusal names the columns that use it, so
the user can change or delete those first. Nothing cascades silently. A column with cells
queued or running is refused too, until its job ends or is cancelled.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.bus import SHAPE, TableChange, note_change
from enrichment_app.db.models import Cell, EnrichmentTask, TableColumn
from enrichment_app.domain import ACTIVE_TASK_STATUSES, ColumnKind
from enrichment_app.enrichers import get_enricher
from enrichment_app.errors import EnrichmentAppError, InUseError, NotFoundError
from enrichment_app.services.credentials import masked_config
from enrichment_app.services.tables import get_table, list_columns


def columns_by_table(session: Session) -> dict[int, list[TableColumn]]:
    """Every table's columns, in order, in one query."""
    found: dict[int, list[TableColumn]] = {}
    query = select(TableColumn).order_by(col(TableColumn.table_id), col(TableColumn.position))
    for column in session.exec(query).all():
        found.setdefault(column.table_id, []).append(column)
    return found


def get_column(session: Session, *, table_id: int, column_id: int) -> TableColumn:
    column = session.get(TableColumn, column_id)
    if column is None or column.table_id != table_id:
        raise NotFoundError(f"Column {column_id} is not in table {table_id}.")
    return column


def dependents(columns: list[TableColumn], name: str) -> list[TableColumn]:
    """The enrichment columns whose config reads the column called ``name``."""
    found = []
    for column in columns:
        if column.kind != ColumnKind.ENRICHMENT or column.name == name:
            continue
        try:
            used = get_enricher(column.enricher or "").referenced_columns(
                masked_config(column.config)
            )
        except (EnrichmentAppError, KeyError, TypeError):
            continue  # a config its enricher no longer reads refers to nothing we can tell
        if name in used:
            found.append(column)
    return found


def delete_column(session: Session, *, table_id: int, column_id: int) -> TableColumn:
    """Delete a column and its cells; refused (``InUseError``) while anything needs it."""
    get_table(session=session, table_id=table_id)
    column = get_column(session, table_id=table_id, column_id=column_id)
    columns = list_columns(session=session, table_id=table_id)
    users = dependents(columns, column.name)
    if users:
        names = ", ".join(f"'{c.name}'" for c in users)
        raise InUseError(
            f"'{column.name}' is used by {names}; change or delete "
            f"{'that column' if len(users) == 1 else 'those columns'} first."
        )
    active = session.exec(
        select(sa.func.count())
        .select_from(EnrichmentTask)
        .where(
            EnrichmentTask.column_id == column_id,
            col(EnrichmentTask.status).in_(ACTIVE_TASK_STATUSES),
        )
    ).one()
    if active:
        raise InUseError(
            f"'{column.name}' has {active} cell(s) queued or running; cancel the job or wait "
            "for it to end, then delete the column."
        )
    session.execute(sa.delete(EnrichmentTask).where(col(EnrichmentTask.column_id) == column_id))
    session.execute(sa.delete(Cell).where(col(Cell.column_id) == column_id))
    session.delete(column)
    session.flush()
    for position, remaining in enumerate(c for c in columns if c.id != column_id):
        if remaining.position != position:
            remaining.position = position
            session.add(remaining)
    note_change(session, table_id, TableChange.of(SHAPE))
    return column
