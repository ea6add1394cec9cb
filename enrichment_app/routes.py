"""The app's routes, with URL builders."""

from __future__ import annotations

from urllib.parse import quote

INDEX = "/"
TABLES = "/tables"
TABLE = "/tables/[table_id]"
SETUP = "/setup"
SIGN_IN = "/signin"
INVITATION = "/invite/[code]"
SETTINGS = "/settings"
AUDIT = "/audit"

PUBLIC_PAGES = (SETUP, SIGN_IN, INVITATION)
"""Pages a signed-out browser may see (they show forms, no data)."""


def table_url(table_id: int) -> str:
    return f"/tables/{table_id}"


def sign_in_url(next_path: str = "") -> str:
    """The sign-in page, coming back to ``next_path`` (a path of this app) afterwards."""
    if not next_path.startswith("/") or next_path.startswith("//") or next_path in (SIGN_IN, SETUP):
        return SIGN_IN
    return f"{SIGN_IN}?next={quote(next_path, safe='/')}"


def invitation_url(code: str) -> str:
    return f"/invite/{code}"
