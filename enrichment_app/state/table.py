"""State of the table page: the grid, the selection, the Run button and the live job status.

The page holds a *window* of the table, not the table: the rows on screen plus a buffer above
and below (``window_cells``, from row ``window_start``), and the total ``row_count`` so the grid's
scrollbar is right. When the grid scrolls past the buffer it reports its visible region
(``view``) and the state loads the rows around it; rows outside the window draw as loading.
Selections are resolved against the database by row position, so selecting a whole column of
100,000 rows runs 100,000 cells; live updates only touch rows in the window (the header's
counts come from the job).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import reflex as rx
from reflex.experimental.client_state import ClientStateVar
from reflex_base.registry import RegistrationContext
from reflex_base.utils.exceptions import ReflexRuntimeError
from sqlmodel import Session

from enrichment_app.db.engine import SessionFactory
from enrichment_app.domain import CellRef, ColumnKind, JobBackend, utcnow
from enrichment_app.errors import EnrichmentAppError, NotFoundError
from enrichment_app.live.events import CellUpdate, FeedFailed, RunSnapshot
from enrichment_app.live.status import STARTING, StatusLine, describe_job, describe_run
from enrichment_app.runner.dispatch import cancel_enrichment, start_enrichment
from enrichment_app.runtime import get_runtime
from enrichment_app.selection import (
    focused_point,
    merge_spans,
    selected_spans,
    span_count,
)
from enrichment_app.services import (
    grid as grid_service,
    jobs as job_service,
    tables as table_service,
)
from enrichment_app.services.jobs import JobView

logger = logging.getLogger(__name__)

POLL_FIRST_SECONDS = 0.5
POLL_MAX_SECONDS = 3.0
POLL_BACKOFF = 1.5
TAB_CHECK_SECONDS = 5.0
"""How often a live watcher with nothing to relay checks that its tab is still there."""
FIRST_WINDOW_ROWS = 120
"""Rows loaded with the page: more than a tall screen shows."""
WINDOW_BUFFER_ROWS = 60
"""Rows kept loaded above and below the visible region."""


def cursor_at(col: int, row: int) -> dict[str, Any]:
    """A selection of just one active cell.

    The grid always keeps an active cell, as spreadsheets do: Glide selects the first cell
    when it gains focus with no current cell, and with a server-controlled selection that
    arrives after the user's own click and overrides it.
    """
    return {
        "current": {
            "cell": [col, row],
            "range": {"x": col, "y": row, "width": 1, "height": 1},
            "rangeStack": [],
        },
        "columns": {"items": []},
        "rows": {"items": []},
    }


INITIAL_SELECTION = cursor_at(0, 0)

grid_selection = ClientStateVar.create("grid_selection", default=INITIAL_SELECTION)
"""The grid's selection lives in the browser, so the grid redraws it at once; every change
is also sent to ``TableState.select``. A server-controlled selection lags the mouse, and
Glide then resets it to the first cell when the canvas takes focus."""


def _tab_is_open(token: str) -> bool:
    """Whether a browser tab with this client token is still connected to this backend."""
    try:
        # The registered app, as Reflex's own shared state looks it up. (get_and_validate_app
        # would re-validate and append the cwd to sys.path on every call.)
        namespace = RegistrationContext.get().app.event_namespace
    except ReflexRuntimeError:  # no app in this process: assume the tab is there
        return True
    return namespace is None or token in namespace.token_to_sid


@dataclass(frozen=True, slots=True)
class _Shown:
    """What a tab shows of its table's shape, and the rows its window spans."""

    name: str
    columns: list[dict[str, Any]]
    row_count: int
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class _Elsewhere:
    """What changed in a table since a tab last read it: its newest job, and either the
    window's changed cells or, when the table's shape changed, its new meta and window."""

    job: JobView | None
    changed: Changes
    marker: datetime
    meta: grid_service.GridMeta | None = None
    window: grid_service.GridWindow | None = None


Changes = list[tuple[int, int, dict[str, str]]]
"""(row id, column id, cell) for each changed cell."""


def _load_grid(
    session: Session, meta: grid_service.GridMeta, start: int, stop: int
) -> grid_service.GridWindow:
    """The rows ``[start, stop)`` of the table ``meta`` describes, with its columns' cells."""
    return grid_service.load_window(
        session=session,
        table_id=meta.table_id,
        start=start,
        stop=stop,
        column_ids=[c["column_id"] for c in meta.columns],
    )


def _changes_in_window(
    session: Session, table_id: int, since: datetime | None, row_ids: list[int]
) -> Changes:
    """The window's cells updated after ``since`` (none before the page has a ``since``)."""
    if since is None:
        return []
    changed = grid_service.changed_cells_in_rows(
        session=session, table_id=table_id, since=since, row_ids=row_ids
    )
    return [(r, c, dict(cell)) for r, c, cell in changed]


def _read_elsewhere(
    open_session: SessionFactory,
    table_id: int,
    since: datetime | None,
    row_ids: list[int],
    shown: _Shown,
) -> _Elsewhere:
    with open_session() as session:
        marker = utcnow()  # taken before reading, so no change slips between reads
        meta = grid_service.load_meta(session=session, table_id=table_id)
        latest = job_service.latest_job(session=session, table_id=table_id)
        job = JobView.of(latest) if latest else None
        columns = [dict(c) for c in meta.columns]
        if (meta.name, columns, meta.row_count) != (shown.name, shown.columns, shown.row_count):
            window = _load_grid(session, meta, shown.start, shown.stop)
            return _Elsewhere(job, [], marker, meta, window)
        return _Elsewhere(job, _changes_in_window(session, table_id, since, row_ids), marker)


class TableState(rx.State):
    """One open table: its grid, what is selected, and the job filling it."""

    table_id: int = 0
    table_name: str = ""
    not_found: bool = False
    load_error: str = ""

    grid_columns: list[dict[str, Any]] = []
    row_count: int = 0
    window_start: int = 0
    """The row index of ``window_cells[0]``."""
    window_cells: list[list[dict[str, str]]] = []
    selection: dict[str, Any] = INITIAL_SELECTION
    run_count: int = 0
    selected_count: int = 0
    focus: list[int] = []

    job_id: int = 0
    job_status: str = ""
    job_backend: str = ""
    job_total: int = 0
    job_done: int = 0
    job_failed: int = 0
    job_error: str = ""
    job_notice: str = ""
    run_status: str = ""
    """The Trigger.dev run's status while the page follows it over Realtime ("" otherwise)."""
    live: bool = False
    """Whether the header is fed by Trigger.dev Realtime (else by polling the database)."""
    trigger_mode: bool = False
    starting: bool = False
    message: str = ""

    _window_row_ids: list[int] = []
    _row_index: dict[int, int] = {}
    """Row id -> index in ``window_cells``, for the rows in the window."""
    _col_index: dict[int, int] = {}
    _window_version: int = 0
    _since: datetime | None = None
    _watch_generation: int = 0
    _refresh_generation: int = 0
    _run_id: str = ""

    # --- computed -----------------------------------------------------------------

    def _status_line(self) -> StatusLine:
        if self.starting:
            return STARTING
        if self.live and self.run_status:
            return describe_run(
                self.run_status,
                done=self.job_done,
                failed=self.job_failed,
                total=self.job_total,
                error=self.job_error or None,
            )
        if self.live and self.job_status and not self.run_status:
            return STARTING  # triggered, no update from the run yet
        return describe_job(
            self.job_status,
            done=self.job_done,
            failed=self.job_failed,
            total=self.job_total,
            error=self.job_error or None,
        )

    @rx.var
    def job_active(self) -> bool:
        return self._status_line().active

    @rx.var
    def status_label(self) -> str:
        """The header's job status, in the seed's words."""
        return self._status_line().label

    @rx.var
    def status_tone(self) -> str:
        return self._status_line().tone

    @rx.var
    def table_meta(self) -> str:
        rows, cols = self.row_count, len(self.grid_columns)
        return f"{rows} row{'s' * (rows != 1)} · {cols} column{'s' * (cols != 1)}"

    @rx.var
    def run_label(self) -> str:
        n = self.run_count
        return f"Run {n} cell" if n == 1 else f"Run {n} cells"

    @rx.var
    def focused_cell(self) -> dict[str, str]:
        """The selected cell, for the inspector: its column, status, value and error."""
        if len(self.focus) != 2:
            return {}
        col, row = self.focus
        cell = self._window_cell(col, row)
        if cell is None:
            return {}
        column = self.grid_columns[col]
        return {
            "column": str(column.get("title", "")),
            "row": str(row + 1),
            "status": cell.get("s", ""),
            "value": cell.get("v", ""),
            "error": cell.get("e", ""),
        }

    @rx.var
    def mode_label(self) -> str:
        if not self.trigger_mode:
            return "Local runner"
        if self.job_notice:
            return "Trigger.dev · polling"
        return "Trigger.dev · live"

    # --- loading ------------------------------------------------------------------

    def _window_cell(self, col: int, row: int) -> dict[str, str] | None:
        """The cell at (col, row) if its row is in the window."""
        r = row - self.window_start
        if 0 <= r < len(self.window_cells) and 0 <= col < len(self.grid_columns):
            return self.window_cells[r][col]
        return None

    def _window_covers(self, first: int, stop: int) -> bool:
        """Whether rows ``[first, stop)`` (clipped to the table) are all in the window."""
        stop = min(stop, self.row_count)
        end = self.window_start + len(self.window_cells)
        return first >= self.window_start and stop <= end

    def _window_span(self) -> tuple[int, int]:
        """The rows to read again to refresh the window: at least a first window's worth."""
        return self.window_start, self.window_start + max(len(self.window_cells), FIRST_WINDOW_ROWS)

    def _apply_grid(
        self, meta: grid_service.GridMeta, window: grid_service.GridWindow, start: int
    ) -> bool:
        """Apply a re-read table; its window only if the user has not scrolled since (True)."""
        self._apply_meta(meta)
        if self.window_start != start:
            return False
        self._apply_window(window)
        return True

    def _apply_meta(self, meta: grid_service.GridMeta) -> None:
        self.table_name = meta.name
        self.grid_columns = [dict(c) for c in meta.columns]
        self.row_count = meta.row_count
        self._col_index = {int(c["column_id"]): i for i, c in enumerate(meta.columns)}

    def _apply_window(self, window: grid_service.GridWindow) -> None:
        self.window_start = window.start
        self.window_cells = [[dict(c) for c in row] for row in window.cells]
        self._window_row_ids = list(window.row_ids)
        self._row_index = {rid: i for i, rid in enumerate(window.row_ids)}
        self._window_version += 1

    def _window_bounds(self, first: int, stop: int) -> tuple[int, int]:
        """The window to load so that rows ``[first, stop)`` have a buffer on both sides."""
        start = max(0, first - WINDOW_BUFFER_ROWS)
        return start, min(self.row_count, max(stop, first + 1) + WINDOW_BUFFER_ROWS)

    async def _load_window(self, start: int, stop: int) -> None:
        """Read rows ``[start, stop)`` from the database into the window."""
        runtime = get_runtime()
        table_id = self.table_id
        column_ids = [int(c["column_id"]) for c in self.grid_columns]

        def read() -> grid_service.GridWindow:
            with runtime.open_session() as session:
                return grid_service.load_window(
                    session=session,
                    table_id=table_id,
                    start=start,
                    stop=stop,
                    column_ids=column_ids,
                )

        self._apply_window(await asyncio.to_thread(read))

    @rx.event
    async def view(self, region: dict[str, Any]):
        """The grid scrolled: make sure the visible rows, plus a buffer, are loaded."""
        try:
            first, height = int(region["y"]), int(region["height"])
        except (KeyError, TypeError, ValueError):
            return
        if not self.table_id or self._window_covers(first, first + height):
            return
        try:
            await self._load_window(*self._window_bounds(first, first + height))
        except EnrichmentAppError as exc:
            self.message = str(exc)

    def _apply_job(self, view: JobView | None) -> None:
        if view is None:
            self.job_id, self.job_status, self.job_backend = 0, "", ""
            self.job_total = self.job_done = self.job_failed = 0
            self.job_error = ""
            return
        if view.id != self.job_id:
            self.run_status, self.live = "", False
        self.job_id = view.id
        self._run_id = view.run_id or ""
        self.job_status = view.status
        self.job_backend = view.backend
        self.job_total, self.job_done, self.job_failed = view.total, view.done, view.failed
        self.job_error = view.error or ""
        self.job_notice = (
            f"Live updates fell back to polling: {view.dispatch_error}"
            if view.dispatch_error
            else ""
        )

    @rx.event
    async def load(self):
        """Load the table named in the URL and re-attach to its running job, if any."""
        raw = self.router.url.path.rstrip("/").rpartition("/")[2]
        self.not_found, self.load_error, self.message = False, "", ""
        self.starting = False
        try:
            table_id = int(raw)
        except (TypeError, ValueError):
            self.not_found, self.table_id = True, 0
            return
        if table_id != self.table_id:
            # Another table: start from its first cell. Reloading the same table (after adding
            # a column, say) keeps the selection, so a click made meanwhile is not undone.
            self._apply_selection(INITIAL_SELECTION)
            yield grid_selection.push(INITIAL_SELECTION)
        runtime = get_runtime()
        self.trigger_mode = runtime.settings.trigger_enabled

        def read() -> tuple[
            grid_service.GridMeta, grid_service.GridWindow, JobView | None, datetime
        ]:
            marker = utcnow()
            with runtime.open_session() as session:
                meta = grid_service.load_meta(session=session, table_id=table_id)
                window = _load_grid(session, meta, 0, FIRST_WINDOW_ROWS)
                job = job_service.latest_job(session=session, table_id=table_id)
                return meta, window, JobView.of(job) if job else None, marker

        try:
            meta, window, job, since = await asyncio.to_thread(read)
        except NotFoundError:
            self.not_found, self.table_id = True, table_id
            return
        self.table_id = table_id
        self._apply_meta(meta)
        self._apply_window(window)
        self._apply_job(job)
        self._since = since
        if job is not None and not job.is_final:
            yield self._follow_event()  # which starts watch_table when the job ends
        else:
            yield TableState.watch_table

    def _follow_event(self):
        """Follow the current job over Realtime when Trigger.dev runs it, else by polling."""
        if self.job_backend == JobBackend.TRIGGER.value and self._run_id and get_runtime().hub:
            self.live = True
            return TableState.follow_run
        self.live = False
        return TableState.watch_job

    # --- selection and editing ------------------------------------------------------

    @rx.event
    async def select(self, selection: dict[str, Any]):
        """Track the grid selection and how many of its cells would run."""
        self._apply_selection(selection)
        if len(self.focus) == 2 and 0 <= self.focus[1] < self.row_count:
            row = self.focus[1]
            if not self._window_covers(row, row + 1):  # the inspector needs the focused cell
                try:
                    await self._load_window(*self._window_bounds(row, row + 1))
                except EnrichmentAppError as exc:
                    self.message = str(exc)

    def _selected_spans(self) -> dict[int, list[tuple[int, int]]]:
        return selected_spans(self.selection, n_cols=len(self.grid_columns), n_rows=self.row_count)

    def _apply_selection(self, selection: dict[str, Any]) -> None:
        self.selection = selection
        spans = self._selected_spans()
        self.selected_count = sum(span_count(s) for s in spans.values())
        kinds = [c.get("kind") for c in self.grid_columns]
        self.run_count = sum(
            span_count(s) for col, s in spans.items() if kinds[col] == ColumnKind.ENRICHMENT.value
        )
        focus = focused_point(selection)
        self.focus = list(focus) if focus else []

    @rx.event
    def clear_selection(self):
        """Escape clears the selected ranges but keeps the active cell."""
        col, row = self.focus if len(self.focus) == 2 else (0, 0)
        self._apply_selection(cursor_at(col, row))
        return grid_selection.push(self.selection)

    async def _runnable_refs(self) -> list[CellRef]:
        """The selected enrichment cells, with row ids read from the database by position."""
        by_column = {
            int(self.grid_columns[col]["column_id"]): spans
            for col, spans in self._selected_spans().items()
            if self.grid_columns[col].get("kind") == ColumnKind.ENRICHMENT.value
        }
        if not by_column:
            return []
        runtime = get_runtime()
        table_id = self.table_id

        def read() -> list[CellRef]:
            ids: dict[int, int] = {}
            with runtime.open_session() as session:
                for start, stop in merge_spans(s for ss in by_column.values() for s in ss):
                    found = grid_service.row_ids_between(
                        session=session, table_id=table_id, start=start, stop=stop
                    )
                    ids.update(zip(range(start, stop), found, strict=False))
            return [
                CellRef(row_id=ids[row], column_id=column_id)
                for column_id, spans in by_column.items()
                for start, stop in spans
                for row in range(start, stop)
                if row in ids
            ]

        return await asyncio.to_thread(read)

    async def _row_id_at(self, row: int) -> int | None:
        r = row - self.window_start
        if 0 <= r < len(self._window_row_ids):
            return self._window_row_ids[r]
        runtime = get_runtime()
        table_id = self.table_id

        def read() -> list[int]:
            with runtime.open_session() as session:
                return grid_service.row_ids_between(
                    session=session, table_id=table_id, start=row, stop=row + 1
                )

        found = await asyncio.to_thread(read)
        return found[0] if found else None

    @rx.event
    async def edit_cell(self, pos: tuple[int, int], new_cell: dict[str, Any]):
        """Persist an edit to an input cell."""
        col, row = int(pos[0]), int(pos[1])
        if not (0 <= row < self.row_count and 0 <= col < len(self.grid_columns)):
            return
        value = new_cell.get("data")
        value = "" if value is None else str(value)
        runtime = get_runtime()
        column_id = int(self.grid_columns[col]["column_id"])
        row_id = await self._row_id_at(row)
        if row_id is None:
            return

        def write() -> dict[str, str]:
            with runtime.open_session() as session:
                cell = table_service.update_cell(
                    session=session,
                    table_id=self.table_id,
                    row_id=row_id,
                    column_id=column_id,
                    value=value,
                    max_cell_chars=runtime.settings.max_cell_chars,
                )
                session.commit()
                return dict(grid_service.grid_cell(cell))

        try:
            cell = await asyncio.to_thread(write)
            self.message = ""
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        r = self._row_index.get(row_id)
        if r is not None:
            self.window_cells[r][col] = cell

    # --- running ------------------------------------------------------------------

    @rx.event
    async def run(self):
        """Create a job for the selected enrichment cells and start following it."""
        if self.job_active:
            return
        if self.run_count == 0:
            self.message = "Select one or more cells in an enrichment column (marked ✦) to run."
            return
        runtime = get_runtime()
        max_cells = runtime.settings.max_cells_per_job
        if self.run_count > max_cells:
            self.message = (
                f"{self.run_count} cells selected; one job can run at most {max_cells}. "
                "Select fewer cells."
            )
            return
        self.message = ""
        self.starting = True
        yield
        try:
            refs = await self._runnable_refs()
        except EnrichmentAppError as exc:
            self.starting = False
            self.message = str(exc)
            return
        try:
            started = await start_enrichment(
                open_session=runtime.open_session,
                runner=runtime.dispatcher,
                backend=runtime.backend,
                table_id=self.table_id,
                cells=refs,
                max_cells=runtime.settings.max_cells_per_job,
            )
        except EnrichmentAppError as exc:
            self.starting = False
            self.message = str(exc)
            return
        view = started.job
        self._apply_job(view)
        for ref in refs:
            r, c = self._row_index.get(ref.row_id), self._col_index.get(ref.column_id)
            if (
                r is not None
                and c is not None
                and self.window_cells[r][c].get("s") not in ("queued", "running")
            ):
                self.window_cells[r][c] = {**self.window_cells[r][c], "s": "queued", "e": ""}
        self.starting = False
        yield self._follow_event()

    @rx.event
    async def cancel(self):
        """Cancel the running job; finished cells keep their values."""
        if not self.job_id:
            return
        runtime = get_runtime()
        job_id = self.job_id

        try:
            view = await cancel_enrichment(
                open_session=runtime.open_session, runner=runtime.dispatcher, job_id=job_id
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        self._apply_job(view)
        if self.live:
            self.run_status = "CANCELED"

    def _apply_changes(self, view: JobView, changed: Changes) -> None:
        self._apply_job(view)
        self._apply_cells(changed)

    def _apply_cells(self, changed: Changes) -> None:
        for row_id, column_id, cell in changed:
            r, c = self._row_index.get(row_id), self._col_index.get(column_id)
            if r is not None and c is not None and self.window_cells[r][c] != cell:
                self.window_cells[r][c] = cell

    @rx.event(background=True)
    async def watch_table(self):
        """While no job runs here, pick up what other tabs and the REST API change.

        A job started elsewhere is followed as if Run had been pressed here; cells edited or
        filled elsewhere are redrawn, and so is the grid when columns or rows were added
        elsewhere; a table deleted elsewhere shows as not found. One small read every
        ``TABLE_REFRESH_SECONDS``. It stops with the tab, when the page loads again (the new
        load starts its own), and while a job runs: the job's watcher keeps the page current
        and starts this one again when the job ends, so a tab watching a job costs nothing
        more.
        """
        runtime = get_runtime()
        every = runtime.settings.table_refresh_seconds
        async with self:
            self._refresh_generation += 1
            generation, table_id = self._refresh_generation, self.table_id
            token = self.router.session.client_token
        if not every or not table_id:
            return

        while True:
            await asyncio.sleep(every)
            if not _tab_is_open(token):
                return
            async with self:
                if self._refresh_generation != generation or self.table_id != table_id:
                    return
                if self._status_line().active:
                    return
                starting = self.starting
                since, row_ids = self._since, list(self._window_row_ids)
                version = self._window_version
                shown = _Shown(
                    self.table_name,
                    [dict(c) for c in self.grid_columns],
                    self.row_count,
                    *self._window_span(),
                )
            if starting:  # Run was pressed here: the job it starts will be active next time
                continue
            try:
                seen = await asyncio.to_thread(
                    _read_elsewhere, runtime.open_session, table_id, since, row_ids, shown
                )
            except NotFoundError:
                async with self:
                    if self._refresh_generation == generation and self.table_id == table_id:
                        self.not_found = True  # deleted in another tab
                return
            except EnrichmentAppError:
                return
            follow = None
            async with self:
                if self._refresh_generation != generation or self.table_id != table_id:
                    return
                if self._status_line().active:
                    return
                if self.starting:
                    continue
                if seen.meta is not None and seen.window is not None:
                    if self._apply_grid(seen.meta, seen.window, shown.start):
                        self._since = seen.marker
                else:
                    self._apply_cells(seen.changed)
                    if self._window_version == version:
                        self._since = seen.marker
                if seen.job is not None and seen.job.id != self.job_id:
                    self._apply_job(seen.job)
                    if not seen.job.is_final:
                        follow = self._follow_event()
            if follow is not None:
                yield follow
                return

    @rx.event(background=True)
    async def watch_job(self):
        """Follow the job by polling the database, pushing every change to the browser.

        Polls every 0.5 s while things change, backing off to 3 s when they don't; stops
        when the job is final, another watcher took over, or the tab is gone.
        """
        async with self:
            self._watch_generation += 1
            generation = self._watch_generation
        if await self._poll_until_final(generation):
            return TableState.watch_table
        return None

    async def _poll_until_final(self, generation: int) -> bool:
        """Poll until the job is final (True), or until this watcher is no longer needed."""
        async with self:
            job_id, table_id = self.job_id, self.table_id
            token = self.router.session.client_token
        if not job_id:
            return False
        runtime = get_runtime()

        def poll(since: datetime | None, row_ids: list[int]) -> tuple[JobView, Changes, datetime]:
            with runtime.open_session() as session:
                marker = utcnow()  # taken before reading, so no change slips between polls
                view = JobView.of(job_service.get_job(session=session, job_id=job_id))
                return view, _changes_in_window(session, table_id, since, row_ids), marker

        interval = POLL_FIRST_SECONDS
        last: tuple[str, int, int] | None = None
        while True:
            async with self:
                since, row_ids = self._since, list(self._window_row_ids)
                version = self._window_version
            try:
                view, changed, marker = await asyncio.to_thread(poll, since, row_ids)
            except EnrichmentAppError as exc:
                async with self:
                    self.message = str(exc)
                return False
            progress = (view.status, view.done, view.failed)
            async with self:
                if self._watch_generation != generation or self.job_id != job_id:
                    return False
                self._apply_changes(view, changed)
                if self._window_version == version:
                    self._since = marker
                # else the window moved while polling: its new rows were read at some point
                # after ``since``, so poll them again from ``since`` rather than miss a change.
            if view.is_final:
                break
            if not _tab_is_open(token):
                return False
            interval = (
                POLL_FIRST_SECONDS
                if (changed or progress != last)
                else min(interval * POLL_BACKOFF, POLL_MAX_SECONDS)
            )
            last = progress
            await asyncio.sleep(interval)
        await self._refresh_after_job(generation)
        return True

    async def _refresh_after_job(self, generation: int) -> None:
        """Reload the grid and the job from the database, the source of truth, once it ended."""
        runtime = get_runtime()
        async with self:
            table_id, job_id = self.table_id, self.job_id
            start, stop = self._window_span()

        def read() -> tuple[grid_service.GridMeta, grid_service.GridWindow, JobView]:
            with runtime.open_session() as session:
                meta = grid_service.load_meta(session=session, table_id=table_id)
                window = _load_grid(session, meta, start, stop)
                return meta, window, JobView.of(job_service.get_job(session=session, job_id=job_id))

        try:
            meta, window, view = await asyncio.to_thread(read)
        except EnrichmentAppError:
            return
        async with self:
            if self._watch_generation == generation:
                self._apply_grid(meta, window, start)  # keeps the window if the user scrolled
                self._apply_job(view)

    def _apply_run_event(self, event: RunSnapshot | CellUpdate) -> None:
        if isinstance(event, RunSnapshot):
            self.run_status = event.status
            if event.total:
                self.job_done, self.job_failed, self.job_total = (
                    event.done,
                    event.failed,
                    event.total,
                )
            self.job_error = event.error or ""
            return
        r, c = self._row_index.get(event.row_id), self._col_index.get(event.column_id)
        if r is None or c is None:
            return
        current = self.window_cells[r][c]
        value = (event.value or "") if event.status == "done" else current.get("v", "")
        self.window_cells[r][c] = {"v": value, "s": event.status, "e": event.error or ""}

    @rx.event(background=True)
    async def follow_run(self):
        """Follow a Trigger.dev run over Realtime and push each change to the browser.

        The upstream subscription is shared by every tab watching the run (``RunHub``). If
        Realtime fails, the page says so and falls back to polling the database.
        """
        async with self:
            self._watch_generation += 1
            generation = self._watch_generation
            run_id = self._run_id
            token = self.router.session.client_token
        hub = get_runtime().hub
        failure: str | None = None
        final = False
        if hub is not None and run_id:
            async with hub.watch(run_id) as watcher:
                while True:
                    try:
                        async with asyncio.timeout(TAB_CHECK_SECONDS):
                            event = await watcher.next()
                    except TimeoutError:
                        if not _tab_is_open(token):
                            return
                        continue
                    if event is None:
                        break
                    if isinstance(event, FeedFailed):
                        failure = event.reason
                        break
                    async with self:
                        if self._watch_generation != generation:
                            return
                        self._apply_run_event(event)
                    if isinstance(event, RunSnapshot) and event.is_final:
                        final = True
                        break
        if final:
            await self._refresh_after_job(generation)
            return TableState.watch_table
        async with self:
            if self._watch_generation != generation:
                return
            self.live = False
            self.job_notice = (
                f"Live updates are unavailable ({failure or 'the feed ended early'}); "
                "following the job by polling instead."
            )
        if await self._poll_until_final(generation):
            return TableState.watch_table
        return None

    @rx.event
    def dismiss_message(self):
        self.message = ""
