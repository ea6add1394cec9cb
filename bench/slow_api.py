"""A JSON API that answers every request after a fixed delay (50 ms), for the benchmarks.

``serve()`` runs it as ``python -m uvicorn bench.slow_api:app`` in its own process.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AbstractContextManager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.servers import serve_asgi

DELAY_SECONDS = float(os.environ.get("SLOW_API_DELAY", "0.05"))


async def lookup(request: Request) -> JSONResponse:
    await asyncio.sleep(DELAY_SECONDS)
    return JSONResponse({"data": {"value": request.query_params.get("q", "")}})


async def ping(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/lookup", lookup), Route("/ping", ping)])


def serve(*, delay: float | None = None) -> AbstractContextManager[str]:
    """Run the API in its own process on a free loopback port; yields its base URL."""
    return serve_asgi(
        "bench.slow_api:app", env={"SLOW_API_DELAY": str(delay)} if delay is not None else None
    )
