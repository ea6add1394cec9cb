"""State of the table page: the grid, the selection, the Run button and the live job status.

Two Reflex states, composed of mixins, one module per concern:

* ``TableState``, the table: ``window`` (the rows the page holds and loading more as the grid
  scrolls, ``view``), ``selection`` (what is selected and how many cells would run,
  ``select``, ``clear_selection``), ``editing`` (typing into input cells, ``edit_cell``),
  ``rows`` (add a row, paste, clear, delete rows and undo), ``columns`` (the column menu:
  rename, move, delete; drag to reorder and resize), ``viewing`` (the filter bar: conditions,
  sort, search, kept in the URL), and ``load``;
* ``TableJobState``, its substate, the job the header shows and follows: ``job`` (the status
  line, counts and the tab's title), ``running`` (``run`` and ``cancel``; ``run_view`` beside
  them in ``viewing``), ``watching`` (the idle table and a job followed through the database,
  both woken by the table's live feed: ``watch_table``, ``watch_job``), ``following`` (a
  Trigger.dev run over Realtime, and back to it after a failure: ``follow_run``).

Why two: Reflex sends a state's changed vars and the browser redraws every component that
reads that state. With the job in a substate of its own, a status change (the most frequent
update while a job runs) sends only the header's vars and redraws only the header, not the
grid, whose canvas is the page's costliest redraw; and the state managers persist only the
substate it touched. The substate reads and writes the table's vars as its own (Reflex
resolves an inherited var on the parent state), so the job's handlers redraw cells directly.

How Reflex 0.10.1 treats state mixins (``class M(rx.State, mixin=True)``), from its source
(``BaseState._bind_fields`` and ``_bind_mixin_members``) and a probe through its event processor:

* A mixin is never a state of its own. The class that mixes it in gets copies of the mixin's
  vars, backend vars, computed vars and event handlers, bound to itself; handlers keep
  ``@rx.event(background=True)``, ``yield`` and ``async with self`` (also in helper methods the
  handler awaits), and chained events work.
* Names come from the composed class: its full name is built from the module that defines it,
  so ``TableState`` lives here and keeps ``...enrichment_app___state___table____table_state``,
  and the handlers are ``table_state.load``, ``table_state.table_job_state.run`` and so on,
  whichever mixin defines them.
* A mixin's own attribute is a plain function, not an event handler, so a handler that chains
  to another returns ``self.__class__.<handler>``. ``type(self)`` works in a normal handler
  but not in a background one, whose ``self`` is a ``StateProxy``; ``self.__class__`` is the
  state's class in both.
* As on any state, a public method of a mixin becomes an event handler: helpers start with ``_``.
"""

from __future__ import annotations

import reflex as rx

from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import InvalidInputError, NotFoundError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import grid as grid_service, workspaces
from enrichment_app.services.access import Action
from enrichment_app.state.access import current_grant, current_principal, guard, url_table
from enrichment_app.state.table.columns import ColumnsMixin
from enrichment_app.state.table.editing import EditingMixin
from enrichment_app.state.table.selection import NO_SELECTION, cursor_at, grid_selection
from enrichment_app.state.table.viewing import ViewMixin, ViewRunMixin
from enrichment_app.state.table.window import FIRST_WINDOW_ROWS
from enrichment_app.views import EVERYTHING, View

__all__ = ["TableJobState", "TableState", "cursor_at", "grid_selection"]


class TableState(ColumnsMixin, ViewMixin, EditingMixin, rx.State):
    """One open table: its grid, its view and what is selected (the job filling it:
    ``TableJobState``)."""

    @rx.event
    @guard(Action.VIEW, target=url_table)
    async def load(self):
        """Load the table named in the URL and re-attach to its running job, if any."""
        grant = current_grant()
        table_id = grant.table_id or 0
        self.not_found, self.message = False, ""
        job = await self.get_state(TableJobState)
        job.starting = False
        self._apply_grant(grant)
        view, self.view_notice = self._view_from_url()
        if table_id != self.table_id or view != self._current_view():
            self._apply_selection(NO_SELECTION)  # another table or view: its first cell, below
        runtime = get_runtime()
        self.trigger_mode = runtime.settings.trigger_enabled
        await in_transaction(
            runtime.open_session,
            workspaces.choose_workspace,
            user_id=current_principal().user_id,
            workspace_id=grant.workspace_id,
        )
        try:
            try:
                read = await self._read_first(table_id, view)
            except InvalidInputError as exc:  # a column the table does not have
                self.view_notice = f"The view in the address was not applied: {exc.message}"
                view = EVERYTHING
                read = await self._read_first(table_id, view)
        except NotFoundError:
            self.not_found, self.table_id = True, table_id
            return
        self.table_id = table_id
        self._show_view(view)
        if self.view_notice:  # show the address of what is shown
            yield self._url_script()
        self._apply_meta(read.meta)
        self._apply_window(read.window)
        job._apply_job(read.job)
        self._since = read.marker
        # The grid gets the selection with its rows (a new page's grid starts with nothing):
        # the same table and view keep theirs, another starts from its first cell. One yield:
        # the header goes out once, as following the job shows it (not first as last read).
        shown = self._show_selection()
        if read.job is not None and not read.job.is_final:
            then = job._follow_event()  # which starts watch_table when the job ends
        else:
            then = TableJobState.watch_table
        yield [then] if shown is None else [shown, then]

    async def _read_first(self, table_id: int, view: View) -> grid_service.TableRead:
        return await in_session(
            get_runtime().open_session,
            grid_service.read_table,
            table_id=table_id,
            start=0,
            stop=FIRST_WINDOW_ROWS,
            view=view,
            check=True,
        )


class TableJobState(ViewRunMixin, TableState):
    """The job the open table's header shows, and following it (a substate: see above)."""
