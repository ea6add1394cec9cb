"""What changed in a table, as the table change bus carries it (pure; no I/O).

A change is a hint, not the data: it tells a page which of its reads is due (the cells of
some rows, the table's shape, its jobs) and the page reads the database, which stays the
source of truth. So changes merge freely: two changes of one table are one change with both
kinds and both sets of rows, and a change that lists too many rows says "any row" instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

CELLS = "cells"
"""Cells of ``row_ids`` changed (values, statuses, errors)."""
SHAPE = "shape"
"""Columns or rows were added or removed, or the table renamed: read its shape again."""
JOB = "job"
"""A job of the table was created, handed over, or changed status or counts."""
DELETED = "deleted"
"""The table is gone."""
KINDS = frozenset({CELLS, SHAPE, JOB, DELETED})

MAX_ROW_IDS = 200
"""A change lists at most this many rows; beyond, it stands for any row of the table."""


@dataclass(frozen=True, slots=True)
class TableChange:
    kinds: frozenset[str]
    row_ids: frozenset[int] | None = frozenset()
    """The rows whose cells changed; None when any row may have (too many to list)."""

    @classmethod
    def of(cls, *kinds: str, rows: Iterable[int] = ()) -> TableChange:
        row_ids = frozenset(rows)
        return cls(frozenset(kinds), row_ids if len(row_ids) <= MAX_ROW_IDS else None)

    @classmethod
    def everything(cls) -> TableChange:
        """Anything may have changed: after a gap in the feed, read it all again."""
        return cls(KINDS - {DELETED}, None)

    def merge(self, other: TableChange) -> TableChange:
        if self.row_ids is None or other.row_ids is None:
            rows = None
        else:
            rows = self.row_ids | other.row_ids
            rows = rows if len(rows) <= MAX_ROW_IDS else None
        return TableChange(self.kinds | other.kinds, rows)

    def touches_rows(self, row_ids: Iterable[int]) -> bool:
        """Whether cells of these rows may have changed."""
        if CELLS not in self.kinds:
            return False
        return self.row_ids is None or not self.row_ids.isdisjoint(row_ids)


def merged(first: TableChange | None, second: TableChange) -> TableChange:
    return second if first is None else first.merge(second)


def encode(origin: str, table_id: int, change: TableChange) -> str:
    """One bus message: compact JSON, well under PostgreSQL's 8000-byte NOTIFY limit."""
    rows = None if change.row_ids is None else sorted(change.row_ids)
    message = {"o": origin, "t": table_id, "k": sorted(change.kinds), "r": rows}
    return json.dumps(message, separators=(",", ":"))


def decode(text: str | bytes) -> tuple[str, int, TableChange] | None:
    """``(origin, table id, change)`` of a bus message, or None for anything malformed."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    origin, table_id, kinds, rows = (message.get(k) for k in ("o", "t", "k", "r"))
    if not isinstance(origin, str) or not _is_id(table_id) or not isinstance(kinds, list):
        return None
    assert isinstance(table_id, int)
    known = frozenset(k for k in kinds if k in KINDS)
    if rows is None:
        return origin, table_id, TableChange(known, None)
    if not isinstance(rows, list) or not all(_is_id(r) for r in rows):
        return None
    return origin, table_id, TableChange.of(*known, rows=rows)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
