"""A JSON API that answers every request after a fixed delay (50 ms), for the benchmarks.

``serve()`` runs it as ``python -m uvicorn bench.slow_api:app`` in its own process.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DELAY_SECONDS = float(os.environ.get("SLOW_API_DELAY", "0.05"))


async def lookup(request: Request) -> JSONResponse:
    await asyncio.sleep(DELAY_SECONDS)
    return JSONResponse({"data": {"value": request.query_params.get("q", "")}})


async def ping(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/lookup", lookup), Route("/ping", ping)])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(*, delay: float | None = None) -> Iterator[str]:
    """Run the API in its own process on a free loopback port; yields its base URL."""
    port = free_port()
    env = {**os.environ, **({"SLOW_API_DELAY": str(delay)} if delay is not None else {})}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.slow_api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/ping", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("bench/slow_api.py did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
