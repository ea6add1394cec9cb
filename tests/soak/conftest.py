"""Print the fault matrix at the end of the pytest run, passed or failed (not only with -s)."""

from __future__ import annotations

from typing import Any

REPORT: list[str] = []
"""Lines the soak test leaves for the terminal summary."""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("fault matrix")
        for line in REPORT:
            terminalreporter.write_line(line)
