"""Run the view: one column for every row a view shows, as one job (the page and the API).

The rows are the view's when Run is pressed: the job is created like any other
(``services/enrichment.py``), from the view's query rather than a list of its rows
(``services/task_ranges.py``), so cells already queued or running are skipped, the cells per
job and per day are capped, and the audit log records it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import EnrichmentJob, TableColumn
from enrichment_app.db.sessions import in_session
from enrichment_app.domain import ColumnKind, JobBackend
from enrichment_app.errors import InvalidInputError, NotFoundError
from enrichment_app.services import views as view_service
from enrichment_app.services.enrichment import (
    EnrichmentCreated,
    create_enrichment,
)
from enrichment_app.services.tables import get_table
from enrichment_app.services.task_ranges import RowRanges
from enrichment_app.views import View


@dataclass(frozen=True, slots=True)
class ViewRun:
    """What one Run of a view asks for: the column, the view, and how many rows it shows."""

    column_id: int
    column_name: str
    view: View
    row_count: int

    @property
    def ranges(self) -> RowRanges:
        return RowRanges.whole_columns([self.column_id], self.view)


def view_cells(
    session: Session, *, table_id: int, view: View, column_id: int, max_cells: int
) -> ViewRun:
    """``column_id`` in every row ``view`` shows; refuses an input column, a column not in the
    table, a view with no rows or more rows than one job may run."""
    get_table(session=session, table_id=table_id)
    column = session.get(TableColumn, column_id)
    if column is None or column.table_id != table_id:
        raise NotFoundError(f"Column {column_id} is not in table {table_id}.")
    if column.kind != ColumnKind.ENRICHMENT:
        raise InvalidInputError(
            f"{column.name!r} is an input column; run the view on an enrichment column (✦)."
        )
    view_service.check_view(session, table_id=table_id, view=view)
    rows = view_service.count_rows(session, table_id=table_id, view=view)
    view_service.require_rows(rows)
    if rows > max_cells:
        raise InvalidInputError(
            f"The view shows {rows:,} rows; one job can run at most {max_cells:,} cells "
            "(MAX_CELLS_PER_JOB). Narrow the filter."
        )
    return ViewRun(column_id, column.name, view, rows)


async def create_view_enrichment(
    *,
    open_session: SessionFactory,
    backend: JobBackend,
    table_id: int,
    view: View,
    column_id: int,
    max_cells: int,
    on_created: Callable[[Session, EnrichmentJob, int], None] | None = None,
    max_cells_per_day: int | None = None,
) -> tuple[ViewRun, EnrichmentCreated]:
    """Create the job for the view's rows in ``column_id`` (not yet handed to a runner)."""
    run = await in_session(
        open_session,
        view_cells,
        table_id=table_id,
        view=view,
        column_id=column_id,
        max_cells=max_cells,
    )
    created = await create_enrichment(
        open_session=open_session,
        backend=backend,
        table_id=table_id,
        cells=(),
        ranges=[run.ranges],
        max_cells=max_cells,
        on_created=on_created,
        max_cells_per_day=max_cells_per_day,
    )
    return run, created
