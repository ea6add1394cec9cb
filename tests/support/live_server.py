"""Run an ASGI app on a real loopback port in a background thread, for wire-level tests.

The socket is bound before the thread starts, so the port is known up front, and the context
manager returns only once uvicorn has finished starting (no sleeping, no port polling).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp


class _ThreadedServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


@contextmanager
def serve_in_thread(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 and yield its base URL (``http://127.0.0.1:<port>``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws="none",
        http="h11",
        timeout_graceful_shutdown=2,
    )
    server = _ThreadedServer(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{port}", daemon=True
    )
    thread.start()
    try:
        if not server.ready.wait(timeout=15) or not server.started:
            raise RuntimeError(f"The test server on port {port} did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def allowance(*urls: str) -> str:
    """An ``ENRICHER_ALLOWED_NETWORKS`` value that lets enrichers reach exactly these loopback
    servers (``127.0.0.1:<port>`` each): the egress guard refuses them otherwise."""
    from urllib.parse import urlsplit

    entries = []
    for url in urls:
        parts = urlsplit(url)
        entries.append(f"{parts.hostname}:{parts.port}")
    return ",".join(entries)
