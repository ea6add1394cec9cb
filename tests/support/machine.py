"""What every result records about where it was measured, and how it is written."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from tests.support.paths import CHROMIUM, RESULTS


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def describe() -> dict[str, object]:
    try:
        chromium = subprocess.run(
            [str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        chromium = "not installed"
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "chromium": chromium,
        "load_average_at_start": os.getloadavg(),
    }


def today() -> str:
    return dt.date.today().isoformat()


def figure(
    metric: str, value: object, unit: str, *, target: str = "", met: bool | None = None
) -> dict[str, object]:
    """One row of a result: what was measured, the figure, its unit, and the target if any
    (``met`` None: reported, with no target to meet)."""
    return {"metric": metric, "value": value, "unit": unit, "target": target, "met": met}


def write_result(
    name: str,
    *,
    label: str | None,
    machine: dict[str, object],
    rows: list[dict[str, object]],
    raw: object,
    code: dict[str, object] | None = None,
) -> Path:
    """Write ``bench/results/<name>[-<label>].json`` in the format bench/report.py reads
    (``code``: the commit measured, as ``bench.live_app.code_state`` says it)."""
    result = {
        "name": name,
        "date": today(),
        "machine": machine,
        "command": f"bash bench/run.sh {name}  # python -m bench.{name} " + " ".join(sys.argv[1:]),
        "rows": rows,
        "raw": raw,
        "load_average_at_end": os.getloadavg(),
        **({"code": code} if code is not None else {}),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'-' + label if label else ''}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(rows, indent=2))
    return path
