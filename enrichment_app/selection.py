"""Turning a Glide Data Grid selection into the set of cells it covers (pure functions).

The grid reports a selection as its current cell and range, a stack of further ranges
(multi-rect), whole columns and whole rows, each as compact ``[start, end)`` spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

GridPoint = tuple[int, int]
"""A grid position as (column index, row index), the grid's own order."""


def _int(value: Any) -> int | None:
    """``value`` as an int if it is a whole number (the browser may send floats), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def _spans(compact: Any, limit: int) -> Iterable[int]:
    """The indices below ``limit`` that the compact selection's spans cover."""
    items = compact.get("items", []) if isinstance(compact, Mapping) else []
    if not isinstance(items, list | tuple):
        return
    for span in items:
        if isinstance(span, list | tuple) and len(span) == 2:
            start, end = _int(span[0]), _int(span[1])
            if start is not None and end is not None:
                yield from range(max(start, 0), min(end, limit))


def _rect(rect: Any, n_cols: int, n_rows: int) -> Iterable[GridPoint]:
    if not isinstance(rect, Mapping):
        return
    x, y = _int(rect.get("x", 0)), _int(rect.get("y", 0))
    width, height = _int(rect.get("width", 1)), _int(rect.get("height", 1))
    if x is None or y is None or width is None or height is None:
        return
    for col in range(max(x, 0), min(x + width, n_cols)):
        for row in range(max(y, 0), min(y + height, n_rows)):
            yield (col, row)


def selected_points(
    selection: Mapping[str, Any] | None, *, n_cols: int, n_rows: int
) -> set[GridPoint]:
    """Every (column, row) the selection covers, clipped to the grid."""
    if not isinstance(selection, Mapping):
        return set()
    points: set[GridPoint] = set()
    current = selection.get("current")
    if isinstance(current, Mapping):
        cell = current.get("cell")
        rng = current.get("range")
        if rng:
            points.update(_rect(rng, n_cols, n_rows))
        elif isinstance(cell, list | tuple) and len(cell) == 2:
            points.update(_rect({"x": cell[0], "y": cell[1]}, n_cols, n_rows))
        stack = current.get("rangeStack") or ()
        for rect in stack if isinstance(stack, list | tuple) else ():
            points.update(_rect(rect, n_cols, n_rows))
    for col in _spans(selection.get("columns"), n_cols):
        points.update((col, row) for row in range(n_rows))
    for row in _spans(selection.get("rows"), n_rows):
        points.update((col, row) for col in range(n_cols))
    return points


def focused_point(selection: Mapping[str, Any] | None) -> GridPoint | None:
    """The grid's current cell (the one the inspector shows), if any."""
    current = selection.get("current") if isinstance(selection, Mapping) else None
    if isinstance(current, Mapping):
        cell = current.get("cell")
        if isinstance(cell, list | tuple) and len(cell) == 2:
            col, row = _int(cell[0]), _int(cell[1])
            if col is not None and row is not None:
                return col, row
    return None
