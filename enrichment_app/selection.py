"""Turning a Glide Data Grid selection into the set of cells it covers (pure functions).

The grid reports a selection as its current cell and range, a stack of further ranges
(multi-rect), whole columns and whole rows, each as compact ``[start, end)`` spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

GridPoint = tuple[int, int]
"""A grid position as (column index, row index), the grid's own order."""


def _spans(compact: Any) -> Iterable[int]:
    items = compact.get("items", []) if isinstance(compact, Mapping) else []
    for span in items:
        if isinstance(span, list | tuple) and len(span) == 2:
            start, end = int(span[0]), int(span[1])
            yield from range(max(start, 0), max(end, 0))


def _rect(rect: Any, n_cols: int, n_rows: int) -> Iterable[GridPoint]:
    if not isinstance(rect, Mapping):
        return
    x, y = int(rect.get("x", 0)), int(rect.get("y", 0))
    width, height = int(rect.get("width", 1)), int(rect.get("height", 1))
    for col in range(max(x, 0), min(x + width, n_cols)):
        for row in range(max(y, 0), min(y + height, n_rows)):
            yield (col, row)


def selected_points(
    selection: Mapping[str, Any] | None, *, n_cols: int, n_rows: int
) -> set[GridPoint]:
    """Every (column, row) the selection covers, clipped to the grid."""
    if not selection:
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
        for rect in current.get("rangeStack") or ():
            points.update(_rect(rect, n_cols, n_rows))
    for col in _spans(selection.get("columns")):
        if col < n_cols:
            points.update((col, row) for row in range(n_rows))
    for row in _spans(selection.get("rows")):
        if row < n_rows:
            points.update((col, row) for col in range(n_cols))
    return points


def focused_point(selection: Mapping[str, Any] | None) -> GridPoint | None:
    """The grid's current cell (the one the inspector shows), if any."""
    current = (selection or {}).get("current")
    if isinstance(current, Mapping):
        cell = current.get("cell")
        if isinstance(cell, list | tuple) and len(cell) == 2:
            return int(cell[0]), int(cell[1])
    return None
