"""Reading a CSV file as it arrives, chunk by chunk, in memory bounded by a chunk and a row.

``CsvReader`` takes the file as an iterable of byte chunks (an upload's parts, a request's
body, a file read in blocks) and hands out its header, then its rows one at a time. It finds
the same faults a whole-file read would, with the same messages, and when a file has several
it reports the one a whole-file read reports, whatever order they come in: the size first, then
bytes that are not UTF-8, NUL characters, a CSV syntax error, an empty file, the header's
faults, too many rows, and a row longer than the header. So when it finds a fault it stops
handing out rows but reads on to the end, in case a fault that outranks it comes later, and
only then raises ``CsvImportError``. A caller that stored the rows it was handed throws them
away then (one transaction), so a refused file leaves nothing behind.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from enum import IntEnum
from typing import IO, TYPE_CHECKING

from enrichment_app.errors import CsvImportError

if TYPE_CHECKING:
    from _csv import Reader as _CsvReaderType

MAX_CSV_ROWS = 100_000
MAX_CSV_COLUMNS = 200
CSV_DELIMITERS = (",", ";", "\t")
"""What an imported file may separate its values with: the comma first, then Excel's
semicolon (in locales with a decimal comma), then the tab of a TSV file."""
BOM = b"\xef\xbb\xbf"


def too_large(max_bytes: int) -> str:
    """What a file over ``MAX_CSV_BYTES`` is told, on the page, the API and at the door."""
    return f"The file is larger than {size_text(max_bytes)}."


class _Fault(IntEnum):
    """What is wrong with a file, the most important first (a lower value outranks)."""

    NOT_UTF8 = 1
    NUL = 2
    SYNTAX = 3
    EMPTY = 4
    HEADER = 5
    TOO_MANY_ROWS = 6
    ROW_TOO_LONG = 7


def size_text(n_bytes: int) -> str:
    """A byte count for messages: ``20 MB``, ``1.5 MB``, ``512 KB``, ``100 bytes``."""
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):.4g} MB"
    if n_bytes >= 1024:
        return f"{n_bytes / 1024:.4g} KB"
    return f"{n_bytes} bytes"


class CsvReader:
    """One CSV file, read once: ``header()``, then ``rows()``.

    ``bytes_read`` and ``rows_read`` say how far it got (for progress). Rows are lists of
    strings no longer than the header (shorter ones are not padded); blank rows (every value
    blank) are skipped, as before the header.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        max_bytes: int,
        max_rows: int = MAX_CSV_ROWS,
        max_columns: int = MAX_CSV_COLUMNS,
    ) -> None:
        self._chunks = iter(chunks)
        self._max_bytes = max_bytes
        self._max_rows = max_rows
        self._max_columns = max_columns
        self.bytes_read = 0
        self.rows_read = 0
        self._fault: tuple[_Fault, str] | None = None
        self._texts = self._decode()
        self._lines = _Lines(_split_lines(self._texts))
        self._records: Iterator[list[str]] | None = None
        self._header: list[str] | None = None

    # --- the public half -------------------------------------------------------------

    def header(self) -> list[str]:
        """The header row's names (trimmed), or ``CsvImportError`` saying what is wrong."""
        if self._header is not None:
            return self._header
        delimiter = _delimiter(self._lines)
        # strict: an unterminated quote is an error, not the rest of the file swallowed.
        reader = csv.reader(self._lines.consume(), csv.excel, delimiter=delimiter, strict=True)
        self._records = self._nonblank(reader)
        first = next(self._records, None)
        if first is None:
            self._note(_Fault.EMPTY, "The file is empty: it needs a header row with column names.")
            self._finish()
        assert first is not None
        header = [h.strip() for h in first]
        problem = _header_problem(header, self._max_columns)
        if problem is not None:
            self._note(_Fault.HEADER, problem)
            self._finish()
        self._header = header
        return header

    def rows(self) -> Iterator[list[str]]:
        """The data rows, one at a time; ``CsvImportError`` (after the last row it could hand
        out) if the file has a fault."""
        header = self.header()
        assert self._records is not None
        width = len(header)
        count = 0
        for row in self._records:
            count += 1
            if count > self._max_rows:
                self._note(_Fault.TOO_MANY_ROWS, "")  # the message needs the final count
                continue
            if len(row) > width:
                self._note(
                    _Fault.ROW_TOO_LONG,
                    f"Row {count + 1} has {len(row)} values but the header has {width} columns.",
                )
            if self._fault is None:
                self.rows_read = count
                yield row
        if self._fault is not None and self._fault[0] == _Fault.TOO_MANY_ROWS:
            self._fault = (
                _Fault.TOO_MANY_ROWS,
                f"The file has {count} rows; at most {self._max_rows} are allowed.",
            )
        self._finish()

    # --- faults ----------------------------------------------------------------------

    def _note(self, fault: _Fault, message: str) -> None:
        """Remember ``fault`` unless one that outranks it (or an earlier one of its kind) was
        already found."""
        if self._fault is None or fault < self._fault[0]:
            self._fault = (fault, message)

    def _finish(self) -> None:
        """Read the rest of the file (a fault found later may outrank what we have), then raise
        the fault, if any."""
        if self._records is not None and (self._fault is None or self._fault[0] > _Fault.SYNTAX):
            for _ in self._records:  # a syntax error further down outranks a header fault
                pass
        for _ in self._texts:
            pass
        if self._fault is not None:
            raise CsvImportError(self._fault[1])

    def _nonblank(self, reader: _CsvReaderType) -> Iterator[list[str]]:
        try:
            for record in reader:
                # a blank line or one of blanks is skipped; the first value settles most rows
                if record and (record[0].strip() or "".join(record).strip()):
                    yield record
        except csv.Error as exc:
            self._note(_Fault.SYNTAX, f"Line {reader.line_num}: {exc}.")

    # --- bytes to text ---------------------------------------------------------------

    def _decode(self) -> Iterator[str]:
        """The file's text, piece by piece. It stops handing out text at bytes that are not
        UTF-8 or at a NUL, but reads on: to the end for the size, and after a NUL for bytes
        that are not UTF-8 (those outrank it)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        head: bytes | None = b""  # the first bytes until we know if they are a byte order mark
        decoded = 0  # bytes handed to the decoder (after the byte order mark)
        for chunk in self._chunks:
            self.bytes_read += len(chunk)
            if self.bytes_read > self._max_bytes:
                raise CsvImportError(too_large(self._max_bytes))
            if head is not None:
                head += chunk
                if len(head) < len(BOM) and BOM.startswith(head):
                    continue
                chunk, head = head.removeprefix(BOM), None
            text = self._decode_piece(decoder, chunk, decoded, final=False)
            decoded += len(chunk)
            if text:
                yield text
        text = self._decode_piece(decoder, head or b"", decoded, final=True)
        if text:
            yield text

    def _decode_piece(
        self, decoder: codecs.IncrementalDecoder, data: bytes, offset: int, *, final: bool
    ) -> str:
        """``data`` decoded, or "" once the file is known to be unfit for text (the fault is
        noted); ``offset`` is where ``data`` starts, for the message."""
        if self._fault is not None and self._fault[0] <= _Fault.NOT_UTF8:
            return ""
        pending = len(decoder.getstate()[0])
        try:
            text = decoder.decode(data, final=final)
        except UnicodeDecodeError as exc:
            byte = offset - pending + exc.start
            self._note(
                _Fault.NOT_UTF8,
                f"The file is not UTF-8 text (byte {byte} is invalid). Save it as UTF-8 CSV.",
            )
            return ""
        if "\x00" in text:
            self._note(_Fault.NUL, "The file contains NUL bytes; it does not look like a CSV file.")
        return "" if self._fault is not None and self._fault[0] <= _Fault.NUL else text


def _header_problem(header: list[str], max_columns: int) -> str | None:
    if len(header) > max_columns:
        return f"The file has {len(header)} columns; at most {max_columns} are allowed."
    for i, name in enumerate(header, start=1):
        if not name:
            return f"Column {i} of the header row has no name."
    seen: set[str] = set()
    for name in header:
        if name.casefold() in seen:
            return f"The header row names the column '{name}' twice."
        seen.add(name.casefold())
    return None


def _split_lines(texts: Iterable[str]) -> Iterator[str]:
    """The lines of the text, each with its ending, cut where ``io.StringIO(text,
    newline="")`` cuts them (after ``\\n``, ``\\r\\n`` or a lone ``\\r``) however the pieces
    fall: the csv module ends a record at the end of each line it is given, and numbers its
    errors by line."""
    parts: list[str] = []
    for text in texts:
        if text.endswith("\r"):  # the next piece may start with the "\n" that completes it
            parts.append(text)
            continue
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut < 0:
            parts.append(text)
            continue
        parts.append(text[: cut + 1])
        yield from io.StringIO("".join(parts), newline="")
        parts = [text[cut + 1 :]] if cut + 1 < len(text) else []
    if parts:
        yield from io.StringIO("".join(parts), newline="")


class _Lines:
    """Lines that can be read from the start again until ``consume`` (the delimiter guess
    reads the header once per candidate); only the lines read twice are kept."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._source = lines
        self._kept: list[str] = []

    def replay(self) -> Iterator[str]:
        yield from self._kept
        for line in self._source:
            self._kept.append(line)
            yield line

    def consume(self) -> Iterator[str]:
        kept, self._kept = self._kept, []
        yield from kept
        yield from self._source


def _delimiter(lines: _Lines) -> str:
    """The delimiter that splits the header row into the most columns; the comma on a tie.

    Only the header row is read, so values may hold any delimiter, and the file is read in
    linear time. (``csv.Sniffer`` guessed from values too: it could split an exported table's
    values on their semicolons, strip their leading spaces, and took up to seconds on some files.)
    Files where no candidate splits the header are one column, read with the comma.
    """
    best, most = ",", 1
    for candidate in CSV_DELIMITERS:
        reader = csv.reader(lines.replay(), delimiter=candidate, strict=True)
        try:
            header = next((r for r in reader if any(v.strip() for v in r)), [])
        except csv.Error:
            continue  # the header is not valid CSV with this delimiter
        if len(header) > most:
            best, most = candidate, len(header)
    return best


def read_chunks(file: IO[bytes], size: int = 256 * 1024) -> Iterator[bytes]:
    """A binary file as chunks of ``size`` bytes."""
    while chunk := file.read(size):
        yield chunk
