"""Importing a CSV file as a new table: all or nothing, with a message saying what is wrong."""

from __future__ import annotations

import csv
import io

from sqlmodel import Session

from enrichment_app.db.models import DEFAULT_WORKSPACE_ID, DataTable
from enrichment_app.errors import CsvImportError
from enrichment_app.services.tables import ColumnSpec, create_table

MAX_CSV_ROWS = 100_000
MAX_CSV_COLUMNS = 200
CSV_DELIMITERS = (",", ";", "\t")
"""What an imported file may separate its values with: the comma first, then Excel's
semicolon (in locales with a decimal comma), then the tab of a TSV file."""


def _size(n_bytes: int) -> str:
    """A byte count for messages: ``20 MB``, ``1.5 MB``, ``512 KB``, ``100 bytes``."""
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):.4g} MB"
    if n_bytes >= 1024:
        return f"{n_bytes / 1024:.4g} KB"
    return f"{n_bytes} bytes"


def too_large(max_bytes: int) -> str:
    """What a file over ``MAX_CSV_BYTES`` is told, on the page, the API and at the door."""
    return f"The file is larger than {_size(max_bytes)}."


def parse_csv(data: bytes, *, max_bytes: int) -> tuple[list[str], list[list[str]]]:
    """Parse an uploaded CSV into (header, rows); raise ``CsvImportError`` saying what is wrong."""
    if len(data) > max_bytes:
        raise CsvImportError(too_large(max_bytes))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvImportError(
            f"The file is not UTF-8 text (byte {exc.start} is invalid). Save it as UTF-8 CSV."
        ) from exc
    if "\x00" in text:
        raise CsvImportError("The file contains NUL bytes; it does not look like a CSV file.")
    # strict: an unterminated quote is an error, not the rest of the file swallowed into one cell.
    reader = csv.reader(
        io.StringIO(text, newline=""), csv.excel, delimiter=_delimiter(text), strict=True
    )
    try:
        records = list(reader)
    except csv.Error as exc:
        raise CsvImportError(f"Line {reader.line_num}: {exc}.") from exc
    records = [r for r in records if any(v.strip() for v in r)]
    if not records:
        raise CsvImportError("The file is empty: it needs a header row with column names.")
    header = [h.strip() for h in records[0]]
    if len(header) > MAX_CSV_COLUMNS:
        raise CsvImportError(
            f"The file has {len(header)} columns; at most {MAX_CSV_COLUMNS} are allowed."
        )
    for i, name in enumerate(header, start=1):
        if not name:
            raise CsvImportError(f"Column {i} of the header row has no name.")
    seen: set[str] = set()
    for name in header:
        if name.casefold() in seen:
            raise CsvImportError(f"The header row names the column '{name}' twice.")
        seen.add(name.casefold())
    rows = records[1:]
    if len(rows) > MAX_CSV_ROWS:
        raise CsvImportError(f"The file has {len(rows)} rows; at most {MAX_CSV_ROWS} are allowed.")
    for line, row in enumerate(rows, start=2):
        if len(row) > len(header):
            raise CsvImportError(
                f"Row {line} has {len(row)} values but the header has {len(header)} columns."
            )
    return header, rows


def _delimiter(text: str) -> str:
    """The delimiter that splits the header row into the most columns; the comma on a tie.

    Only the header row is read, so values may hold any delimiter, and the file is read in
    linear time. (``csv.Sniffer`` guessed from values too: it could split an exported table's
    values on their semicolons, strip their leading spaces, and took up to seconds on some files.)
    Files where no candidate splits the header are one column, read with the comma.
    """
    best, most = ",", 1
    for candidate in CSV_DELIMITERS:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=candidate, strict=True)
        try:
            header = next((r for r in reader if any(v.strip() for v in r)), [])
        except csv.Error:
            continue  # the header is not valid CSV with this delimiter
        if len(header) > most:
            best, most = candidate, len(header)
    return best


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
    header, rows = parse_csv(data, max_bytes=max_bytes)
    return create_table(
        session=session,
        name=name,
        columns=[ColumnSpec(name=h) for h in header],
        rows=rows,
        max_cell_chars=max_cell_chars,
        workspace_id=workspace_id,
    )
