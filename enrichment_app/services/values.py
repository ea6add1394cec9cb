"""Rules every stored text follows, wherever it comes from.

PostgreSQL cannot store the NUL character (``\\x00``) in text, and SQLite would keep it where
PostgreSQL fails, so both refuse it the same way: text a person gave us (names, typed or
imported values, column configs) is refused with a message saying where, because dropping a
character silently would change what they wrote; text from a provider or an error message has
its NULs removed, since nobody can retype it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from enrichment_app.errors import InvalidInputError

TRUNCATION_MARK = "… [truncated]"
NUL = "\x00"


def cap_value(value: str | None, max_chars: int) -> str | None:
    """Truncate ``value`` to ``max_chars`` characters, saying so at the end."""
    if value is None or len(value) <= max_chars:
        return value
    keep = max(max_chars - len(TRUNCATION_MARK), 0)
    return value[:keep] + TRUNCATION_MARK


def refuse_nul(text: str, *, where: str) -> str:
    """``text`` unchanged, or a refusal naming ``where`` the NUL character is."""
    if NUL in text:
        raise InvalidInputError(
            f"{where} contains a NUL character (\\0), which cannot be stored. Remove it and try again."
        )
    return text


def refuse_nul_in(value: Any, *, where: str) -> None:
    """Refuse a NUL in any string of a JSON-like value (keys included)."""
    if isinstance(value, str):
        refuse_nul(value, where=where)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            refuse_nul_in(key, where=where)
            refuse_nul_in(item, where=where)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for item in value:
            refuse_nul_in(item, where=where)


def strip_nul(text: str | None) -> str | None:
    """Text nobody typed (a provider's answer, an error message), without NUL characters."""
    return text.replace(NUL, "") if text and NUL in text else text
