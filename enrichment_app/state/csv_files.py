"""CSV import and export on the tables page: long ones show how far they got and can be canceled.

Both run as background events: the work goes on a worker thread (one transaction for an import,
one read for an export) and every ``PROGRESS_SECONDS`` the event shows its counts and passes a
Cancel on. An import reads the upload as it arrives (``rx.upload_files_chunk``); an export
writes the file under Reflex's upload directory (``exports/<random>/<name>.csv``) and the
browser downloads it from there. Those files are deleted ``EXPORT_KEEP_SECONDS`` after they
were written; the random part of their address is what keeps them private until then.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import reflex as rx
from sqlmodel import Session

from enrichment_app import routes
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import CanceledByUserError, EnrichmentAppError, InvalidInputError
from enrichment_app.runtime import Runtime, get_runtime
from enrichment_app.services import csv_export, csv_import
from enrichment_app.services.transfer import ChunkFeed, Progress

PROGRESS_SECONDS = 0.25
"""How often a running import or export shows how far it got."""
EXPORTS = "exports"
"""The folder of exported files, under Reflex's upload directory."""
EXPORT_KEEP_SECONDS = 600.0


def export_filename(name: str, *, raw: bool) -> str:
    """The downloaded file's name: the table's name, kept to safe characters."""
    safe = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in str(name)[:200]).strip()
    return f"{safe or 'table'}{' (raw)' if raw else ''}.csv"


def _write_export(
    session: Session, *, table_id: int, raw: bool, path: Path, progress: Progress
) -> None:
    progress.total_rows = csv_export.row_count(session, table_id=table_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        csv_export.write_csv(session, table_id=table_id, out=out, raw=raw, progress=progress)


def _forget_old_exports(root: Path, *, now: float) -> None:
    """Delete the exported files older than ``EXPORT_KEEP_SECONDS``."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        try:
            if now - folder.stat().st_mtime > EXPORT_KEEP_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


class CsvFilesMixin(rx.State, mixin=True):
    new_table_name: str = ""
    message: str = ""
    notice: str = ""
    importing: bool = False
    import_file: str = ""
    import_rows: int = 0
    """Rows of the running import read so far."""
    import_bytes: int = 0
    import_size: int = 0
    """The file's size, once the browser has said it (for the progress bar)."""
    _import_cancel: bool = False
    exporting: int = 0
    """The id of the table being exported (0: none)."""
    export_name: str = ""
    export_rows: int = 0
    export_total: int = 0
    _export_cancel: bool = False

    @rx.event
    def set_new_table_name(self, value: str):
        self.new_table_name = value

    async def _say(self, *, message: str = "", notice: str = "") -> None:
        async with self:
            self.message, self.notice = message, notice

    # --- import ----------------------------------------------------------------------

    @rx.event
    def upload_progress(self, progress: dict[str, Any]):
        """The browser's upload progress: it tells the file's size, for the progress bar."""
        total = progress.get("total") if isinstance(progress, dict) else None
        if isinstance(total, int | float) and not isinstance(total, bool) and total > 0:
            self.import_size = int(min(total, 2**53))

    @rx.var
    def import_percent(self) -> int:
        if not self.import_size:
            return 0
        return min(100, self.import_bytes * 100 // self.import_size)

    @rx.event
    def cancel_import(self):
        """Stop the running import at its next row; nothing of it is stored."""
        if self.importing:
            self._import_cancel = True

    @rx.event(background=True)
    async def import_csv(self, chunks: rx.UploadChunkIterator):
        """Create a table from the uploaded CSV as it arrives: the header row becomes its
        columns. All or nothing, with the rows read shown as it goes, and Cancel."""
        runtime = get_runtime()
        async with self:
            if self.importing:
                return
            self.importing, self._import_cancel = True, False
            self.message = self.notice = ""
            self.import_rows = self.import_bytes = 0  # the size comes with the upload's progress
            self.import_file = ""
            typed = self.new_table_name.strip()
        try:
            first = await anext(chunks, None)
            if first is None:
                async with self:
                    self.message = "Choose a CSV file first."
                return
            async with self:
                self.import_file = first.filename
            name = typed or Path(first.filename).stem or "Imported table"
            table_id = await self._import(runtime, first, chunks, name)
        finally:
            async with self:
                self.importing, self.import_size = False, 0
        if table_id is None:
            return
        async with self:
            self.new_table_name = ""
            self.notice = f"Imported '{name}'."
        yield rx.clear_selected_files("csv_upload")
        yield rx.redirect(routes.table_url(table_id))

    async def _import(
        self, runtime: Runtime, first: rx.UploadChunk, chunks: rx.UploadChunkIterator, name: str
    ) -> int | None:
        """Feed the upload to the import on a worker thread; the new table's id, or None
        (with the reason shown) if it was refused or canceled."""
        progress = Progress()
        feed = ChunkFeed()
        work = asyncio.create_task(
            in_transaction(
                runtime.open_session,
                csv_import.import_csv_stream,
                name=name,
                chunks=feed,
                max_bytes=runtime.settings.max_csv_bytes,
                max_cell_chars=runtime.settings.max_cell_chars,
                progress=progress,
            )
        )
        work.add_done_callback(lambda _work: feed.stop())
        reporter = asyncio.create_task(self._report_import(progress, feed))
        try:
            chunk: rx.UploadChunk | None = first
            while chunk is not None:
                if chunk.filename != first.filename:
                    raise InvalidInputError("Choose one CSV file at a time.")
                if not await feed.put(chunk.data):
                    break  # the import stopped early: it says why
                chunk = await anext(chunks, None)
            else:
                await feed.finish()
            table = await work
        except CanceledByUserError:
            await self._say(notice="Import canceled; nothing was stored.")
            return None
        except EnrichmentAppError as exc:
            await self._say(message=f"Could not import {first.filename}: {exc}")
            return None
        except asyncio.CancelledError:  # the browser dropped the upload (Cancel aborts it too)
            progress.cancel()
            feed.stop()
            await asyncio.wait([work])
            await self._say(notice="Import canceled; nothing was stored.")
            raise
        finally:
            if not work.done():
                progress.cancel()
                feed.stop()
                await asyncio.wait([work])
            reporter.cancel()
            await asyncio.wait([reporter])
        return table.id

    async def _report_import(self, progress: Progress, feed: ChunkFeed) -> None:
        """Show the rows and bytes read so far, and pass Cancel on to the import."""
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            async with self:
                self.import_rows, self.import_bytes = progress.rows, progress.bytes
                canceled = self._import_cancel
            if canceled:
                progress.cancel()
                feed.stop()

    # --- export ----------------------------------------------------------------------

    @rx.var
    def export_percent(self) -> int:
        if not self.export_total:
            return 0
        return min(100, self.export_rows * 100 // self.export_total)

    @rx.event
    def cancel_export(self):
        """Stop the running export; its file is deleted."""
        if self.exporting:
            self._export_cancel = True

    @rx.event(background=True)
    async def export_csv(self, table_id: int, name: str, raw: bool = False):
        """Write the table as CSV, showing the rows written, then download the file; formulas
        neutralised unless ``raw`` (then "(raw)" in the file's name)."""
        raw = raw is True
        try:
            table_id = int(table_id)
        except (TypeError, ValueError):
            return
        runtime = get_runtime()
        async with self:
            if self.exporting:
                self.message = "An export is already running; wait for it or cancel it."
                return
            self.exporting, self.export_name, self._export_cancel = table_id, str(name)[:200], False
            self.export_rows = self.export_total = 0
            self.message = self.notice = ""
        filename = export_filename(name, raw=raw)
        root = rx.get_upload_dir() / EXPORTS
        folder = secrets.token_urlsafe(24)
        path = root / folder / filename
        _forget_old_exports(root, now=time.time())
        progress = Progress()
        work = asyncio.create_task(
            in_session(
                runtime.open_session,
                _write_export,
                table_id=table_id,
                raw=raw,
                path=path,
                progress=progress,
            )
        )
        reporter = asyncio.create_task(self._report_export(progress))
        done = False
        try:
            await work
            done = True
        except CanceledByUserError:
            await self._say(notice="Export canceled.")
        except EnrichmentAppError as exc:
            await self._say(message=str(exc))
        finally:
            if not work.done():  # the event itself was cancelled (the server is stopping)
                progress.cancel()
                await asyncio.wait([work])
            reporter.cancel()
            await asyncio.wait([reporter])
            if not done:
                shutil.rmtree(path.parent, ignore_errors=True)
            async with self:
                self.exporting = 0
                self.export_rows = progress.rows
        if done:
            yield rx.download(
                url=rx.get_upload_url(f"{EXPORTS}/{folder}/{filename}"), filename=filename
            )

    async def _report_export(self, progress: Progress) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            async with self:
                self.export_rows = progress.rows
                self.export_total = progress.total_rows or 0
                canceled = self._export_cancel
            if canceled:
                progress.cancel()
