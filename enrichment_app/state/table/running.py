"""Run and Cancel: start a job on the selected enrichment cells, or stop the running one.

Both are background events: Trigger.dev may take a while to answer (the client retries a
call up to 5 times, 30 s each), and a handler that awaited it would hold the tab's state,
so every other event of the tab, Cancel included, would wait behind it (and with Redis the
state lock may expire). They take the state only to read and write it; the database and the
network are awaited outside.
"""

from __future__ import annotations

import reflex as rx

from enrichment_app.domain import CellStatus
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.rate_limits import Limit, client_key
from enrichment_app.runtime import get_runtime
from enrichment_app.services import audit
from enrichment_app.services.access import Action
from enrichment_app.services.enrichment import (
    EnrichmentCreated,
    EnrichmentStarted,
    cancel_enrichment,
    create_enrichment,
    dispatch_enrichment,
)
from enrichment_app.services.jobs import JobView
from enrichment_app.services.task_ranges import RowRanges
from enrichment_app.state.access import current_grant, current_principal, guard, open_job
from enrichment_app.state.table.following import FollowMixin

_PENDING = (CellStatus.QUEUED.value, CellStatus.RUNNING.value)


class RunMixin(FollowMixin, mixin=True):
    _cancel_asked: bool = False
    """Cancel was pressed while Run was still creating the job."""

    @rx.event(background=True)
    @guard(Action.RUN)
    async def run(self):
        """Create a job for the selected enrichment cells, hand it over and start following it."""
        runtime = get_runtime()
        max_cells = runtime.settings.max_cells_per_job
        async with self:
            if self._status_line().active:
                return
            if self.run_count == 0:
                self.message = "Select one or more cells in an enrichment column (marked ✦) to run."
                return
            if self.run_count > max_cells:
                self.message = (
                    f"{self.run_count} cells selected; one job can run at most {max_cells}. "
                    "Select fewer cells."
                )
                return
            if not self._begin_start():
                return
            table_id, spans, view = self.table_id, self._runnable_spans(), self._current_view()
        try:
            # The rows are found by the database, by position in the page's view: a whole
            # column of 100,000 rows is not 100,000 objects here.
            created = await create_enrichment(
                open_session=runtime.open_session,
                backend=runtime.backend,
                table_id=table_id,
                cells=(),
                ranges=[RowRanges(spans, view)],
                max_cells=max_cells,
                on_created=audit.job_started(current_grant(), table_id),
                max_cells_per_day=runtime.settings.max_cells_per_day,
            )
        except EnrichmentAppError as exc:
            await self._not_started(exc)
            return
        return await self._hand_over(table_id, created, spans)

    async def _hand_over(
        self, table_id: int, created: EnrichmentCreated, spans: dict[int, list[tuple[int, int]]]
    ):
        """Show the created job (Cancel can find it from now on), hand it to the runner and
        follow it: what Run and Run the view share once the job exists."""
        runtime = get_runtime()
        async with self:
            if self.table_id != table_id:
                return None
            self._apply_job(created.job)
            self._mark_queued(spans)
            cancel_now = self._cancel_asked
        if cancel_now:
            return self.__class__.cancel
        try:
            started = await dispatch_enrichment(
                open_session=runtime.open_session, runner=runtime.dispatcher, created=created
            )
        except EnrichmentAppError as exc:
            await self._not_started(exc)
            return None
        async with self:
            return self._started(started)

    def _begin_start(self) -> bool:
        """Mark the tab as starting a job (Run, Run the view), or say in ``message`` why the
        user may not start one now (``JOB_START_RATE_LIMIT``)."""
        tab = client_key("user", str(current_principal().user_id))  # per person
        refused = get_runtime().rate_limits.hit(Limit.JOB_START, tab)
        if refused is not None:
            self.message = (
                f"Too many jobs started by you (the limit is {refused.rate}, "
                f"JOB_START_RATE_LIMIT); try again in {refused.retry_after} s."
            )
            return False
        self.message, self.starting, self._cancel_asked = "", True, False
        return True

    async def _not_started(self, exc: EnrichmentAppError) -> None:
        async with self:
            self.starting = False
            self.message = str(exc)

    def _mark_queued(self, spans: dict[int, list[tuple[int, int]]]) -> None:
        """Show the window's cells in the spans (rows by position in the view) as queued."""
        first, rows = self.window_start, len(self.window_cells)
        for column_id, column_spans in spans.items():
            c = self._col_index.get(column_id)
            if c is None:
                continue
            for start, stop in column_spans:
                for r in range(max(start - first, 0), min(stop - first, rows)):
                    if self.window_cells[r][c].get("s") not in _PENDING:
                        self.window_cells[r][c] = {
                            **self.window_cells[r][c],
                            "s": "queued",
                            "e": "",
                        }

    def _started(self, started: EnrichmentStarted):
        """The job was handed over: follow it, unless the page moved on or it already ended."""
        if self.job_id != started.job.id:
            return None
        self.starting = False
        self._apply_job(started.job)
        if started.job.is_final:  # canceled while Trigger.dev took it
            return self.__class__.watch_table
        return self._follow_event()

    @rx.event(background=True)
    @guard(Action.CANCEL, target=open_job)
    async def cancel(self):
        """Cancel the running job; finished cells keep their values."""
        async with self:
            job_id, table_id = self.job_id, self.table_id
            if not job_id or not self._status_line().active:
                self._cancel_asked = self.starting  # Run is still creating the job
                return
        runtime = get_runtime()
        try:
            view = await cancel_enrichment(
                open_session=runtime.open_session,
                runner=runtime.dispatcher,
                job_id=job_id,
                on_canceled=audit.job_canceled(current_grant(), table_id),
            )
        except EnrichmentAppError as exc:
            async with self:
                self.message = str(exc)
            return
        async with self:
            self._canceled(view)

    def _canceled(self, view: JobView) -> None:
        if self.job_id != view.id:
            return
        self.starting = False
        self._apply_job(view)
        if self.live:
            self.run_status = "CANCELED"
