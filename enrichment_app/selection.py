"""Turning a Glide Data Grid selection into the set of cells it covers (pure functions).

The grid reports a selection as its current cell and range, a stack of further ranges
(multi-rect), whole columns and whole rows, each as compact ``[start, end)`` spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

GridPoint = tuple[int, int]
"""A grid position as (column index, row index), the grid's own order."""


Block = tuple[range, range]
"""A rectangle of the selection, clipped to the grid: (column indices, row indices)."""


def _int(value: Any) -> int | None:
    """``value`` as an int if it is a whole number (the browser may send floats), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def _spans(compact: Any, limit: int) -> Iterable[range]:
    """The index ranges below ``limit`` that the compact selection's spans cover."""
    items = compact.get("items", []) if isinstance(compact, Mapping) else []
    if not isinstance(items, list | tuple):
        return
    for span in items:
        if isinstance(span, list | tuple) and len(span) == 2:
            start, end = _int(span[0]), _int(span[1])
            if start is not None and end is not None:
                yield range(max(start, 0), min(end, limit))


def _rect(rect: Any, n_cols: int, n_rows: int) -> Iterable[Block]:
    if not isinstance(rect, Mapping):
        return
    x, y = _int(rect.get("x", 0)), _int(rect.get("y", 0))
    width, height = _int(rect.get("width", 1)), _int(rect.get("height", 1))
    if x is None or y is None or width is None or height is None:
        return
    yield range(max(x, 0), min(x + width, n_cols)), range(max(y, 0), min(y + height, n_rows))


def _blocks(selection: Mapping[str, Any] | None, *, n_cols: int, n_rows: int) -> Iterable[Block]:
    """The selection as (possibly overlapping) rectangles, clipped to the grid."""
    if not isinstance(selection, Mapping):
        return
    current = selection.get("current")
    if isinstance(current, Mapping):
        cell = current.get("cell")
        rng = current.get("range")
        if rng:
            yield from _rect(rng, n_cols, n_rows)
        elif isinstance(cell, list | tuple) and len(cell) == 2:
            yield from _rect({"x": cell[0], "y": cell[1]}, n_cols, n_rows)
        stack = current.get("rangeStack") or ()
        for rect in stack if isinstance(stack, list | tuple) else ():
            yield from _rect(rect, n_cols, n_rows)
    for cols in _spans(selection.get("columns"), n_cols):
        yield cols, range(n_rows)
    for rows in _spans(selection.get("rows"), n_rows):
        yield range(n_cols), rows


RowSpan = tuple[int, int]
"""Rows ``[start, stop)``."""


def merge_spans(spans: Iterable[RowSpan]) -> list[RowSpan]:
    """Sorted, non-overlapping, non-adjacent spans covering the same rows; empty ones dropped."""
    merged: list[RowSpan] = []
    for start, stop in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def selected_spans(
    selection: Mapping[str, Any] | None, *, n_cols: int, n_rows: int
) -> dict[int, list[RowSpan]]:
    """The selected rows of each column, as merged spans: every cell the selection covers,
    clipped to the grid, without enumerating them, so a whole column of a 100,000-row table
    costs nothing."""
    by_column: dict[int, list[RowSpan]] = {}
    for cols, rows in _blocks(selection, n_cols=n_cols, n_rows=n_rows):
        if not rows:
            continue
        for col in cols:
            by_column.setdefault(col, []).append((rows.start, rows.stop))
    return {col: merge_spans(spans) for col, spans in sorted(by_column.items())}


def span_count(spans: Iterable[RowSpan]) -> int:
    """How many rows the (merged) spans cover."""
    return sum(stop - start for start, stop in spans)


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
