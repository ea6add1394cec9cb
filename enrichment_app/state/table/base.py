"""What every part of the table page's state shares: which table is open, and its message."""

from __future__ import annotations

import reflex as rx


class TableBase(rx.State, mixin=True):
    table_id: int = 0
    table_name: str = ""
    not_found: bool = False
    trigger_mode: bool = False
    message: str = ""
    """An error for the user (a refused edit, a failed read); empty when all is well."""
