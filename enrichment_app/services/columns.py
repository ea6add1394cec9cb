"""Changing a table's columns as a spreadsheet user expects: delete, rename, move, resize.

Deleting a column is refused while something still needs it.

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
from enrichment_app.errors import EnrichmentAppError, InUseError, InvalidInputError, NotFoundError
from enrichment_app.services.credentials import masked_config
from enrichment_app.services.tables import clean_name, get_table, list_columns


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


MIN_COLUMN_WIDTH = 40
MAX_COLUMN_WIDTH = 2000


def values_in_column(session: Session, *, table_id: int, column_id: int) -> int:
    """How many of the column's cells hold a value (what deleting it would lose)."""
    get_column(session, table_id=table_id, column_id=column_id)
    found = session.exec(
        select(sa.func.count())
        .select_from(Cell)
        .where(
            Cell.column_id == column_id,
            col(Cell.value).is_not(None),
            col(Cell.value) != "",
        )
    ).one()
    return int(found)


def rename_column(session: Session, *, table_id: int, column_id: int, name: str) -> list[str]:
    """Rename a column; the configs that read it are rewritten to the new name (``{Old}`` →
    ``{New}``), as a spreadsheet rewrites its formulas. The names of those columns."""
    get_table(session=session, table_id=table_id)
    column = get_column(session, table_id=table_id, column_id=column_id)
    new = clean_name(name, what="Column")
    columns = list_columns(session=session, table_id=table_id)
    if any(c.name.casefold() == new.casefold() and c.id != column_id for c in columns):
        raise InvalidInputError(f"A column named '{new}' already exists.")
    if new == column.name:
        return []
    if set(new) & _UNREFERABLE:
        users = dependents(columns, column.name)
        if users:
            raise InvalidInputError(
                f"'{new}' cannot be used in a template ({{}}, '.', '[' and ']' are not allowed "
                f"there), and {', '.join(repr(c.name) for c in users)} reads this column."
            )
    rewritten = []
    for user in dependents(columns, column.name):
        enricher = get_enricher(user.enricher or "")
        user.config = enricher.rename_column(user.config, column.name, new)
        session.add(user)
        rewritten.append(user.name)
    column.name = new
    session.add(column)
    session.flush()
    note_change(session, table_id, TableChange.of(SHAPE))
    return rewritten


_UNREFERABLE = frozenset("{}.[]!:")


def move_column(session: Session, *, table_id: int, column_id: int, to: int) -> bool:
    """Move a column to index ``to`` in the table's order (the others shift).

    An enrichment column reads only columns to its left (so a job fills them in order): a
    move that would put a column right of one that reads it is refused, naming it.
    """
    get_table(session=session, table_id=table_id)
    column = get_column(session, table_id=table_id, column_id=column_id)
    columns = list_columns(session=session, table_id=table_id)
    to = min(max(to, 0), len(columns) - 1)
    order = [c for c in columns if c.id != column_id]
    order.insert(to, column)
    for i, moved in enumerate(order):
        left = {c.name for c in order[:i]}
        if moved.kind != ColumnKind.ENRICHMENT:
            continue
        try:
            used = get_enricher(moved.enricher or "").referenced_columns(
                masked_config(moved.config)
            )
        except (EnrichmentAppError, KeyError, TypeError):
            continue
        late = sorted(used - left)
        if late:
            raise InvalidInputError(
                f"'{moved.name}' reads {', '.join(repr(n) for n in late)}, so it must stay to "
                "the right of "
                f"{'it' if len(late) == 1 else 'them'}."
            )
    for i, moved in enumerate(order):
        if moved.position != i:
            moved.position = i
            session.add(moved)
    session.flush()
    note_change(session, table_id, TableChange.of(SHAPE))
    return True


def set_column_width(session: Session, *, table_id: int, column_id: int, width: int) -> int:
    """Keep the width the user dragged the column to (clipped to a sane range)."""
    column = get_column(session, table_id=table_id, column_id=column_id)
    column.width = min(max(int(width), MIN_COLUMN_WIDTH), MAX_COLUMN_WIDTH)
    session.add(column)
    return column.width
