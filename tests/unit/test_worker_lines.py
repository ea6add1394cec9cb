"""The worker's ``cells`` lines: the cells stored together, one line, within the size limits."""

from __future__ import annotations

import asyncio
import io
import json

from enrichment_app.runner.processing import CellResult
from enrichment_app.worker import MAX_CELLS_PER_LINE, MAX_LINE_CHARS, CellLines


def result(n: int, *, value: str = "v", total: int = 1000) -> CellResult:
    return CellResult(
        job_id=7,
        task_id=n,
        row_id=n,
        column_id=3,
        status="done",
        value=value,
        error=None,
        done=n,
        failed=0,
        total=total,
    )


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_the_cells_of_one_turn_of_the_loop_are_one_line() -> None:
    out = io.StringIO()
    cells = CellLines(out, 7)
    for n in range(1, 6):
        cells.add(result(n))
    assert out.getvalue() == "", "nothing is written before the turn ends"
    await asyncio.sleep(0)  # the end of this turn of the event loop
    (line,) = lines(out)
    assert (line["type"], line["job_id"], line["done"], line["total"]) == ("cells", 7, 5, 1000)
    assert [c["task_id"] for c in line["cells"]] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]
    cells.add(result(6))
    await asyncio.sleep(0)
    assert len(lines(out)) == 2


async def test_a_line_holds_at_most_its_count_and_about_its_size() -> None:
    out = io.StringIO()
    cells = CellLines(out, 7)
    for n in range(1, MAX_CELLS_PER_LINE * 2 + 2):
        cells.add(result(n))
    big = "x" * (MAX_LINE_CHARS // 3)
    for n in range(1000, 1004):
        cells.add(result(n, value=big))
    cells.flush()
    sizes = [len(line["cells"]) for line in lines(out)]  # type: ignore[arg-type]
    assert sizes[:2] == [MAX_CELLS_PER_LINE, MAX_CELLS_PER_LINE]
    assert sum(sizes) == MAX_CELLS_PER_LINE * 2 + 1 + 4
    assert all(len(line) < MAX_LINE_CHARS * 1.5 for line in out.getvalue().splitlines())
    assert [line["done"] for line in lines(out)] == sorted(line["done"] for line in lines(out))


def test_flushing_with_nothing_writes_nothing() -> None:
    out = io.StringIO()
    CellLines(out, 7).flush()
    assert out.getvalue() == ""
