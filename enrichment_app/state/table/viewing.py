"""The filter bar: conditions, a sort and a search over the table (its *view*), kept in the URL,
and Run the view (one column for every row the filter shows, as one job).

The view is the URL's ``f``, ``s`` and ``q`` (``enrichment_app.views``), so a reload or a shared
link shows the same rows; changing it reads the view's first window from the database
(``services/views.py`` does the filtering and sorting there, never in the page) and rewrites
the URL in place (``history.replaceState``, which Reflex reads back into each event's router
data). A bad view in the URL is named in ``view_notice`` and the whole table is shown.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from enrichment_app import routes
from enrichment_app.db.sessions import in_session
from enrichment_app.domain import ColumnKind
from enrichment_app.errors import EnrichmentAppError, InvalidInputError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import audit, grid as grid_service
from enrichment_app.services.access import Action
from enrichment_app.services.view_runs import create_view_enrichment
from enrichment_app.state.access import current_grant, guard
from enrichment_app.state.table.running import RunMixin
from enrichment_app.state.table.selection import NO_SELECTION, SelectionMixin
from enrichment_app.state.table.window import FIRST_WINDOW_ROWS
from enrichment_app.views import (
    EVERYTHING,
    MAX_VALUE_CHARS,
    Op,
    Sort,
    View,
    describe,
    make_condition,
    make_view,
    parse_view,
    view_params,
)

OPERATORS = [{"value": op.value, "label": op.label} for op in Op if op is not Op.STATUS]
"""The filter bar's operators (the status filter has its own choices)."""
STATUS_CHOICES = ["failed", "empty", "queued", "done"]


def _text(value: Any, limit: int) -> str | None:
    """A short string from the client, or None (a long one is refused, not cut)."""
    if not isinstance(value, str) or len(value) > limit:
        return None
    return value


def _column_id(value: Any) -> int:
    text = _text(value, 18)
    return int(text) if text and text.isdigit() and text.isascii() else 0


class ViewMixin(SelectionMixin, mixin=True):
    view_notice: str = ""
    """Why the view in the URL was not applied (the whole table is shown instead)."""
    view_chips: list[dict[str, str]] = []
    """The view's conditions as the filter bar shows them: ``{"text"}``, in order."""
    sort_choice: str = ""
    """The sort picker: ``""`` (table order), ``"<column id>"`` or ``"-<column id>"``."""
    search_text: str = ""
    run_view_column: str = ""
    """The enrichment column Run the view runs (its id; empty: the first one)."""

    @rx.var
    def view_filtered(self) -> bool:
        return bool(self.view_f or self.view_q)

    @rx.var
    def view_active(self) -> bool:
        return bool(self.view_f or self.view_s or self.view_q)

    @rx.var
    def column_choices(self) -> list[dict[str, str]]:
        return [{"id": str(c["column_id"]), "name": _name(c)} for c in self.grid_columns]

    @rx.var
    def sort_choices(self) -> list[dict[str, str]]:
        choices = [{"value": "none", "label": "Table order"}]
        for c in self.grid_columns:
            cid, name = c["column_id"], _name(c)
            choices.append({"value": str(cid), "label": f"{name} A→Z"})
            choices.append({"value": f"-{cid}", "label": f"{name} Z→A"})
        return choices

    @rx.var
    def enrichment_choices(self) -> list[dict[str, str]]:
        return [
            {"id": str(c["column_id"]), "name": _name(c)}
            for c in self.grid_columns
            if c.get("kind") == ColumnKind.ENRICHMENT.value
        ]

    @rx.var
    def run_view_target(self) -> str:
        """The column Run the view runs: the one picked, else the first enrichment column."""
        ids = [
            str(c["column_id"])
            for c in self.grid_columns
            if c.get("kind") == ColumnKind.ENRICHMENT.value
        ]
        return self.run_view_column if self.run_view_column in ids else (ids[0] if ids else "")

    @rx.var
    def run_view_label(self) -> str:
        """``Run Industry for 300 rows``."""
        target = self.run_view_target
        name = next(
            (_name(c) for c in self.grid_columns if str(c["column_id"]) == target), "a column"
        )
        n = self.row_count
        return f"Run {name} for {n:,} row{'s' * (n != 1)}"

    def _names(self) -> dict[int, str]:
        return {int(c["column_id"]): _name(c) for c in self.grid_columns}

    def _show_view(self, view: View) -> None:
        """Put ``view`` in the page's vars (the URL form, the chips, the pickers)."""
        params = view_params(view)
        self.view_f, self.view_s, self.view_q = (params.get(k, "") for k in ("f", "s", "q"))
        names = self._names()
        self.view_chips = [{"text": describe(c, names)} for c in view.conditions]
        self.sort_choice = self.view_s or "none"
        if self.search_text.strip() != view.search:  # keep what is being typed
            self.search_text = view.search

    def _url_script(self):
        params = {k: v for k, v in zip("fsq", self._view_key(), strict=True) if v}
        url = routes.table_url(self.table_id) + (f"?{urlencode(params)}" if params else "")
        return rx.call_script(
            f"window.history.replaceState(window.history.state, '', {json.dumps(url)})"
        )

    async def _apply_view(self, view: View):
        """Show ``view`` from its first row: read it, put it in the URL, reset the selection."""
        self.message = ""
        self.view_notice = ""
        try:
            read = await in_session(
                get_runtime().open_session,
                grid_service.read_table,
                table_id=self.table_id,
                start=0,
                stop=FIRST_WINDOW_ROWS,
                view=view,
            )
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return None
        self._show_view(view)
        self._apply_meta(read.meta)
        self._apply_window(read.window)
        self._since = read.marker
        self._apply_selection(NO_SELECTION)
        cursor = self._keep_cursor()  # the first cell, if the view has one
        return [self._url_script()] if cursor is None else [cursor, self._url_script()]

    def _view_from_url(self) -> tuple[View, str]:
        """The view the page's URL names, or the whole table and why not."""
        query = self.router.url.query_parameters
        f, s, q = (query.get(k) for k in ("f", "s", "q"))
        if not (f or s or q):
            return EVERYTHING, ""
        try:
            return parse_view(f, s, q), ""
        except InvalidInputError as exc:
            return EVERYTHING, f"The view in the address was not applied: {exc.message}"

    def _changed(self, change) -> View | None:
        """The current view with ``change`` applied, or None (and a message) if refused."""
        try:
            return change(self._current_view())
        except InvalidInputError as exc:
            self.view_notice = exc.message
            return None

    @rx.event
    @guard(Action.VIEW)
    async def add_condition(self, form: dict[str, Any]):
        """The filter bar's form: a column, an operator and (for most) a value."""
        if not isinstance(form, dict):
            return None
        column_id = _column_id(form.get("column"))
        op = _text(form.get("op"), 20) or ""
        value = form.get("value", "")
        if op.startswith("status:"):  # the operator list offers "status is failed" and so on
            op, value = Op.STATUS.value, op.removeprefix("status:")
        elif op in (Op.EMPTY.value, Op.NOT_EMPTY.value):
            value = ""
        if column_id not in self._names():
            self.view_notice = "Choose a column to filter on."
            return None
        if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
            self.view_notice = f"A filter value is at most {MAX_VALUE_CHARS} characters."
            return None
        view = self._changed(
            lambda v: make_view(
                [*v.conditions, make_condition(column_id, op, value)], v.sort, v.search
            )
        )
        return None if view is None else await self._apply_view(view)

    @rx.event
    @guard(Action.VIEW)
    async def remove_condition(self, index: int):
        current = self._current_view()
        if isinstance(index, bool) or not isinstance(index, int):
            return None
        if not 0 <= index < len(current.conditions):
            return None
        kept = [c for i, c in enumerate(current.conditions) if i != index]
        return await self._apply_view(make_view(kept, current.sort, current.search))

    @rx.event
    @guard(Action.VIEW)
    async def sort_changed(self, choice: str):
        """``none``, ``<column id>`` (ascending) or ``-<column id>`` (descending)."""
        text = _text(choice, 20)
        if text is None:
            return None
        current = self._current_view()
        sort = None
        if text not in ("", "none"):
            column_id = _column_id(text.removeprefix("-"))
            if column_id not in self._names():
                return None
            sort = Sort(column_id, text.startswith("-"))
        return await self._apply_view(View(current.conditions, sort, current.search))

    @rx.event
    @guard(Action.VIEW)
    async def search_changed(self, text: str):
        """The search box (debounced in the page)."""
        if not isinstance(text, str):
            return None
        if len(text) > MAX_VALUE_CHARS:
            self.view_notice = f"The search is at most {MAX_VALUE_CHARS} characters."
            return None
        current = self._current_view()
        self.search_text = text
        if text.strip() == current.search:
            return None
        return await self._apply_view(make_view(current.conditions, current.sort, text))

    @rx.event
    @guard(Action.VIEW)
    async def clear_view(self):
        return await self._apply_view(EVERYTHING)

    @rx.event
    @guard(Action.VIEW)
    def choose_run_column(self, value: str):
        column_id = _column_id(value)
        if column_id in self._names():
            self.run_view_column = str(column_id)


class ViewRunMixin(RunMixin, mixin=True):
    """Run the view, in the job's substate beside Run: it reads the view from the table's
    state (``TableState``) and shares Run's hand-over."""

    @rx.event(background=True)
    @guard(Action.RUN)
    async def run_view(self):
        """Run the chosen enrichment column for every row the view shows, as one job."""
        runtime = get_runtime()
        max_cells = runtime.settings.max_cells_per_job
        async with self:
            if self._status_line().active or self.starting:
                return
            column_id = int(self.run_view_target or 0)
            if not column_id:
                self.message = "Add an enrichment column (✦) to run it for the rows shown."
                return
            if not self._begin_start():
                return
            table_id, view = self.table_id, self._current_view()
        try:
            run, created = await create_view_enrichment(
                open_session=runtime.open_session,
                backend=runtime.backend,
                table_id=table_id,
                view=view,
                column_id=column_id,
                max_cells=max_cells,
                on_created=audit.job_started(current_grant(), table_id),
                max_cells_per_day=runtime.settings.max_cells_per_day,
            )
        except EnrichmentAppError as exc:
            await self._not_started(exc)
            return
        return await self._hand_over(table_id, created, {column_id: [(0, run.row_count)]})


def _name(column: dict[str, Any]) -> str:
    return str(column.get("title", "")).removesuffix(" ✦")


__all__ = ["OPERATORS", "STATUS_CHOICES", "ViewMixin", "ViewRunMixin"]
