"""Faults the fake Trigger.dev server can be told to commit, and how it commits them.

A test injects a fault for a kind of request (``inject`` or a shortcut such as ``fail_next``);
the next matching request takes it: an answer instead of the real one (``Respond``), a slow
answer (``Delay``), a connection cut mid-answer or before it (``Drop``), or no server at all
(``Refuse``). ``rotate_handle`` makes the run's next shape poll get a 409, and
``rotate_tag_feeds`` every tag feed's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.fakes.trigger.runs import random_id
from tests.fakes.trigger.store import RunStore

FaultKind = Literal[
    "trigger",
    "claims",
    "public_tokens",
    "realtime_run",
    "realtime_runs",
    "retrieve",
    "cancel",
    "metadata",
    "stream_create",
    "stream_write",
    "stream_append",
    "stream_read",
]


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer with this status, JSON body (or these very bytes) and headers instead of
    handling the request."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait this long, then handle the request normally (a slow server)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Hold:
    """Hold the request until the test sets ``released`` (a ``threading.Event``), then handle
    it normally: a call Trigger.dev takes as long as the test wants (at most ``limit`` s)."""

    released: threading.Event
    limit: float = 120.0


@dataclass(frozen=True, slots=True)
class Drop:
    """Handle the request, then cut the connection.

    By default mid-response: the headers and half the body are sent (with the full
    Content-Length), or for an SSE stream the first `after` records. `after` set on a JSON
    response is the number of body bytes sent. `before_response=True` resets the connection
    before a single byte of the response (the client sees a network error), still after the
    request was handled (a trigger creates its run).
    """

    after: int | None = None
    before_response: bool = False
    mid_event: bool = False
    """SSE only: after the first `after` records, send half of the next one and cut there
    (the client holds a partial event when the connection dies)."""


@dataclass(frozen=True, slots=True)
class Refuse:
    """Reset the connection before the request is handled, as if the server were unreachable.

    The client sees a network error and, unlike `Drop(before_response=True)`, nothing was done
    on the server (a trigger creates no run).
    """


Fault = Respond | Delay | Hold | Drop | Refuse


@dataclass(slots=True, eq=False)
class PendingFault:
    """An injected fault, as `inject` returns it: how often it has fired so far."""

    kind: str
    fault: Fault
    remaining: int
    run_id: str | None
    times: int = 1
    tag: str | None = None
    """Only requests for a run with this tag (a trigger: that asks for it) take the fault."""

    @property
    def fired(self) -> int:
        return self.times - self.remaining


class DroppedConnection(Exception):
    """Raised inside a response to make uvicorn close the connection mid-body."""


class QuietDrops(logging.Filter):
    """uvicorn logs every exception raised mid-response; a deliberate drop is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        return not isinstance(exc, DroppedConnection)


class DroppingResponse(Response):
    """Cut the connection: before the response, or after the headers and part of the body."""

    def __init__(self, inner: Response, fault: Drop, abort: Callable[[Scope], None]) -> None:
        self._inner = inner
        self.raw_headers = inner.raw_headers  # so that headers can still be added (CORS)
        self._fault = fault
        self._abort = abort

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._fault.before_response:
            self._abort(scope)
            raise DroppedConnection
        body = bytes(self._inner.body)
        cut = len(body) // 2 if self._fault.after is None else min(self._fault.after, len(body) - 1)
        await send(
            {
                "type": "http.response.start",
                "status": self._inner.status_code,
                "headers": self._inner.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": body[: max(cut, 0)], "more_body": True})
        raise DroppedConnection


class FaultBook(RunStore):
    """The faults waiting for their requests, on top of the store; part of ``FakeTrigger``."""

    _server: uvicorn.Server | None

    def __init__(self) -> None:
        self._faults: list[PendingFault] = []
        self._tag_feed_generation = 1
        super().__init__()

    def inject(
        self,
        kind: FaultKind,
        fault: Fault,
        *,
        times: int = 1,
        run_id: str | None = None,
        tag: str | None = None,
    ) -> PendingFault:
        pending = PendingFault(kind, fault, times, run_id, times, tag)
        with self._lock:
            self._faults.append(pending)
        return pending

    def withdraw(self, pending: PendingFault) -> int:
        """Take back a fault that has not used up its `times`; returns how often it fired."""
        with self._lock:
            if pending in self._faults:
                self._faults.remove(pending)
            return pending.fired

    def fail_next(
        self,
        kind: FaultKind,
        status: int = 500,
        *,
        times: int = 1,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        run_id: str | None = None,
        tag: str | None = None,
    ) -> PendingFault:
        default = {"error": "Something went wrong"} if status >= 500 else {"error": "Fault"}
        return self.inject(
            kind,
            Respond(status, default if body is None else body, dict(headers or {})),
            times=times,
            run_id=run_id,
            tag=tag,
        )

    def rate_limit_next(
        self,
        kind: FaultKind,
        *,
        times: int = 1,
        reset_in: float = 1.0,
        run_id: str | None = None,
        tag: str | None = None,
    ) -> PendingFault:
        """429 as Trigger.dev's rate limiter answers it, resetting `reset_in` seconds from now."""
        reset = int((time.time() + reset_in) * 1000)
        seconds = max(0.0, reset_in)
        detail = f"Rate limit exceeded 0/1 requests remaining. Retry in {seconds} seconds."
        body = {
            "title": "Rate Limit Exceeded",
            "status": 429,
            "type": "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/429",
            "detail": detail,
            "reset": reset,
            "limit": 1,
            "remaining": 0,
            "secondsUntilReset": seconds,
            "error": detail,
        }
        headers = {
            "x-ratelimit-limit": "1",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(reset),
            "content-type": "application/problem+json",
        }
        return self.inject(kind, Respond(429, body, headers), times=times, run_id=run_id, tag=tag)

    def drop_next(
        self,
        kind: FaultKind,
        *,
        after: int | None = None,
        before_response: bool = False,
        mid_event: bool = False,
        times: int = 1,
        run_id: str | None = None,
        tag: str | None = None,
    ) -> PendingFault:
        return self.inject(
            kind, Drop(after, before_response, mid_event), times=times, run_id=run_id, tag=tag
        )

    def refuse_next(
        self, kind: FaultKind, *, times: int = 1, run_id: str | None = None, tag: str | None = None
    ) -> PendingFault:
        """The next `times` requests of `kind` find the server unreachable (connection reset)."""
        return self.inject(kind, Refuse(), times=times, run_id=run_id, tag=tag)

    def delay_next(
        self,
        kind: FaultKind,
        seconds: float,
        *,
        times: int = 1,
        run_id: str | None = None,
        tag: str | None = None,
    ) -> PendingFault:
        return self.inject(kind, Delay(seconds), times=times, run_id=run_id, tag=tag)

    def rotate_handle(self, run_id: str) -> str:
        """Give the run's shape a new handle: the next poll with the old one gets 409."""
        with self._lock:
            run = self._get(run_id)
            run.handle = f"run-{run.internal_id}-{random_id(6)}"
            handle = run.handle
        self._notify()
        return handle

    def rotate_tag_feeds(self) -> None:
        """Expire every handle of the tag feed: each next poll gets a 409 must-refetch."""
        with self._lock:
            self._tag_feed_generation += 1
        self._notify()

    def _take_fault(
        self, kind: str, run_id: str | None, tags: Sequence[str] | None = None
    ) -> Fault | None:
        with self._lock:
            if tags is None:
                run = self._runs.get(run_id) if run_id else None
                tags = run.tags if run is not None else ()
            for pending in self._faults:
                if (
                    pending.kind == kind
                    and pending.run_id in (None, run_id)
                    and (pending.tag is None or pending.tag in tags)
                ):
                    pending.remaining -= 1
                    if pending.remaining <= 0:
                        self._faults.remove(pending)
                    return pending.fault
        return None

    async def _apply_fault(self, fault: Fault | None) -> Response | None:
        if isinstance(fault, Refuse):
            return DroppingResponse(Response(), Drop(before_response=True), self._abort)
        if isinstance(fault, Respond):
            headers = dict(fault.headers)
            media = headers.pop("content-type", "application/json")
            body = fault.body if isinstance(fault.body, bytes) else b""
            if fault.body is not None and not isinstance(fault.body, bytes):
                body = json.dumps(fault.body).encode()
            return Response(body, status_code=fault.status, headers=headers, media_type=media)
        if isinstance(fault, Delay):
            await asyncio.sleep(fault.seconds)
        if isinstance(fault, Hold):
            await asyncio.to_thread(fault.released.wait, fault.limit)
        return None

    def _maybe_drop(self, fault: Fault | None, response: Response) -> Response:
        return (
            DroppingResponse(response, fault, self._abort) if isinstance(fault, Drop) else response
        )

    def _abort(self, scope: Scope) -> None:
        """Reset the TCP connection a request came on (uvicorn keeps no handle in the scope)."""
        server = self._server
        client = tuple(scope.get("client") or ())
        if server is None:
            return
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if getattr(connection, "client", None) == client and transport is not None:
                transport.abort()
