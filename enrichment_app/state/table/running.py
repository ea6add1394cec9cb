"""Run and Cancel: start a job on the selected enrichment cells, or stop the running one."""

from __future__ import annotations

import reflex as rx

from enrichment_app.domain import CellStatus
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import audit
from enrichment_app.services.access import Action
from enrichment_app.services.enrichment import cancel_enrichment, start_enrichment
from enrichment_app.state.access import current_grant, guard, open_job
from enrichment_app.state.table.following import FollowMixin
from enrichment_app.state.table.selection import SelectionMixin

_PENDING = (CellStatus.QUEUED.value, CellStatus.RUNNING.value)


class RunMixin(FollowMixin, SelectionMixin, mixin=True):
    @rx.event
    @guard(Action.RUN)
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
            started = await start_enrichment(
                open_session=runtime.open_session,
                runner=runtime.dispatcher,
                backend=runtime.backend,
                table_id=self.table_id,
                cells=refs,
                max_cells=max_cells,
                on_created=audit.job_started(current_grant(), self.table_id),
            )
        except EnrichmentAppError as exc:
            self.starting = False
            self.message = str(exc)
            return
        self._apply_job(started.job)
        for ref in refs:
            r, c = self._row_index.get(ref.row_id), self._col_index.get(ref.column_id)
            if r is not None and c is not None and self.window_cells[r][c].get("s") not in _PENDING:
                self.window_cells[r][c] = {**self.window_cells[r][c], "s": "queued", "e": ""}
        self.starting = False
        yield self._follow_event()

    @rx.event
    @guard(Action.CANCEL, target=open_job)
    async def cancel(self):
        """Cancel the running job; finished cells keep their values."""
        if not self.job_id:
            return
        runtime = get_runtime()
        try:
            view = await cancel_enrichment(
                open_session=runtime.open_session,
                runner=runtime.dispatcher,
                job_id=self.job_id,
                on_canceled=audit.job_canceled(current_grant(), self.table_id),  # the job's table
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        self._apply_job(view)
        if self.live:
            self.run_status = "CANCELED"
