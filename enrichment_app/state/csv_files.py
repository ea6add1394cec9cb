"""CSV import and export on the tables page: long ones show how far they got and can be canceled.

Both run as background events: the work goes on a worker thread (one transaction for an import,
one read for an export) and every ``PROGRESS_SECONDS`` the event shows its counts and passes a
Cancel on. An import reads the upload as it arrives (``rx.upload_files_chunk``); an export
writes the file under Reflex's upload directory (``exports/<random>/<name>.csv``) and the
browser downloads it from there. Those files are deleted ``EXPORT_KEEP_SECONDS`` after they
were written; the random part of their address is what keeps them private until then (a
link made for the user the access rule allowed, as a signed URL would be).

Every handler goes through the access rule (``state/access.py``): an import needs the right
to create tables in the current workspace, an export the right to export the table, and
both are written to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import reflex as rx

from enrichment_app import routes
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import CanceledByUserError, EnrichmentAppError
from enrichment_app.runtime import Runtime, get_runtime
from enrichment_app.services import csv_files
from enrichment_app.services.access import Action, Grant
from enrichment_app.services.csv_export import export_filename
from enrichment_app.services.csv_reading import too_large
from enrichment_app.services.tables import MAX_NAME_CHARS
from enrichment_app.services.transfer import Progress, Spool
from enrichment_app.state.access import current_grant, current_workspace, guard, table_argument

PROGRESS_SECONDS = 0.25
"""How often a running import or export shows how far it got."""
UPLOAD_STALL_SECONDS = 60.0
"""How long an upload may send nothing before the import gives up on it."""
DRAIN_STALL_SECONDS = 5.0
ONE_FILE = "Choose one CSV file at a time."
EXPORTS = "exports"
"""The folder of exported files, under Reflex's upload directory."""


async def next_chunk(chunks: rx.UploadChunkIterator, within: float) -> rx.UploadChunk | None:
    """The upload's next chunk, None at its end; ``TimeoutError`` after ``within`` s of nothing."""
    async with asyncio.timeout(within):
        return await anext(chunks, None)


async def _drain(chunks: rx.UploadChunkIterator) -> None:
    """Read what is left of a refused upload, so that its request ends as the edge guard says
    (413 past its cap) rather than as an upload cut short; if nothing comes for a few seconds
    (the guard has ended the request), stop."""
    with contextlib.suppress(TimeoutError):
        while await next_chunk(chunks, DRAIN_STALL_SECONDS) is not None:
            pass


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def is_id(value: object) -> bool:
    """Whether a handler argument is a table id a database could hold (clients send anything)."""
    return type(value) is int and 1 <= value < 2**63


class CsvFilesMixin(rx.State, mixin=True):
    new_table_name: str = ""
    message: str = ""
    notice: str = ""
    importing: bool = False
    import_file: str = ""
    import_phase: str = ""
    """"Receiving" while the file arrives, "Importing" while its rows are written."""
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
    @guard(Action.CREATE_TABLE, target=current_workspace)
    def table_name_changed(self, value: str):
        self.new_table_name = value[:MAX_NAME_CHARS] if isinstance(value, str) else ""

    async def _say(self, *, message: str = "", notice: str = "") -> None:
        async with self:
            self.message, self.notice = message, notice

    # --- import ----------------------------------------------------------------------

    @rx.event
    @guard(Action.CREATE_TABLE, target=current_workspace)
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

    @rx.var
    def import_text(self) -> str:
        """What the running import is doing: the file arriving, then its rows being read."""
        if self.import_phase == "Importing":
            return f"Importing {self.import_file}: {self.import_rows:,} rows read"
        size = f" of {_megabytes(self.import_size)}" if self.import_size else ""
        return f"Receiving {self.import_file}: {_megabytes(self.import_bytes)}{size}"

    @rx.event
    @guard(Action.CREATE_TABLE, target=current_workspace)
    def cancel_import(self):
        """Stop the running import at its next row; nothing of it is stored."""
        if self.importing:
            self._import_cancel = True

    @rx.event(background=True)
    @guard(Action.CREATE_TABLE, target=current_workspace)
    async def import_csv(self, chunks: rx.UploadChunkIterator):
        """Create a table from the uploaded CSV: the header row becomes its columns. All or
        nothing, with the bytes received, then the rows read, shown as it goes, and Cancel."""
        runtime, grant = get_runtime(), current_grant()
        if not isinstance(chunks, rx.UploadChunkIterator):  # sent by hand, not by the upload
            async with self:
                self.message = "Choose a CSV file first."
            return
        async with self:
            if self.importing:
                return
            self.importing, self._import_cancel = True, False
            self.message = self.notice = ""
            self.import_rows = self.import_bytes = 0  # the size comes with the upload's progress
            self.import_file, self.import_phase = "", "Receiving"
            typed = self.new_table_name.strip()
        progress = Progress()
        spool = Spool(max_bytes=runtime.settings.max_csv_bytes)
        reporter = asyncio.create_task(self._report_import(progress))
        try:
            filename = await self._receive(chunks, spool, progress)
            table_id = None
            if filename is not None:
                name = typed or Path(filename).stem or "Imported table"
                progress.bytes = 0  # now the bytes read by the import
                async with self:
                    self.import_phase, self.import_bytes = "Importing", 0
                table_id = await self._import(runtime, spool, progress, filename, name, grant)
        finally:
            reporter.cancel()
            await asyncio.wait([reporter])
            spool.close()
            async with self:
                self.importing, self.import_size = False, 0
        if table_id is None:
            return
        async with self:
            self.new_table_name = ""
            self.notice = f"Imported '{name}'."
        yield rx.clear_selected_files("csv_upload")
        yield rx.redirect(routes.table_url(table_id))

    async def _receive(
        self, chunks: rx.UploadChunkIterator, spool: Spool, progress: Progress
    ) -> str | None:
        """Keep the upload in ``spool`` as it arrives; its file's name, or None (the reason
        shown) if there was no file, it was refused or canceled, or it stopped arriving."""
        filename: str | None = None
        try:
            while (chunk := await next_chunk(chunks, UPLOAD_STALL_SECONDS)) is not None:
                if filename is None:
                    filename = chunk.filename
                    async with self:
                        self.import_file = filename
                if chunk.filename != filename:
                    await self._say(message=f"Could not import {filename}: {ONE_FILE}")
                    return None
                if progress.canceled:
                    await self._say(notice="Import canceled; nothing was stored.")
                    return None
                if not spool.write(chunk.data):
                    await self._say(
                        message=f"Could not import {filename}: {too_large(spool.max_bytes)}"
                    )
                    await _drain(chunks)  # up to the guard's cap, which answers 413 past it
                    return None
                progress.bytes = spool.size
        except TimeoutError:
            await self._say(message=f"Could not import {filename}: the upload stopped arriving.")
            return None
        except asyncio.CancelledError:  # the browser dropped the upload (Cancel aborts it too)
            await self._say(notice="Import canceled; nothing was stored.")
            raise
        if filename is None:
            await self._say(message="Choose a CSV file first.")
        return filename

    async def _import(
        self,
        runtime: Runtime,
        spool: Spool,
        progress: Progress,
        filename: str,
        name: str,
        grant: Grant,
    ) -> int | None:
        """Import the kept upload on a worker thread, in one transaction; the new table's id,
        or None (the reason shown) if it was refused or canceled."""
        work = asyncio.create_task(
            in_transaction(
                runtime.open_session,
                csv_files.import_and_record,
                grant=grant,
                filename=filename,
                name=name,
                chunks=spool.chunks(),
                max_bytes=spool.max_bytes,
                max_cell_chars=runtime.settings.max_cell_chars,
                progress=progress,
            )
        )
        try:
            table = await asyncio.shield(work)
        except CanceledByUserError:
            await self._say(notice="Import canceled; nothing was stored.")
            return None
        except EnrichmentAppError as exc:
            await self._say(message=f"Could not import {filename}: {exc}")
            return None
        except asyncio.CancelledError:  # the server is stopping: the import rolls back
            progress.cancel()
            await asyncio.wait([work])
            raise
        return table.id

    async def _report_import(self, progress: Progress) -> None:
        """Show the bytes received and the rows read so far, and pass Cancel on."""
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            async with self:
                self.import_rows, self.import_bytes = progress.rows, progress.bytes
                canceled = self._import_cancel
            if canceled:
                progress.cancel()

    # --- export ----------------------------------------------------------------------

    @rx.var
    def export_percent(self) -> int:
        if not self.export_total:
            return 0
        return min(100, self.export_rows * 100 // self.export_total)

    @rx.event
    @guard(Action.VIEW, target=current_workspace)
    def cancel_export(self):
        """Stop the running export; its file is deleted."""
        if self.exporting:
            self._export_cancel = True

    @rx.event(background=True)
    @guard(Action.EXPORT, target=table_argument("table_id"))
    async def export_csv(self, table_id: int, name: str, raw: bool = False):
        """Write the table as CSV, showing the rows written, then download the file; formulas
        neutralised unless ``raw`` (then "(raw)" in the file's name).

        The file is named after the table as stored; ``name`` is what the page shows, and is
        not trusted."""
        del name
        raw = raw is True
        if not is_id(table_id):
            return
        runtime = get_runtime()
        async with self:
            if self.exporting:
                self.message = "An export is already running; wait for it or cancel it."
                return
            self.exporting, self._export_cancel = table_id, False
            self.export_rows = self.export_total = 0
            self.message = self.notice = ""
        try:
            table_name = await in_transaction(
                runtime.open_session,
                csv_files.start_export,
                grant=current_grant(),
                table_id=table_id,
                raw=raw,
            )
        except EnrichmentAppError as exc:
            async with self:
                self.exporting, self.message = 0, str(exc)
            return
        async with self:
            self.export_name = table_name
        filename = export_filename(table_name, raw=raw)
        root = rx.get_upload_dir() / EXPORTS
        folder = secrets.token_urlsafe(24)
        path = root / folder / filename
        csv_files.forget_old_exports(root, now=time.time())
        progress = Progress()
        work = asyncio.create_task(
            in_session(
                runtime.open_session,
                csv_files.write_export,
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
