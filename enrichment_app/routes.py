"""The app's routes, with URL builders."""

from __future__ import annotations

INDEX = "/"
TABLES = "/tables"
TABLE = "/tables/[table_id]"


def table_url(table_id: int) -> str:
    return f"/tables/{table_id}"
