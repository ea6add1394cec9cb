"""Spreadsheet clipboard text: reading a pasted block and writing a copied one (pure functions).

Excel, Google Sheets and LibreOffice put a block of cells on the clipboard as tab-separated
text: rows end with ``\\n`` (or ``\\r\\n``), cells are split by ``\\t``, and a cell holding a tab,
a newline or a double quote is wrapped in double quotes with its quotes doubled. The csv
module's ``excel-tab`` dialect reads and writes exactly that.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from enrichment_app.errors import InvalidInputError

MAX_PASTE_ROWS = 5_000
"""The most rows one paste may hold; a bigger block is refused (import a CSV instead)."""
MAX_PASTE_CELLS = 100_000
MAX_PASTE_CHARS = 5_000_000


def read_block(text: object) -> list[list[str]]:
    """The pasted text as rows of cells, or ``InvalidInputError`` saying why it cannot be pasted.

    One trailing line break (spreadsheets add one) is not an extra row; short rows are padded
    with empty cells so the block is a rectangle.
    """
    if not isinstance(text, str):
        raise InvalidInputError("Only text can be pasted into the table.")
    if len(text) > MAX_PASTE_CHARS:
        raise InvalidInputError(
            f"The pasted text is {len(text):,} characters; at most {MAX_PASTE_CHARS:,} can be "
            "pasted at once. Import a CSV file instead."
        )
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith(("\n", "\r")):
        text = text[:-1]
    if text == "":
        raise InvalidInputError("The clipboard is empty: copy some cells first.")
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), dialect="excel-tab", strict=False)
    try:
        for row in reader:
            rows.append(row if row else [""])
            if len(rows) > MAX_PASTE_ROWS:
                raise InvalidInputError(
                    f"The pasted block has more than {MAX_PASTE_ROWS:,} rows; paste at most "
                    f"{MAX_PASTE_ROWS:,} at once, or import a CSV file."
                )
    except csv.Error as exc:
        raise InvalidInputError(f"The pasted text could not be read as cells: {exc}.") from exc
    width = max(len(row) for row in rows)
    if width * len(rows) > MAX_PASTE_CELLS:
        raise InvalidInputError(
            f"The pasted block has {width * len(rows):,} cells; at most {MAX_PASTE_CELLS:,} can "
            "be pasted at once, or import a CSV file."
        )
    return [row + [""] * (width - len(row)) for row in rows]


def write_block(rows: Sequence[Sequence[str | None]]) -> str:
    """Cells as the tab-separated text spreadsheets paste (quoted where a cell needs it)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, dialect="excel-tab", lineterminator="\n")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()
