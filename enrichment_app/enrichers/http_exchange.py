"""One HTTP exchange of the ``http_json`` enricher: which headers are credentials, the request
for a redirect's next hop, a response read with a size cap, and the cell text of a result.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from enrichment_app.errors import EnrichError
from enrichment_app.redact import display_url, scrub

MAX_RESPONSE_BYTES = 5_000_000
_SECRET_HEADER_NAMES = frozenset({"authorization", "proxy-authorization", "cookie"})
_SECRET_HEADER_WORDS = ("key", "token", "secret", "auth", "password", "session")


def is_secret_header(name: str) -> bool:
    """Whether a header's value is treated as a credential because of its name."""
    lowered = name.lower()
    return lowered in _SECRET_HEADER_NAMES or any(w in lowered for w in _SECRET_HEADER_WORDS)


def origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def next_hop(
    request: httpx.Request,
    response: httpx.Response,
    location: str,
    origin: tuple[str, str, int | None],
) -> httpx.Request:
    """The request for a redirect's target. Like browsers: 303 (and 301/302 after a POST)
    become a GET without a body. A hop to another origin carries no credentials."""
    try:
        target = request.url.join(location)
    except httpx.InvalidURL as exc:
        raise EnrichError(f"{display_url(str(request.url))} redirected to an invalid URL") from exc
    if target.scheme not in ("http", "https"):
        raise EnrichError(
            f"{display_url(str(request.url))} redirected to an unsupported URL scheme: "
            f"{target.scheme}:"
        )
    method, content = request.method, request.content
    headers = httpx.Headers(request.headers)
    if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
        method, content = "GET", b""
        for name in ("content-type", "content-length", "transfer-encoding"):
            headers.pop(name, None)
    headers.pop("host", None)
    if origin_of(target) != origin:
        for name in list(headers.keys()):
            if is_secret_header(name):
                headers.pop(name)
    return httpx.Request(
        method, target, headers=headers, content=content or None, extensions=request.extensions
    )


async def read_capped(response: httpx.Response, shown_url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise EnrichError(
                f"Response from {shown_url} is larger than {MAX_RESPONSE_BYTES:,} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def error_detail(content: bytes, secrets: list[str]) -> str:
    """The message from a JSON error body (``error.message``, ``error``, ``message``, ``detail``),
    with the column's credentials taken out before it is shortened (shortening first could cut
    one in two and leave half of it)."""
    try:
        document = json.loads(content)
    except ValueError:
        return ""
    if not isinstance(document, dict):
        return ""
    error = document.get("error")
    candidates = [
        error.get("message") if isinstance(error, dict) else error,
        document.get("message"),
        document.get("detail"),
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            text = " ".join(scrub(candidate, secrets).split())
            return text if len(text) <= 200 else text[:197] + "..."
    return ""


def as_cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
