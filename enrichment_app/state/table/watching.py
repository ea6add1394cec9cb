"""The table, and a job followed through the database: pushed while the table's feed is live.

``watch_table`` keeps an idle table current with what other tabs, the REST API, other backend
processes and jobs change; ``watch_job`` follows a job through the database (a local job, a
Trigger.dev run whose Realtime feed failed). Both wait on the table's live feed
(``TableHub``): a change wakes them and they read only what it concerns (the window's rows,
the table's shape, its newest job). While the feed is down they poll, the page says so and
why (``feed_reason``), and they go back to waiting as soon as it is live again. A Trigger.dev
worker writes cells without the bus, so a run that is polled is polled at its own pace.

Each loop stops with its tab, and when a newer loop of its kind took over (the
``_watch_generation`` and ``_refresh_generation`` counters).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import Enum

import reflex as rx
from reflex_base.registry import RegistrationContext
from reflex_base.utils.exceptions import ReflexRuntimeError

from enrichment_app.bus import CELLS, TableChange
from enrichment_app.db.sessions import in_session
from enrichment_app.domain import JobBackend
from enrichment_app.errors import EnrichmentAppError, NotFoundError
from enrichment_app.live.tables import FeedState, TableWatcher
from enrichment_app.runtime import get_runtime
from enrichment_app.services import grid as grid_service
from enrichment_app.services.access import Action
from enrichment_app.state.access import guard
from enrichment_app.state.table.job import JobMixin
from enrichment_app.state.table.pacing import ViewPace
from enrichment_app.views import EVERYTHING

POLL_FIRST_SECONDS = 0.5
POLL_MAX_SECONDS = 3.0
POLL_BACKOFF = 1.5
TAB_CHECK_SECONDS = 5.0
"""How often a watcher with nothing to do checks that its tab is still there."""
PUSH_MIN_SECONDS = 0.05
"""At most one read per this long when changes pour in: the ones between merge into it."""


RECHECK_SECONDS = 1.0
"""How often a live loop re-checks the tab's session while news streams in (and on every
tab check): a session that was revoked stops receiving the table at once."""


def _tab_is_open(token: str) -> bool:
    """Whether a browser tab with this client token is still connected to this backend."""
    try:
        # The registered app, as Reflex's own shared state looks it up. (get_and_validate_app
        # would re-validate and append the cwd to sys.path on every call.)
        namespace = RegistrationContext.get().app.event_namespace
    except ReflexRuntimeError:  # no app in this process: assume the tab is there
        return True
    return namespace is None or token in namespace.token_to_sid


class Polled(Enum):
    """How following a job through the database ended."""

    FINAL = "final"
    GONE = "gone"
    """The tab closed, another loop took over, or the job could not be read."""
    RETRY_LIVE = "retry live"
    """Time to try the run's Realtime feed again."""
    RUN_STARTED = "run started"
    """The job's Trigger.dev run is known now: follow it over Realtime."""


async def _next_news(watcher: TableWatcher, within: float, last_read: float) -> TableChange | None:
    """What changed, waiting at most ``within`` s, and no sooner than PUSH_MIN_SECONDS after
    the last read (what arrives meanwhile is merged in)."""
    change = await watcher.next(within)
    loop = asyncio.get_running_loop()
    pause = last_read + PUSH_MIN_SECONDS - loop.time()
    if change is not None and change.kinds and pause > 0:
        await asyncio.sleep(pause)
        more = await watcher.next(0)
        change = change if more is None else change.merge(more)
    return change


class WatchMixin(JobMixin, mixin=True):
    _watch_generation: int = 0
    _refresh_generation: int = 0

    def _follow_event(self):
        """Follow the current job over Realtime when Trigger.dev runs it, else through the
        database."""
        # ``self.__class__``: the page's own state class, also through a background task's
        # proxy (a mixin's own attributes are plain functions, not event handlers).
        if self.job_backend == JobBackend.TRIGGER.value and self._run_id and get_runtime().hub:
            self.live = True
            return self.__class__.follow_run
        self.live = False
        return self.__class__.watch_job

    def _apply_feed(self, state: FeedState, every: float) -> None:
        if state.live:
            self.feed_reason = ""
        else:
            self.feed_reason = (
                f"Changes made elsewhere are not pushed to this page ({state.reason}); "
                f"it reads the table every {every:g} s until they are again."
            )

    @rx.event(background=True)
    @guard(Action.VIEW)
    async def watch_table(self):
        """While no job runs here, keep the table as other tabs, the API and jobs change it.

        A job started elsewhere is followed as if Run had been pressed here; cells changed
        elsewhere are redrawn (only the window's rows are read), so is the grid when columns
        or rows were added, and a table deleted elsewhere shows as not found. It waits for the
        table's live feed; while that is down it reads every ``TABLE_REFRESH_SECONDS``. It
        stops with the tab, when the page loads again (the new load starts its own), and while
        a job runs: the job's follower keeps the page current and starts this one again when
        the job ends.
        """
        runtime = get_runtime()
        every = runtime.settings.table_refresh_seconds
        async with self:
            self._refresh_generation += 1
            generation, table_id = self._refresh_generation, self.table_id
            token = self.router.session.client_token
        if not every or not table_id:
            return
        loop = asyncio.get_running_loop()
        checked = loop.time()
        async with runtime.tables.watch(table_id) as watcher:
            # Catch up once now that the feed is subscribed: a change made between the page's
            # load and this subscription (another tab's edit, say) sends no news of its own.
            pace = ViewPace()
            follow = await self._read_elsewhere(generation, table_id, None, pace)
            if follow is Polled.GONE:
                return
            if follow is not None:
                yield follow
                return
            last_read = loop.time()
            state: FeedState | None = None
            while True:
                if watcher.state != state:
                    state = watcher.state
                    async with self:
                        if self._refresh_generation != generation:
                            return
                        self._apply_feed(state, every)
                within = pace.wait(loop.time(), TAB_CHECK_SECONDS if state.live else every)
                change = await _next_news(watcher, within, last_read)
                if not _tab_is_open(token):
                    return
                if loop.time() - checked >= RECHECK_SECONDS:
                    if not await self._still_allowed():  # signed out, removed: no more news
                        return
                    checked = loop.time()
                if change is None and watcher.state.live and not pace.owed:
                    continue  # only the tab check
                if change is not None and not change.kinds and watcher.state == state:
                    if not pace.owed:
                        continue
                    change = None
                follow = await self._read_elsewhere(generation, table_id, change, pace)
                last_read = asyncio.get_running_loop().time()
                if follow is Polled.GONE:
                    return
                if follow is not None:
                    yield follow
                    return

    async def _read_elsewhere(
        self, generation: int, table_id: int, change: TableChange | None, pace: ViewPace
    ):
        """Read what ``change`` concerns (everything when None); the job's follow event if a
        job started elsewhere, ``Polled.GONE`` if this loop should end, else None. With a view,
        changed cells are read at ``pace`` (put off, then read together)."""
        async with self:
            if self._refresh_generation != generation or self.table_id != table_id:
                return Polled.GONE
            if self._status_line().active:
                return Polled.GONE
            if self.starting:  # Run was pressed here: the job it starts will be active next
                pace.last = asyncio.get_running_loop().time()  # what is owed: in 0.75 s
                return None
            since, row_ids = self._since, list(self._window_row_ids)
            version = self._window_version
            view, view_key = self._current_view(), self._view_key()
            shown = grid_service.Shown(
                self.table_name,
                [dict(c) for c in self.grid_columns],
                self.row_count,
                *self._window_span(),
                total_rows=self.total_rows,
            )
        only_cells = change is not None and change.kinds <= {CELLS}
        if only_cells and view.is_default and not change.touches_rows(row_ids):
            # Cells of rows this tab does not show. (With a filter or a sort, a row elsewhere
            # may start to match, or move into the window: those are read.)
            return None
        now = asyncio.get_running_loop().time()
        if not view.is_default:
            if only_cells and not pace.owe(now):
                return None  # ``_since`` stays: the read when due covers these cells
            pace.read(now)
        try:
            seen = await in_session(
                get_runtime().open_session,
                grid_service.read_elsewhere,
                table_id=table_id,
                since=since,
                row_ids=row_ids,
                shown=shown,
                view=view,
            )
        except NotFoundError:
            async with self:
                if self._refresh_generation == generation and self.table_id == table_id:
                    self.not_found = True  # deleted elsewhere
            return Polled.GONE
        except EnrichmentAppError:
            return Polled.GONE
        async with self:
            if self._refresh_generation != generation or self.table_id != table_id:
                return Polled.GONE
            if self._status_line().active:
                return Polled.GONE
            if self.starting:
                return None
            if self._view_key() != view_key:  # the view changed meanwhile: read it next time
                return None
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
                    return self._follow_event()
        return None

    @rx.event(background=True)
    @guard(Action.VIEW)
    async def watch_job(self):
        """Follow the job through the database, pushing every change to the browser."""
        async with self:
            self._watch_generation += 1
            generation = self._watch_generation
        polled = await self._poll_until_final(generation)
        if polled is Polled.FINAL:
            return self.__class__.watch_table
        if polled is Polled.RUN_STARTED:
            async with self:
                if self._watch_generation == generation:
                    return self._follow_event()
        return None

    async def _poll_until_final(self, generation: int, until: float | None = None) -> Polled:
        """Read the job until it is final, waking on the table's feed for a local job.

        A local job's writes are published, so while the feed is live each read waits for a
        change; a Trigger.dev job (its worker does not publish) or a feed that is down is read
        every 0.5 s while things change, backing off to 3 s when they don't. With ``until`` (a
        loop time) it returns ``RETRY_LIVE`` then.
        """
        async with self:
            job_id, table_id = self.job_id, self.table_id
            token = self.router.session.client_token
        if not job_id:
            return Polled.GONE
        runtime = get_runtime()
        loop = asyncio.get_running_loop()
        interval = POLL_FIRST_SECONDS
        last: tuple[str, int, int] | None = None
        pace = ViewPace()
        drawn: datetime | None = None
        """When the window's cells were last drawn in place, between reads of the view."""
        async with runtime.tables.watch(table_id) as watcher:
            while True:
                now = loop.time()
                async with self:
                    since, row_ids = self._since, list(self._window_row_ids)
                    version = self._window_version
                    rows_view, span = self._current_view(), self._window_span()
                    view_key = self._view_key()
                # With a view, read it again at its pace; in between, redraw the window's
                # changed cells in place (rows leave or move at the next read).
                in_place = not rows_view.is_default and not pace.due(now)
                try:
                    poll = await in_session(
                        runtime.open_session,
                        grid_service.poll_job,
                        job_id=job_id,
                        table_id=table_id,
                        since=(drawn or since) if in_place else since,
                        row_ids=row_ids,
                        view=EVERYTHING if in_place else rows_view,
                        span=span,
                    )
                except EnrichmentAppError as exc:
                    async with self:
                        self.message = str(exc)
                    return Polled.GONE
                last_read = loop.time()
                view = poll.job
                progress = (view.status, view.done, view.failed)
                async with self:
                    if self._watch_generation != generation or self.job_id != job_id:
                        return Polled.GONE
                    self._apply_job(view)
                    if poll.meta is not None and poll.window is not None:
                        # A view: rows may have left it or moved; the window was read again
                        # (applied unless the view changed or the grid scrolled meanwhile).
                        if self._view_key() == view_key and self._window_version == version:
                            self._apply_grid(poll.meta, poll.window, span[0])
                            self._since = poll.marker
                    elif in_place:
                        self._apply_cells(poll.changed)
                        drawn = poll.marker
                    else:
                        self._apply_cells(poll.changed)
                        if self._window_version == version:
                            self._since = poll.marker
                    # else the window moved while polling: its new rows were read at some
                    # point after ``since``, so poll them again from ``since``.
                    run_started = until is None and bool(self._run_id) and runtime.hub
                if in_place:
                    pace.owed = True
                elif not rows_view.is_default:
                    pace.read(now)
                    drawn = None
                if view.is_final:
                    break
                if run_started:
                    return Polled.RUN_STARTED
                if not _tab_is_open(token) or not await self._still_allowed():
                    return Polled.GONE
                pushed = watcher.state.live and view.backend == JobBackend.LOCAL.value
                interval = (
                    POLL_FIRST_SECONDS
                    if (poll.changed or poll.window is not None or progress != last)
                    else min(interval * POLL_BACKOFF, POLL_MAX_SECONDS)
                )
                last = progress
                wait = pace.wait(loop.time(), TAB_CHECK_SECONDS if pushed else interval)
                if until is not None:
                    if until - loop.time() <= 0:
                        return Polled.RETRY_LIVE
                    wait = min(wait, until - loop.time())
                if pushed:
                    await _next_news(watcher, wait, last_read)
                else:
                    await asyncio.sleep(wait)
        await self._refresh_after_job(generation)
        return Polled.FINAL

    async def _refresh_after_job(self, generation: int) -> None:
        """Reload the grid and the job from the database, the source of truth, once it ended."""
        async with self:
            table_id, job_id = self.table_id, self.job_id
            start, stop = self._window_span()
            view, view_key = self._current_view(), self._view_key()
        try:
            read = await in_session(
                get_runtime().open_session,
                grid_service.read_table,
                table_id=table_id,
                start=start,
                stop=stop,
                job_id=job_id,
                view=view,
            )
        except EnrichmentAppError:
            return
        async with self:
            if self._watch_generation == generation:
                if self._view_key() == view_key:  # else the new view's load read it
                    self._apply_grid(read.meta, read.window, start)  # keeps it if scrolled
                self._apply_job(read.job)
