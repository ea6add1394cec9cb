"""The soak's data provider: a JSON API whose every answer says which cell and which request.

``GET /cell?key=<row key>&col=<column tag>`` answers ``{"value": "<key>|<col>#<seq>"}``, where
``seq`` numbers every request the oracle ever answered, so a stored value names the cell it was
computed for and the request that computed it. The row key also carries what the oracle does:

    j012-r007-d150          answer after 150 ms
    j012-r007-d150-slow     answer after ``SLOW_SECONDS`` (past the enricher's timeout)
    j012-r007-d150-fail     answer 500 with an error message

Every request is recorded as it arrives (``GET /log?since=<n>``; ``status`` is 0 until it is
answered), so the soak can tell which answers a cell could hold, how often a cell was asked
(retries), and which answer was the newest.

It runs in its own process (``serve()``), so its timing does not depend on the soak's own
event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.servers import serve_asgi

SLOW_SECONDS = float(os.environ.get("ORACLE_SLOW_SECONDS", "3.0"))
KEY = re.compile(r"^j(?P<job>\d+)-r(?P<row>\d+)-d(?P<delay>\d+)(?:-(?P<mode>slow|fail))?$")
VALUE = re.compile(r"^(?P<key>[^|]+)\|(?P<col>[^#]+)#(?P<seq>\d+)$")

_seq = itertools.count(1)
_log: list[dict[str, object]] = []


def row_key(job: int, row: int, delay_ms: int, mode: str | None = None) -> str:
    return f"j{job:03d}-r{row:03d}-d{delay_ms}" + (f"-{mode}" if mode else "")


@dataclass(frozen=True, slots=True)
class Answer:
    """A stored cell value, parsed: the row key and column it was computed for, and its request."""

    key: str
    col: str
    seq: int


def parse_value(value: str | None) -> Answer | None:
    match = VALUE.match(value or "")
    if match is None:
        return None
    return Answer(match["key"], match["col"], int(match["seq"]))


async def cell(request: Request) -> JSONResponse:
    key = request.query_params.get("key", "")
    col = request.query_params.get("col", "")
    seq = next(_seq)
    started = time.time()
    match = KEY.match(key)
    if match is None:
        _log.append({"seq": seq, "key": key, "col": col, "status": 400, "at": started})
        return JSONResponse({"error": {"message": f"bad key {key!r}"}}, status_code=400)
    mode = match["mode"]
    entry: dict[str, object] = {"seq": seq, "key": key, "col": col, "status": 0, "at": started}
    _log.append(entry)  # on arrival: a slow request the client gave up on was still asked
    await asyncio.sleep(SLOW_SECONDS if mode == "slow" else int(match["delay"]) / 1000)
    status = 500 if mode == "fail" else 200
    entry["status"] = status
    if status == 500:
        return JSONResponse({"error": {"message": f"the oracle refuses {key}"}}, status_code=500)
    return JSONResponse({"value": f"{key}|{col}#{seq}"})


async def log(request: Request) -> JSONResponse:
    since = int(request.query_params.get("since", "0"))
    return JSONResponse(_log[since:])


async def ping(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/cell", cell), Route("/log", log), Route("/ping", ping)])


def serve(log_path: Path) -> AbstractContextManager[str]:
    """Run the oracle in its own process on a free loopback port; yields its base URL."""
    return serve_asgi("tests.soak.oracle:app", log=log_path)
