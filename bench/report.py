"""Collects bench/results/*.json into bench/results/summary.md: figure, target, verdict.

Each benchmark writes ``bench/results/<name>.json`` with at least::

    {"name": ..., "date": "YYYY-MM-DD", "machine": {...}, "command": "...",
     "rows": [{"metric": ..., "value": ..., "unit": ..., "target": "...", "met": true|false|null}]}
"""

from __future__ import annotations

import json

from tests.support.paths import RESULTS

ORDER = ["latency", "fanout", "throughput", "big_tables", "polling"]


def main() -> None:
    lines = ["| benchmark | metric | measured | target | met |", "|---|---|---|---|---|"]
    machines: set[str] = set()
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            lines.append(f"| {name} | (not run) | | | |")
            continue
        data = json.loads(path.read_text())
        machines.add(json.dumps(data.get("machine", {}), sort_keys=True))
        for row in data["rows"]:
            met = {True: "yes", False: "**no**", None: "n/a"}[row.get("met")]
            value = row["value"]
            shown = (
                f"{value:,.1f}"
                if isinstance(value, float)
                else f"{value:,}"
                if isinstance(value, int)
                else str(value)
            )
            lines.append(
                f"| {name} ({data.get('date', '?')}) | {row['metric']} | {shown} {row.get('unit', '')} | {row.get('target', '')} | {met} |"
            )
    lines.append("")
    for machine in sorted(machines):
        lines.append(f"Machine: `{machine}`")
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
