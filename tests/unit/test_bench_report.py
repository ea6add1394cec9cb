"""bench/report.py writes the summary of bench/results/ into bench/README.md, between markers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bench_summary import END, README, START, replace_block, summary
from tests.support.paths import RESULTS, ROOT

PAGE = (
    f"# Benchmarks\n\nBy hand.\n\n{START}\nold figures\n{END}\n\n## Running them\n\nBy hand too.\n"
)


def write_result(folder: Path, name: str, **extra: object) -> None:
    result = {
        "name": name,
        "date": "2026-12-01",
        "machine": {"cpus": 2, "cpu_model": "Xeon", "memory_gib": 23.5, "python": "3.11.7",
                    "load_average_at_start": [0.5, 1.25, 2.0]},
        "rows": [{"metric": "cells per second", "value": 1234.56, "unit": "cells/s",
                  "target": ">= 1,000 cells/s", "met": True}],
        **extra,
    }  # fmt: skip
    (folder / f"{name}.json").write_text(json.dumps(result))


def test_the_summary_lists_every_figure_and_where_it_was_measured(tmp_path: Path) -> None:
    write_result(tmp_path, "throughput", code={"commit": "abc1234"})
    text = summary(tmp_path)
    assert "| throughput | cells per second | 1,234.6 cells/s | >= 1,000 cells/s | yes |" in text
    assert "| throughput | 2026-12-01 | abc1234 | 0.5 / 1.2 / 2.0 | 2 CPUs (Xeon)" in text
    assert "| latency | (not run) | | | |" in text


def test_the_block_between_the_markers_is_replaced_and_nothing_else() -> None:
    page = replace_block(PAGE, "new figures")
    assert page == PAGE.replace("old figures", "new figures")


@pytest.mark.parametrize(
    "page",
    [
        "# Benchmarks\n",
        f"{START}\nfigures\n",
        f"{END}\nfigures\n{START}\n",
        f"{START}\n{END}\n{START}\n{END}\n",
    ],
    ids=["no markers", "no end", "end first", "twice"],
)
def test_a_page_without_one_pair_of_markers_is_refused(page: str) -> None:
    with pytest.raises(ValueError, match="bench-summary"):
        replace_block(page, "figures")


def test_python_m_bench_report_rewrites_the_page_it_is_given(tmp_path: Path) -> None:
    """The command bench/run.sh ends with, on a copy (the test never edits tracked files)."""
    write_result(tmp_path, "polling")
    page = tmp_path / "README.md"
    page.write_text(PAGE)
    command = [sys.executable, "-m", "bench.report", "--results", str(tmp_path)]
    done = subprocess.run(
        [*command, "--readme", str(page)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert page.read_text() == replace_block(PAGE, summary(tmp_path))
    assert "| polling | cells per second |" in page.read_text()
    assert "By hand too." in page.read_text()


def test_bench_readme_holds_the_summary_of_the_committed_results() -> None:
    """Whoever commits new results commits the summary report.py makes of them."""
    text = README.read_text()
    assert replace_block(text, summary(RESULTS)) == text
