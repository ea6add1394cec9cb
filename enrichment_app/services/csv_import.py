"""Importing a CSV file as a new table: all or nothing, with a message saying what is wrong.

The file is read as it arrives (``CsvReader``) and its rows are written in batches as they are
read (``services.bulk``), all in the caller's transaction: memory stays bounded by a batch, not
by the file, and a file refused at its last line, or an import canceled half way, rolls back
whole.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session

from enrichment_app.db.models import DEFAULT_WORKSPACE_ID, DataTable
from enrichment_app.services.csv_reading import (
    CSV_DELIMITERS,
    MAX_CSV_COLUMNS,
    MAX_CSV_ROWS,
    CsvReader,
    too_large,
)
from enrichment_app.services.tables import ColumnSpec, create_table
from enrichment_app.services.transfer import Progress

__all__ = [
    "CSV_DELIMITERS",
    "MAX_CSV_COLUMNS",
    "MAX_CSV_ROWS",
    "import_csv",
    "import_csv_stream",
    "parse_csv",
    "too_large",
]


def parse_csv(data: bytes, *, max_bytes: int) -> tuple[list[str], list[list[str]]]:
    """Parse a whole CSV file into (header, rows); raise ``CsvImportError`` saying what is wrong."""
    reader = CsvReader([data], max_bytes=max_bytes)
    header = reader.header()
    return header, list(reader.rows())


def import_csv(
    session: Session,
    *,
    name: str,
    data: bytes,
    max_bytes: int,
    max_cell_chars: int,
    workspace_id: int = DEFAULT_WORKSPACE_ID,
) -> DataTable:
    """Create a table in ``workspace_id`` from a CSV file: the header row becomes input
    columns. All or nothing."""
    return import_csv_stream(
        session,
        name=name,
        chunks=[data],
        max_bytes=max_bytes,
        max_cell_chars=max_cell_chars,
        workspace_id=workspace_id,
    )


def import_csv_stream(
    session: Session,
    *,
    name: str,
    chunks: Iterable[bytes],
    max_bytes: int,
    max_cell_chars: int,
    progress: Progress | None = None,
    workspace_id: int = DEFAULT_WORKSPACE_ID,
) -> DataTable:
    """``import_csv`` for a file that arrives in chunks (an upload, a request body).

    ``progress`` counts the rows and bytes read, and its ``cancel`` stops the import at the
    next row with ``CanceledByUserError``; the caller's transaction then stores nothing.
    """
    reader = CsvReader(chunks, max_bytes=max_bytes)
    header = reader.header()
    rows: Iterable[list[str]] = reader.rows()
    if progress is not None:
        rows = _tracked(reader, progress)
    return create_table(
        session=session,
        name=name,
        columns=[ColumnSpec(name=h) for h in header],
        rows=rows,
        max_cell_chars=max_cell_chars,
        workspace_id=workspace_id,
    )


def _tracked(reader: CsvReader, progress: Progress) -> Iterable[list[str]]:
    for row in progress.count(reader.rows()):
        progress.bytes = reader.bytes_read
        yield row
    progress.bytes = reader.bytes_read
