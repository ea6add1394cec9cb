"""Rules every stored cell value follows, wherever it comes from."""

from __future__ import annotations

TRUNCATION_MARK = "… [truncated]"


def cap_value(value: str | None, max_chars: int) -> str | None:
    """Truncate ``value`` to ``max_chars`` characters, saying so at the end."""
    if value is None or len(value) <= max_chars:
        return value
    keep = max(max_chars - len(TRUNCATION_MARK), 0)
    return value[:keep] + TRUNCATION_MARK
