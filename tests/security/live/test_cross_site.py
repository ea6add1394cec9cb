"""Cross-site attacks on the running app, in production and in development mode.

The app is started the two ways people start it: ``reflex run --env prod`` (one port; the
backend alone here, since the websocket, the uploads and the API are all the backend's) and
``bash scripts/run.sh`` (the dev server: pages on the frontend port, the backend on its own).
Against each, over real sockets:

* a websocket handshake on ``/_event`` carrying ``Origin: https://evil.example`` gets 403, and
  so does one from another local page (the app's host on another port); the app's own origin,
  under each loopback spelling, gets 101 and Engine.IO's open packet, as does a client that
  sends no Origin (not a browser); an origin listed in ``ALLOWED_ORIGINS`` gets in;
* a handshake or request naming a foreign ``Host`` (DNS rebinding) is refused;
* an upload one byte over the cap, declared by Content-Length or sent chunked without one, gets
  413 with the page's message before the body is read, and the app goes on serving;
* a CORS preflight from another site gets no grant.

Each fails without its protection: with Reflex's defaults every handshake gets 101, every Host
is served, every preflight is granted and the upload is read whole.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.prod_app import DevApp, ProdApp
from tests.support.servers import free_port

EVIL = "https://evil.example"
PARTNER = "https://partner.example"
MAX_CSV_BYTES = 64 * 1024
UPLOAD_CAP = MAX_CSV_BYTES + 64 * 1024
UPLOAD_HANDLER = (
    "reflex___state____state.enrichment_app___state___tables____tables_state.import_csv"
)
"""The guard's cap on ``/_upload``: the file's cap plus room for the multipart wrapping."""


SERVICE_KEY = "cross-site-service-key-" + "5" * 20


@dataclass(frozen=True)
class Running:
    mode: str
    backend_port: int
    page_port: int
    """Where the pages are served: the frontend port in development, the one port in prod."""

    @property
    def backend(self) -> str:
        return f"http://127.0.0.1:{self.backend_port}"

    def own_origins(self) -> list[str]:
        return [f"http://{host}:{self.page_port}" for host in ("localhost", "127.0.0.1")]


def _env(tmp: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp / 'app.db'}",
        "SEED_DEMO": "true",
        "MAX_CSV_BYTES": str(MAX_CSV_BYTES),
        "ALLOWED_ORIGINS": PARTNER,
        "ENRICHMENT_API_KEY": SERVICE_KEY,
    }


@pytest.fixture(scope="module", params=["prod", "dev"])
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp(f"cross-site-{request.param}")
    if request.param == "prod":
        app: ProdApp = ProdApp(
            work=tmp / "work",
            env=_env(tmp),
            log_path=tmp / "app.log",
            backend_only=True,
            ready_path=None,
        )
    else:
        app = DevApp(
            work=tmp / "work",
            env=_env(tmp),
            log_path=tmp / "app.log",
            frontend_port=free_port(),
            ready_path="/tables",
        )
    with app:
        page_port = app.frontend_port if isinstance(app, DevApp) else app.port
        yield Running(request.param, app.port, page_port)


def handshake(port: int, *, origin: str | None, host: str | None = None) -> tuple[int, bytes]:
    """A raw websocket upgrade on ``/_event`` as a browser sends it; the status, and what came
    after the headers (Engine.IO's open packet, once accepted)."""
    lines = [
        "GET /_event/?EIO=4&transport=websocket HTTP/1.1",
        f"Host: {host or f'127.0.0.1:{port}'}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status == 101 and not rest:
            rest = sock.recv(4096)
        return status, rest


def test_a_socket_from_another_site_is_refused_and_the_app_s_own_is_accepted(
    running: Running,
) -> None:
    port = running.backend_port
    assert handshake(port, origin=EVIL)[0] == 403
    other_local = f"http://localhost:{free_port()}"  # another page on this machine
    assert handshake(port, origin=other_local)[0] == 403
    assert handshake(port, origin="null")[0] == 403
    for origin in [*running.own_origins(), PARTNER, None]:
        status, first = handshake(port, origin=origin)
        assert status == 101, (running.mode, origin)
        assert b'0{"sid"' in first, first  # Engine.IO's open packet: a session


def test_a_foreign_host_is_refused(running: Running) -> None:
    assert handshake(running.backend_port, origin=None, host="evil.example")[0] == 403
    ping = httpx.get(f"{running.backend}/ping", headers={"Host": "rebind.evil.example"})
    assert ping.status_code == 400 and ping.json()["error"]["code"] == "invalid_host"
    assert httpx.get(f"{running.backend}/ping").status_code == 200


def test_a_preflight_from_another_site_gets_no_grant(running: Running) -> None:
    headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    for origin, granted in [(EVIL, False), (running.own_origins()[0], True)]:
        answer = httpx.options(f"{running.backend}/_upload", headers={"Origin": origin, **headers})
        assert answer.headers.get("access-control-allow-origin") == (origin if granted else None)
        assert answer.headers.get("access-control-allow-origin") != "*"
    posted = httpx.post(
        f"{running.backend}/api/tables", json={"name": "x"}, headers={"Origin": EVIL}
    )
    assert posted.status_code == 403 and posted.json()["error"]["code"] == "cross_origin"


PRELUDE = (
    b"--b0undary\r\n"
    b'Content-Disposition: form-data; name="files"; filename="big.csv"\r\n'
    b"Content-Type: text/csv\r\n\r\n"
)
"""The start of a multipart upload of one file, as the browser sends it."""


def _body(total: int, prelude: bytes) -> bytes:
    return prelude + b"x" * (total - len(prelude))


def _chunks(total: int, prelude: bytes) -> Iterator[bytes]:
    body = _body(total, prelude)
    for start in range(0, len(body), 8192):
        yield body[start : start + 8192]


@pytest.mark.parametrize("path", ["/_upload", "/api/tables/import"])
def test_an_upload_over_the_cap_is_refused_before_it_is_read(running: Running, path: str) -> None:
    cap = UPLOAD_CAP if path == "/_upload" else MAX_CSV_BYTES
    headers = {
        "Content-Type": "text/csv",
        "Origin": running.own_origins()[0],
        "Authorization": f"Bearer {SERVICE_KEY}",  # so the API gets as far as the body
    }
    if path == "/_upload":  # what the page's upload sends, so that Reflex goes on to read it
        headers = {
            **headers,
            "Content-Type": "multipart/form-data; boundary=b0undary",
            "Reflex-Client-Token": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "Reflex-Event-Handler": UPLOAD_HANDLER,
        }
    url = running.backend + path
    prelude = PRELUDE if path == "/_upload" else b""
    declared = httpx.post(url, content=_body(cap + 1, prelude), headers=headers, timeout=30)
    chunked = httpx.post(url, content=_chunks(cap + 1, prelude), headers=headers, timeout=30)
    answers = [declared, chunked]
    if path == "/_upload" and chunked.status_code == 400:
        # The page's import streams (rx.upload_files_chunk): a tab that is not signed in is
        # refused by the handler before it reads a chunk, sooner than the cap would cut in.
        assert chunked.json() == {
            "detail": "Upload handler returned before consuming all upload chunks."
        }
        answers = [declared]
    for answer in answers:
        assert answer.status_code == 413, (path, answer.text)
        assert answer.json()["error"] == {
            "message": "The file is larger than 64 KB.",
            "code": "body_too_large",
        }
    assert (
        "transfer-encoding" not in chunked.request.headers
        or chunked.request.headers["transfer-encoding"] == "chunked"
    )
    assert httpx.get(f"{running.backend}/ping").status_code == 200
