"""Look for secrets in what the app let out: websocket frames, pages, log lines, error bodies.

Every suite that runs the app with secrets (browser tests, soak, production topology) captures
what left the backend and passes it here. A secret counts as leaked if it appears verbatim, or
URL- or JSON-escaped, anywhere in a captured text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from urllib.parse import quote

MIN_SECRET_CHARS = 12
"""Shorter values would match by accident; every secret the tests set is longer."""


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}


def find_leaks(secrets: Mapping[str, str], sources: Mapping[str, str | bytes]) -> list[str]:
    """``"<secret name> in <source name>"`` for every secret found in a source."""
    for name, secret in secrets.items():
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"secret {name!r} is too short to scan for reliably")
    leaks = []
    for source, content in sources.items():
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        for name, secret in secrets.items():
            if any(form in text for form in _forms(secret)):
                leaks.append(f"{name} in {source}")
    return leaks


def assert_no_leaks(secrets: Mapping[str, str], sources: Mapping[str, str | bytes]) -> None:
    """Fail with the list of leaks; also fail if nothing was captured (a scan of nothing)."""
    if not sources or not any(sources.values()):
        raise AssertionError("nothing was captured to scan for secrets")
    leaks = find_leaks(secrets, sources)
    assert not leaks, f"secrets leaked: {leaks}"


def joined(parts: Iterable[str | bytes]) -> str:
    return "\n".join(p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in parts)
