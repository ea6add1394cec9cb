"""Following a Trigger.dev run over Realtime, and coming back to it after a failure.

``follow_run`` relays the run's feed (``RunHub``: status, progress and each finished cell).
If the feed fails, the page says so and why, follows the job through the database
(``watch_job``'s reads), and tries Realtime again after 1 s, then 2, 4… up to 30 s; as soon as
a feed answers, the page is live again.
"""

from __future__ import annotations

import asyncio
from enum import Enum

import reflex as rx

from enrichment_app.db.sessions import in_session
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.live.events import CellBatch, FeedFailed, RunSnapshot
from enrichment_app.runtime import get_runtime
from enrichment_app.services import grid as grid_service
from enrichment_app.services.access import Action
from enrichment_app.state.access import guard
from enrichment_app.state.table.pacing import ViewPace
from enrichment_app.state.table.watching import (
    RECHECK_SECONDS,
    TAB_CHECK_SECONDS,
    Polled,
    WatchMixin,
    _tab_is_open,
)

LIVE_RETRY_FIRST_SECONDS = 1.0
LIVE_RETRY_MAX_SECONDS = 30.0


class Followed(Enum):
    FINAL = "final"
    GONE = "gone"
    FAILED = "failed"


def live_retry_delay(attempt: int) -> float:
    """Seconds before trying the run's feed again, for attempt number ``attempt`` (1-based)."""
    return min(LIVE_RETRY_FIRST_SECONDS * 2.0 ** (attempt - 1), LIVE_RETRY_MAX_SECONDS)


class FollowMixin(WatchMixin, mixin=True):
    def _apply_run_event(self, event: RunSnapshot | CellBatch) -> None:
        if isinstance(event, RunSnapshot):
            # Only what changed: each assignment marks the var, and the computed vars that
            # read it, to be recomputed and sent to the browser.
            changed: dict[str, object] = {
                "run_status": event.status,
                "job_error": event.error or "",
            }
            if event.total:
                changed.update(job_done=event.done, job_failed=event.failed, job_total=event.total)
            for name, value in changed.items():
                if getattr(self, name) != value:
                    setattr(self, name, value)
            return
        # Only the rows in the window are on the page; the others are read when scrolled to.
        rows, columns = self._row_index, self._col_index
        for cell in event.cells:
            r, c = rows.get(cell.row_id), columns.get(cell.column_id)
            if r is None or c is None:
                continue
            current = self.window_cells[r][c]
            value = (cell.value or "") if cell.status == "done" else current.get("v", "")
            self.window_cells[r][c] = {"v": value, "s": cell.status, "e": cell.error or ""}

    @rx.event(background=True)
    @guard(Action.VIEW)
    async def follow_run(self):
        """Follow a Trigger.dev run over Realtime and push each change to the browser.

        The upstream subscription is shared by every tab watching the run (``RunHub``). If
        Realtime fails, the page says so, polls the database, and tries Realtime again with a
        growing wait until it answers or the job ends.
        """
        async with self:
            self._watch_generation += 1
            generation = self._watch_generation
            run_id = self._run_id
            token = self.router.session.client_token
        attempt = 0
        while True:
            followed, reason, answered = await self._follow_live(generation, run_id, token)
            if followed is Followed.FINAL:
                await self._refresh_after_job(generation)
                return self.__class__.watch_table
            if followed is Followed.GONE:
                return None
            attempt = 1 if answered else attempt + 1
            delay = live_retry_delay(attempt)
            async with self:
                if self._watch_generation != generation:
                    return None
                self.live = False
                self.run_reason = (
                    f"Live updates are unavailable ({reason or 'the feed ended early'}); "
                    f"following the job by polling, and trying Realtime again in {delay:g} s."
                )
            until = asyncio.get_running_loop().time() + delay
            polled = await self._poll_until_final(generation, until=until)
            if polled is Polled.FINAL:
                async with self:
                    self.run_reason = ""
                return self.__class__.watch_table
            if polled is not Polled.RETRY_LIVE:
                return None

    async def _follow_live(
        self, generation: int, run_id: str, token: str
    ) -> tuple[Followed, str | None, bool]:
        """Relay the run's feed: how it ended, why if it failed, and whether it answered."""
        hub = get_runtime().hub
        if hub is None or not run_id:
            return Followed.FAILED, "Trigger.dev mode is off in this process", False
        answered = False
        loop = asyncio.get_running_loop()
        checked = loop.time()
        pace = ViewPace()
        async with hub.watch(run_id) as watcher:
            while True:
                try:
                    async with asyncio.timeout(pace.wait(loop.time(), TAB_CHECK_SECONDS)):
                        event = await watcher.next()
                except TimeoutError:
                    if pace.settle(loop.time()):  # the cells stopped: read the view
                        await self._read_view_again(generation)
                        continue
                    if not _tab_is_open(token) or not await self._still_allowed():
                        return Followed.GONE, None, answered
                    continue
                if event is None:
                    return Followed.FAILED, None, answered
                if loop.time() - checked >= RECHECK_SECONDS:
                    if not await self._still_allowed():  # the session ended: relay no more
                        return Followed.GONE, None, answered
                    checked = loop.time()
                if isinstance(event, FeedFailed):
                    return Followed.FAILED, event.reason, answered
                async with self:
                    if self._watch_generation != generation:
                        return Followed.GONE, None, answered
                    if not answered and self.run_reason:  # Realtime is back
                        self.run_reason = ""
                    if not self.live:
                        self.live = True
                    self._apply_run_event(event)
                    viewed = not self._current_view().is_default
                answered = True
                # Drawn in place; rows may have left the view or moved: read it at its pace.
                if viewed and isinstance(event, CellBatch) and pace.owe(loop.time()):
                    await self._read_view_again(generation)
                if isinstance(event, RunSnapshot) and event.is_final:
                    return Followed.FINAL, None, answered

    async def _read_view_again(self, generation: int) -> None:
        """Read the window of the page's view again, if the table changed since it was read:
        the run's cells may have moved rows out of a filter or along a sort. The run's status
        stays the feed's."""
        async with self:
            job_id, table_id, since = self.job_id, self.table_id, self._since
            view, view_key, span = self._current_view(), self._view_key(), self._window_span()
            version = self._window_version
        if view.is_default or not job_id:
            return
        try:
            poll = await in_session(
                get_runtime().open_session,
                grid_service.poll_job,
                job_id=job_id,
                table_id=table_id,
                since=since,
                row_ids=[],
                view=view,
                span=span,
            )
        except EnrichmentAppError:
            return  # read again at the next batch, and when the run ends
        if poll.meta is None or poll.window is None:
            return
        async with self:
            if self._watch_generation != generation or self._view_key() != view_key:
                return
            if self._window_version == version:  # else the grid scrolled: its read is newer
                self._apply_grid(poll.meta, poll.window, span[0])
                self._since = poll.marker
