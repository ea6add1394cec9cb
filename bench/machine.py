"""What every result records about where it was measured."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def describe() -> dict[str, object]:
    try:
        chromium = subprocess.run(
            ["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=20
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
