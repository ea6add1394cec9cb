"""Tables, columns, rows and cells: everything but enrichment jobs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from enrichment_app.bus import CELLS, DELETED, SHAPE, TableChange, note_change
from enrichment_app.db.models import (
    DEFAULT_WORKSPACE_ID,
    Cell,
    DataTable,
    EnrichmentJob,
    EnrichmentTask,
    TableColumn,
    TableRow,
)
from enrichment_app.domain import ACTIVE_TASK_STATUSES, CellStatus, ColumnKind, utcnow
from enrichment_app.enrichers import get_enricher
from enrichment_app.errors import (
    EnricherConfigError,
    InUseError,
    InvalidInputError,
    NotFoundError,
)
from enrichment_app.keyring import SecretBox
from enrichment_app.services import bulk
from enrichment_app.services.credentials import seal_config
from enrichment_app.services.csv_export import (  # at home in csv_export; kept importable here
    FORMULA_TRIGGERS as FORMULA_TRIGGERS,
    export_csv as export_csv,
    export_filename as export_filename,
    neutralise_formula as neutralise_formula,
)
from enrichment_app.services.values import cap_value, refuse_nul, refuse_nul_in

MAX_NAME_CHARS = 200
DEFAULT_MAX_CONFIG_BYTES = 16 * 1024
"""``MAX_CONFIG_BYTES``' default; callers pass the setting."""


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """A column to create: an input column, or an enrichment column with its enricher."""

    name: str
    kind: ColumnKind = ColumnKind.INPUT
    enricher: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TableSummary:
    id: int
    name: str
    columns: int
    rows: int


# --- reading -------------------------------------------------------------------------


def get_table(session: Session, *, table_id: int) -> DataTable:
    table = session.get(DataTable, table_id)
    if table is None:
        raise NotFoundError(f"Table {table_id} does not exist.")
    return table


def list_tables(session: Session, *, workspace_id: int | None = None) -> list[TableSummary]:
    """The tables of one workspace (of all of them with ``None``), oldest first."""
    columns = (
        select(TableColumn.table_id, sa.func.count().label("n"))
        .group_by(col(TableColumn.table_id))
        .subquery()
    )
    rows = (
        select(TableRow.table_id, sa.func.count().label("n"))
        .group_by(col(TableRow.table_id))
        .subquery()
    )
    query = (
        select(DataTable.id, DataTable.name, columns.c.n, rows.c.n)
        .outerjoin(columns, columns.c.table_id == DataTable.id)
        .outerjoin(rows, rows.c.table_id == DataTable.id)
        .order_by(col(DataTable.id))
    )
    if workspace_id is not None:
        query = query.where(DataTable.workspace_id == workspace_id)
    return [
        TableSummary(id=int(tid or 0), name=name, columns=int(nc or 0), rows=int(nr or 0))
        for tid, name, nc, nr in session.exec(query).all()
    ]


def list_columns(session: Session, *, table_id: int) -> list[TableColumn]:
    query = (
        select(TableColumn)
        .where(TableColumn.table_id == table_id)
        .order_by(col(TableColumn.position))
    )
    return list(session.exec(query).all())


def list_rows(session: Session, *, table_id: int) -> list[TableRow]:
    query = select(TableRow).where(TableRow.table_id == table_id).order_by(col(TableRow.position))
    return list(session.exec(query).all())


# --- creating ------------------------------------------------------------------------


def clean_name(name: str, *, what: str) -> str:
    cleaned = " ".join(refuse_nul(name, where=f"The {what.lower()} name").split())
    if not cleaned:
        raise InvalidInputError(f"{what} name must not be empty.")
    if len(cleaned) > MAX_NAME_CHARS:
        raise InvalidInputError(f"{what} name is longer than {MAX_NAME_CHARS} characters.")
    return cleaned


def create_table(
    session: Session,
    *,
    name: str,
    columns: Sequence[ColumnSpec],
    rows: Iterable[Sequence[str | None]],
    max_cell_chars: int,
    box: SecretBox | None = None,
    workspace_id: int = DEFAULT_WORKSPACE_ID,
) -> DataTable:
    """Create a table, in ``workspace_id``, with its columns and rows (values given for the
    input columns, in order).

    ``box`` encrypts the credentials in enrichment columns' configs; a config that holds any is
    refused without one."""
    bulk.skip_foreign_key_checks(session)
    table = DataTable(name=clean_name(name, what="Table"), workspace_id=workspace_id)
    session.add(table)
    session.flush()
    assert table.id is not None
    created: list[TableColumn] = []
    for spec in columns:
        created.append(
            _new_column(
                session=session,
                table_id=table.id,
                spec=spec,
                position=len(created),
                existing=created,
                box=box,
            )
        )
    session.flush()
    inputs = [c for c in created if c.kind == ColumnKind.INPUT]
    insert_rows(
        session=session,
        table_id=table.id,
        columns=created,
        inputs=inputs,
        rows=rows,
        max_cell_chars=max_cell_chars,
    )
    return table


def _new_column(
    *,
    session: Session,
    table_id: int,
    spec: ColumnSpec,
    position: int,
    existing: Sequence[TableColumn],
    box: SecretBox | None,
    max_config_bytes: int = DEFAULT_MAX_CONFIG_BYTES,
) -> TableColumn:
    name = clean_name(spec.name, what="Column")
    if any(c.name.casefold() == name.casefold() for c in existing):
        raise InvalidInputError(f"A column named '{name}' already exists.")
    config: dict[str, Any] = {}
    if spec.kind == ColumnKind.ENRICHMENT:
        if not spec.enricher:
            raise EnricherConfigError("Choose an enricher for the enrichment column.")
        enricher = get_enricher(spec.enricher)
        check_config_size(spec.config, max_bytes=max_config_bytes, name=name)
        refuse_nul_in(spec.config, where=f"The config of column '{name}'")
        config = enricher.validate_config(spec.config)
        known = {c.name for c in existing}
        missing = sorted(enricher.referenced_columns(config) - known)
        if missing:
            raise EnricherConfigError(
                f"The config refers to {', '.join(repr(m) for m in missing)}, which "
                f"{'is not a column' if len(missing) == 1 else 'are not columns'} of this table."
            )
        config = _seal(config, enricher.secret_paths(config), box)
    column = TableColumn(
        table_id=table_id,
        name=name,
        kind=spec.kind.value,
        position=position,
        enricher=spec.enricher if spec.kind == ColumnKind.ENRICHMENT else None,
        config=config,
    )
    session.add(column)
    return column


def insert_rows(
    *,
    session: Session,
    table_id: int,
    columns: Sequence[TableColumn],
    inputs: Sequence[TableColumn],
    rows: Iterable[Sequence[str | None]],
    max_cell_chars: int,
) -> int:
    """Append ``rows`` (values for ``inputs``, in order) with a cell for every column, in bulk
    (``services.bulk``); the number of rows."""
    by_id = {c.id: n for n, c in enumerate(columns)}
    return bulk.insert_rows(
        session,
        table_id=table_id,
        column_ids=[c.id or 0 for c in columns],
        inputs=[by_id[c.id] for c in inputs],
        names=[c.name for c in columns],
        rows=rows,
        max_cell_chars=max_cell_chars,
    )


def check_config_size(config: Mapping[str, Any], *, max_bytes: int, name: str) -> None:
    """Refuse a config larger than ``MAX_CONFIG_BYTES`` as compact JSON, before reading it."""
    try:
        size = len(json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode())
    except (TypeError, ValueError, RecursionError) as exc:
        raise EnricherConfigError(f"The config of column '{name}' is not plain JSON.") from exc
    if size > max_bytes:
        raise EnricherConfigError(
            f"The config of column '{name}' is {size:,} bytes; at most {max_bytes:,} are "
            "allowed (MAX_CONFIG_BYTES)."
        )


def _seal(
    config: dict[str, Any],
    paths: Sequence[tuple[str, ...]],
    box: SecretBox | None,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    if not paths:
        return config
    if box is None:
        raise EnricherConfigError("This config holds credentials, and no key to encrypt them.")
    return seal_config(config, paths, box, previous=previous)


def add_column(
    session: Session,
    *,
    table_id: int,
    spec: ColumnSpec,
    box: SecretBox | None = None,
    max_config_bytes: int = DEFAULT_MAX_CONFIG_BYTES,
) -> TableColumn:
    """Add a column at the right edge, with an empty cell in every row (``box``: see
    ``create_table``)."""
    get_table(session=session, table_id=table_id)
    existing = list_columns(session=session, table_id=table_id)
    column = _new_column(
        session=session,
        table_id=table_id,
        spec=spec,
        position=len(existing),
        existing=existing,
        box=box,
        max_config_bytes=max_config_bytes,
    )
    session.flush()
    now = utcnow()
    row_ids = session.exec(select(TableRow.id).where(TableRow.table_id == table_id)).all()
    if row_ids:
        session.execute(
            sa.insert(Cell),
            [
                {
                    "table_id": table_id,
                    "row_id": rid,
                    "column_id": column.id,
                    "status": CellStatus.EMPTY.value,
                    "updated_at": now,
                }
                for rid in row_ids
            ],
        )
    note_change(session, table_id, TableChange.of(SHAPE))
    return column


def update_column_config(
    session: Session,
    *,
    table_id: int,
    column_id: int,
    config: Mapping[str, Any],
    box: SecretBox,
    max_config_bytes: int = DEFAULT_MAX_CONFIG_BYTES,
    enricher_name: str | None = None,
) -> TableColumn:
    """Replace an enrichment column's config, and its enricher with ``enricher_name``. A
    credential sent back as ``•••`` (as the page and the API show it) keeps the saved one,
    unless the enricher changes (a credential is never carried to another enricher's
    requests); any other value replaces it."""
    column = session.get(TableColumn, column_id)
    if column is None or column.table_id != table_id:
        raise NotFoundError(f"Column {column_id} is not in table {table_id}.")
    if column.kind != ColumnKind.ENRICHMENT:
        raise InvalidInputError(f"'{column.name}' is an input column; it has no config.")
    switching = enricher_name is not None and enricher_name != column.enricher
    enricher = get_enricher(enricher_name if switching and enricher_name else column.enricher or "")
    check_config_size(config, max_bytes=max_config_bytes, name=column.name)
    refuse_nul_in(config, where=f"The config of column '{column.name}'")
    checked = enricher.validate_config(config)
    earlier = list_columns(session=session, table_id=table_id)
    known = {c.name for c in earlier if c.position < column.position}
    missing = sorted(enricher.referenced_columns(checked) - known)
    if missing:
        raise EnricherConfigError(
            f"The config refers to {', '.join(repr(m) for m in missing)}, which "
            f"{'is not a column' if len(missing) == 1 else 'are not columns'} to the left of "
            f"'{column.name}'."
        )
    previous = None if switching else column.config
    column.config = _seal(checked, enricher.secret_paths(checked), box, previous=previous)
    if switching:
        column.enricher = enricher_name
        note_change(session, table_id, TableChange.of(SHAPE))  # the grid's header shows it
    session.add(column)
    return column


def update_cell(
    session: Session, *, table_id: int, row_id: int, column_id: int, value: str, max_cell_chars: int
) -> Cell:
    """Edit an input cell. Enrichment cells are written by jobs only."""
    column = session.get(TableColumn, column_id)
    if column is None or column.table_id != table_id:
        raise NotFoundError(f"Column {column_id} is not in table {table_id}.")
    if column.kind != ColumnKind.INPUT:
        raise InvalidInputError(
            f"'{column.name}' is an enrichment column; run it instead of typing into it."
        )
    cell = session.exec(
        select(Cell).where(Cell.row_id == row_id, Cell.column_id == column_id)
    ).first()
    if cell is None or cell.table_id != table_id:
        raise NotFoundError(f"Row {row_id} is not in table {table_id}.")
    refuse_nul(value, where=f"The value for '{column.name}'")
    cell.value = cap_value(value, max_cell_chars) if value != "" else None
    cell.updated_at = utcnow()
    session.add(cell)
    note_change(session, table_id, TableChange.of(CELLS, rows=[row_id]))
    return cell


def delete_table(session: Session, *, table_id: int) -> None:
    """Delete a table with everything in it. Refused while one of its jobs is still running."""
    get_table(session=session, table_id=table_id)
    active = session.exec(
        select(sa.func.count())
        .select_from(EnrichmentTask)
        .join(EnrichmentJob, col(EnrichmentJob.id) == EnrichmentTask.job_id)
        .where(
            EnrichmentJob.table_id == table_id, col(EnrichmentTask.status).in_(ACTIVE_TASK_STATUSES)
        )
    ).one()
    if active:
        raise InUseError(
            "This table has a running enrichment job; cancel it before deleting the table."
        )
    job_ids = select(EnrichmentJob.id).where(EnrichmentJob.table_id == table_id).scalar_subquery()
    session.execute(sa.delete(EnrichmentTask).where(col(EnrichmentTask.job_id).in_(job_ids)))
    session.execute(sa.delete(EnrichmentJob).where(col(EnrichmentJob.table_id) == table_id))
    session.execute(sa.delete(Cell).where(col(Cell.table_id) == table_id))
    session.execute(sa.delete(TableRow).where(col(TableRow.table_id) == table_id))
    session.execute(sa.delete(TableColumn).where(col(TableColumn.table_id) == table_id))
    session.execute(sa.delete(DataTable).where(col(DataTable.id) == table_id))
    note_change(session, table_id, TableChange.of(DELETED))
