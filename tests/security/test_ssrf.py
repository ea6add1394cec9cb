"""The SSRF matrix: the real enrichers, through the app's guarded client, against loopback servers.

A canary server on loopback counts every TCP connection it gets; an allowed server (allowed the
way an admin would, with ``ENRICHER_ALLOWED_NETWORKS`` ``127.0.0.1:<port>``) is fetched. Every
other target is refused with the message that says how to allow it, and the canary gets nothing.

Targets outside loopback (10.0.0.5, 169.254.169.254, 100.64.0.1) are tried through a guarded
transport whose underlying connector only records what it was asked to open: if the guard let
one through, the test fails on the recorded attempt and no packet leaves the machine.
"""

from __future__ import annotations

import ipaddress
import socketserver
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpcore
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from enrichment_app.egress import (
    EgressRefusedError,
    GuardedTransport,
    guarded_client,
    parse_allowed,
)
from enrichment_app.egress.policy import IPAddress
from enrichment_app.enrichers import EnrichContext, get_enricher
from enrichment_app.errors import EnrichError
from enrichment_app.settings import Settings
from tests.support.live_server import allowance, serve_in_thread

SETTINGS = Settings(_env_file=None)


class Canary(socketserver.ThreadingTCPServer):
    """Counts connections; answers any request with a page titled "canary"."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int = 0) -> None:
        self.connections = 0
        self.lock = threading.Lock()
        super().__init__((host, port), _CanaryHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _CanaryHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, Canary)
        with server.lock:
            server.connections += 1
        self.rfile.readline()
        body = b"<title>canary</title>"
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    server = Canary("127.0.0.1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def allowed_site() -> Iterator[str]:
    """The internal API an admin allowed: a page, JSON, an echo of the path, and redirects."""

    async def page(request: Request) -> Response:
        return HTMLResponse("<title>Allowed site</title>")

    async def data(request: Request) -> Response:
        return JSONResponse({"name": "allowed", "path": request.scope["raw_path"].decode()})

    async def redirect(request: Request) -> Response:
        return RedirectResponse(request.query_params["to"], status_code=302)

    app = Starlette(
        routes=[
            Route("/page", page),
            Route("/data", data),
            Route("/v1/{rest:path}", data),
            Route("/redirect", redirect),
        ]
    )
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
async def http(allowed_site: str) -> AsyncIterator[httpx.AsyncClient]:
    async with guarded_client(parse_allowed(allowance(allowed_site))) as client:
        yield client


async def _title(http: httpx.AsyncClient, url: str) -> str:
    enricher = get_enricher("website_title")
    config = enricher.validate_config({"column": "website"})
    return await enricher.enrich(
        EnrichContext(row={"website": url}, config=config, http=http, settings=SETTINGS)
    )


async def _json(http: httpx.AsyncClient, url: str, row: dict[str, str | None] | None = None) -> str:
    enricher = get_enricher("http_json")
    config = enricher.validate_config({"url": url, "path": ""})
    return await enricher.enrich(
        EnrichContext(row=row or {}, config=config, http=http, settings=SETTINGS)
    )


LOOPBACK_FORMS = [
    ("http://127.0.0.1:{port}/", "127.0.0.1 is a loopback address"),
    ("http://localhost:{port}/", "is a loopback address"),
    ("http://2130706433:{port}/", "127.0.0.1 is a loopback address"),
    ("http://0x7f.1:{port}/", "127.0.0.1 is a loopback address"),
    ("http://127.1:{port}/", "127.0.0.1 is a loopback address"),
    ("http://[::1]:{port}/", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]:{port}/", "::ffff:127.0.0.1 (127.0.0.1) is a loopback address"),
    ("http://0.0.0.0:{port}/", "0.0.0.0 is an unspecified address"),
]
"""Every way of writing "this machine" that URL parsers accept; all reach the canary if let
through (0.0.0.0 connects to the local host on Linux)."""


@pytest.mark.parametrize("enricher", ["website_title", "http_json"])
@pytest.mark.parametrize(("template", "says"), LOOPBACK_FORMS)
async def test_every_form_of_loopback_is_refused_and_the_canary_hears_nothing(
    http: httpx.AsyncClient, canary: Canary, enricher: str, template: str, says: str
) -> None:
    url = template.format(port=canary.port)
    before = canary.connections
    with pytest.raises(EgressRefusedError) as caught:
        await (_title(http, url) if enricher == "website_title" else _json(http, url))
    assert says in str(caught.value)
    assert str(caught.value).endswith("an admin can allow it with ENRICHER_ALLOWED_NETWORKS")
    assert canary.connections == before


async def test_the_allowed_server_is_fetched_and_only_its_port(
    http: httpx.AsyncClient, allowed_site: str, canary: Canary
) -> None:
    assert await _title(http, allowed_site + "/page") == "Allowed site"
    assert '"name":"allowed"' in await _json(http, allowed_site + "/data")
    before = canary.connections
    with pytest.raises(EgressRefusedError, match=r"127\.0\.0\.1 is a loopback address"):
        await _title(http, f"http://127.0.0.1:{canary.port}/")  # same host, another port
    assert canary.connections == before


@pytest.mark.parametrize("enricher", ["website_title", "http_json"])
async def test_a_redirect_from_the_allowed_server_to_the_canary_is_refused(
    http: httpx.AsyncClient, allowed_site: str, canary: Canary, enricher: str
) -> None:
    target = f"http://127.0.0.1:{canary.port}/latest/meta-data/"
    url = f"{allowed_site}/redirect?to={target}"
    before = canary.connections
    with pytest.raises(EgressRefusedError, match=r"127\.0\.0\.1 is a loopback address"):
        if enricher == "website_title":
            await _title(http, url)
        else:
            await _json(http, url)
    assert canary.connections == before


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Opens nothing: records each address the guard let through, then fails the connect."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.attempts.append((host, port))
        raise httpcore.ConnectError(f"the recording backend does not connect ({host})")

    async def sleep(self, seconds: float) -> None:
        return None


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("10.0.0.5", "Refused: 10.0.0.5 is a private address"),
        ("169.254.169.254", "Refused: 169.254.169.254 is a link-local address"),
        ("100.64.0.1", "Refused: 100.64.0.1 is a shared (CGNAT) address"),
        ("[fd00::1]", "Refused: fd00::1 is a unique-local address"),
        ("0.0.0.0", "Refused: 0.0.0.0 is an unspecified address"),
        ("[64:ff9b::a9fe:a9fe]", "Refused: 64:ff9b::a9fe:a9fe (169.254.169.254) is a link-local"),
        ("224.0.0.1", "Refused: 224.0.0.1 is a multicast address"),
    ],
)
@pytest.mark.parametrize("enricher", ["website_title", "http_json"])
async def test_internal_networks_are_refused_before_any_connection(
    host: str, says: str, enricher: str
) -> None:
    recorder = RecordingBackend()
    transport = GuardedTransport((), backend=recorder)
    async with httpx.AsyncClient(transport=transport) as http:
        url = f"http://{host}/latest/meta-data/iam/security-credentials/"
        with pytest.raises(EgressRefusedError) as caught:
            await (_title(http, url) if enricher == "website_title" else _json(http, url))
    assert str(caught.value).startswith(says)
    assert str(caught.value).endswith(
        " address; an admin can allow it with ENRICHER_ALLOWED_NETWORKS"
    )
    assert recorder.attempts == []


async def test_a_name_is_judged_by_what_it_resolves_to(canary: Canary) -> None:
    """A public-looking name that resolves to loopback (or rebinds to it) gets nowhere."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1")]

    async with guarded_client((), resolver=resolve) as http:
        before = canary.connections
        with pytest.raises(EgressRefusedError, match=r"127\.0\.0\.1 is a loopback address"):
            await _title(http, f"http://innocent.example:{canary.port}/")
        assert canary.connections == before


async def test_it_connects_to_the_address_it_checked_so_rebinding_gets_nowhere(
    allowed_site: str,
) -> None:
    """The resolver answers the allowed address first and the canary's address afterwards, as
    a rebinding DNS server does. The guard looks the name up once per connection and connects
    to the address it checked; a guard that checked, then let the connection look the name up
    again, would land on the canary (127.0.0.2, on the allowed server's port)."""
    port = httpx.URL(allowed_site).port
    assert port is not None
    rebound = Canary("127.0.0.2", port)
    thread = threading.Thread(target=rebound.serve_forever, daemon=True)
    thread.start()
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1" if len(lookups) == 1 else "127.0.0.2")]

    try:
        async with guarded_client(parse_allowed(f"127.0.0.1:{port}"), resolver=rebinding) as http:
            assert await _title(http, f"http://rebind.example:{port}/page") == "Allowed site"
            # A new connection: the name now points at the canary, which is not allowed.
            http_fresh = guarded_client(parse_allowed(f"127.0.0.1:{port}"), resolver=rebinding)
            async with http_fresh:
                with pytest.raises(EgressRefusedError, match=r"127\.0\.0\.2 is a loopback"):
                    await _title(http_fresh, f"http://rebind.example:{port}/page")
        assert lookups == ["rebind.example", "rebind.example"]
        assert rebound.connections == 0
    finally:
        rebound.shutdown()
        rebound.server_close()


async def test_a_name_with_a_refused_and_an_allowed_address_uses_the_allowed_one(
    allowed_site: str, canary: Canary
) -> None:
    port = httpx.URL(allowed_site).port

    async def both(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("127.0.0.1")]

    async with guarded_client(parse_allowed(f"127.0.0.1:{port}"), resolver=both) as http:
        assert await _title(http, f"http://two.example:{port}/page") == "Allowed site"


async def test_a_name_that_does_not_resolve_is_a_clear_error() -> None:
    async with guarded_client(()) as http:
        with pytest.raises(EnrichError, match=r"Could not connect to http://nonexistent\.invalid/"):
            await _title(http, "http://nonexistent.invalid/")


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("@evil.com/", "/v1/%40evil%2Ecom%2F"),
        ("//evil.com", "/v1/%2F%2Fevil%2Ecom"),
        ("..", "/v1/%2E%2E"),
        ("../../admin", "/v1/%2E%2E%2F%2E%2E%2Fadmin"),
        ("x#frag", "/v1/x%23frag"),
        ("a?b=c", "/v1/a%3Fb%3Dc"),
    ],
)
async def test_a_row_value_stays_inside_its_path_segment(
    http: httpx.AsyncClient, allowed_site: str, canary: Canary, value: str, path: str
) -> None:
    before = canary.connections
    answer = await _json(http, allowed_site + "/v1/{id}", {"id": value})
    assert f'"path":"{path}"' in answer
    assert canary.connections == before
