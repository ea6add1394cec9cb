"""The table page's spreadsheet handlers through Reflex's event processor (no browser):
delete the selected rows and undo, paste at the selected cell, Delete, the keys' handlers."""

from __future__ import annotations

from enrichment_app.state.table import TableJobState, TableState, cursor_at
from tests.state.conftest import Tab

PAGE = "/tables/1"


def rows(start: int, stop: int) -> dict[str, object]:
    """A selection of whole rows, as Glide sends it after a click on the row numbers."""
    return {"current": None, "columns": {"items": []}, "rows": {"items": [[start, stop]]}}


async def test_delete_selected_rows_then_undo(tab: Tab) -> None:
    await tab.send(TableState, "load", path=PAGE)
    before = await tab.state(TableState)
    count, first = before.row_count, [c["v"] for c in before.window_cells[0]]
    await tab.send(TableState, "select", path=PAGE, selection=rows(0, 2))
    await tab.send(TableState, "ask_delete_rows", path=PAGE)
    assert (await tab.state(TableState)).confirm_rows == 2
    await tab.send(TableState, "delete_rows", path=PAGE)
    state = await tab.state(TableState)
    assert state.row_count == count - 2 and state.undo_label == "2 rows deleted"
    assert state.confirm_rows == 0
    await tab.send(TableState, "undo_delete", path=PAGE)
    state = await tab.state(TableState)
    assert state.row_count == count and state.undo_label == ""
    assert [c["v"] for c in state.window_cells[0]] == first


async def test_paste_at_the_selected_cell_and_delete_clears(tab: Tab) -> None:
    await tab.send(TableState, "load", path=PAGE)
    count = (await tab.state(TableState)).row_count
    await tab.send(TableState, "select", path=PAGE, selection=cursor_at(0, count - 1))
    await tab.send(
        TableState, "paste", path=PAGE, text="Last Co\tlast.example\nNew Co\tnew.example\n"
    )
    state = await tab.state(TableState)
    assert state.message == "" and state.row_count == count + 1
    assert state.notice == "Pasted 4 cells, 1 row added."
    await tab.send(TableState, "clear_cells", path=PAGE)
    state = await tab.state(TableState)
    assert state._window_cell(0, count - 1)["v"] == ""
    await tab.send(TableState, "select", path=PAGE, selection=cursor_at(3, 0))
    await tab.send(TableState, "clear_cells", path=PAGE)
    assert "not cleared by Delete" in (await tab.state(TableState)).message


async def test_delete_clears_the_selection_it_was_pressed_on(tab: Tab) -> None:
    """A Delete pressed right after a shift-click carries the new range; the server may not
    have applied that range's own ``select`` yet, and the range is what is cleared."""
    await tab.send(TableState, "load", path=PAGE)
    await tab.send(TableState, "select", path=PAGE, selection=cursor_at(0, 0))
    pressed_on = cursor_at(0, 1)
    pressed_on["current"]["range"] = {"x": 0, "y": 1, "width": 2, "height": 2}  # type: ignore[index]
    await tab.send(TableState, "clear_cells", path=PAGE, selection=pressed_on)
    state = await tab.state(TableState)
    assert [[state._window_cell(c, r)["v"] for c in (0, 1)] for r in (0, 1, 2)][1:] == [
        ["", ""],
        ["", ""],
    ]
    assert state._window_cell(0, 0)["v"] != ""  # the cell selected before is kept
    assert state.focus == [0, 1] and state.selected_count == 4


async def test_the_keys_handlers(tab: Tab) -> None:
    """What ``?`` and Ctrl+Enter call in the browser (components/grid.py): the overlay opens,
    and the selection runs."""
    await tab.send(TableState, "load", path=PAGE)
    await tab.send(TableState, "toggle_shortcuts", path=PAGE, value=True)
    assert (await tab.state(TableState)).shortcuts_open
    await tab.send(TableState, "select", path=PAGE, selection=cursor_at(3, 0))
    await tab.send(TableJobState, "run", path=PAGE)
    assert (await tab.state(TableJobState)).job_id > 0
