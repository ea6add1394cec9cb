"""The one place that takes secrets out of text before it is stored, shown or logged.

``scrub`` replaces known secret values (and their URL-encoded and JSON-escaped forms) in error
text; ``display_url`` is a URL fit for a message or a log line: no userinfo, query or fragment,
which is where keys usually ride.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from urllib.parse import quote, urlsplit, urlunsplit

REDACTED = "[redacted]"
MIN_SCRUBBED_CHARS = 4
"""Shorter values would blot out ordinary words; no real credential is this short."""


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every known secret value replaced by ``[redacted]``, longest first, so a
    secret that contains another is not left half-visible."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) >= MIN_SCRUBBED_CHARS:
            forms.update({secret, quote(secret, safe=""), json.dumps(secret)[1:-1]})
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


def display_url(url: str) -> str:
    """``url`` without userinfo, query string or fragment: fit for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        url = url.split("?", 1)[0].split("#", 1)[0]
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def quiet_request_logs() -> None:
    """Raise httpx's and httpcore's loggers to WARNING: at INFO, httpx logs every request's full
    URL, query string (and any key in it) included."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
