"""A table's view (``enrichment_app.views``) compiled to SQL: its rows, in its order, by position.

Every condition is one ``row.id [NOT] IN (SELECT row_id FROM cell WHERE column_id = ? AND …)``:
the database reads the column's cells once (through ``cell.column_id``'s index) rather than
probing every row, and the search is one pass over the table's cells (``ix_cell_table_updated``
starts with ``table_id``). A sort joins the column's cell of each row (the unique
``(row_id, column_id)`` index) and orders by its value, empty values last in both directions,
ties by the table's own order (``position``), so the order is stable.

``contains`` and the search ignore case: SQLite's ``LIKE`` ignores the case of ASCII letters
only (``É`` and ``é`` differ there), and PostgreSQL's ``ILIKE`` folds by the database's
``LC_CTYPE`` (``É`` matches ``é`` under a UTF-8 locale such as ``C.UTF-8`` or ``en_US.UTF-8``,
not under ``C``). ``%`` and ``_`` in the text are literal. ``equals`` compares exactly, case
included.

A sort puts numbers (``NUMBER_PATTERN``) first, in numeric order, then text in the database's
text order, as a spreadsheet does: ``2`` before ``10`` before ``apple``.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from enrichment_app.db.models import Cell, TableColumn, TableRow
from enrichment_app.domain import CellStatus
from enrichment_app.errors import InvalidInputError
from enrichment_app.views import EVERYTHING, Condition, Op, StatusFilter, View, check_columns

_STATUSES = {
    StatusFilter.FAILED: (CellStatus.ERROR.value,),
    StatusFilter.QUEUED: (CellStatus.QUEUED.value, CellStatus.RUNNING.value),
    StatusFilter.DONE: (CellStatus.DONE.value,),
}


def _cells_where(column_id: int, *predicates: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(col(Cell.row_id)).where(col(Cell.column_id) == column_id, *predicates)


def _filled() -> sa.ColumnElement[bool]:
    return sa.and_(col(Cell.value).is_not(None), col(Cell.value) != "")


def _contains(value: sa.ColumnElement[Any], text: str, dialect: str) -> sa.ColumnElement[bool]:
    """Case-insensitive substring: plain ``LIKE`` on SQLite (already case-insensitive, and
    without ``lower()`` on every cell), ``ILIKE`` elsewhere."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    pattern = f"%{escaped}%"
    if dialect == "sqlite":
        return value.like(pattern, escape="/")
    return value.ilike(pattern, escape="/")


def _value() -> sa.ColumnElement[Any]:
    return cast("sa.ColumnElement[Any]", col(Cell.value))


def _condition(condition: Condition, dialect: str) -> sa.ColumnElement[bool]:
    row_id, c, value = col(TableRow.id), condition.column_id, condition.value
    match condition.op:
        case Op.EMPTY:
            return row_id.not_in(_cells_where(c, _filled()))
        case Op.NOT_EMPTY:
            return row_id.in_(_cells_where(c, _filled()))
        case Op.EQUALS:
            return row_id.in_(_cells_where(c, col(Cell.value) == value))
        case Op.NOT_EQUALS:
            return row_id.not_in(_cells_where(c, col(Cell.value) == value))
        case Op.CONTAINS:
            return row_id.in_(_cells_where(c, _contains(_value(), value, dialect)))
        case Op.NOT_CONTAINS:
            found = _cells_where(c, _contains(_value(), value, dialect))
            return row_id.not_in(found)
        case Op.STATUS:
            status = StatusFilter(value)
            if status is StatusFilter.EMPTY:  # never run, or no cell at all
                others = [s.value for s in CellStatus if s is not CellStatus.EMPTY]
                return row_id.not_in(_cells_where(c, col(Cell.status).in_(others)))
            return row_id.in_(_cells_where(c, col(Cell.status).in_(_STATUSES[status])))
    raise AssertionError(condition.op)  # pragma: no cover


def filtered_rows(table_id: int, view: View, dialect: str) -> sa.Select[Any]:
    """The ids of the view's rows, in no particular order."""
    query = sa.select(col(TableRow.id)).where(col(TableRow.table_id) == table_id)
    for condition in view.conditions:
        query = query.where(_condition(condition, dialect))
    if view.search:
        found = sa.select(col(Cell.row_id)).where(
            col(Cell.table_id) == table_id, _contains(_value(), view.search, dialect)
        )
        query = query.where(col(TableRow.id).in_(found))
    return query


def ordered_rows(table_id: int, view: View, dialect: str) -> sa.Select[Any]:
    """The ids of the view's rows, in its order (``dialect``: the database's, ``sqlite``…)."""
    query = filtered_rows(table_id, view, dialect)
    position = col(TableRow.position)
    if view.sort is None:
        return query.order_by(position)
    sorted_cell = aliased(Cell)
    value = col(sorted_cell.value)
    query = query.outerjoin(
        sorted_cell,
        sa.and_(
            col(sorted_cell.row_id) == col(TableRow.id),
            col(sorted_cell.column_id) == view.sort.column_id,
        ),
    )
    blank = sa.case((sa.or_(value.is_(None), value == ""), 1), else_=0)
    text, number = _sort_keys(cast("sa.ColumnElement[Any]", value), dialect)
    keys = (text, number, value)
    ordered = [k.desc() if view.sort.descending else k.asc() for k in keys]
    return query.order_by(blank, *ordered, position)


NUMBER_PATTERN = r"^ *[+-]?([0-9]+\.?[0-9]*|\.[0-9]+) *$"
"""What sorts as a number: digits with an optional sign and decimal point (``-12``, ``3.5``,
``.5``), spaces around allowed. ``1e5``, ``1,000`` and ``12 kg`` sort as text."""


def _sort_keys(
    value: sa.ColumnElement[Any], dialect: str
) -> tuple[sa.ColumnElement[int], sa.ColumnElement[Any]]:
    """(1 for text, 0 for a number; the number's value or NULL): numbers sort before text, by
    value, as in a spreadsheet (descending reverses both). SQLite has no regular expressions,
    so ``NUMBER_PATTERN`` is written there with ``GLOB``: the value without its sign holds only
    digits and dots, at least one digit and at most one dot."""
    if dialect == "sqlite":
        trimmed = sa.func.trim(value)
        unsigned = sa.case(
            (sa.func.substr(trimmed, 1, 1).in_(("+", "-")), sa.func.substr(trimmed, 2)),
            else_=trimmed,
        )
        is_number = sa.and_(
            unsigned.op("NOT GLOB")("*[^0-9.]*"),
            unsigned.op("GLOB")("*[0-9]*"),
            unsigned.op("NOT GLOB")("*.*.*"),
        )
        number: sa.ColumnElement[Any] = sa.cast(trimmed, sa.Float)
    else:  # PostgreSQL: ``numeric`` holds any length of digits (``double precision`` overflows)
        is_number = value.op("~")(NUMBER_PATTERN)
        number = sa.cast(sa.func.trim(value), sa.Numeric)
    return sa.case((is_number, 0), else_=1), sa.case((is_number, number), else_=sa.null())


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def count_rows(session: Session, *, table_id: int, view: View = EVERYTHING) -> int:
    """How many rows the view shows."""
    query = sa.select(sa.func.count()).select_from(
        filtered_rows(table_id, view, _dialect(session)).subquery()
    )
    return int(session.execute(query).scalar_one())


def row_ids_between(
    session: Session, *, table_id: int, start: int, stop: int, view: View = EVERYTHING
) -> list[int]:
    """The ids of the view's rows at positions ``[start, stop)``."""
    start = max(start, 0)
    if stop <= start:
        return []
    query = ordered_rows(table_id, view, _dialect(session)).offset(start).limit(stop - start)
    return list(session.execute(query).scalars())


def all_row_ids(session: Session, *, table_id: int, view: View) -> list[int]:
    """Every row id the view shows, in its order (a whole column's worth at most)."""
    return list(session.execute(ordered_rows(table_id, view, _dialect(session))).scalars())


def check_view(session: Session, *, table_id: int, view: View) -> None:
    """Refuse (``InvalidInputError``) a view naming a column that is not in the table."""
    if view.column_ids:
        check_columns(view, column_names(session, table_id=table_id))


def column_names(session: Session, *, table_id: int) -> dict[int, str]:
    query = sa.select(col(TableColumn.id), col(TableColumn.name)).where(
        col(TableColumn.table_id) == table_id
    )
    return dict(session.execute(query).all())


def require_rows(count: int) -> None:
    if not count:
        raise InvalidInputError("The view shows no rows, so there is nothing to run.")
