"""The fake's realtime run feed: ``GET /realtime/v1/runs/{id}``, Electric shape long-polling.

A snapshot answers at once; a ``live=true`` poll is held until the run's row changes (or
``live_poll_timeout`` passes) and answers with the change; a poll with a handle the run no
longer has gets 409 must-refetch.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.trigger import encoding
from tests.fakes.trigger.access import Access
from tests.fakes.trigger.api_routes import CURRENT_API_VERSION
from tests.fakes.trigger.runs import Run

_seq_counter = itertools.count(1)


def next_seq() -> int:
    """The next shape offset's second part, unique across the process."""
    return next(_seq_counter)


class ShapeRoutes(Access):
    """The handler of the realtime run feed; part of ``FakeTrigger``."""

    live_poll_timeout: float
    partial_updates: bool

    def _shape_routes(self) -> list[Route]:
        return [
            Route("/realtime/v1/runs/{run_id}", self._realtime_run, methods=["GET", "OPTIONS"]),
        ]

    async def _realtime_run(self, request: Request) -> Response:
        admitted = await self._begin_read("realtime_run", request)
        if isinstance(admitted, Response):
            return admitted
        fault, found = admitted
        response = await self._shape_response(request, found)
        return self._maybe_drop(fault, self._cors(request, response))

    async def _shape_response(self, request: Request, run: Run) -> Response:
        params = request.query_params
        offset = params.get("offset", encoding.INITIAL_OFFSET)
        handle = params.get("handle") or params.get("shape_id")
        live = params.get("live") == "true"
        skip = [c for c in (params.get("skipColumns") or "").split(",") if c]

        def respond(
            messages: list[dict[str, Any]], *, offset: str, handle: str, cursor: str | None
        ) -> Response:
            return shape_response(
                request, messages, offset=offset, handle=handle, cursor=cursor, skip=skip
            )

        def snapshot(current_handle: str) -> Response:
            with self._lock:
                value = encoding.serialize_run_row(run.row(), skip)
                version = run.version
            message = encoding.change_message(run.internal_id, value, "insert")
            return respond(
                [message],
                offset=encoding.encode_offset(version, next_seq()),
                handle=current_handle,
                cursor=None,
            )

        if offset == encoding.INITIAL_OFFSET or not handle:
            return snapshot(run.handle)
        if handle != run.handle:
            return self._must_refetch(run.handle)
        if not live:
            return snapshot(handle)

        seen = encoding.parse_offset_version(offset)
        deadline = asyncio.get_running_loop().time() + self.live_poll_timeout
        parked = False
        try:
            while True:
                event = self._current_event()
                with self._lock:
                    current_handle = run.handle
                    version = run.version
                    row = run.row()
                    previous = run.history.get(seen)
                if current_handle != handle:
                    return self._must_refetch(current_handle)
                if version > seen:
                    value = encoding.serialize_run_row(row, skip)
                    if self.partial_updates and previous is not None:
                        value = encoding.diff_values(
                            {k: v for k, v in previous.items() if k in value}, value
                        )
                    message = encoding.change_message(run.internal_id, value, "update")
                    seq = next_seq()
                    return respond(
                        [message],
                        offset=encoding.encode_offset(version, seq),
                        handle=handle,
                        cursor=str(seq),
                    )
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or self._closing:
                    return respond([], offset=offset, handle=handle, cursor=str(next_seq()))
                if not parked:
                    parked = True
                    with self._lock:
                        run.parked_polls.append(seen)
                    self._notify()
                    event = self._current_event()
                await self._wait_change(event, remaining)
        finally:
            if parked:
                with self._lock:
                    run.parked_polls.remove(seen)

    @staticmethod
    def _must_refetch(new_handle: str) -> Response:
        return must_refetch(new_handle)


def shape_response(
    request: Request,
    messages: list[dict[str, Any]],
    *,
    offset: str,
    handle: str,
    cursor: str | None,
    skip: list[str],
) -> Response:
    """A 200 of a run shape: the messages then up-to-date, with Electric's headers (the old
    names without `x-trigger-electric-version`; DEQUEUED as EXECUTING for old API versions).
    ``cursor`` is set on live answers; the others carry the schema."""
    modern = request.headers.get("x-trigger-electric-version") is not None
    legacy = request.headers.get("x-trigger-api-version") != CURRENT_API_VERSION
    body = encoding.shape_body(messages)
    if legacy:
        body = body.replace(b'"status":"DEQUEUED"', b'"status":"EXECUTING"')
    headers = {
        "cache-control": "no-store",
        "access-control-allow-origin": "*",
        "access-control-expose-headers": "*",
        ("electric-offset" if modern else "electric-chunk-last-offset"): offset,
        ("electric-handle" if modern else "electric-shape-id"): handle,
    }
    if cursor is not None:
        headers["electric-cursor"] = cursor
    else:
        headers["electric-schema"] = encoding.electric_schema_header(skip)
    return Response(body, headers=headers, media_type="application/json")


def must_refetch(new_handle: str) -> Response:
    """409 must-refetch, JSON as the client needs it, naming the shape's new handle."""
    return Response(
        encoding.must_refetch_body(),
        status_code=409,
        headers={
            "electric-handle": new_handle,
            "cache-control": "no-store",
            "access-control-allow-origin": "*",
            "access-control-expose-headers": "*",
        },
        media_type="application/json",
    )
