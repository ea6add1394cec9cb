"""Capture what the app lets out, to scan it for secrets with ``tests.support.secret_scan``.

One ``Capture`` per test session collects, under a name per source:

* websocket frames, both ways, of every Playwright page it watches (``watch_page``), or frames
  a test's own socket client saw (``add_frame``);
* the DOM of pages (``snapshot_page`` / ``snapshot_context``: ``page.content()``);
* log records of this process, formatted with their tracebacks (``logging()``, a context
  manager that also turns the given loggers up to DEBUG and restores them afterwards);
* HTTP responses the tests got from the app: status, headers and body (``record_response``,
  or ``httpx_hooks()`` to record every response of an ``httpx`` client);
* anything else, such as a process's output (``add``).

``assert_clean(secrets)`` then fails if any secret appears in any source, or if nothing was
captured. Public access tokens are handled on purpose: the API returns one to the client that
started a job, so a recorded response that carries ``publicAccessToken`` may hold that token,
and every other source must not hold it, nor any token added with ``add_public_tokens`` (for
example the ones the fake Trigger.dev server saw the backend use).

Example (a browser suite)::

    capture = Capture()
    with capture.logging(["enrichment_app"]):
        capture.watch_page(page, "test_x")
        ...
        capture.snapshot_page(page, "test_x")
    capture.assert_clean({"ENRICHMENT_API_KEY": key})
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from tests.support.secret_scan import assert_no_leaks, find_leaks

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, WebSocket


@dataclass(frozen=True)
class Counts:
    frames: int
    pages: int
    log_records: int
    responses: int
    other: int
    public_tokens: int

    def __str__(self) -> str:
        return (
            f"{self.frames} websocket frames, {self.pages} page snapshots, "
            f"{self.log_records} log records, {self.responses} HTTP responses, "
            f"{self.other} other texts, {self.public_tokens} public tokens"
        )


class LogRecorder(logging.Handler):
    """Keeps every record it sees, formatted (message, arguments, traceback, stack)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []
        self.by_logger: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be formatted is still scanned, raw
            text = f"{record.name}: {record.msg!r} {record.args!r}"
        self.lines.append(text)
        self.by_logger[record.name] += 1


class Capture:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames: defaultdict[str, list[str]] = defaultdict(list)
        self.pages: dict[str, str] = {}
        self.responses: dict[str, str] = {}
        self.other: dict[str, str] = {}
        self.log = LogRecorder()
        self.public_tokens: set[str] = set()
        self._issuing: set[str] = set()
        """Names of responses that returned a public token to the client that asked."""

    # -- websocket frames and pages ----------------------------------------------------------

    def add_frame(self, label: str, payload: str | bytes) -> None:
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        with self._lock:
            self.frames[label].append(text)

    def watch_page(self, page: Page, label: str) -> None:
        """Record every websocket frame ``page`` sends or receives from now on, under ``label``."""

        def on_socket(ws: WebSocket) -> None:
            ws.on("framesent", lambda payload: self.add_frame(label, payload))
            ws.on("framereceived", lambda payload: self.add_frame(label, payload))

        page.on("websocket", on_socket)

    def watch_context(self, context: BrowserContext, label: str) -> None:
        """``watch_page`` for every page the context opens from now on (popups included)."""
        counter = iter(range(1_000_000))
        context.on("page", lambda page: self.watch_page(page, f"{label} #{next(counter)}"))

    def frames_of(self, label_prefix: str) -> list[str]:
        with self._lock:
            return [
                f for label, fs in self.frames.items() if label.startswith(label_prefix) for f in fs
            ]

    def snapshot_page(self, page: Page, label: str) -> None:
        """The page's DOM as it is now (what the user could see or copy)."""
        if page.is_closed():
            return
        content = page.content()
        with self._lock:
            self.pages[label] = content

    def snapshot_context(self, context: BrowserContext, label: str) -> None:
        for index, page in enumerate(context.pages):
            self.snapshot_page(page, f"{label} #{index}")

    # -- logs ------------------------------------------------------------------------------

    @contextmanager
    def logging(self, debug_loggers: Iterable[str] = ()) -> Iterator[LogRecorder]:
        """Record every log record of this process; ``debug_loggers`` are turned up to DEBUG.

        The handler sits on the root logger, so it sees every logger that propagates (the app's
        do). Loggers that do not propagate (uvicorn's) print to stderr instead: add that output
        with ``add``.
        """
        root = logging.getLogger()
        saved = {name: logging.getLogger(name).level for name in debug_loggers}
        for name in saved:
            logging.getLogger(name).setLevel(logging.DEBUG)
        root.addHandler(self.log)
        try:
            yield self.log
        finally:
            root.removeHandler(self.log)
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)

    # -- HTTP responses and other text -----------------------------------------------------

    def record_response(self, response: httpx.Response, label: str | None = None) -> str:
        """Keep the response (read it first); returns the name it is kept under."""
        response.read()
        request = response.request
        with self._lock:
            name = (
                label or f"response {len(self.responses) + 1}: {request.method} {request.url.path}"
            )
            self.responses[name] = "\n".join(
                [
                    f"HTTP {response.status_code} {response.reason_phrase}",
                    *(f"{k}: {v}" for k, v in response.headers.items()),
                    "",
                    response.text,
                ]
            )
        token = _public_token(response)
        if token:
            with self._lock:
                self.public_tokens.add(token)
                self._issuing.add(name)
        return name

    def httpx_hooks(self) -> dict[str, list[Callable[[httpx.Response], Any]]]:
        """``httpx.Client(event_hooks=capture.httpx_hooks())`` records every response."""
        return {"response": [self.record_response]}

    def add(self, label: str, text: str | bytes) -> None:
        value = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        with self._lock:
            self.other[label] = self.other.get(label, "") + value

    def add_public_tokens(self, tokens: Iterable[str]) -> None:
        """Tokens that must appear in no source but the responses that returned them."""
        with self._lock:
            self.public_tokens.update(t for t in tokens if t)

    # -- scanning --------------------------------------------------------------------------

    def sources(self) -> dict[str, str]:
        with self._lock:
            sources: dict[str, str] = {}
            sources.update(
                {f"websocket frames of {k}": "\n".join(v) for k, v in self.frames.items()}
            )
            sources.update({f"page {k}": v for k, v in self.pages.items()})
            sources.update(self.responses)
            sources.update(self.other)
        if self.log.lines:
            sources["log records"] = "\n".join(self.log.lines)
        return sources

    def counts(self) -> Counts:
        with self._lock:
            return Counts(
                frames=sum(len(v) for v in self.frames.values()),
                pages=len(self.pages),
                log_records=len(self.log.lines),
                responses=len(self.responses),
                other=len(self.other),
                public_tokens=len(self.public_tokens),
            )

    def assert_clean(self, secrets: Mapping[str, str]) -> None:
        """No secret in any source, and no public token outside the response that issued it."""
        sources = self.sources()
        assert_no_leaks(secrets, sources)
        with self._lock:
            tokens = {f"public token #{i}": t for i, t in enumerate(sorted(self.public_tokens))}
            elsewhere = {k: v for k, v in sources.items() if k not in self._issuing}
        leaks = find_leaks(tokens, elsewhere) if tokens else []
        assert not leaks, f"public access tokens leaked: {leaks}"


def _public_token(response: httpx.Response) -> str | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    token = body.get("publicAccessToken") if isinstance(body, dict) else None
    return token if isinstance(token, str) else None
