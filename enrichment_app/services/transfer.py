"""Long imports and exports: how far they got, stopping them, and keeping an upload.

The work runs on a worker thread inside one transaction. ``Progress`` is what it shares with
the page's background event, which reads the counts for its progress bar and may ``cancel``:
the work then stops at its next row with ``CanceledByUserError``, the transaction rolls back
and nothing is stored. ``Spool`` keeps an upload (the page's, or a request body) as it
arrives, in bounded memory, for the import to read once it is whole.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from enrichment_app.errors import CanceledByUserError

T = TypeVar("T")

CANCELED = "Canceled; nothing was stored."


class Progress:
    """Counts shared between the thread doing the work and the code reporting it."""

    def __init__(self, *, total_rows: int | None = None) -> None:
        self.rows = 0
        """Rows read (import) or written (export) so far."""
        self.total_rows = total_rows
        """How many rows there are in all, when known (an export knows; an import does not)."""
        self.bytes = 0
        """Bytes read (import) or written (export) so far."""
        self._stop = threading.Event()

    def cancel(self) -> None:
        self._stop.set()

    @property
    def canceled(self) -> bool:
        return self._stop.is_set()

    def check(self) -> None:
        """Raise ``CanceledByUserError`` if the work was asked to stop."""
        if self._stop.is_set():
            raise CanceledByUserError(CANCELED)

    def count(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, counting each in ``rows`` and stopping at the first one after ``cancel``."""
        for item in items:
            self.check()
            self.rows += 1
            yield item


class Spool:
    """An upload kept as it arrives, in memory up to ``MEMORY_BYTES`` and on disk beyond, and
    read back in chunks once it is whole.

    An import reads the file from here, not from the network: the import holds SQLite's write
    lock from its first row to its commit, and a slow upload must not hold it (other writers
    would wait, then fail). Past ``max_bytes`` nothing more is kept: ``write`` says so, and
    the caller refuses the file (``csv_reading.too_large``).
    """

    MEMORY_BYTES = 1024 * 1024

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._file = tempfile.SpooledTemporaryFile(max_size=self.MEMORY_BYTES)  # noqa: SIM115

    def write(self, data: bytes) -> bool:
        """Keep ``data``; False (and nothing kept) once the upload is over ``max_bytes``."""
        self.size += len(data)
        if self.size > self.max_bytes:
            return False
        self._file.write(data)
        return True

    @property
    def too_large(self) -> bool:
        return self.size > self.max_bytes

    def chunks(self, size: int = 256 * 1024) -> Iterator[bytes]:
        """What was kept, from its start, ``size`` bytes at a time."""
        self._file.seek(0)
        while chunk := self._file.read(size):
            yield chunk

    def close(self) -> None:
        self._file.close()
