"""The fake Trigger.dev server itself: options, the uvicorn thread, and the request log.

``FakeTrigger`` puts the parts of this package together: the run and stream store
(store.py), the faults (faults.py), keys, tokens and CORS (access.py), and the routes of the
JSON API (api_routes.py), the realtime run feed (shape_routes.py), the tag feed (tag_routes.py)
and the realtime streams (stream_routes.py). The package's docstring (``tests/fakes/trigger/__init__.py``) is the manual.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import string
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request

from tests.fakes.trigger import encoding
from tests.fakes.trigger.api_routes import ApiRoutes
from tests.fakes.trigger.faults import QuietDrops
from tests.fakes.trigger.runs import cuid, random_id
from tests.fakes.trigger.shape_routes import ShapeRoutes
from tests.fakes.trigger.store import Executor
from tests.fakes.trigger.stream_routes import StreamRoutes
from tests.fakes.trigger.tag_routes import TagFeedRoutes
from tests.support.servers import Service

_KEY_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    kind: str
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    run_id: str | None
    peer: str | None = None
    """The client's ``host:port``: which process sent it (psutil maps the port to a pid)."""


class FakeTrigger(ApiRoutes, ShapeRoutes, TagFeedRoutes, StreamRoutes, Service):
    """The fake Trigger.dev server and its test hooks (see the package's docstring)."""

    def __init__(
        self,
        *,
        secret_key: str | None = None,
        environment_id: str | None = None,
        live_poll_timeout: float = 20.0,
        stream_timeout: float = 15.0,
        ping_interval: float = 10.0,
        stream_version: encoding.StreamVersion | None = None,
        issue_trigger_jwt: bool = True,
        partial_updates: bool = False,
        tasks: Iterable[str] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.secret_key = secret_key or "tr_dev_" + random_id(24, _KEY_ALPHABET)
        self.additional_key = "tr_dev_sk_" + random_id(24, _KEY_ALPHABET)
        self.environment_id = environment_id or cuid()
        self.live_poll_timeout = live_poll_timeout
        self.stream_timeout = stream_timeout
        self.ping_interval = ping_interval
        self.stream_version = stream_version
        self.issue_trigger_jwt = issue_trigger_jwt
        self.partial_updates = partial_updates
        self.tasks = None if tasks is None else frozenset(tasks)
        self.executor = executor
        super().__init__()  # the store, the faults and the tokens
        self._requests: list[RecordedRequest] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._ready = threading.Event()
        self._quiet = QuietDrops()
        self.app = Starlette(
            routes=[
                *self._api_routes(),
                *self._shape_routes(),
                *self._tag_routes(),
                *self._stream_routes(),
            ]
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("FakeTrigger is not started")
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("FakeTrigger already started")
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose proto is
        # TCP. Without it uvicorn's two writes (headers, then body) meet Nagle plus the client's
        # delayed ACK on a kept-alive connection: ~40 ms added to every live poll answer, which
        # Trigger.dev (Node, noDelay by default) does not have.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)  # connections queue from now on, even before uvicorn accepts them
        self._socket = sock
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(self._quiet)
        self._thread = threading.Thread(target=self._serve, name="fake-trigger", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("FakeTrigger did not start")
        return self

    def _serve(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._wakeup = asyncio.Event()
            self._ready.set()
            assert self._server is not None
            assert self._socket is not None
            await self._server.serve(sockets=[self._socket])

        asyncio.run(main())

    def stop(self) -> None:
        if self._thread is None:
            return
        with self._lock:
            self._closing = True
            tasks = [r.executor_task for r in self._runs.values() if r.executor_task]
        if self._loop is not None:
            for task in tasks:
                self._loop.call_soon_threadsafe(task.cancel)
        self._notify()
        assert self._server is not None
        self._server.should_exit = True
        self._thread.join(15)
        logging.getLogger("uvicorn.error").removeFilter(self._quiet)
        if self._socket is not None:
            self._socket.close()
        self._thread = None

    # -- recording -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_of(self, kind: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == kind]

    async def _record(self, kind: str, request: Request, run_id: str | None = None) -> bytes:
        body = b"" if kind == "stream_write" else await request.body()
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    kind=kind,
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query,
                    headers=dict(request.headers),
                    body=body,
                    run_id=run_id,
                    peer=f"{request.client.host}:{request.client.port}" if request.client else None,
                )
            )
        return body
