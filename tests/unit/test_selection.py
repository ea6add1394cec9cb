"""Grid selections (as Glide Data Grid reports them) turned into the cells they cover."""

from __future__ import annotations

from typing import Any

import pytest

from enrichment_app.selection import (
    focused_point,
    merge_spans,
    selected_spans,
    selects_nothing,
    span_count,
)

N_COLS, N_ROWS = 4, 5


def _current(
    cell: list[int], rng: dict[str, int] | None = None, stack: list[dict[str, int]] | None = None
) -> dict[str, Any]:
    return {"cell": cell, "range": rng, "rangeStack": stack or []}


def _compact(*spans: list[int]) -> dict[str, Any]:
    return {"items": list(spans)}


def _block(cols: range, rows: range) -> set[tuple[int, int]]:
    return {(c, r) for c in cols for r in rows}


CASES: list[tuple[str, Any, set[tuple[int, int]]]] = [
    ("nothing", None, set()),
    ("an empty dict", {}, set()),
    ("no current cell", {"current": None, "columns": _compact(), "rows": _compact()}, set()),
    ("a single cell (no range)", {"current": _current([2, 3])}, {(2, 3)}),
    (
        "a single cell with its 1x1 range",
        {"current": _current([1, 0], {"x": 1, "y": 0, "width": 1, "height": 1})},
        {(1, 0)},
    ),
    (
        "a rectangle",
        {"current": _current([1, 1], {"x": 1, "y": 1, "width": 2, "height": 3})},
        _block(range(1, 3), range(1, 4)),
    ),
    (
        "a rectangle plus the range stack (ctrl-drag)",
        {
            "current": _current(
                [0, 0],
                {"x": 0, "y": 0, "width": 1, "height": 2},
                [
                    {"x": 3, "y": 4, "width": 1, "height": 1},
                    {"x": 2, "y": 0, "width": 2, "height": 1},
                ],
            )
        },
        {(0, 0), (0, 1), (3, 4), (2, 0), (3, 0)},
    ),
    (
        "overlapping rectangles count each cell once",
        {
            "current": _current(
                [0, 0],
                {"x": 0, "y": 0, "width": 2, "height": 2},
                [{"x": 1, "y": 1, "width": 2, "height": 2}],
            )
        },
        _block(range(2), range(2)) | _block(range(1, 3), range(1, 3)),
    ),
    ("a whole column", {"columns": _compact([2, 3])}, _block(range(2, 3), range(N_ROWS))),
    (
        "two column spans",
        {"columns": _compact([0, 1], [3, 4])},
        _block(range(1), range(N_ROWS)) | _block(range(3, 4), range(N_ROWS)),
    ),
    ("whole rows", {"rows": _compact([1, 3])}, _block(range(N_COLS), range(1, 3))),
    (
        "columns, rows and a cell together",
        {"current": _current([0, 4]), "columns": _compact([3, 4]), "rows": _compact([0, 1])},
        {(0, 4)} | _block(range(3, 4), range(N_ROWS)) | _block(range(N_COLS), range(1)),
    ),
    (
        "a rectangle past the grid's edge is clipped",
        {"current": _current([2, 3], {"x": 2, "y": 3, "width": 10, "height": 10})},
        _block(range(2, N_COLS), range(3, N_ROWS)),
    ),
    (
        "a rectangle starting left of and above the grid is clipped",
        {"current": _current([0, 0], {"x": -2, "y": -1, "width": 3, "height": 2})},
        {(0, 0)},
    ),
    ("a cell outside the grid", {"current": _current([9, 9])}, set()),
    (
        "a column span past the edge",
        {"columns": _compact([3, 99])},
        _block(range(3, 4), range(N_ROWS)),
    ),
    ("a negative row span", {"rows": _compact([-5, 1])}, _block(range(N_COLS), range(1))),
    (
        "a huge column span is clipped, not enumerated",
        {"columns": _compact([0, 10**12])},
        _block(range(N_COLS), range(N_ROWS)),
    ),
    ("floats that are whole numbers are accepted", {"current": _current([1.0, 2.0])}, {(1, 2)}),  # type: ignore[list-item]
    # Garbage (a crafted event, a future grid version) selects nothing instead of crashing.
    ("current is not a mapping", {"current": "B2"}, set()),
    ("columns is a list, not compact", {"columns": [1, 2]}, set()),
    ("a span with one end", {"columns": _compact([1])}, set()),
    ("a span of strings", {"columns": _compact(["a", 2])}, set()),  # type: ignore[list-item]
    ("a range with a null corner", {"current": {"range": {"x": None, "y": 0}}}, set()),
    ("a cell of strings", {"current": {"cell": ["a", 1]}}, set()),
    ("a cell that is a boolean pair", {"current": {"cell": [True, False]}}, set()),
    ("a range stack of junk", {"current": {"rangeStack": [None, 3, "x"]}}, set()),
    ("a range stack that is not a list", {"current": {"rangeStack": "abc"}}, set()),
    ("a fractional index", {"current": {"cell": [0.5, 1]}}, set()),
    ("the selection is a list", [1, 2, 3], set()),
]


def test_an_empty_grid_has_nothing_to_select() -> None:
    selection = {"columns": _compact([0, 3]), "current": _current([0, 0])}
    assert selected_spans(selection, n_cols=0, n_rows=0) == {}


FOCUS_CASES: list[tuple[str, Any, tuple[int, int] | None]] = [
    ("nothing", None, None),
    ("no current", {"columns": _compact([0, 1])}, None),
    ("a cell", {"current": _current([3, 1])}, (3, 1)),
    (
        "the cell, not the range's corner",
        {"current": _current([2, 2], {"x": 0, "y": 0, "width": 3, "height": 3})},
        (2, 2),
    ),
    ("a cell of garbage", {"current": {"cell": ["x", None]}}, None),
    ("a cell with three numbers", {"current": {"cell": [1, 2, 3]}}, None),
    ("the selection is a string", "A1", None),
]


@pytest.mark.parametrize(
    ("selection", "expected"), [c[1:] for c in FOCUS_CASES], ids=[c[0] for c in FOCUS_CASES]
)
def test_focused_point(selection: Any, expected: tuple[int, int] | None) -> None:
    assert focused_point(selection) == expected


@pytest.mark.parametrize(
    ("selection", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_selected_spans_cover_the_same_cells(
    selection: Any, expected: set[tuple[int, int]]
) -> None:
    spans = selected_spans(selection, n_cols=N_COLS, n_rows=N_ROWS)
    covered = {(col, row) for col, ss in spans.items() for a, b in ss for row in range(a, b)}
    assert covered == expected
    assert sum(span_count(ss) for ss in spans.values()) == len(expected)


def test_selected_spans_of_a_whole_column_of_a_big_table_are_one_span() -> None:
    selection = {"columns": _compact([2, 3]), "current": _current([2, 5])}
    assert selected_spans(selection, n_cols=8, n_rows=100_000) == {2: [(0, 100_000)]}


def test_merge_spans_joins_overlapping_and_adjacent_spans() -> None:
    assert merge_spans([(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)]) == [(0, 3), (5, 9)]


@pytest.mark.parametrize(
    ("selection", "nothing"),
    [
        ({"current": None, "columns": _compact(), "rows": _compact()}, True),
        ({"current": None}, True),
        (None, True),
        ("junk", True),
        ({"current": _current([1, 2]), "columns": _compact(), "rows": _compact()}, False),
        ({"current": None, "columns": _compact([0, 1]), "rows": _compact()}, False),
        ({"current": None, "columns": _compact(), "rows": _compact([2, 4])}, False),
    ],
)
def test_a_selection_of_nothing_has_no_cell_and_no_whole_columns_or_rows(
    selection: Any, nothing: bool
) -> None:
    assert selects_nothing(selection) is nothing
