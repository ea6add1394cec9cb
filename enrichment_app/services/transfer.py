"""Long imports and exports: how far they got, stopping them, and feeding them their input.

The work runs on a worker thread inside one transaction. ``Progress`` is what it shares with
the page's background event, which reads the counts for its progress bar and may ``cancel``:
the work then stops at its next row with ``CanceledByUserError``, the transaction rolls back
and nothing is stored. ``ChunkFeed`` hands the worker thread the bytes of an upload (or a
request body) as they arrive from async code, a few chunks at a time.
"""

from __future__ import annotations

import asyncio
import queue
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


class _End:
    pass


_END = _End()


class ChunkFeed:
    """Byte chunks from async code (``put``) to a worker thread (iterating it).

    At most ``maxsize`` chunks wait, so a fast upload waits for a slow import instead of
    piling up in memory. ``finish`` ends the input; ``stop`` (when the worker is done, or the
    upload went away) unblocks both sides: ``put`` returns False, and a worker still reading
    gets ``CanceledByUserError``.
    """

    def __init__(self, *, maxsize: int = 8) -> None:
        self._queue: queue.Queue[bytes | _End] = queue.Queue(maxsize)
        self._stopped = threading.Event()

    async def put(self, chunk: bytes) -> bool:
        """Hand over one chunk, waiting while the worker is behind; False once stopped."""
        while not self._stopped.is_set():
            try:
                await asyncio.to_thread(self._queue.put, chunk, True, 0.2)
            except queue.Full:
                continue
            return True
        return False

    async def finish(self) -> None:
        """No more chunks: the worker reads to the end of the file."""
        while not self._stopped.is_set():
            try:
                await asyncio.to_thread(self._queue.put, _END, True, 0.2)
            except queue.Full:
                continue
            return

    def stop(self) -> None:
        self._stopped.set()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stopped.is_set():
                    raise CanceledByUserError(CANCELED) from None
                continue
            if isinstance(item, _End):
                return
            yield item
