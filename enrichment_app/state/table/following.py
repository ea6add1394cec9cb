"""Following a job, and the table while no job runs: three background loops.

``follow_run`` relays a Trigger.dev run over Realtime, ``watch_job`` polls the database for a
local job (or when Realtime fails), and ``watch_table`` picks up what other tabs and the REST
API change while the table is idle. Each loop stops with its tab, and when a newer loop of its
kind took over (the ``_watch_generation`` and ``_refresh_generation`` counters), and as soon
as the tab's session is no longer allowed to see the table (``_still_allowed``, every round).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import reflex as rx
from reflex_base.registry import RegistrationContext
from reflex_base.utils.exceptions import ReflexRuntimeError

from enrichment_app.db.sessions import in_session
from enrichment_app.domain import JobBackend
from enrichment_app.errors import EnrichmentAppError, NotFoundError
from enrichment_app.live.events import CellUpdate, FeedFailed, RunSnapshot
from enrichment_app.runtime import get_runtime
from enrichment_app.services import grid as grid_service
from enrichment_app.services.access import Action
from enrichment_app.state.access import guard
from enrichment_app.state.table.job import JobMixin

POLL_FIRST_SECONDS = 0.5
POLL_MAX_SECONDS = 3.0
POLL_BACKOFF = 1.5
RECHECK_SECONDS = 1.0
"""How often a live feed re-checks the tab's session while events stream in."""
TAB_CHECK_SECONDS = 5.0
"""How often a live watcher with nothing to relay checks that its tab is still there."""


def _tab_is_open(token: str) -> bool:
    """Whether a browser tab with this client token is still connected to this backend."""
    try:
        # The registered app, as Reflex's own shared state looks it up. (get_and_validate_app
        # would re-validate and append the cwd to sys.path on every call.)
        namespace = RegistrationContext.get().app.event_namespace
    except ReflexRuntimeError:  # no app in this process: assume the tab is there
        return True
    return namespace is None or token in namespace.token_to_sid


class FollowMixin(JobMixin, mixin=True):
    _since: datetime | None = None
    """When the window's cells were last read; the next read asks for what changed since."""
    _watch_generation: int = 0
    _refresh_generation: int = 0

    def _follow_event(self):
        """Follow the current job over Realtime when Trigger.dev runs it, else by polling."""
        # ``self.__class__``: the page's own state class, also through a background task's
        # proxy (a mixin's own attributes are plain functions, not event handlers).
        if self.job_backend == JobBackend.TRIGGER.value and self._run_id and get_runtime().hub:
            self.live = True
            return self.__class__.follow_run
        self.live = False
        return self.__class__.watch_job

    @rx.event(background=True)
    @guard(Action.VIEW)
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
            if not _tab_is_open(token) or not await self._still_allowed():
                return
            async with self:
                if self._refresh_generation != generation or self.table_id != table_id:
                    return
                if self._status_line().active:
                    return
                starting = self.starting
                since, row_ids = self._since, list(self._window_row_ids)
                version = self._window_version
                shown = grid_service.Shown(
                    self.table_name,
                    [dict(c) for c in self.grid_columns],
                    self.row_count,
                    *self._window_span(),
                )
            if starting:  # Run was pressed here: the job it starts will be active next time
                continue
            try:
                seen = await in_session(
                    runtime.open_session,
                    grid_service.read_elsewhere,
                    table_id=table_id,
                    since=since,
                    row_ids=row_ids,
                    shown=shown,
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
    @guard(Action.VIEW)
    async def watch_job(self):
        """Follow the job by polling the database, pushing every change to the browser.

        Polls every 0.5 s while things change, backing off to 3 s when they don't; stops
        when the job is final, another watcher took over, or the tab is gone.
        """
        async with self:
            self._watch_generation += 1
            generation = self._watch_generation
        if await self._poll_until_final(generation):
            return self.__class__.watch_table
        return None

    async def _poll_until_final(self, generation: int) -> bool:
        """Poll until the job is final (True), or until this watcher is no longer needed."""
        async with self:
            job_id, table_id = self.job_id, self.table_id
            token = self.router.session.client_token
        if not job_id:
            return False
        runtime = get_runtime()
        interval = POLL_FIRST_SECONDS
        last: tuple[str, int, int] | None = None
        while True:
            async with self:
                since, row_ids = self._since, list(self._window_row_ids)
                version = self._window_version
            try:
                poll = await in_session(
                    runtime.open_session,
                    grid_service.poll_job,
                    job_id=job_id,
                    table_id=table_id,
                    since=since,
                    row_ids=row_ids,
                )
            except EnrichmentAppError as exc:
                async with self:
                    self.message = str(exc)
                return False
            view = poll.job
            progress = (view.status, view.done, view.failed)
            async with self:
                if self._watch_generation != generation or self.job_id != job_id:
                    return False
                self._apply_job(view)
                self._apply_cells(poll.changed)
                if self._window_version == version:
                    self._since = poll.marker
                # else the window moved while polling: its new rows were read at some point
                # after ``since``, so poll them again from ``since`` rather than miss a change.
            if view.is_final:
                break
            if not _tab_is_open(token) or not await self._still_allowed():
                return False
            interval = (
                POLL_FIRST_SECONDS
                if (poll.changed or progress != last)
                else min(interval * POLL_BACKOFF, POLL_MAX_SECONDS)
            )
            last = progress
            await asyncio.sleep(interval)
        await self._refresh_after_job(generation)
        return True

    async def _refresh_after_job(self, generation: int) -> None:
        """Reload the grid and the job from the database, the source of truth, once it ended."""
        async with self:
            table_id, job_id = self.table_id, self.job_id
            start, stop = self._window_span()
        try:
            read = await in_session(
                get_runtime().open_session,
                grid_service.read_table,
                table_id=table_id,
                start=start,
                stop=stop,
                job_id=job_id,
            )
        except EnrichmentAppError:
            return
        async with self:
            if self._watch_generation == generation:
                self._apply_grid(read.meta, read.window, start)  # keeps the window if scrolled
                self._apply_job(read.job)

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
    @guard(Action.VIEW)
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
            checked = time.monotonic()
            async with hub.watch(run_id) as watcher:
                while True:
                    try:
                        async with asyncio.timeout(TAB_CHECK_SECONDS):
                            event = await watcher.next()
                    except TimeoutError:
                        if not _tab_is_open(token) or not await self._still_allowed():
                            return
                        continue
                    if event is None:
                        break
                    if time.monotonic() - checked >= RECHECK_SECONDS:
                        if not await self._still_allowed():
                            return
                        checked = time.monotonic()
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
            return self.__class__.watch_table
        async with self:
            if self._watch_generation != generation:
                return
            self.live = False
            self.job_notice = (
                f"Live updates are unavailable ({failure or 'the feed ended early'}); "
                "following the job by polling instead."
            )
        if await self._poll_until_final(generation):
            return self.__class__.watch_table
        return None
