"""State of the table page: the grid, the selection, the Run button and the live job status.

``TableState`` is one Reflex state composed of mixins, one module per concern:

* ``window``: the rows the page holds and loading more as the grid scrolls (``view``);
* ``selection``: what is selected and how many cells would run (``select``, ``clear_selection``);
* ``editing``: typing into input cells (``edit_cell``);
* ``rows``: add a row, paste, clear, delete rows and undo; ``columns``: the column menu
  (rename, move, delete), drag to reorder and resize;
* ``job``: the job the header shows; ``running``: ``run`` and ``cancel``;
* ``watching``: the idle table and a job followed through the database, both woken by the
  table's live feed (``watch_table``, ``watch_job``); ``following``: a Trigger.dev run over
  Realtime, and back to it after a failure (``follow_run``).

How Reflex 0.10.1 treats state mixins (``class M(rx.State, mixin=True)``), from its source
(``BaseState._bind_fields`` and ``_bind_mixin_members``) and a probe through its event processor:

* A mixin is never a state of its own. The class that mixes it in gets copies of the mixin's
  vars, backend vars, computed vars and event handlers, bound to itself; handlers keep
  ``@rx.event(background=True)``, ``yield`` and ``async with self`` (also in helper methods the
  handler awaits), and chained events work.
* Names come from the composed class: its full name is built from the module that defines it,
  so ``TableState`` lives here and keeps ``...enrichment_app___state___table____table_state``,
  and the handlers are ``table_state.run`` and so on, whichever mixin defines them.
* A mixin's own attribute is a plain function, not an event handler, so a handler that chains
  to another returns ``self.__class__.<handler>``. ``type(self)`` works in a normal handler
  but not in a background one, whose ``self`` is a ``StateProxy``; ``self.__class__`` is the
  state's class in both.
* As on any state, a public method of a mixin becomes an event handler: helpers start with ``_``.
"""

from __future__ import annotations

import reflex as rx

from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import NotFoundError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import grid as grid_service, workspaces
from enrichment_app.services.access import Action
from enrichment_app.state.access import current_grant, current_principal, guard, url_table
from enrichment_app.state.table.columns import ColumnsMixin
from enrichment_app.state.table.editing import EditingMixin
from enrichment_app.state.table.running import RunMixin
from enrichment_app.state.table.selection import INITIAL_SELECTION, cursor_at, grid_selection
from enrichment_app.state.table.window import FIRST_WINDOW_ROWS

__all__ = ["INITIAL_SELECTION", "TableState", "cursor_at", "grid_selection"]


class TableState(ColumnsMixin, RunMixin, EditingMixin, rx.State):
    """One open table: its grid, what is selected, and the job filling it."""

    @rx.event
    @guard(Action.VIEW, target=url_table)
    async def load(self):
        """Load the table named in the URL and re-attach to its running job, if any."""
        grant = current_grant()
        table_id = grant.table_id or 0
        self.not_found, self.message = False, ""
        self.starting = False
        self._apply_grant(grant)
        if table_id != self.table_id:
            # Another table: start from its first cell. Reloading the same table (after adding
            # a column, say) keeps the selection, so a click made meanwhile is not undone.
            self._apply_selection(INITIAL_SELECTION)
            yield grid_selection.push(INITIAL_SELECTION)
        runtime = get_runtime()
        self.trigger_mode = runtime.settings.trigger_enabled
        await in_transaction(
            runtime.open_session,
            workspaces.choose_workspace,
            user_id=current_principal().user_id,
            workspace_id=grant.workspace_id,
        )
        try:
            read = await in_session(
                runtime.open_session,
                grid_service.read_table,
                table_id=table_id,
                start=0,
                stop=FIRST_WINDOW_ROWS,
            )
        except NotFoundError:
            self.not_found, self.table_id = True, table_id
            return
        self.table_id = table_id
        self._apply_meta(read.meta)
        self._apply_window(read.window)
        self._apply_job(read.job)
        self._since = read.marker
        if read.job is not None and not read.job.is_final:
            yield self._follow_event()  # which starts watch_table when the job ends
        else:
            yield TableState.watch_table
