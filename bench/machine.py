"""What every result records about where it was measured."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess


def describe() -> dict[str, object]:
    try:
        chromium = subprocess.run(
            ["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        chromium = "not installed"
    with open("/proc/meminfo") as meminfo:
        mem_kb = int(meminfo.readline().split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": next(
            (
                l.split(":", 1)[1].strip()
                for l in open("/proc/cpuinfo")
                if l.startswith("model name")
            ),
            platform.processor(),
        ),
        "python": platform.python_version(),
        "os": platform.platform(),
        "chromium": chromium,
        "load_average_at_start": os.getloadavg(),
    }


def today() -> str:
    return dt.date.today().isoformat()
