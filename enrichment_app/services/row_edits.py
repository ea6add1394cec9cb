"""Editing rows on the page as in a spreadsheet: add one, paste a block, clear, delete and undo.

Positions here are the grid's: a column index is the column's place in the table's order, a
row index the row's place (``TableRow.position`` order). Enrichment cells are written by jobs
only: a paste or a clear that covers them leaves them as they are and says so. Each function
checks everything before its first write, and the caller commits, so a refusal changes nothing.

Deleting rows returns what was deleted (``DeletedRows``), which ``restore_rows`` puts back as
it was: the same row ids, places and cell values. Rows with a cell queued or running are not
deleted (cancel the job first), so an undo never brings back a task that was running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.bus import CELLS, SHAPE, TableChange, note_change
from enrichment_app.db.models import Cell, EnrichmentTask, TableColumn, TableRow
from enrichment_app.domain import ACTIVE_TASK_STATUSES, CellStatus, ColumnKind, utcnow
from enrichment_app.errors import InUseError, InvalidInputError, NotFoundError
from enrichment_app.services.grid import row_ids_between
from enrichment_app.services.tables import get_table, insert_rows, list_columns
from enrichment_app.services.values import cap_value, refuse_nul

MAX_DELETE_ROWS = 5_000
"""The most rows one delete may take (and one undo keep)."""
MAX_CLEAR_CELLS = 100_000
MAX_TABLE_ROWS = 1_000_000
"""A paste does not grow a table past this many rows."""


@dataclass(frozen=True, slots=True)
class Written:
    """What a paste or a clear did, in words the page shows."""

    cells: int
    rows_added: int = 0
    skipped: list[str] = field(default_factory=list)
    """Names of the enrichment columns the block covered and left as they were."""

    @property
    def note(self) -> str:
        """A sentence for the page when some of the block was left out ("" when none was)."""
        if not self.skipped:
            return ""
        names = ", ".join(f"'{n}'" for n in self.skipped)
        return (
            f"{names} {'is an enrichment column' if len(self.skipped) == 1 else 'are enrichment columns'}"
            ": its cells were left as they were (select them and press Run to fill them)."
        )


@dataclass(frozen=True, slots=True)
class DeletedRow:
    row_id: int
    position: int
    cells: dict[int, tuple[str | None, str, str | None]]
    """Column id → (value, status, error)."""


@dataclass(frozen=True, slots=True)
class DeletedRows:
    table_id: int
    rows: list[DeletedRow]

    def to_json(self) -> list[list[object]]:
        """A plain form to keep between events (the page's backend-only state)."""
        return [[r.row_id, r.position, [[c, *v] for c, v in r.cells.items()]] for r in self.rows]

    @classmethod
    def from_json(cls, table_id: int, data: list[list[object]]) -> DeletedRows:
        rows = []
        for row_id, position, cells in data:
            assert isinstance(row_id, int) and isinstance(position, int)
            assert isinstance(cells, list)
            rows.append(
                DeletedRow(row_id, position, {int(c[0]): (c[1], c[2], c[3]) for c in cells})
            )
        return cls(table_id=table_id, rows=rows)


def add_blank_row(session: Session, *, table_id: int) -> int:
    """A new empty row at the end of the table; its index in the grid."""
    get_table(session=session, table_id=table_id)
    columns = list_columns(session=session, table_id=table_id)
    inputs = [c for c in columns if c.kind == ColumnKind.INPUT]
    insert_rows(
        session=session,
        table_id=table_id,
        columns=columns,
        inputs=inputs,
        rows=[[None] * len(inputs)],
        max_cell_chars=1,
    )
    session.flush()
    note_change(session, table_id, TableChange.of(SHAPE))
    count = session.exec(
        select(sa.func.count()).select_from(TableRow).where(TableRow.table_id == table_id)
    ).one()
    return int(count) - 1


def _targets(
    columns: Sequence[TableColumn], first_col: int, width: int
) -> tuple[list[TableColumn | None], list[str]]:
    """The input column under each of the block's columns (None: skipped), and the skipped
    enrichment columns' names; ``InvalidInputError`` when nothing can be written."""
    if not 0 <= first_col < len(columns):
        raise InvalidInputError("Select a cell in the table to paste at.")
    targets: list[TableColumn | None] = []
    skipped: list[str] = []
    for column in columns[first_col : first_col + width]:
        if column.kind == ColumnKind.INPUT:
            targets.append(column)
        else:
            targets.append(None)
            skipped.append(column.name)
    if not any(targets):
        names = ", ".join(f"'{n}'" for n in skipped)
        raise InvalidInputError(
            f"{names} {'is an enrichment column' if len(skipped) == 1 else 'are enrichment columns'}"
            ": its cells are filled by Run, not typed or pasted. Paste into the input columns."
        )
    return targets, skipped


def _write(
    session: Session,
    row_ids: Sequence[int],
    targets: Sequence[TableColumn | None],
    block: Sequence[Sequence[str]],
    max_cell_chars: int,
) -> int:
    updates = []
    for r, (row_id, values) in enumerate(zip(row_ids, block, strict=False)):
        for column, value in zip(targets, values, strict=False):
            if column is None:
                continue
            if value:
                refuse_nul(value, where=f"Row {r + 1} of the block, column '{column.name}',")
            updates.append(
                {
                    "rid": row_id,
                    "cid": column.id,
                    "val": cap_value(value, max_cell_chars) if value else None,
                }
            )
    if updates:
        statement = (
            sa.update(Cell)
            .where(
                col(Cell.row_id) == sa.bindparam("rid"),
                col(Cell.column_id) == sa.bindparam("cid"),
            )
            .values(value=sa.bindparam("val"), updated_at=utcnow())
        )
        session.connection().execute(statement, updates)
    return len(updates)


def paste_block(
    session: Session,
    *,
    table_id: int,
    first_col: int,
    first_row: int,
    block: Sequence[Sequence[str]],
    max_cell_chars: int,
    max_rows: int = MAX_TABLE_ROWS,
) -> Written:
    """Write ``block`` (rows of cells) with its top-left cell at (``first_col``, ``first_row``).

    Rows past the end of the table are added; columns past its right edge are dropped;
    enrichment columns are skipped (``Written.skipped``); ``max_rows`` caps the table's size.
    """
    get_table(session=session, table_id=table_id)
    if not block:
        raise InvalidInputError("The clipboard is empty: copy some cells first.")
    columns = list_columns(session=session, table_id=table_id)
    width = max(len(row) for row in block)
    targets, skipped = _targets(columns, first_col, width)
    count = int(
        session.exec(
            select(sa.func.count()).select_from(TableRow).where(TableRow.table_id == table_id)
        ).one()
    )
    first_row = min(max(first_row, 0), count)
    existing = row_ids_between(
        session, table_id=table_id, start=first_row, stop=first_row + len(block)
    )
    added = len(block) - len(existing)
    if added > 0 and count + added > max_rows:
        raise InvalidInputError(
            f"The paste would add {added:,} rows to a table of {count:,}; a table holds at most "
            f"{max_rows:,} rows."
        )
    for r, values in enumerate(block):  # every value checked before the first write
        for column, value in zip(targets, values, strict=False):
            if column is not None and value:
                refuse_nul(value, where=f"Row {r + 1} of the block, column '{column.name}',")
    if added > 0:
        inputs = [c for c in columns if c.kind == ColumnKind.INPUT]
        insert_rows(
            session=session,
            table_id=table_id,
            columns=columns,
            inputs=inputs,
            rows=([None] * len(inputs) for _ in range(added)),
            max_cell_chars=max_cell_chars,
        )
        session.flush()
        existing = row_ids_between(
            session, table_id=table_id, start=first_row, stop=first_row + len(block)
        )
    written = _write(session, existing, targets, block, max_cell_chars)
    note_change(
        session,
        table_id,
        TableChange.of(SHAPE) if added > 0 else TableChange.of(CELLS, rows=existing),
    )
    return Written(cells=written, rows_added=max(added, 0), skipped=skipped)


def clear_cells(
    session: Session,
    *,
    table_id: int,
    blocks: Sequence[tuple[range, range]],
) -> Written:
    """Empty the input cells of the selected blocks ((column indices, row indices) each)."""
    get_table(session=session, table_id=table_id)
    columns = list_columns(session=session, table_id=table_id)
    total = sum(len(cols) * len(rows) for cols, rows in blocks)
    if total > MAX_CLEAR_CELLS:
        raise InvalidInputError(
            f"{total:,} cells selected; Delete clears at most {MAX_CLEAR_CELLS:,} at once."
        )
    written, skipped, changed_rows = 0, list[str](), list[int]()
    for cols, rows in blocks:
        if not cols or not rows:
            continue
        try:
            targets, names = _targets(columns, cols.start, len(cols))
        except InvalidInputError:
            skipped += [columns[c].name for c in cols if c < len(columns)]
            continue
        skipped += names
        row_ids = row_ids_between(session, table_id=table_id, start=rows.start, stop=rows.stop)
        blank = [[""] * len(targets)] * len(row_ids)
        written += _write(session, row_ids, targets, blank, 1)
        changed_rows += row_ids
    if not written and skipped:
        listed = ", ".join(f"'{n}'" for n in dict.fromkeys(skipped))
        raise InvalidInputError(
            f"{listed}: enrichment cells are not cleared by Delete; run the column again to "
            "refill them."
        )
    if changed_rows:
        note_change(session, table_id, TableChange.of(CELLS, rows=changed_rows))
    return Written(cells=written, skipped=list(dict.fromkeys(skipped)))


def delete_rows(session: Session, *, table_id: int, row_ids: Sequence[int]) -> DeletedRows:
    """Delete rows with their cells; what was deleted, for ``restore_rows``."""
    get_table(session=session, table_id=table_id)
    wanted = sorted(set(row_ids))
    if not wanted:
        raise InvalidInputError("Select the rows to delete first (click their numbers).")
    if len(wanted) > MAX_DELETE_ROWS:
        raise InvalidInputError(
            f"{len(wanted):,} rows selected; at most {MAX_DELETE_ROWS:,} can be deleted at once."
        )
    rows = session.exec(
        select(TableRow).where(TableRow.table_id == table_id, col(TableRow.id).in_(wanted))
    ).all()
    if len(rows) != len(wanted):
        if len(wanted) == 1:
            raise NotFoundError(f"Row {wanted[0]} is not in table {table_id}.")
        raise NotFoundError("Some of those rows are gone already; reload the table.")
    busy = session.exec(
        select(sa.func.count())
        .select_from(EnrichmentTask)
        .where(
            col(EnrichmentTask.row_id).in_(wanted),
            col(EnrichmentTask.status).in_(ACTIVE_TASK_STATUSES),
        )
    ).one()
    if busy:
        raise InUseError(
            f"{busy} cell(s) in those rows are queued or running; cancel the job or wait for "
            "it to end, then delete the rows."
        )
    cells: dict[int, dict[int, tuple[str | None, str, str | None]]] = {r: {} for r in wanted}
    query = sa.select(
        col(Cell.row_id), col(Cell.column_id), col(Cell.value), col(Cell.status), col(Cell.error)
    ).where(col(Cell.row_id).in_(wanted))
    for row_id, column_id, value, status, error in session.execute(query).all():
        cells[row_id][column_id] = (value, status, error)
    deleted = DeletedRows(
        table_id=table_id,
        rows=[
            DeletedRow(r.id, r.position, cells[r.id])
            for r in sorted(rows, key=lambda r: r.position)
            if r.id is not None
        ],
    )
    session.execute(sa.delete(EnrichmentTask).where(col(EnrichmentTask.row_id).in_(wanted)))
    session.execute(sa.delete(Cell).where(col(Cell.row_id).in_(wanted)))
    session.execute(sa.delete(TableRow).where(col(TableRow.id).in_(wanted)))
    note_change(session, table_id, TableChange.of(SHAPE))
    return deleted


def restore_rows(session: Session, *, deleted: DeletedRows) -> int:
    """Put deleted rows back where they were, with their values; how many came back.

    Columns deleted since are left out and columns added since are empty. A cell that was
    queued or running when deleted cannot be (``delete_rows`` refuses), so none comes back
    as running.
    """
    table_id = deleted.table_id
    get_table(session=session, table_id=table_id)
    if not deleted.rows:
        return 0
    ids = [r.row_id for r in deleted.rows]
    if session.exec(select(TableRow.id).where(col(TableRow.id).in_(ids))).first() is not None:
        raise InvalidInputError("Those rows are back already.")
    taken = set(
        session.exec(
            select(TableRow.position).where(
                TableRow.table_id == table_id,
                col(TableRow.position).in_([r.position for r in deleted.rows]),
            )
        ).all()
    )
    end = session.exec(
        select(sa.func.coalesce(sa.func.max(TableRow.position), -1)).where(
            TableRow.table_id == table_id
        )
    ).one()
    columns = list_columns(session=session, table_id=table_id)
    now = utcnow()
    rows, cells = [], []
    for row in deleted.rows:
        position = row.position
        if position in taken:  # a row added since took its place: it goes at the end
            end += 1
            position = end
        rows.append({"id": row.row_id, "table_id": table_id, "position": position})
        for column in columns:
            value, status, error = row.cells.get(column.id or 0, (None, "empty", None))
            if status not in {s.value for s in CellStatus} or status in ACTIVE_TASK_STATUSES:
                status = CellStatus.EMPTY.value
            cells.append(
                {
                    "table_id": table_id,
                    "row_id": row.row_id,
                    "column_id": column.id,
                    "value": value,
                    "status": status,
                    "error": error,
                    "updated_at": now,
                }
            )
    session.execute(sa.insert(TableRow), rows)
    if cells:
        session.execute(sa.insert(Cell), cells)
    note_change(session, table_id, TableChange.of(SHAPE))
    return len(rows)
