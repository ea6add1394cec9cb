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


def selects_nothing(selection: Mapping[str, Any] | None) -> bool:
    """No current cell and no whole columns or rows: what Glide sends when its cursor falls
    outside the grid."""
    if focused_point(selection) is not None:
        return False
    if not isinstance(selection, Mapping):
        return True
    return not any(
        isinstance(part := selection.get(key), Mapping) and part.get("items")
        for key in ("columns", "rows")
    )


MAX_RANGES = 100
"""Rectangles a selection may stack (Glide's multi-rect); more are dropped."""
MAX_SPANS = 100
"""Whole-column and whole-row spans a selection may hold; more are dropped."""


def _clip(value: Any, limit: int) -> int | None:
    number = _int(value)
    return None if number is None else min(max(number, 0), limit)


def _bounded_rect(rect: Any, n_cols: int, n_rows: int) -> dict[str, int] | None:
    if not isinstance(rect, Mapping):
        return None
    x, y = _clip(rect.get("x", 0), n_cols), _clip(rect.get("y", 0), n_rows)
    width, height = _clip(rect.get("width", 1), n_cols), _clip(rect.get("height", 1), n_rows)
    if x is None or y is None or width is None or height is None:
        return None
    return {"x": x, "y": y, "width": width, "height": height}


def _bounded_spans(compact: Any, limit: int) -> dict[str, list[list[int]]]:
    items = compact.get("items", []) if isinstance(compact, Mapping) else []
    spans: list[list[int]] = []
    for span in items[:MAX_SPANS] if isinstance(items, list | tuple) else ():
        if isinstance(span, list | tuple) and len(span) == 2:
            start, end = _clip(span[0], limit), _clip(span[1], limit)
            if start is not None and end is not None:
                spans.append([start, end])
    return {"items": spans}


def bounded_selection(selection: Any, *, n_cols: int, n_rows: int) -> dict[str, Any]:
    """The selection in Glide's shape with every number clipped to the grid, at most
    ``MAX_RANGES`` stacked rectangles and ``MAX_SPANS`` column and row spans, and nothing else:
    what a browser sends is kept in state only once it is this small."""
    current = selection.get("current") if isinstance(selection, Mapping) else None
    bounded: dict[str, Any] = {
        "current": None,
        "columns": _bounded_spans(
            selection.get("columns") if isinstance(selection, Mapping) else None, n_cols
        ),
        "rows": _bounded_spans(
            selection.get("rows") if isinstance(selection, Mapping) else None, n_rows
        ),
    }
    if isinstance(current, Mapping):
        cell = current.get("cell")
        point = None
        if isinstance(cell, list | tuple) and len(cell) == 2:
            col, row = _clip(cell[0], max(n_cols - 1, 0)), _clip(cell[1], max(n_rows - 1, 0))
            point = [col, row] if col is not None and row is not None else None
        stack = current.get("rangeStack")
        rects = stack[:MAX_RANGES] if isinstance(stack, list | tuple) else []
        bounded["current"] = {
            "cell": point or [0, 0],
            "range": _bounded_rect(current.get("range"), n_cols, n_rows)
            or {"x": 0, "y": 0, "width": 1, "height": 1},
            "rangeStack": [r for r in (_bounded_rect(rect, n_cols, n_rows) for rect in rects) if r],
        }
    return bounded
