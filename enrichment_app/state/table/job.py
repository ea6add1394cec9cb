"""The job the page's header shows: its status in the seed's words, its counts, its notices.

The header's counts come from the job, so they are right however little of the table is in
the window; the cells change only in the window.

These vars live in a substate of the table's (``TableJobState``, see ``__init__``): a change of
the job's status then sends, and redraws in the browser, the header alone, not the grid.
"""

from __future__ import annotations

import reflex as rx

from enrichment_app.live.status import STARTING, StatusLine, describe_job, describe_run
from enrichment_app.services.jobs import JobView


class JobMixin(rx.State, mixin=True):
    job_id: int = 0
    job_status: str = ""
    job_backend: str = ""
    job_total: int = 0
    job_done: int = 0
    job_failed: int = 0
    job_error: str = ""
    dispatch_notice: str = ""
    """Why Trigger.dev did not take the job (it runs on this server instead)."""
    run_status: str = ""
    """The Trigger.dev run's status while the page follows it over Realtime ("" otherwise)."""
    live: bool = False
    """Whether the header is fed by Trigger.dev Realtime (else by polling the database)."""
    starting: bool = False
    feed_reason: str = ""
    """Why the table's changes are not pushed to this tab (it polls instead); "" while they are."""
    run_reason: str = ""
    """Why the Trigger.dev run is followed by polling instead of Realtime; "" when it is not."""

    _run_id: str = ""

    def _status_line(self) -> StatusLine:
        if self.starting:
            return STARTING
        if self.live and self.job_status and not self.run_status:
            return STARTING  # triggered, no update from the run yet
        if self.live and self.run_status:
            describe, status = describe_run, self.run_status
        else:
            describe, status = describe_job, self.job_status
        return describe(
            status,
            done=self.job_done,
            failed=self.job_failed,
            total=self.job_total,
            error=self.job_error or None,
        )

    @rx.var
    def status(self) -> StatusLine:
        """The header's job status in the seed's words (``label``), its colour (``tone``) and
        whether the job is still going (``active``). One var, computed once per change, where
        three (label, tone, active) were each recomputed and sent on every progress update."""
        return self._status_line()

    @rx.var
    def tab_title(self) -> str:
        """The browser tab's title: the job's progress while it runs, "(12/40) Enriching… · Demo"."""
        name = self.table_name or "Table"
        line = self._status_line()
        if not line.active:
            return f"{name} · enrichment_app"
        label = line.label.split(" (")[0]
        if self.job_total:
            return f"({self.job_done + self.job_failed}/{self.job_total}) {label} · {name}"
        return f"{label} · {name}"

    @rx.var
    def job_notice(self) -> str:
        """The notice under the header: how the job is followed, when it is not as usual."""
        return self.run_reason or self.dispatch_notice

    @rx.var
    def mode_label(self) -> str:
        """Where jobs run, and whether this tab hears of changes as they happen or polls."""
        mode = "Trigger.dev" if self.trigger_mode else "Local runner"
        return f"{mode} · {'polling' if self.run_reason or self.feed_reason else 'live'}"

    @rx.var
    def mode_reason(self) -> str:
        """The mode label's tooltip: why the tab polls, when it does."""
        return (
            self.run_reason
            or self.feed_reason
            or "Live: changes made in other tabs, through the API or by jobs show as they happen."
        )

    def _apply_job(self, view: JobView | None) -> None:
        if view is None:
            self.job_id, self.job_status, self.job_backend = 0, "", ""
            self.job_total = self.job_done = self.job_failed = 0
            self.job_error = self.dispatch_notice = self.run_reason = ""
            return
        if view.id != self.job_id:
            self.run_status, self.live, self.run_reason = "", False, ""
        self.job_id = view.id
        self._run_id = view.run_id or ""
        self.job_status = view.status
        self.job_backend = view.backend
        self.job_total, self.job_done, self.job_failed = view.total, view.done, view.failed
        self.job_error = view.error or ""
        self.dispatch_notice = view.dispatch_error or ""
