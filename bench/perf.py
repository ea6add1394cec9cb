"""Issue 11 §4, the four figures in one named run: medians of 3 rounds, same machine, same load.

Each round runs, one after the other and each in its own process, ``bench.latency`` (our page
and the official react-hooks page, side by side), ``bench.fanout`` (500 watching tabs),
``bench.throughput`` (``http_json`` and the bare httpx ceiling, side by side) and
``bench.push``; the rounds interleave, so a change in the machine's load falls on every
figure alike. Each round's full result is kept in ``bench/.work/perf/``; the figures of
``bench/results/perf.json`` are the medians over the rounds, with the load average before
every round and at the end, the date and the commit.

    python -m bench.perf [--rounds 3] [--clients 500] [--only latency fanout …]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.live_app import code_state
from tests.support.machine import describe, figure, today
from tests.support.paths import RESULTS, ROOT

WORK = ROOT / "bench" / ".work" / "perf"
LATENCY_RATIO = 1.0
FANOUT_CPU_MS_PER_TAB = 0.3
P95_MS = 250.0
HTTP_SHARE = 0.9
NAMES = ("latency", "fanout", "throughput", "push")


def _command(name: str, out: Path, clients: int) -> list[str]:
    extra = {
        "fanout": ["--clients", str(clients)],
        "throughput": ["--cells", "2000", "--no-postgres"],
    }.get(name, [])
    return [sys.executable, "-m", f"bench.{name}", *extra, "--out", str(out)]


def _figures(name: str, data: dict[str, Any]) -> dict[str, float]:
    """The figures §4 sets targets for, from one round's result."""
    if name == "latency":
        ours, base = data["pages"]["ours"], data["pages"]["baseline"]
        return {
            "ours_p50_ms": ours["p50_ms"],
            "ours_p95_ms": ours["p95_ms"],
            "baseline_p50_ms": base["p50_ms"],
            "baseline_p95_ms": base["p95_ms"],
            "p95_ratio": ours["p95_ms"] / base["p95_ms"],
            "change_to_websocket_p50_ms": ours["breakdown"]["change_to_websocket_message_p50_ms"],
            "websocket_to_dom_p50_ms": ours["breakdown"]["websocket_message_to_dom_p50_ms"],
            "missed": len(ours["missed"]) + len(base["missed"]),
        }
    if name == "fanout":
        return {
            "cpu_ms_per_change": data["backend_cpu"]["ms_per_change"],
            "cpu_ms_per_change_per_tab": data["backend_cpu"]["ms_per_change"] / data["clients"],
            "delivery_p50_ms": data["delivery"]["p50_ms"],
            "delivery_p95_ms": data["delivery"]["p95_ms"],
            "missing": data["delivery"]["missing"],
        }
    if name == "throughput":
        http, bare = data["raw"]["sqlite_http"], data["raw"]["bare_httpx_ceiling"]
        return {
            "http_json_cells_per_s": http["cells_per_s"],
            "bare_httpx_requests_per_s": bare["per_s"],
            "share_of_ceiling": http["cells_per_s"] / bare["per_s"],
        }
    return {
        "p50_ms": data["latencies_ms"]["p50"],
        "p95_ms": data["latencies_ms"]["p95"],
        "missed": len(data["latencies_ms"]["missed"]),
    }


def _rows(rounds: list[dict[str, dict[str, float]]], clients: int) -> list[dict[str, object]]:
    def median(name: str, key: str) -> float:
        return statistics.median(r[name][key] for r in rounds if name in r)

    def have(name: str) -> bool:
        return any(name in r for r in rounds)

    rows: list[dict[str, object]] = []

    def add(metric: str, value: object, unit: str, **target: Any) -> None:
        rows.append(figure(metric, value, unit, **target))

    if have("latency"):
        ratio = median("latency", "p95_ratio")
        add("status change → DOM, ours p50 / p95", _pair(median, "latency", "ours"), "ms")
        add("same, official react-hooks page p50 / p95", _pair(median, "latency", "baseline"), "ms")
        add(
            "status change → DOM, p95 ratio ours / react-hooks",
            round(ratio, 2),
            "×",
            target=f"≤ {LATENCY_RATIO:.1f}×",
            met=ratio <= LATENCY_RATIO and median("latency", "missed") == 0,
        )
        add(
            "ours p50: change → websocket message / → DOM",
            f"{median('latency', 'change_to_websocket_p50_ms'):.1f} / "
            f"{median('latency', 'websocket_to_dom_p50_ms'):.1f}",
            "ms",
        )
    if have("fanout"):
        per_tab = median("fanout", "cpu_ms_per_change_per_tab")
        p95 = median("fanout", "delivery_p95_ms")
        add(
            f"fan-out, {clients} tabs: backend CPU per change",
            median("fanout", "cpu_ms_per_change"),
            "ms",
        )
        add(
            f"fan-out, {clients} tabs: backend CPU per change per tab",
            round(per_tab, 3),
            "ms",
            target=f"≤ {FANOUT_CPU_MS_PER_TAB} ms",
            met=per_tab <= FANOUT_CPU_MS_PER_TAB,
        )
        add(
            f"fan-out, {clients} tabs on one process: delivery p95",
            round(p95, 1),
            "ms",
            target=f"≤ {P95_MS:.0f} ms",
            met=p95 <= P95_MS and median("fanout", "missing") == 0,
        )
    if have("throughput"):
        share = median("throughput", "share_of_ceiling")
        add(
            "http_json, 50 ms API, concurrency 20",
            median("throughput", "http_json_cells_per_s"),
            "cells/s",
        )
        add(
            "bare httpx client, same API and concurrency (the ceiling)",
            median("throughput", "bare_httpx_requests_per_s"),
            "requests/s",
        )
        add(
            "http_json share of the ceiling measured in the same round",
            f"{share:.0%}",
            "",
            target=f"≥ {HTTP_SHARE:.0%}",
            met=share >= HTTP_SHARE,
        )
    if have("push"):
        p95 = median("push", "p95_ms")
        add(
            "table-wide push: another process's edit → tab's DOM p50",
            round(median("push", "p50_ms"), 1),
            "ms",
        )
        add(
            "table-wide push: another process's edit → tab's DOM p95",
            round(p95, 1),
            "ms",
            target=f"≤ {P95_MS:.0f} ms",
            met=p95 <= P95_MS and median("push", "missed") == 0,
        )
    return rows


def _pair(median: Callable[[str, str], float], name: str, page: str) -> str:
    return f"{median(name, f'{page}_p50_ms'):.1f} / {median(name, f'{page}_p95_ms'):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=500, help="watching tabs in the fan-out")
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES))
    parser.add_argument("--out", type=Path, default=RESULTS / "perf.json")
    args = parser.parse_args()
    machine, code = describe(), code_state()
    WORK.mkdir(parents=True, exist_ok=True)
    rounds: list[dict[str, dict[str, float]]] = []
    loads: list[dict[str, object]] = []
    for number in range(1, args.rounds + 1):
        figures: dict[str, dict[str, float]] = {}
        for name in args.only:
            out = WORK / f"{name}-{number}.json"
            loads.append({"round": number, "bench": name, "load_before": os.getloadavg()})
            print(f"== perf round {number}: {name}  load {os.getloadavg()}", flush=True)
            subprocess.run(_command(name, out, args.clients), cwd=ROOT, check=True)
            figures[name] = _figures(name, json.loads(out.read_text()))
            print(json.dumps(figures[name]), flush=True)
        rounds.append(figures)
    result = {
        "name": "perf",
        "date": today(),
        "machine": machine,
        "command": "bash bench/run.sh perf  # python -m bench.perf " + " ".join(sys.argv[1:]),
        "rows": _rows(rounds, args.clients),
        "code": code,
        "rounds": rounds,
        "loads": loads,
        "load_average_at_end": os.getloadavg(),
    }
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for row in result["rows"]:
        print(
            f"{row['metric']:<64} {row['value']} {row['unit']}  target {row['target']}  met {row['met']}"
        )
    print("load average at start / end:", machine["load_average_at_start"], os.getloadavg())


if __name__ == "__main__":
    main()
