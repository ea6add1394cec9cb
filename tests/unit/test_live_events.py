"""Decoding Realtime runs and ``cells`` chunks into the page's events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from enrichment_app.live.events import (
    CellUpdate,
    cell_from_chunk,
    cells_from_chunk,
    snapshot_from_run,
)
from enrichment_app.trigger import RealtimeRun, RunError

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def run(status: str, metadata: Any = None, error: RunError | None = None) -> RealtimeRun:
    return RealtimeRun(
        id="run_1",
        task_identifier="process-enrichment-job",
        status=status,
        created_at=NOW,
        updated_at=NOW,
        metadata=metadata,
        error=error,
    )


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"progress": {"done": 2, "failed": 1, "total": 5}}, (2, 1, 5)),
        ({"progress": {"done": "2", "failed": None, "total": 5}}, (0, 0, 5)),
        ({"progress": {"done": True, "failed": -1, "total": 5}}, (0, 0, 5)),
        ({"progress": 0.5}, (0, 0, 0)),
        (None, (0, 0, 0)),
        ("text metadata", (0, 0, 0)),
    ],
)
def test_snapshot_reads_progress_defensively(metadata: Any, expected: tuple[int, int, int]) -> None:
    snapshot = snapshot_from_run(run("EXECUTING", metadata))
    assert (snapshot.done, snapshot.failed, snapshot.total) == expected
    assert snapshot.is_final is False


def test_snapshot_of_a_failed_run_carries_its_error() -> None:
    snapshot = snapshot_from_run(run("CRASHED", error=RunError(message="Out of memory")))
    assert snapshot.is_final and not snapshot.is_success and snapshot.error == "Out of memory"


@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        (
            {
                "taskId": 7,
                "rowId": 3,
                "columnId": 4,
                "status": "done",
                "value": "acme.example",
                "error": None,
            },
            CellUpdate(7, 3, 4, "done", "acme.example", None),
        ),
        (
            {
                "taskId": 8,
                "rowId": 3,
                "columnId": 5,
                "status": "error",
                "value": None,
                "error": "bad email",
            },
            CellUpdate(8, 3, 5, "error", None, "bad email"),
        ),
        ({"taskId": "7", "rowId": 3, "columnId": 4, "status": "done"}, None),
        ({"taskId": 7, "rowId": 3, "columnId": 4, "status": "running"}, None),
        ({"taskId": True, "rowId": 3, "columnId": 4, "status": "done"}, None),
        ("not an object", None),
        (None, None),
    ],
)
def test_cell_from_chunk(chunk: Any, expected: CellUpdate | None) -> None:
    assert cell_from_chunk(chunk) == expected


def test_a_batch_chunk_holds_its_cells_in_order_and_skips_the_malformed() -> None:
    good = {"taskId": 1, "rowId": 2, "columnId": 3, "status": "done", "value": "v", "error": None}
    bad = {"taskId": 2, "rowId": 2, "columnId": 3, "status": "running"}
    other = {**good, "taskId": 3, "rowId": 4}
    assert cells_from_chunk({"cells": [good, bad, other, "junk"]}) == [
        CellUpdate(1, 2, 3, "done", "v", None),
        CellUpdate(3, 4, 3, "done", "v", None),
    ]
    assert cells_from_chunk(good) == [CellUpdate(1, 2, 3, "done", "v", None)], "one cell"
    assert cells_from_chunk({"cells": "nope"}) == []
    assert cells_from_chunk([good]) == []
