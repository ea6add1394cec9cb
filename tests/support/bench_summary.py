"""The summary of bench/results/*.json that bench/README.md shows between its markers.

Each benchmark writes ``bench/results/<name>.json`` (``tests.support.machine.write_result``)
with at least::

    {"name": ..., "date": "YYYY-MM-DD", "machine": {...}, "command": "...",
     "rows": [{"metric": ..., "value": ..., "unit": ..., "target": "...", "met": true|false|null}]}

``summary`` makes a table of every figure and one line per benchmark saying when, where and
under what load it was taken; ``replace_block`` puts it between ``<!-- bench-summary -->``
and ``<!-- /bench-summary -->``. ``python -m bench.report`` does both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.paths import RESULTS, ROOT

ORDER = [
    "perf",
    "latency",
    "fanout",
    "throughput",
    "push",
    "big_tables",
    "big_tables_views",
    "polling",
    "csv_io",
    "big_runs",
]
README = ROOT / "bench" / "README.md"
START = "<!-- bench-summary -->"
END = "<!-- /bench-summary -->"
NOTE = "<!-- written by `python -m bench.report` from bench/results/*.json: do not edit by hand -->"


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _machine(data: dict[str, Any]) -> str:
    machine = data.get("machine", {})
    load = machine.get("load_average_at_start") or []
    chromium = str(machine.get("chromium", "")).split(" built on")[0]
    parts = [
        f"{machine.get('cpus', '?')} CPUs ({machine.get('cpu_model', '?')})",
        f"{machine.get('memory_gib', '?')} GiB",
        f"Python {machine.get('python', '?')}",
        *([chromium] if chromium else []),
    ]
    commit = (data.get("code") or {}).get("commit", "")
    return (
        f"| {data.get('name', '?')} | {data.get('date', '?')} | {commit or 'n/a'} "
        f"| {' / '.join(f'{x:.1f}' for x in load) or 'n/a'} | {', '.join(parts)} |"
    )


def summary(results: Path = RESULTS) -> str:
    """The block's contents: every figure, then where and when each benchmark ran."""
    figures = ["| benchmark | metric | measured | target | met |", "|---|---|---|---|---|"]
    runs = [
        "| benchmark | date | commit | load average at start (1 / 5 / 15 min) | machine |",
        "|---|---|---|---|---|",
    ]
    for name in ORDER:
        path = results / f"{name}.json"
        if not path.exists():
            figures.append(f"| {name} | (not run) | | | |")
            continue
        data = json.loads(path.read_text())
        runs.append(_machine(data))
        for row in data["rows"]:
            met = {True: "yes", False: "**no**", None: "n/a"}[row.get("met")]
            measured = f"{_shown(row['value'])} {row.get('unit', '')}".strip()
            figures.append(
                f"| {name} | {row['metric']} | {measured} | {row.get('target', '')} | {met} |"
            )
    return "\n".join([NOTE, "", *figures, "", *runs])


def replace_block(text: str, block: str) -> str:
    """``text`` with what stands between the markers replaced by ``block``.

    Raises ``ValueError`` unless each marker stands once, on a line of its own, start first.
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or starts[0] > ends[0]:
        raise ValueError(f"expected one {START} line and, after it, one {END} line")
    start, end = starts[0], ends[0]
    return "\n".join([*lines[: start + 1], block, *lines[end:]]) + "\n"
