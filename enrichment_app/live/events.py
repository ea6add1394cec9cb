"""Turning what Trigger.dev Realtime sends into the page's events (pure, table-tested)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enrichment_app.trigger import RealtimeRun


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """The run as the header shows it."""

    run_id: str
    status: str
    done: int
    failed: int
    total: int
    error: str | None
    is_final: bool
    is_success: bool


@dataclass(frozen=True, slots=True)
class CellUpdate:
    """One cell the worker finished, from the run's ``cells`` stream."""

    task_id: int
    row_id: int
    column_id: int
    status: str
    value: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class CellBatch:
    """The cells of one ``cells`` stream chunk (the cells one write of the job stored)."""

    cells: tuple[CellUpdate, ...]


@dataclass(frozen=True, slots=True)
class FeedFailed:
    """Realtime is unavailable for this run; the page falls back to polling."""

    reason: str


RunEvent = RunSnapshot | CellBatch | FeedFailed


def _count(progress: Mapping[str, Any], key: str) -> int:
    value = progress.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def snapshot_from_run(run: RealtimeRun) -> RunSnapshot:
    """Read the status and the ``progress`` metadata ({done, failed, total}) the task keeps."""
    metadata = run.metadata if isinstance(run.metadata, Mapping) else {}
    progress = metadata.get("progress")
    progress = progress if isinstance(progress, Mapping) else {}
    return RunSnapshot(
        run_id=run.id,
        status=run.status,
        done=_count(progress, "done"),
        failed=_count(progress, "failed"),
        total=_count(progress, "total"),
        error=run.error.message if run.error else None,
        is_final=run.is_final,
        is_success=run.is_success,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def cell_from_chunk(chunk: Any) -> CellUpdate | None:
    """A ``cells`` stream chunk (``{taskId, rowId, columnId, status, value, error}``), or None
    for anything malformed, which is skipped: the database stays the source of truth."""
    if not isinstance(chunk, Mapping):
        return None
    task_id, row_id, column_id = (_int(chunk.get(k)) for k in ("taskId", "rowId", "columnId"))
    status = chunk.get("status")
    if task_id is None or row_id is None or column_id is None or status not in ("done", "error"):
        return None
    return CellUpdate(
        task_id=task_id,
        row_id=row_id,
        column_id=column_id,
        status=status,
        value=_text(chunk.get("value")),
        error=_text(chunk.get("error")),
    )


def cells_from_chunk(chunk: Any) -> list[CellUpdate]:
    """The cells of a ``cells`` stream chunk: ``{"cells": [cell, …]}``, or one cell (what task
    versions before batching wrote). Malformed cells are skipped."""
    if isinstance(chunk, Mapping) and isinstance(chunk.get("cells"), list):
        found = (cell_from_chunk(item) for item in chunk["cells"])
        return [cell for cell in found if cell is not None]
    cell = cell_from_chunk(chunk)
    return [cell] if cell is not None else []
