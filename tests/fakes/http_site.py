"""A small real website and JSON API, served on loopback for the HTTP enricher tests.

Pages: titles, meta descriptions, redirects (chains, loops, to other schemes), a huge body, a
slow endpoint and a dripping one, non-HTML content and error statuses. API: ``/api/lookup``
echoes its query, ``/api/echo`` echoes a request, plus an error and a non-JSON endpoint.

Use the ``http_site`` fixture by importing ``http_site_fixture`` into a test module.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from tests.support.live_server import serve_in_thread

HUGE_BODY_BYTES = 100 * 1024 * 1024
CHUNK = b"<p>" + b"filler " * 9360 + b"</p>\n"  # about 64 KiB


@dataclass
class HttpSite:
    """The running site: its base URL and what it has seen."""

    base_url: str = ""
    bytes_sent: Counter[str] = field(default_factory=Counter)
    """Body bytes the streaming endpoints produced, by path."""
    hits: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    def record_hit(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1

    def record_bytes(self, path: str, sent: int) -> None:
        with self._lock:
            self.bytes_sent[path] += sent


def _page(head: str, body: str = "<p>Hello</p>") -> str:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def build_app(site: HttpSite) -> Starlette:
    async def titled(request: Request) -> Response:
        return HTMLResponse(
            _page(
                "<meta charset='utf-8'><title>\n  Acme &amp; Co\n\t Widgets  </title>"
                '<meta name="description" content="not this">'
            )
        )

    async def described(request: Request) -> Response:
        return HTMLResponse(
            _page('<meta name="Description" content="  We make &quot;anvils&quot;\n daily ">')
        )

    async def og_described(request: Request) -> Response:
        return HTMLResponse(
            _page('<meta property="og:description" content="Open Graph words">'),
            headers={"content-type": "application/xhtml+xml; charset=utf-8"},
        )

    async def blank_title(request: Request) -> Response:
        return HTMLResponse(
            _page('<title>   </title><meta name="description" content="The fallback">')
        )

    async def bare(request: Request) -> Response:
        return HTMLResponse(_page("<script>var t = '<title>not a title</title>';</script>"))

    async def latin1(request: Request) -> Response:
        return Response(
            _page("<title>Caf\xe9 M\xfcller</title>").encode("latin-1"),
            media_type="text/html; charset=iso-8859-1",
        )

    async def redirect(request: Request) -> Response:
        hops = int(request.path_params["hops"])
        target = "/titled" if hops <= 1 else f"/redirect/{hops - 1}"
        return RedirectResponse(target, status_code=302 if hops % 2 else 301)

    async def loop(request: Request) -> Response:
        name = request.path_params["name"]
        return RedirectResponse(f"/loop/{'b' if name == 'a' else 'a'}", status_code=307)

    async def to_ftp(request: Request) -> Response:
        return RedirectResponse("ftp://files.example.com/", status_code=302)

    def _streamed(request: Request, head: bytes) -> StreamingResponse:
        path = request.url.path

        async def body() -> AsyncIterator[bytes]:
            site.record_bytes(path, len(head))
            yield head
            sent = len(head)
            # uvicorn drops writes to a closed connection silently, so stop by asking.
            while sent < HUGE_BODY_BYTES and not await request.is_disconnected():
                site.record_bytes(path, len(CHUNK))
                sent += len(CHUNK)
                yield CHUNK

        return StreamingResponse(body(), media_type="text/html")

    async def huge(request: Request) -> Response:
        return _streamed(request, b"<!doctype html><html><head></head><body>")

    async def huge_titled(request: Request) -> Response:
        return _streamed(
            request, b"<!doctype html><html><head><title>Big page</title></head><body>"
        )

    async def slow(request: Request) -> Response:
        # Answer nothing until the client gives up and disconnects.
        while (await request.receive())["type"] != "http.disconnect":
            pass
        return Response(status_code=204)

    async def drip(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"<!doctype html><html><head>"
            while True:  # a byte at a time, forever: only a total deadline stops this
                await asyncio.sleep(0.05)
                yield b" "

        return StreamingResponse(body(), media_type="text/html")

    async def pdf(request: Request) -> Response:
        return Response(b"%PDF-1.4", media_type="application/pdf")

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        return HTMLResponse(_page(f"<title>Error {code}</title>"), status_code=code)

    async def api_lookup(request: Request) -> Response:
        site.record_hit("/api/lookup")
        domain = request.query_params.get("domain", "")
        return JSONResponse(
            {
                "data": {
                    "company": {
                        "name": f"Company at {domain}",
                        "tags": ["b2b", "saas"],
                        "employees": 42,
                        "public": False,
                        "parent": None,
                        "address": {"city": "Zürich", "zip": "8001"},
                    }
                },
                "raw_query": request.url.query,
                "authorization": request.headers.get("authorization"),
            }
        )

    async def api_echo(request: Request) -> Response:
        return JSONResponse(
            {
                "method": request.method,
                "content_type": request.headers.get("content-type"),
                "authorization": request.headers.get("authorization"),
                "x_custom": request.headers.get("x-custom"),
                "json": await request.json() if await request.body() else None,
            }
        )

    async def api_error(request: Request) -> Response:
        return JSONResponse({"error": {"message": "database on fire"}}, status_code=500)

    async def api_not_found(request: Request) -> Response:
        return Response(status_code=404)

    async def api_not_json(request: Request) -> Response:
        return Response("<html>Gateway error</html>", media_type="text/html")

    return Starlette(
        routes=[
            Route("/titled", titled),
            Route("/described", described),
            Route("/og-described", og_described),
            Route("/blank-title", blank_title),
            Route("/bare", bare),
            Route("/latin1", latin1),
            Route("/redirect/{hops:int}", redirect),
            Route("/loop/{name}", loop),
            Route("/to-ftp", to_ftp),
            Route("/huge", huge),
            Route("/huge-titled", huge_titled),
            Route("/slow", slow),
            Route("/drip", drip),
            Route("/doc.pdf", pdf),
            Route("/status/{code:int}", status),
            Route("/api/lookup", api_lookup),
            Route("/api/echo", api_echo, methods=["POST"]),
            Route("/api/error", api_error),
            Route("/api/missing", api_not_found),
            Route("/api/not-json", api_not_json),
        ]
    )


@pytest.fixture(name="http_site", scope="module")
def http_site_fixture() -> Iterator[HttpSite]:
    """The site, running on a loopback port for the whole test module."""
    site = HttpSite()
    with serve_in_thread(build_app(site)) as base_url:
        site.base_url = base_url
        yield site
