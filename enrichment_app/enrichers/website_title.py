"""The ``website_title`` enricher: GET the page at a column's URL and return its title.

It returns the page's ``<title>`` (whitespace collapsed, entities unescaped), or its meta
description (``name="description"``, then ``property="og:description"``) when there is no title.
The fetch is bounded three ways: a total deadline, a cap on the bytes read (the body is streamed
and reading stops at the cap, or as soon as the title is complete) and a cap on redirects, which
are followed by hand so that each hop is checked.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any, ClassVar

import httpx

from enrichment_app.enrichers.base import ConfigField, EnrichContext, Enricher
from enrichment_app.enrichers.config import (
    optional_int,
    optional_number,
    refuse_unknown_keys,
    require_mapping,
    require_str,
)
from enrichment_app.errors import EnrichError
from enrichment_app.redact import display_url

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_REDIRECTS = 5
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SCHEME_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.DOTALL)
_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
    "User-Agent": "enrichment-app (website_title enricher)",
}


def normalise_website_url(value: str) -> str:
    """Turn a cell value into an absolute http(s) URL, adding ``https://`` when there is no scheme.

    Raises ``EnrichError`` for blank values, other schemes (``mailto:``, ``javascript:``, …) and
    values that are not URLs.
    """
    text = value.strip()
    if not text:
        raise EnrichError("No URL")
    if any(ch.isspace() for ch in text):
        raise EnrichError(f"Not a valid URL: {text!r}")
    if text.startswith("//"):
        text = "https:" + text
    elif "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise EnrichError(f"Only http and https URLs are supported, not {scheme}://")
    elif (match := _SCHEME_PREFIX.match(text)) and not match.group(2).split("/", 1)[0].isdigit():
        # "mailto:x@y" or "javascript:…"; "example.com:8080/x" is a host and port instead.
        raise EnrichError(f"Only http and https URLs are supported, not {match.group(1).lower()}:")
    else:
        text = "https://" + text
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise EnrichError(f"Not a valid URL: {value.strip()!r} ({exc})") from exc
    if not url.host:
        raise EnrichError(f"Not a valid URL: {value.strip()!r} (no host)")
    return str(url)


class PageSummaryParser(HTMLParser):
    """Collects the first ``<title>`` and the meta descriptions of an HTML document, fed in chunks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._title_parts: list[str] = []
        self._in_title = False
        self.title_complete = False
        self.head_complete = False
        self.description: str | None = None
        self.og_description: str | None = None

    @property
    def title(self) -> str:
        return _collapse("".join(self._title_parts))

    @property
    def summary(self) -> str:
        """The title, else the meta description, else the og:description, else ""."""
        return (
            self.title or _collapse(self.description or "") or _collapse(self.og_description or "")
        )

    @property
    def done(self) -> bool:
        """Whether reading on cannot change ``summary``."""
        if self.title_complete and self.title:
            return True
        return self.head_complete and bool(self.description or self.og_description)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self.title_complete:
            self._in_title = True
        elif tag == "body":
            self.head_complete = True
        elif tag == "meta":
            values = {key.lower(): value or "" for key, value in attrs}
            kind = (values.get("name") or values.get("property") or "").strip().lower()
            content = values.get("content", "")
            if kind == "description" and self.description is None:
                self.description = content
            elif kind == "og:description" and self.og_description is None:
                self.og_description = content

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.title_complete = True
        elif tag == "head":
            self.head_complete = True

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)


def _collapse(text: str) -> str:
    return " ".join(text.split())


async def fetch_page_summary(
    http: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
) -> str:
    """GET ``url`` and return its title or description; ``EnrichError`` says why not."""
    current = url
    try:
        async with asyncio.timeout(timeout_seconds):
            seen = {current}
            for _ in range(max_redirects + 1):
                async with http.stream(
                    "GET",
                    current,
                    headers=_REQUEST_HEADERS,
                    follow_redirects=False,
                    timeout=timeout_seconds,
                ) as response:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECT_STATUSES and location:
                        current = _redirect_target(response.url, location, seen)
                        continue
                    return await _read_summary(response, current, max_bytes)
            raise EnrichError(
                f"Too many redirects (more than {max_redirects}) from {display_url(url)}"
            )
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise EnrichError(
            f"Timed out after {timeout_seconds:g} s fetching {display_url(current)}"
        ) from exc
    except httpx.ConnectError as exc:
        raise EnrichError(f"Could not connect to {display_url(current)}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise EnrichError(
            f"Fetching {display_url(current)} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _redirect_target(base: httpx.URL, location: str, seen: set[str]) -> str:
    try:
        target = base.join(location)
    except httpx.InvalidURL as exc:
        raise EnrichError(f"{base} redirected to an invalid URL: {location!r}") from exc
    if target.scheme not in ("http", "https"):
        raise EnrichError(f"{base} redirected to an unsupported URL: {location!r}")
    text = str(target)
    if text in seen:
        raise EnrichError(f"Redirect loop: {base} redirected back to {text}")
    seen.add(text)
    return text


async def _read_summary(response: httpx.Response, url: str, max_bytes: int) -> str:
    if not response.is_success:
        raise EnrichError(f"HTTP {response.status_code} from {display_url(url)}")
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type and media_type not in _HTML_TYPES:
        raise EnrichError(f"Not an HTML page ({media_type}) at {display_url(url)}")
    decoder = codecs.getincrementaldecoder(_encoding(response))(errors="replace")
    parser = PageSummaryParser()
    read = 0
    async for chunk in response.aiter_bytes():
        piece = chunk[: max_bytes - read]
        read += len(piece)
        parser.feed(decoder.decode(piece))
        if parser.done or read >= max_bytes:
            break
    else:
        parser.feed(decoder.decode(b"", final=True))
        parser.close()
    logger.debug("website_title read %d bytes from %s", read, display_url(url))
    if summary := parser.summary:
        return summary
    where = f"in the first {read:,} bytes of" if read >= max_bytes else "on"
    raise EnrichError(f"No <title> or meta description found {where} {display_url(url)}")


def _encoding(response: httpx.Response) -> str:
    charset = response.charset_encoding
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"


class WebsiteTitleEnricher(Enricher):
    """The title (or description) of the web page a column links to."""

    name = "website_title"
    label = "Website title"
    description = (
        "Fetch the web page in a column (https:// is added when missing) and return its "
        "<title>, or its meta description when it has no title."
    )
    concurrency = 8
    timeout_seconds = 30.0
    config_example: ClassVar[dict[str, Any]] = {"column": "website"}
    config_fields = (
        ConfigField(
            ("column",),
            "Website column",
            "column",
            help="The column with web addresses.",
            required=True,
        ),
        ConfigField(
            ("timeout_seconds",), "Timeout (seconds)", "number", default=DEFAULT_TIMEOUT_SECONDS
        ),
        ConfigField(
            ("max_redirects",), "Redirects to follow", "number", default=DEFAULT_MAX_REDIRECTS
        ),
    )

    def validate_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        config = require_mapping(self.name, config)
        refuse_unknown_keys(
            self.name, config, {"column", "max_bytes", "timeout_seconds", "max_redirects"}
        )
        return {
            "column": require_str(self.name, config, "column", max_length=200),
            "max_bytes": optional_int(
                self.name,
                config,
                "max_bytes",
                default=DEFAULT_MAX_BYTES,
                minimum=1024,
                maximum=10_000_000,
            ),
            "timeout_seconds": optional_number(
                self.name,
                config,
                "timeout_seconds",
                default=DEFAULT_TIMEOUT_SECONDS,
                minimum=0,
                maximum=self.timeout_seconds - 5,
                exclusive_minimum=True,
            ),
            "max_redirects": optional_int(
                self.name,
                config,
                "max_redirects",
                default=DEFAULT_MAX_REDIRECTS,
                minimum=0,
                maximum=20,
            ),
        }

    def referenced_columns(self, config: Mapping[str, Any]) -> set[str]:
        return {config["column"]}

    async def enrich(self, ctx: EnrichContext) -> str:
        value = ctx.column_text("URL")
        return await fetch_page_summary(
            ctx.http,
            normalise_website_url(value),
            max_bytes=ctx.config.get("max_bytes", DEFAULT_MAX_BYTES),
            timeout_seconds=ctx.config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS),
            max_redirects=ctx.config.get("max_redirects", DEFAULT_MAX_REDIRECTS),
        )
