"""A JSON API that answers every request after a fixed delay (50 ms), for the throughput bench.

python -m uvicorn bench.slow_api:app --port <port>   # started by bench/throughput.py
"""

from __future__ import annotations

import asyncio
import os

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
