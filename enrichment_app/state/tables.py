"""State of the tables page (list, import, export, delete) and of the start page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import reflex as rx
from sqlmodel import Session

from enrichment_app import routes
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import CanceledByUserError, EnrichmentAppError, InvalidInputError
from enrichment_app.runtime import Runtime, get_runtime
from enrichment_app.services import csv_import, tables as table_service
from enrichment_app.services.transfer import ChunkFeed, Progress

PROGRESS_SECONDS = 0.25
"""How often a running import or export shows how far it got."""


def _table_rows(session: Session) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "name": t.name, "columns": t.columns, "rows": t.rows}
        for t in table_service.list_tables(session)
    ]


class TablesState(rx.State):
    """The list of tables, CSV import and export, and deleting."""

    tables: list[dict[str, Any]] = []
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

    @rx.event
    async def load(self):
        self.tables = await in_session(get_runtime().open_session, _table_rows)

    @rx.event
    def set_new_table_name(self, value: str):
        self.new_table_name = value

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
            self.import_rows = self.import_bytes = self.import_size = 0
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
                self.importing = False
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

    async def _say(self, *, message: str = "", notice: str = "") -> None:
        async with self:
            self.message, self.notice = message, notice

    @rx.event
    async def export_csv(self, table_id: int, name: str, raw: bool = False):
        """Download the table; formulas neutralised unless ``raw`` (then "(raw)" in the name)."""
        raw = raw is True
        try:
            text = await in_session(
                get_runtime().open_session,
                table_service.export_csv,
                table_id=int(table_id),
                raw=raw,
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        safe = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in str(name)[:200])
        filename = f"{safe.strip() or 'table'}{' (raw)' if raw else ''}.csv"
        return rx.download(data=text.encode("utf-8"), filename=filename, mime_type="text/csv")

    @rx.event
    async def delete_table(self, table_id: int):
        try:
            await in_transaction(
                get_runtime().open_session, table_service.delete_table, table_id=table_id
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        self.notice = "Table deleted."
        return TablesState.load


class IndexState(rx.State):
    """The start page opens the first table (the demo on a fresh install)."""

    @rx.event
    async def open_first_table(self):
        tables = await in_session(get_runtime().open_session, table_service.list_tables)
        table_id = tables[0].id if tables else None
        return rx.redirect(routes.table_url(table_id) if table_id else routes.TABLES, replace=True)
