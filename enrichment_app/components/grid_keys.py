"""The grid's keys that are the page's, told apart in the browser.

* Ctrl+Enter runs the selection (``TableJobState.run``) and ``?`` lists the keys; every other
  key press stays off the wire.
* Shift+Enter and Shift+Tab after typing save the cell and move up and left, as Enter and Tab
  move down and right. Glide's editor takes Shift+Enter for a new line in the cell, and loses
  the typing on a Shift+Tab pressed hard on the Shift (the Shift key's deferred handler closes
  the editor first, unsaved).
* Delete sends the selection it was pressed on (``TableState.clear_cells``).

Each handler is JavaScript built around the event chains Reflex would bind to a trigger.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.event import EventChain, no_args_event_spec, passthrough_event_spec
from reflex_base.vars.base import VarData
from reflex_components_dataeditor.dataeditor import GridSelection

from enrichment_app.state.table import TableJobState, TableState, grid_selection


def _chain(event: Any, args_spec: Any = no_args_event_spec) -> rx.Var:
    """An event (handler or spec) as the JavaScript function Reflex would bind to a trigger."""
    return rx.Var.create(EventChain.create(value=event, args_spec=args_spec, key="grid_keys"))


def _merged(*parts: rx.Var) -> VarData | None:
    return VarData.merge(*(part._get_all_var_data() for part in parts))


def page_keys() -> rx.Var:
    """The grid frame's ``onKeyDownCapture``: it sees a key before the grid and before Glide's
    cell editor (a React portal, whose events still pass through the frame)."""
    run = _chain(TableJobState.run)
    help_ = _chain(TableState.toggle_shortcuts(True))
    edit = _chain(TableState.edit_cell, passthrough_event_spec(tuple[int, int], dict[str, Any]))
    select = _chain(TableState.select, passthrough_event_spec(dict[str, Any]))
    set_selection = grid_selection.set  # its var data imports ``refs``
    current = rx.Var("refs['_client_state_grid_selection']")  # the selection's latest value
    script = f"""((e) => {{
  if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {{ ({run!s})(); return; }}
  if (e.key === '?' && !e.target.closest('input, textarea')) {{ ({help_!s})(); return; }}
  const back = {{Enter: [0, -1], Tab: [-1, 0]}}[e.key];
  if (!back || !e.shiftKey || !e.target.matches('textarea.gdg-input')) return;
  const cell = ({current!s})?.current?.cell;
  if (!cell) return;
  e.preventDefault();
  e.stopPropagation();
  const [col, row] = cell;
  const value = e.target.value;
  e.target.dispatchEvent(new KeyboardEvent('keydown', {{key: 'Escape', bubbles: true}}));
  ({edit!s})([col, row], {{kind: 'text', data: value}});
  const [x, y] = [Math.max(col + back[0], 0), Math.max(row + back[1], 0)];
  const selection = {{
    current: {{cell: [x, y], range: {{x: x, y: y, width: 1, height: 1}}, rangeStack: []}},
    columns: {{items: []}},
    rows: {{items: []}},
  }};
  ({set_selection!s})(selection);
  ({select!s})(selection);
}})"""
    return rx.Var(script, _var_data=_merged(run, help_, edit, select, current, set_selection))


def handled_delete() -> rx.Var:
    """Glide's ``onDelete``: ``TableState.clear_cells`` with the selection the key applies to,
    answering ``false`` (the server clears the cells; Glide must not edit them itself).

    Reflex's own binding answers with its event queue's promise, which Glide takes for a
    selection to clear and fails on (``shiftSelection``: "Cannot read properties of undefined").
    """
    chain = _chain(TableState.clear_cells, passthrough_event_spec(GridSelection))
    return rx.Var(
        f"((selection) => {{ ({chain!s})(selection); return false; }})",
        _var_data=chain._get_all_var_data(),
    )
