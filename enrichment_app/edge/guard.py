"""The ASGI middleware in front of the whole backend: Host, Origin and upload size.

* **Host**: a request whose ``Host`` header does not name the app gets 400 (DNS rebinding
  points a foreign name at the app; the Origin check alone would not see it).
* **Origin**: a browser page from another site may not open the websocket (``/_event``),
  upload (``/_upload``), call ``/api`` or send anything but GET/HEAD/OPTIONS: 403. A request
  with no ``Origin`` (curl, scripts, the soak's sockets) is not a browser's cross-site
  request and passes; the API key and, later, sign-in stop those.
* **Size**: a route with a body cap (the uploads) is refused with 413 by ``Content-Length``
  before the app reads a byte, and a body sent without one (chunked) is counted as it streams
  and cut off at the cap, so nothing over it is ever spooled to disk.

Refusals are JSON in the REST API's error shape. The rules are read per request from
``rules()``, so they follow the URLs the server learns after it started (a test harness
learns its frontend's port that way).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from enrichment_app.edge.sites import Site

logger = logging.getLogger(__name__)

CROSS_SITE_PATHS = ("/_event", "/_upload", "/api")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class BodyLimit:
    max_bytes: int
    message: str
    """Said to the client with the 413."""


@dataclass(frozen=True, slots=True)
class GuardRules:
    site: Site
    body_limits: Mapping[str, BodyLimit] = field(default_factory=dict)
    """Path (exact, or a prefix ending in ``/``) → its body cap."""

    def body_limit(self, path: str) -> BodyLimit | None:
        for prefix, limit in self.body_limits.items():
            if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
                return limit
        return None


class _TooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _guarded_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in CROSS_SITE_PATHS)


async def _send_json(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"message": message, "code": code}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class EdgeGuard:
    """Wraps the backend's ASGI app (``rx.App(api_transformer=[..., EdgeGuard.wrap(rules)])``)."""

    def __init__(self, app: ASGIApp, rules: Callable[[], GuardRules]) -> None:
        self.app = app
        self.rules = rules

    @classmethod
    def wrap(cls, rules: Callable[[], GuardRules]) -> Callable[[ASGIApp], ASGIApp]:
        return lambda app: cls(app, rules)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rules = self.rules()
        path = scope.get("path", "")
        refusal = self._refusal(scope, rules.site, path)
        if refusal is not None:
            status, code, message = refusal
            logger.warning("refused %s %s: %s", kind, path, message)
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await _send_json(send, status, code, message)
            return
        limit = rules.body_limit(path) if kind == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
        else:
            await self._limited(scope, receive, send, limit)

    @staticmethod
    def _refusal(scope: Scope, site: Site, path: str) -> tuple[int, str, str] | None:
        host = _header(scope, b"host")
        if host is not None and not site.allows_host(host):
            return (
                400,
                "invalid_host",
                f"This server does not answer to the host {host[:100]!r}; an admin can add it "
                "with ALLOWED_HOSTS.",
            )
        origin = _header(scope, b"origin")
        if origin is None or site.allows_origin(origin):
            return None
        unsafe = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        if unsafe or _guarded_path(path):
            return (
                403,
                "cross_origin",
                f"Requests from pages on {origin[:100]!r} are not accepted; an admin can allow "
                "that site with ALLOWED_ORIGINS.",
            )
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: BodyLimit) -> None:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit.max_bytes:
            await _send_json(send, 413, "body_too_large", limit.message)
            return
        received = 0
        too_large = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                return  # whatever the app says after the cut, the client gets the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            pass
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await _send_json(send, 413, "body_too_large", limit.message)
