"""A fake Trigger.dev server for tests: a Starlette app served by uvicorn on 127.0.0.1.

It speaks the wire protocol of ../shared/reference/trigger-dev-protocol.md closely enough that the
official `@trigger.dev/sdk@4.8.3` works against it (proved by tests/conformance/). The pure parts
(tokens, scopes, shape messages, SSE records, metadata operations) live in
`tests/fakes/trigger_protocol.py`; this module is the state, the HTTP glue and the test hooks.

Starting and stopping
---------------------
    with FakeTrigger(live_poll_timeout=2.0) as fake:      # or fake.start() ... fake.stop()
        fake.url            # "http://127.0.0.1:<ephemeral port>"
        fake.secret_key     # "tr_dev_<24 alnum>" (root key: the env's JWT signing key)
        fake.additional_key # "tr_dev_sk_<24 alnum>" (server mints public tokens for it)
        fake.environment_id # the `sub` of every public token

Constructor options (all keyword-only): `secret_key`, `environment_id`, `live_poll_timeout`
(seconds a `live=true` poll is held, 20 by default as on Trigger.dev), `stream_timeout` (seconds
of silence after which an SSE stream closes when the client sends no `Timeout-Seconds`; 15),
`ping_interval` (SSE keep-alives, 10), `stream_version` ("v1"/"v2" forces the read format;
None = as the SDK asked at trigger time via `x-trigger-realtime-streams-version`),
`issue_trigger_jwt` (send `x-trigger-jwt` on trigger; False leaves only the claims header so the
client self-signs), `partial_updates` (live updates carry only changed columns, as real Electric
does; the default full rows are what Trigger.dev's native backend sends), `tasks` (known task ids;
None accepts any), `executor` (below).

Hooks (plain methods, safe from any thread; a run is named by its friendly id `run_…`)
-------------------------------------------------------------------------------------
Runs:       create_run(task, payload=None, *, tags=(), status="QUEUED", metadata=None) -> run_id
            set_status(run_id, status)            # SDK names (QUEUED, EXECUTING, ...) or DB names
            complete_run(run_id, output=None)     # COMPLETED + output + completedAt
            fail_run(run_id, message, *, status="FAILED", name="Error")
            set_metadata(run_id, metadata) / update_metadata(run_id, operations)
            append_chunk(run_id, key, chunk) / append_chunks(run_id, key, chunks)
            run(run_id) -> RunView (a copy), run_ids() -> list, stream_chunks(run_id, key)
Waiting:    wait_for_runs(count=1, within=10) -> list of run ids (blocks the calling thread)
            wait_for_live_poll(run_id, within=10, count=1)  # polls held at the current row
            wait_for_stream_reader(run_id, key, within=10)
            wait_for_status(run_id, status, within=10)
            await_* variants of the three for async tests (they run the wait in a thread)
Tokens:     mint_token(scopes, *, expires_in=900.0, exp=None, extra_claims=None) -> str
            expire_tokens()        # every token issued or presented so far now gets 401
            advance_clock(seconds) # the server's clock for `exp` checks and new timestamps
Faults:     inject(kind, fault, *, times=1, run_id=None), with fault one of
              Respond(status, body, headers)  answer this instead (e.g. 500, 503)
              Delay(seconds)                  a slow response, then the normal one
              Drop(after=None, before_response=False, mid_event=False)
                                              handle normally, then cut the connection mid-body
                                              (SSE: after `after` records, or inside the next
                                              record with `mid_event`), or reset it before the
                                              response (a network error for the client)
              Refuse()                        reset the connection before handling anything
                                              (Trigger.dev unreachable: nothing is created)
            and shortcuts fail_next(kind, status=500), rate_limit_next(kind, reset_in=1.0)
            (429 + `x-ratelimit-reset` in epoch ms), drop_next(kind, after=None, before_response=False,
            mid_event=False), refuse_next(kind),
            delay_next(kind, seconds), rotate_handle(run_id) (409 must-refetch on the next poll,
            held polls included). `inject` and the shortcuts return a `PendingFault` whose
            `fired` counts its uses; `withdraw(pending)` takes back one not used up. With
            `tag=...` a fault hits only requests for runs with that tag (a trigger: whose
            request asks for it), so concurrent runs can each get their own faults.
            Kinds: trigger, claims, public_tokens, realtime_run, retrieve, cancel, metadata,
            stream_create, stream_write, stream_append, stream_read.
Recording:  requests (list of RecordedRequest: kind, method, path, query, headers, body, run_id),
            requests_of(kind).

Executor (issue 4: the fake plays the task)
-------------------------------------------
`executor` is an async callable `executor(run: RunControl) -> None` started on the server's event
loop for each newly created run (not for cached idempotent replays). `RunControl` carries
`id`, `task_identifier`, `payload` (parsed), `tags`, `metadata`, and the run hooks bound to the run:
`set_status`, `set_metadata`, `update_metadata`, `append_chunk`, `complete`, `fail`. A typical
executor: `await asyncio.sleep(queue_delay)`, `run.set_status("EXECUTING")`, relay the worker's
lines into `run.update_metadata(...)` / `run.append_chunk("cells", ...)`, then `run.complete()`.
Cancelling the run (API or hook) cancels the executor task; an executor that raises marks the
run CRASHED with the exception message (also kept in `executor_errors`).

Deviations from Trigger.dev, on purpose: streams are stored once and served in either format
(`PUT` on a stream always answers `{"version": "v1"}` since there is no S2 to write to); cancel
sets `completedAt` at once (the real engine may wait for the worker); the legacy (pre-2025-07-16)
API version only rewrites DEQUEUED to EXECUTING on the realtime feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import socket
import string
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes import trigger_protocol as proto

logger = logging.getLogger(__name__)

CURRENT_API_VERSION = "2025-07-16"
FaultKind = Literal[
    "trigger",
    "claims",
    "public_tokens",
    "realtime_run",
    "retrieve",
    "cancel",
    "metadata",
    "stream_create",
    "stream_write",
    "stream_append",
    "stream_read",
]
_ALNUM = string.ascii_lowercase + string.digits


def _random_id(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _cuid() -> str:
    return "c" + _random_id(24)


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer with this status, JSON body and headers instead of handling the request."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait this long, then handle the request normally (a slow server)."""

    seconds: float


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


Fault = Respond | Delay | Drop | Refuse


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


class _QuietDrops(logging.Filter):
    """uvicorn logs every exception raised mid-response; a deliberate drop is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        return not isinstance(exc, DroppedConnection)


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Chunk:
    seq: int
    redis_id: str
    record_id: str
    timestamp_ms: int
    data: Any


@dataclass(slots=True)
class _Stream:
    chunks: list[_Chunk] = field(default_factory=list)
    last_ms: int = 0
    last_n: int = -1
    client_chunk_index: dict[str, int] = field(default_factory=dict)
    readers: int = 0


@dataclass(slots=True)
class _Run:
    internal_id: str
    friendly_id: str
    task_identifier: str
    number: int
    status: str
    created_at: datetime
    updated_at: datetime
    payload: str
    payload_type: str
    metadata: dict[str, Any] | None
    metadata_type: str
    tags: list[str]
    streams_version: str
    handle: str
    queued_at: datetime | None = None
    started_at: datetime | None = None
    delay_until: datetime | None = None
    expired_at: datetime | None = None
    completed_at: datetime | None = None
    is_test: bool = False
    usage_duration_ms: int = 0
    cost_in_cents: float = 0.0
    base_cost_in_cents: float = 0.0
    ttl: str | None = None
    output: str | None = None
    output_type: str = "application/json"
    error: dict[str, Any] | None = None
    realtime_streams: list[str] = field(default_factory=list)
    idempotency_key: str | None = None
    idempotency_key_user: str | None = None
    idempotency_expires_at: float | None = None
    streams: dict[str, _Stream] = field(default_factory=dict)
    history: dict[int, dict[str, str | None]] = field(default_factory=dict)
    parked_polls: list[int] = field(default_factory=list)  # the row version each held poll saw
    executor_task: asyncio.Task[None] | None = None

    @property
    def version(self) -> int:
        """`updatedAt` in epoch ms: strictly increasing, it is the shape offset's first part."""
        return int(self.updated_at.timestamp() * 1000)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.internal_id,
            "taskIdentifier": self.task_identifier,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "startedAt": self.started_at,
            "delayUntil": self.delay_until,
            "queuedAt": self.queued_at,
            "expiredAt": self.expired_at,
            "completedAt": self.completed_at,
            "friendlyId": self.friendly_id,
            "number": self.number,
            "isTest": self.is_test,
            "status": self.status,
            "usageDurationMs": self.usage_duration_ms,
            "costInCents": self.cost_in_cents,
            "baseCostInCents": self.base_cost_in_cents,
            "ttl": self.ttl,
            "payload": self.payload,
            "payloadType": self.payload_type,
            "metadata": None if self.metadata is None else proto.dumps_chunk(self.metadata),
            "metadataType": self.metadata_type,
            "output": self.output,
            "outputType": self.output_type,
            "runTags": list(self.tags),
            "error": self.error,
            "realtimeStreams": list(self.realtime_streams),
        }

    def parsed_payload(self) -> Any:
        return _parse_packet(self.payload, self.payload_type)


def _parse_packet(data: str | None, data_type: str) -> Any:
    if data is None or data == "":
        return None
    if data_type == "application/json":
        return json.loads(data)
    if data_type == "application/super+json":
        return json.loads(data).get("json")
    return data


@dataclass(frozen=True, slots=True)
class RunView:
    """A copy of a run's state for assertions (statuses are the SDK's names)."""

    id: str
    internal_id: str
    task_identifier: str
    status: str
    db_status: str
    payload: Any
    metadata: dict[str, Any] | None
    output: Any
    error: dict[str, Any] | None
    tags: tuple[str, ...]
    idempotency_key: str | None
    realtime_streams: tuple[str, ...]
    completed_at: datetime | None
    handle: str


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


@dataclass(frozen=True, slots=True)
class _Auth:
    kind: Literal["secret", "jwt"]
    scopes: tuple[str, ...] = ()

    def allows(self, action: str, resources: Sequence[proto.Resource]) -> bool:
        return self.kind == "secret" or proto.scopes_allow(self.scopes, action, resources)


class RunControl:
    """What an executor gets: the run's data and the run hooks bound to it."""

    def __init__(self, fake: FakeTrigger, run_id: str) -> None:
        self._fake = fake
        self.id = run_id
        view = fake.run(run_id)
        self.task_identifier = view.task_identifier
        self.payload = view.payload
        self.tags = view.tags

    @property
    def metadata(self) -> dict[str, Any] | None:
        return self._fake.run(self.id).metadata

    def set_status(self, status: str) -> None:
        self._fake.set_status(self.id, status)

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        self._fake.set_metadata(self.id, metadata)

    def update_metadata(self, operations: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        return self._fake.update_metadata(self.id, operations)

    def append_chunk(self, key: str, chunk: Any) -> None:
        self._fake.append_chunk(self.id, key, chunk)

    def complete(self, output: Any = None) -> None:
        self._fake.complete_run(self.id, output)

    def fail(self, message: str, *, status: str = "FAILED", name: str = "Error") -> None:
        self._fake.fail_run(self.id, message, status=status, name=name)


Executor = Callable[[RunControl], Awaitable[None]]


# ---------------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------------


class FakeTrigger:
    """The fake Trigger.dev server and its test hooks (see the module docstring)."""

    def __init__(
        self,
        *,
        secret_key: str | None = None,
        environment_id: str | None = None,
        live_poll_timeout: float = 20.0,
        stream_timeout: float = 15.0,
        ping_interval: float = 10.0,
        stream_version: proto.StreamVersion | None = None,
        issue_trigger_jwt: bool = True,
        partial_updates: bool = False,
        tasks: Iterable[str] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.secret_key = secret_key or "tr_dev_" + _random_id(
            24, string.ascii_letters + string.digits
        )
        self.additional_key = "tr_dev_sk_" + _random_id(24, string.ascii_letters + string.digits)
        self.environment_id = environment_id or _cuid()
        self.live_poll_timeout = live_poll_timeout
        self.stream_timeout = stream_timeout
        self.ping_interval = ping_interval
        self.stream_version = stream_version
        self.issue_trigger_jwt = issue_trigger_jwt
        self.partial_updates = partial_updates
        self.tasks = None if tasks is None else frozenset(tasks)
        self.executor = executor
        self.executor_errors: list[BaseException] = []

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._runs: dict[str, _Run] = {}
        self._run_numbers = itertools.count(1)
        self._idempotency: dict[tuple[str, str], str] = {}
        self._request_idempotency: dict[tuple[str, str], str] = {}
        self._faults: list[PendingFault] = []
        self._requests: list[RecordedRequest] = []
        self._expired_tokens: set[str] = set()
        self._seen_tokens: set[str] = set()
        self._issued_not_before: float | None = None
        self._clock_offset = 0.0

        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._closing = False
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._ready = threading.Event()
        self._quiet = _QuietDrops()
        self.app = self._build_app()

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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clock and notifications -----------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self._clock_offset

    def _now_dt(self) -> datetime:
        return datetime.fromtimestamp(self._now(), UTC)

    def advance_clock(self, seconds: float) -> None:
        """Move the server's clock (token expiry checks and new timestamps) forward."""
        with self._lock:
            self._clock_offset += seconds

    def _notify(self) -> None:
        """Wake test threads waiting on the condition and handlers waiting on the loop."""
        with self._cond:
            self._cond.notify_all()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._pulse)

    def _pulse(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
        self._wakeup = asyncio.Event()

    async def _wait_change(self, event: asyncio.Event, seconds: float) -> None:
        """Wait for a pulse; `event` must be taken before checking the condition."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), seconds)

    def _current_event(self) -> asyncio.Event:
        assert self._wakeup is not None
        return self._wakeup

    # -- run hooks -------------------------------------------------------------------------

    def _get(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise KeyError(f"no run {run_id!r}")
        return run

    def _touch(self, run: _Run) -> None:
        """Advance `updatedAt` (at least 1 ms) and remember the row for partial updates."""
        now = self._now_dt()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        run.updated_at = max(now, run.updated_at + timedelta(milliseconds=1))
        run.history[run.version] = proto.serialize_run_row(run.row())

    def create_run(
        self,
        task: str,
        payload: Any = None,
        *,
        tags: Iterable[str] = (),
        status: str = "QUEUED",
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a run directly (no HTTP), as if it had been triggered; returns its id."""
        run = self._new_run(
            task,
            payload="" if payload is None else proto.dumps_chunk(payload),
            payload_type="application/json",
            metadata=None if metadata is None else dict(metadata),
            metadata_type="application/json",
            tags=list(tags),
            streams_version=self.stream_version or "v2",
            status=proto.to_db_status(status),
        )
        self._start_executor(run.friendly_id)
        return run.friendly_id

    def _new_run(
        self,
        task: str,
        *,
        payload: str,
        payload_type: str,
        metadata: dict[str, Any] | None,
        metadata_type: str,
        tags: list[str],
        streams_version: str,
        status: str = "PENDING",
        ttl: str | None = None,
        delay_until: datetime | None = None,
        idempotency: tuple[str, str | None, float | None] | None = None,
    ) -> _Run:
        now = self._now_dt().replace(microsecond=0)
        internal_id = _cuid()
        with self._lock:
            run = _Run(
                internal_id=internal_id,
                friendly_id="run_" + _cuid(),
                task_identifier=task,
                number=next(self._run_numbers),
                status=status,
                created_at=now,
                updated_at=now,
                queued_at=now,
                delay_until=delay_until,
                payload=payload,
                payload_type=payload_type,
                metadata=metadata,
                metadata_type=metadata_type,
                tags=tags,
                ttl=ttl,
                streams_version=streams_version,
                handle=f"run-{internal_id}",
            )
            if idempotency is not None:
                run.idempotency_key, run.idempotency_key_user, run.idempotency_expires_at = (
                    idempotency
                )
                self._idempotency[(task, idempotency[0])] = run.friendly_id
            run.history[run.version] = proto.serialize_run_row(run.row())
            self._runs[run.friendly_id] = run
        self._notify()
        return run

    def set_status(self, run_id: str, status: str) -> None:
        """Move a run to a status (SDK or DB name), setting `startedAt`/`completedAt` as the engine does."""
        db_status = proto.to_db_status(status)
        with self._lock:
            run = self._get(run_id)
            run.status = db_status
            now = self._now_dt()
            if db_status in {"DEQUEUED", "EXECUTING"} and run.started_at is None:
                run.started_at = now
            if db_status in proto.FINAL_DB_STATUSES and run.completed_at is None:
                run.completed_at = now
                if run.started_at is not None:
                    run.usage_duration_ms = int((now - run.started_at).total_seconds() * 1000)
            if db_status == "EXPIRED" and run.expired_at is None:
                run.expired_at = now
            self._touch(run)
        self._notify()

    def complete_run(self, run_id: str, output: Any = None) -> None:
        """Finish a run successfully; `output` is stored as an application/json packet."""
        with self._lock:
            run = self._get(run_id)
            run.output = None if output is None else proto.dumps_chunk(output)
            run.output_type = "application/json"
            self.set_status(run_id, "COMPLETED")

    def fail_run(
        self, run_id: str, message: str, *, status: str = "FAILED", name: str = "Error"
    ) -> None:
        """Finish a run with an error (a BUILT_IN_ERROR, as a thrown `Error` produces)."""
        with self._lock:
            run = self._get(run_id)
            run.error = {
                "type": "BUILT_IN_ERROR",
                "name": name,
                "message": message,
                "stackTrace": "",
            }
            self.set_status(run_id, status)

    def set_metadata(self, run_id: str, metadata: Mapping[str, Any]) -> None:
        with self._lock:
            run = self._get(run_id)
            run.metadata = json.loads(json.dumps(dict(metadata)))
            run.metadata_type = "application/json"
            self._touch(run)
        self._notify()

    def update_metadata(
        self, run_id: str, operations: Iterable[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Apply metadata operations (`{"type": "set", "key": ..., "value": ...}`, ...)."""
        with self._lock:
            run = self._get(run_id)
            run.metadata = proto.apply_metadata_operations(run.metadata or {}, operations)
            run.metadata_type = "application/json"
            self._touch(run)
            result = dict(run.metadata)
        self._notify()
        return result

    def _ensure_stream(self, run: _Run, key: str) -> _Stream:
        stream = run.streams.get(key)
        if stream is None:
            stream = run.streams[key] = _Stream()
        if key not in run.realtime_streams:
            run.realtime_streams.append(key)
            self._touch(run)
        return stream

    def _append(self, run: _Run, key: str, chunk: Any) -> None:
        stream = self._ensure_stream(run, key)
        ms = int(self._now() * 1000)
        if ms <= stream.last_ms:
            ms = stream.last_ms
            stream.last_n += 1
        else:
            stream.last_n = 0
        stream.last_ms = ms
        stream.chunks.append(
            _Chunk(
                seq=len(stream.chunks),
                redis_id=f"{ms}-{stream.last_n}",
                record_id=_random_id(7, string.ascii_letters + string.digits + "_-"),
                timestamp_ms=ms,
                data=chunk,
            )
        )

    def append_chunk(self, run_id: str, key: str, chunk: Any) -> None:
        """Append one JSON chunk to a run's realtime stream `key` (created on first use)."""
        self.append_chunks(run_id, key, [chunk])

    def append_chunks(self, run_id: str, key: str, chunks: Iterable[Any]) -> None:
        with self._lock:
            run = self._get(run_id)
            for chunk in chunks:
                self._append(run, key, json.loads(json.dumps(chunk)))
        self._notify()

    def cancel(self, run_id: str) -> bool:
        """Cancel a run as `POST /api/v2/runs/{id}/cancel` does; False if it was already final."""
        with self._lock:
            run = self._get(run_id)
            if run.status in proto.FINAL_DB_STATUSES:
                return False
            task = run.executor_task
            self.set_status(run_id, "CANCELED")
        if task is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(task.cancel)
        return True

    def run(self, run_id: str) -> RunView:
        with self._lock:
            run = self._get(run_id)
            return RunView(
                id=run.friendly_id,
                internal_id=run.internal_id,
                task_identifier=run.task_identifier,
                status=proto.DB_TO_SDK_STATUS.get(run.status, "QUEUED"),
                db_status=run.status,
                payload=run.parsed_payload(),
                metadata=None if run.metadata is None else json.loads(json.dumps(run.metadata)),
                output=_parse_packet(run.output, run.output_type),
                error=None if run.error is None else dict(run.error),
                tags=tuple(run.tags),
                idempotency_key=run.idempotency_key,
                realtime_streams=tuple(run.realtime_streams),
                completed_at=run.completed_at,
                handle=run.handle,
            )

    def run_ids(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    def stream_chunks(self, run_id: str, key: str) -> list[Any]:
        with self._lock:
            stream = self._get(run_id).streams.get(key)
            return [] if stream is None else [json.loads(json.dumps(c.data)) for c in stream.chunks]

    # -- waiting ---------------------------------------------------------------------------

    def _wait(self, predicate: Callable[[], bool], within: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, within):
                raise TimeoutError(f"FakeTrigger: timed out after {within}s waiting for {what}")

    def wait_for_runs(self, count: int = 1, within: float = 10.0) -> list[str]:
        """Block until at least `count` runs exist; returns all run ids in creation order."""
        self._wait(lambda: len(self._runs) >= count, within, f"{count} run(s)")
        return self.run_ids()

    def wait_for_live_poll(self, run_id: str, within: float = 10.0, *, count: int = 1) -> None:
        """Block until `count` `live=true` polls for the run are held at the run's current row.

        A held poll has seen every change so far, so the next change is delivered on its own.
        """

        def parked_at_current_row() -> bool:
            run = self._get(run_id)
            return sum(seen >= run.version for seen in run.parked_polls) >= count

        self._wait(parked_at_current_row, within, f"{count} live poll(s) on {run_id}")

    def live_readers(self, run_id: str) -> tuple[int, int]:
        """Right now: the run's held ``live=true`` polls, and its connected stream readers."""
        with self._lock:
            run = self._get(run_id)
            return len(run.parked_polls), sum(s.readers for s in run.streams.values())

    def wait_for_stream_reader(self, run_id: str, key: str, within: float = 10.0) -> None:
        """Block until an SSE reader of the run's stream `key` is connected."""

        def connected() -> bool:
            stream = self._get(run_id).streams.get(key)
            return stream is not None and stream.readers > 0

        self._wait(connected, within, f"a reader of {run_id}/{key}")

    def wait_for_status(self, run_id: str, status: str, within: float = 10.0) -> None:
        """Block until the run reaches `status` (an SDK or a database status name)."""
        db_status = proto.to_db_status(status)
        self._wait(lambda: self._get(run_id).status == db_status, within, f"{run_id} {status}")

    async def await_status(self, run_id: str, status: str, within: float = 10.0) -> None:
        await asyncio.to_thread(self.wait_for_status, run_id, status, within)

    async def await_runs(self, count: int = 1, within: float = 10.0) -> list[str]:
        return await asyncio.to_thread(self.wait_for_runs, count, within)

    async def await_live_poll(self, run_id: str, within: float = 10.0, *, count: int = 1) -> None:
        await asyncio.to_thread(lambda: self.wait_for_live_poll(run_id, within, count=count))

    async def await_stream_reader(self, run_id: str, key: str, within: float = 10.0) -> None:
        await asyncio.to_thread(self.wait_for_stream_reader, run_id, key, within)

    # -- tokens ----------------------------------------------------------------------------

    def mint_token(
        self,
        scopes: Sequence[str],
        *,
        expires_in: float = 900.0,
        exp: float | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        secret_key: str | None = None,
    ) -> str:
        """A public access token as the SDK would sign it (override anything for bad tokens)."""
        now = self._now()
        claims = {"sub": self.environment_id, "pub": True, "scopes": list(scopes)}
        claims.update(extra_claims or {})
        return proto.sign_token(
            claims,
            secret_key or self.secret_key,
            now=now,
            expires_at=exp if exp is not None else now + expires_in,
        )

    def expire_tokens(self) -> None:
        """Every public token issued or presented so far (or issued earlier) is now expired."""
        with self._lock:
            self._expired_tokens |= self._seen_tokens
            self._issued_not_before = float(int(self._now()))

    # -- faults ----------------------------------------------------------------------------

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
            run.handle = f"run-{run.internal_id}-{_random_id(6)}"
            handle = run.handle
        self._notify()
        return handle

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

    # -- executor --------------------------------------------------------------------------

    def _start_executor(self, run_id: str) -> None:
        executor = self.executor
        loop = self._loop
        if executor is None or loop is None:
            return

        def spawn() -> None:
            task = loop.create_task(self._execute(executor, run_id), name=f"executor {run_id}")
            with self._lock:
                self._get(run_id).executor_task = task

        loop.call_soon_threadsafe(spawn)

    async def _execute(self, executor: Executor, run_id: str) -> None:
        try:
            await executor(RunControl(self, run_id))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("fake trigger executor for %s raised %r", run_id, exc)
            self.executor_errors.append(exc)
            with contextlib.suppress(KeyError):
                if self.run(run_id).db_status not in proto.FINAL_DB_STATUSES:
                    self.fail_run(run_id, str(exc), status="CRASHED", name=type(exc).__name__)

    # -- HTTP: helpers ---------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        all_methods = ["GET", "HEAD", "POST", "PUT", "OPTIONS"]
        routes = [
            Route("/api/v1/tasks/{task}/trigger", self._trigger, methods=["POST", "OPTIONS"]),
            Route("/api/v1/auth/jwt/claims", self._claims, methods=["POST"]),
            Route("/api/v1/auth/public-tokens", self._public_tokens, methods=["POST"]),
            Route("/realtime/v1/runs/{run_id}", self._realtime_run, methods=["GET", "OPTIONS"]),
            Route("/api/v3/runs/{run_id}", self._retrieve, methods=["GET", "OPTIONS"]),
            Route("/api/v2/runs/{run_id}/cancel", self._cancel, methods=["POST"]),
            Route("/api/v1/runs/{run_id}/metadata", self._metadata, methods=["GET", "PUT"]),
            Route(
                "/realtime/v1/streams/{run_id}/{target}/{key}/append",
                self._stream_append,
                methods=["POST"],
            ),
            Route(
                "/realtime/v1/streams/{run_id}/{target}/{key}",
                self._stream_write,
                methods=["PUT", "POST", "HEAD"],
            ),
            Route("/realtime/v1/streams/{run_id}/{key}", self._stream_read, methods=all_methods),
        ]
        return Starlette(routes=routes)

    @staticmethod
    def _preflight(request: Request) -> Response:
        """remix-utils `cors()` on `json({})` with `maxAge: 300`, as the webapp answers OPTIONS."""
        response = JSONResponse({})
        origin = request.headers.get("origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.append("Vary", "Origin")
        response.headers["Access-Control-Allow-Methods"] = "GET,HEAD,PUT,PATCH,POST,DELETE"
        requested = request.headers.get("access-control-request-headers")
        if requested:
            response.headers["Access-Control-Allow-Headers"] = requested
        response.headers.append("Vary", "Access-Control-Request-Headers")
        response.headers["Access-Control-Max-Age"] = "300"
        return response

    @staticmethod
    def _cors(request: Request, response: Response) -> Response:
        """`wrapResponse` for `corsStrategy: "all"` routes: reflect the origin, expose JWT headers."""
        if "access-control-allow-origin" in response.headers:
            return response
        origin = request.headers.get("origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.append("Vary", "Origin")
        response.headers.append(
            "Access-Control-Expose-Headers", "x-trigger-jwt,x-trigger-jwt-claims"
        )
        return response

    def _authenticate(self, request: Request, *, allow_jwt: bool) -> _Auth | Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return JSONResponse(proto.MISSING_API_KEY_BODY, status_code=401)
        if allow_jwt and proto.is_public_jwt(token):
            claims = proto.unverified_claims(token) or {}
            if claims.get("sub") != self.environment_id:
                return JSONResponse({"error": "Invalid Public Access Token"}, status_code=401)
            with self._lock:
                self._seen_tokens.add(token)
                expired = token in self._expired_tokens
                not_before = self._issued_not_before
            try:
                if expired:
                    raise proto.TokenRejected("ERR_JWT_EXPIRED")
                verified = proto.verify_public_token(
                    token, self.secret_key, now=self._now(), issued_not_before=not_before
                )
            except proto.TokenRejected:
                return JSONResponse(proto.INVALID_PUBLIC_TOKEN_BODY, status_code=401)
            scopes = verified.get("scopes") or []
            return _Auth("jwt", tuple(s for s in scopes if isinstance(s, str)))
        if token in (self.secret_key, self.additional_key):
            return _Auth("secret")
        return JSONResponse(proto.INVALID_API_KEY_BODY, status_code=401)

    async def _apply_fault(self, fault: Fault | None) -> Response | None:
        if isinstance(fault, Refuse):
            return _DroppingResponse(Response(), Drop(before_response=True), self._abort)
        if isinstance(fault, Respond):
            headers = dict(fault.headers)
            media = headers.pop("content-type", "application/json")
            body = b"" if fault.body is None else json.dumps(fault.body).encode()
            return Response(body, status_code=fault.status, headers=headers, media_type=media)
        if isinstance(fault, Delay):
            await asyncio.sleep(fault.seconds)
        return None

    def _maybe_drop(self, fault: Fault | None, response: Response) -> Response:
        return (
            _DroppingResponse(response, fault, self._abort) if isinstance(fault, Drop) else response
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

    def _run_resources(self, run: _Run) -> list[proto.Resource]:
        return [
            proto.Resource("runs", run.friendly_id),
            proto.Resource("tasks", run.task_identifier),
            *(proto.Resource("tags", tag) for tag in run.tags),
        ]

    def _find_authorized(
        self, run_id: str, auth: _Auth, action: str, *, retry_not_found: bool
    ) -> _Run | Response:
        """The builder's order: find the run (404) before checking the scopes (403)."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return JSONResponse(
                proto.NOT_FOUND_BODY,
                status_code=404,
                headers={"x-should-retry": "true" if retry_not_found else "false"},
            )
        if not auth.allows(action, self._run_resources(run)):
            return JSONResponse(proto.UNAUTHORIZED_BODY, status_code=403)
        return run

    # -- HTTP: trigger and tokens ----------------------------------------------------------

    async def _trigger(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._preflight(request)
        task = request.path_params["task"]
        raw = await self._record("trigger", request)
        fault = self._take_fault("trigger", None, _requested_tags(raw))
        if (early := await self._apply_fault(fault)) is not None:
            return self._cors(request, early)
        auth = self._authenticate(request, allow_jwt=True)
        if isinstance(auth, Response):
            return self._cors(request, auth)
        if not auth.allows("trigger", [proto.Resource("tasks", task)]):
            return self._cors(request, JSONResponse(proto.UNAUTHORIZED_BODY, status_code=403))
        if not raw:
            return self._cors(
                request, JSONResponse({"error": "Request body is empty"}, status_code=400)
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return self._cors(request, JSONResponse({"error": "Invalid JSON"}, status_code=400))
        if not isinstance(body, dict) or not isinstance(body.get("options", {}), dict):
            return self._cors(
                request, JSONResponse({"error": "Invalid request body"}, status_code=400)
            )
        if self.tasks is not None and task not in self.tasks:
            return self._cors(request, JSONResponse({"error": "Task not found"}, status_code=404))

        request_key = request.headers.get("x-trigger-request-idempotency-key")
        with self._lock:
            cached_id = self._request_idempotency.get((task, request_key)) if request_key else None
        if cached_id is not None:
            response = self._trigger_response(cached_id, is_cached=False)
        else:
            run, is_cached = self._trigger_run(task, body, request)
            if request_key:
                with self._lock:
                    self._request_idempotency[(task, request_key)] = run.friendly_id
            response = self._trigger_response(run.friendly_id, is_cached=is_cached)
            if not is_cached:
                self._start_executor(run.friendly_id)
        return self._maybe_drop(fault, self._cors(request, response))

    def _trigger_run(self, task: str, body: dict[str, Any], request: Request) -> tuple[_Run, bool]:
        options: dict[str, Any] = body.get("options") or {}
        key = options.get("idempotencyKey")
        now = self._now()
        if isinstance(key, str) and key:
            with self._lock:
                existing_id = self._idempotency.get((task, key))
                existing = self._runs.get(existing_id) if existing_id else None
                if existing is not None and (
                    existing.status not in proto.IDEMPOTENCY_RESET_DB_STATUSES
                    and (
                        existing.idempotency_expires_at is None
                        or existing.idempotency_expires_at > now
                    )
                ):
                    return existing, True
        payload_type = options.get("payloadType") or "application/json"
        if payload_type == "application/json":
            payload = "" if "payload" not in body else proto.dumps_chunk(body["payload"])
        else:
            payload = body["payload"] if isinstance(body.get("payload"), str) else ""
        tags_option = options.get("tags") or []
        tags = [tags_option] if isinstance(tags_option, str) else [str(t) for t in tags_option]
        metadata = options.get("metadata")
        ttl = options.get("ttl")
        delay = options.get("delay")
        delay_until: datetime | None = None
        status = "PENDING"
        if delay:
            status = "DELAYED"
            try:
                delay_until = datetime.fromisoformat(str(delay).replace("Z", "+00:00"))
            except ValueError:
                seconds = proto.expiration_to_epoch(str(delay), now=now) - int(now)
                delay_until = self._now_dt() + timedelta(seconds=seconds)
        header_version = request.headers.get("x-trigger-realtime-streams-version")
        idempotency = None
        if isinstance(key, str) and key:
            user = (options.get("idempotencyKeyOptions") or {}).get("key")
            ttl_option = options.get("idempotencyKeyTTL")
            expires = (
                proto.expiration_to_epoch(ttl_option, now=now)
                if isinstance(ttl_option, str)
                else now + 30 * 86400
            )
            idempotency = (key, user if isinstance(user, str) else None, expires)
        run = self._new_run(
            task,
            payload=payload,
            payload_type=payload_type,
            metadata=metadata if isinstance(metadata, dict) else None,
            metadata_type=options.get("metadataType") or "application/json",
            tags=tags,
            streams_version=self.stream_version or ("v2" if header_version == "v2" else "v1"),
            status=status,
            ttl=f"{ttl}s" if isinstance(ttl, int) else ttl,
            delay_until=delay_until,
            idempotency=idempotency,
        )
        return run, False

    def _trigger_response(self, run_id: str, *, is_cached: bool) -> Response:
        claims = {
            "sub": self.environment_id,
            "pub": True,
            "scopes": [f"read:runs:{run_id}", f"write:inputStreams:{run_id}"],
        }
        headers = {"x-trigger-jwt-claims": json.dumps(claims, separators=(",", ":"))}
        if self.issue_trigger_jwt:
            now = self._now()
            headers["x-trigger-jwt"] = proto.sign_token(
                claims, self.secret_key, now=now, expires_at=now + 3600
            )
        return JSONResponse({"id": run_id, "isCached": is_cached}, headers=headers)

    async def _claims(self, request: Request) -> Response:
        await self._record("claims", request)
        if (early := await self._apply_fault(self._take_fault("claims", None))) is not None:
            return early
        auth = self._authenticate(request, allow_jwt=False)
        if isinstance(auth, Response):
            return JSONResponse(proto.MISSING_API_KEY_BODY, status_code=401)
        return JSONResponse({"sub": self.environment_id, "pub": True})

    async def _public_tokens(self, request: Request) -> Response:
        raw = await self._record("public_tokens", request)
        if (early := await self._apply_fault(self._take_fault("public_tokens", None))) is not None:
            return early
        auth = self._authenticate(request, allow_jwt=False)
        if isinstance(auth, Response):
            return auth
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        scopes = body.get("scopes") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or not isinstance(scopes, list)
            or not scopes
            or not all(isinstance(s, str) and s for s in scopes)
        ):
            return JSONResponse({"error": "Invalid request body"}, status_code=400)
        now = self._now()
        try:
            expires_at = proto.expiration_to_epoch(body.get("expirationTime", "15m"), now=now)
        except ValueError:
            return JSONResponse({"error": "Invalid expiration time"}, status_code=400)
        if expires_at <= now:
            return JSONResponse({"error": "Expiration time must be in the future"}, status_code=400)
        if expires_at > now + 30 * 86400:
            return JSONResponse({"error": "Expiration time cannot exceed 30 days"}, status_code=400)
        claims: dict[str, Any] = {"sub": self.environment_id, "pub": True, "scopes": scopes}
        if body.get("oneTimeUse"):
            claims["otu"] = True
        if isinstance(body.get("realtime"), dict):
            claims["realtime"] = body["realtime"]
        token = proto.sign_token(claims, self.secret_key, now=now, expires_at=expires_at)
        return JSONResponse({"token": token})

    # -- HTTP: realtime runs (Electric shape long-polling) ---------------------------------

    async def _realtime_run(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._preflight(request)
        run_id = request.path_params["run_id"]
        await self._record("realtime_run", request, run_id)
        fault = self._take_fault("realtime_run", run_id)
        if (early := await self._apply_fault(fault)) is not None:
            return self._cors(request, early)
        auth = self._authenticate(request, allow_jwt=True)
        if isinstance(auth, Response):
            return self._cors(request, auth)
        found = self._find_authorized(run_id, auth, "read", retry_not_found=False)
        if isinstance(found, Response):
            return self._cors(request, found)
        response = await self._shape_response(request, found)
        return self._maybe_drop(fault, self._cors(request, response))

    async def _shape_response(self, request: Request, run: _Run) -> Response:
        params = request.query_params
        offset = params.get("offset", proto.INITIAL_OFFSET)
        handle = params.get("handle") or params.get("shape_id")
        live = params.get("live") == "true"
        skip = [c for c in (params.get("skipColumns") or "").split(",") if c]
        modern = request.headers.get("x-trigger-electric-version") is not None
        legacy = request.headers.get("x-trigger-api-version") != CURRENT_API_VERSION

        def respond(
            messages: list[dict[str, Any]], *, offset: str, handle: str, cursor: str | None
        ) -> Response:
            body = proto.shape_body(messages)
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
                headers["electric-schema"] = proto.electric_schema_header(skip)
            return Response(body, headers=headers, media_type="application/json")

        def snapshot(current_handle: str) -> Response:
            with self._lock:
                value = proto.serialize_run_row(run.row(), skip)
                version = run.version
            message = proto.change_message(run.internal_id, value, "insert")
            return respond(
                [message],
                offset=proto.encode_offset(version, _next_seq()),
                handle=current_handle,
                cursor=None,
            )

        if offset == proto.INITIAL_OFFSET or not handle:
            return snapshot(run.handle)
        if handle != run.handle:
            return self._must_refetch(run.handle)
        if not live:
            return snapshot(handle)

        seen = proto.parse_offset_version(offset)
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
                    value = proto.serialize_run_row(row, skip)
                    if self.partial_updates and previous is not None:
                        value = proto.diff_values(
                            {k: v for k, v in previous.items() if k in value}, value
                        )
                    message = proto.change_message(run.internal_id, value, "update")
                    seq = _next_seq()
                    return respond(
                        [message],
                        offset=proto.encode_offset(version, seq),
                        handle=handle,
                        cursor=str(seq),
                    )
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or self._closing:
                    return respond([], offset=offset, handle=handle, cursor=str(_next_seq()))
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
        return Response(
            proto.must_refetch_body(),
            status_code=409,
            headers={
                "electric-handle": new_handle,
                "cache-control": "no-store",
                "access-control-allow-origin": "*",
                "access-control-expose-headers": "*",
            },
            media_type="application/json",
        )

    # -- HTTP: retrieve, cancel, metadata --------------------------------------------------

    async def _retrieve(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._preflight(request)
        run_id = request.path_params["run_id"]
        await self._record("retrieve", request, run_id)
        fault = self._take_fault("retrieve", run_id)
        if (early := await self._apply_fault(fault)) is not None:
            return self._cors(request, early)
        auth = self._authenticate(request, allow_jwt=True)
        if isinstance(auth, Response):
            return self._cors(request, auth)
        found = self._find_authorized(run_id, auth, "read", retry_not_found=True)
        if isinstance(found, Response):
            return self._cors(request, found)
        with self._lock:
            body = _retrieve_body(found)
        return self._maybe_drop(fault, self._cors(request, JSONResponse(body)))

    async def _cancel(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        await self._record("cancel", request, run_id)
        fault = self._take_fault("cancel", run_id)
        if (early := await self._apply_fault(fault)) is not None:
            return early
        auth = self._authenticate(request, allow_jwt=True)
        if isinstance(auth, Response):
            return auth
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return JSONResponse({"error": "Run not found"}, status_code=404)
        if not auth.allows("write", self._run_resources(run)[:2]):
            return JSONResponse(proto.UNAUTHORIZED_BODY, status_code=403)
        self.cancel(run_id)
        return self._maybe_drop(fault, JSONResponse({"id": run_id}))

    async def _metadata(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        raw = await self._record("metadata", request, run_id)
        fault = self._take_fault("metadata", run_id)
        if (early := await self._apply_fault(fault)) is not None:
            return early
        auth = self._authenticate(request, allow_jwt=False)
        if isinstance(auth, Response):
            return JSONResponse({"error": "Invalid or Missing API Key"}, status_code=401)
        with self._lock:
            run = self._runs.get(run_id)
        if request.method == "GET":
            if run is None:
                return JSONResponse({"error": "Run not found"}, status_code=404)
            with self._lock:
                packet = None if run.metadata is None else proto.dumps_chunk(run.metadata)
                return JSONResponse({"metadata": packet, "metadataType": run.metadata_type})
        if run is None:
            return JSONResponse({"error": "Task Run not found"}, status_code=404)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return JSONResponse({"error": "Invalid JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "Invalid request body"}, status_code=400)
        if run.status in proto.FINAL_DB_STATUSES:
            return JSONResponse(
                {"error": "Cannot update metadata for a completed run"}, status_code=422
            )
        operations = list(body.get("operations") or [])
        if isinstance(body.get("metadata"), dict):
            operations.insert(0, {"type": "update", "value": body["metadata"]})
        metadata = self.update_metadata(run_id, operations)
        return self._maybe_drop(fault, JSONResponse({"metadata": metadata}))

    # -- HTTP: realtime streams ------------------------------------------------------------

    def _stream_target(self, request: Request) -> _Run | Response:
        run_id = request.path_params["run_id"]
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return Response("Run not found", status_code=404)
        if request.path_params["target"] != "self":
            return Response("Target not found", status_code=404)
        return run

    async def _stream_write(self, request: Request) -> Response:
        kind = {"PUT": "stream_create", "POST": "stream_write"}.get(request.method, "stream_create")
        run_id = request.path_params["run_id"]
        key = request.path_params["key"]
        await self._record(kind, request, run_id)
        fault = self._take_fault(kind, run_id)
        if (early := await self._apply_fault(fault)) is not None:
            return early
        auth = self._authenticate(request, allow_jwt=False)
        if isinstance(auth, Response):
            return auth
        target = self._stream_target(request)
        if isinstance(target, Response):
            return target
        client_id = request.headers.get("x-client-id") or "default"
        if request.method == "HEAD":
            with self._lock:
                stream = target.streams.get(key)
                index = -1 if stream is None else stream.client_chunk_index.get(client_id, -1)
            return Response(headers={"X-Last-Chunk-Index": str(index)})
        if request.method == "PUT":
            with self._lock:
                if target.completed_at is not None:
                    return Response(
                        "Cannot initialize a realtime stream on a completed run", status_code=400
                    )
                self._ensure_stream(target, key)
            self._notify()
            return self._maybe_drop(fault, JSONResponse({"version": "v1"}, status_code=202))
        resume = request.headers.get("x-resume-from-chunk")
        index = 0
        if resume:
            if not resume.isdigit():
                return Response(
                    f"Invalid X-Resume-From-Chunk header value: {resume}", status_code=400
                )
            index = int(resume)
        buffer = ""
        async for piece in request.stream():
            buffer += piece.decode()
            *lines, buffer = buffer.split("\n")
            index = self._ingest_lines(target, key, client_id, lines, index)
        self._ingest_lines(target, key, client_id, [buffer], index)
        return self._maybe_drop(fault, Response(status_code=200))

    def _ingest_lines(
        self, run: _Run, key: str, client_id: str, lines: Sequence[str], index: int
    ) -> int:
        with self._lock:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    chunk = json.loads(line)
                except ValueError:
                    chunk = line
                self._append(run, key, chunk)
                run.streams[key].client_chunk_index[client_id] = index
                index += 1
        self._notify()
        return index

    async def _stream_append(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        raw = await self._record("stream_append", request, run_id)
        fault = self._take_fault("stream_append", run_id)
        if (early := await self._apply_fault(fault)) is not None:
            return early
        auth = self._authenticate(request, allow_jwt=False)
        if isinstance(auth, Response):
            return auth
        target = self._stream_target(request)
        if isinstance(target, Response):
            return target
        if target.completed_at is not None:
            return Response(
                "Cannot append to a realtime stream on a completed run", status_code=400
            )
        with self._lock:
            # The webapp stores `JSON.stringify(part)`: readers get the raw text as a string.
            self._append(target, request.path_params["key"], raw.decode())
        self._notify()
        return self._maybe_drop(fault, JSONResponse({"ok": True}))

    async def _stream_read(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._preflight(request)
        if request.method != "GET":
            return JSONResponse({"error": "Method not allowed"}, status_code=405)
        run_id = request.path_params["run_id"]
        key = request.path_params["key"]
        await self._record("stream_read", request, run_id)
        fault = self._take_fault("stream_read", run_id)
        if (early := await self._apply_fault(fault)) is not None:
            return self._cors(request, early)
        auth = self._authenticate(request, allow_jwt=True)
        if isinstance(auth, Response):
            return self._cors(request, auth)
        found = self._find_authorized(run_id, auth, "read", retry_not_found=False)
        if isinstance(found, Response):
            return self._cors(request, found)
        raw_timeout = request.headers.get("timeout-seconds")
        timeout = self.stream_timeout
        if raw_timeout:
            try:
                timeout = float(int(raw_timeout))
            except ValueError:
                return Response("Invalid timeout seconds", status_code=400)
            if timeout < 1:
                return Response("Timeout seconds must be greater than 0", status_code=400)
            if timeout > 600:
                return Response("Timeout seconds must be less than 600", status_code=400)
        version = found.streams_version
        last_event_id = request.headers.get("last-event-id")
        from_latest = request.headers.get("x-trigger-stream-start") == "latest"
        with self._lock:
            stream = found.streams.get(key)
            total = 0 if stream is None else len(stream.chunks)
        if version == "v2":
            start = proto.parse_v2_last_event_id(last_event_id)
            cursor = start if start is not None else (total if from_latest else 0)
            headers = {"X-Stream-Version": "v2", "Access-Control-Expose-Headers": "*"}
        else:
            parsed = proto.parse_v1_last_event_id(last_event_id)
            cursor = self._v1_cursor(found, key, parsed)
            headers = {"Cache-Control": "no-cache", "Connection": "keep-alive"}
        if isinstance(fault, Drop) and fault.before_response:
            return self._maybe_drop(fault, Response())
        drop_after = (fault.after or 0) if isinstance(fault, Drop) else None
        mid_event = isinstance(fault, Drop) and fault.mid_event
        body = self._sse(found, key, version, cursor, timeout, drop_after, mid_event)
        response = StreamingResponse(body, media_type="text/event-stream", headers=headers)
        return self._cors(request, response)

    def _v1_cursor(self, run: _Run, key: str, last: tuple[int, int] | None) -> int:
        if last is None:
            return 0
        with self._lock:
            stream = run.streams.get(key)
            if stream is None:
                return 0
            for i, chunk in enumerate(stream.chunks):
                ms, _, n = chunk.redis_id.partition("-")
                if (int(ms), int(n)) > last:
                    return i
            return len(stream.chunks)

    async def _sse(
        self,
        run: _Run,
        key: str,
        version: str,
        cursor: int,
        idle_seconds: float,
        drop_after: int | None,
        mid_event: bool = False,
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        last_data = last_sent = loop.time()
        delivered = 0
        count = size = 0

        def encode(chunks: Sequence[_Chunk]) -> bytes:
            nonlocal count, size
            if version != "v2":
                return b"".join(
                    proto.sse_v1_data(c.redis_id, proto.dumps_chunk(c.data)) for c in chunks
                )
            records = [
                {
                    "seq_num": c.seq,
                    "timestamp": c.timestamp_ms,
                    "headers": [],
                    "body": proto.v2_record_body(c.data, c.record_id),
                }
                for c in chunks
            ]
            count += len(records)
            size += sum(len(r["body"]) for r in records)
            return proto.sse_v2_batch(records, count=count, size=size)

        with self._lock:
            self._ensure_stream_quietly(run, key).readers += 1
        self._notify()
        try:
            if drop_after == 0 and not mid_event:
                raise DroppedConnection
            while not self._closing:
                event = self._current_event()
                with self._lock:
                    stream = run.streams[key]
                    fresh = stream.chunks[cursor:]
                if drop_after is not None and delivered >= drop_after and fresh:
                    # mid_event: half of the next record, then the connection dies
                    partial = encode(fresh[:1])
                    yield partial[: len(partial) // 2]
                    raise DroppedConnection
                if drop_after is not None:
                    fresh = fresh[: drop_after - delivered]
                if fresh:
                    cursor += len(fresh)
                    delivered += len(fresh)
                    yield encode(fresh)
                    last_data = last_sent = loop.time()
                    if drop_after is not None and delivered >= drop_after and not mid_event:
                        raise DroppedConnection
                    continue
                now = loop.time()
                if now - last_data >= idle_seconds:
                    break
                if now - last_sent >= self.ping_interval:
                    yield (
                        proto.sse_v2_ping(int(self._now() * 1000))
                        if version == "v2"
                        else proto.sse_v1_ping()
                    )
                    last_sent = now
                wake = min(last_data + idle_seconds, last_sent + self.ping_interval)
                await self._wait_change(event, wake - loop.time())
            if version == "v2":
                yield proto.sse_v2_done()
        finally:
            with self._lock:
                run.streams[key].readers -= 1
            self._notify()

    def _ensure_stream_quietly(self, run: _Run, key: str) -> _Stream:
        """A reader may connect before the writer: hold an empty stream without touching the row."""
        stream = run.streams.get(key)
        if stream is None:
            stream = run.streams[key] = _Stream()
        return stream


def _requested_tags(raw: bytes) -> list[str]:
    """The tags a trigger request asks for (none if the body is not what it should be)."""
    try:
        options = json.loads(raw).get("options") or {}
        tags = options.get("tags") or []
    except (ValueError, AttributeError):
        return []
    return [tags] if isinstance(tags, str) else [t for t in tags if isinstance(t, str)]


_seq_counter = itertools.count(1)


def _next_seq() -> int:
    return next(_seq_counter)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return proto.format_timestamp(value) + "Z"


def _retrieve_body(run: _Run) -> dict[str, Any]:
    """`GET /api/v3/runs/{id}` (`RetrieveRunResponse`), optional fields omitted when absent."""
    status = proto.DB_TO_SDK_STATUS.get(run.status, "QUEUED")
    completed = status in {"COMPLETED", "CANCELED", "FAILED", "CRASHED", "SYSTEM_FAILURE"}
    body: dict[str, Any] = {
        "id": run.friendly_id,
        "taskIdentifier": run.task_identifier,
        "status": status,
        "idempotencyKey": run.idempotency_key_user or run.idempotency_key,
        "isQueued": status in {"QUEUED", "DELAYED", "PENDING_VERSION"},
        "isExecuting": status in {"EXECUTING", "DEQUEUED"},
        "isWaiting": status == "WAITING",
        "isCompleted": completed,
        "isSuccess": completed and status == "COMPLETED",
        "isFailed": completed and status != "COMPLETED",
        "isCancelled": status == "CANCELED",
        "isTest": run.is_test,
        "createdAt": _iso(run.created_at),
        "updatedAt": _iso(run.updated_at),
        "startedAt": _iso(run.started_at),
        "finishedAt": _iso(run.completed_at),
        "delayedUntil": _iso(run.delay_until),
        "expiredAt": _iso(run.expired_at),
        "ttl": run.ttl,
        "tags": list(run.tags),
        "costInCents": run.cost_in_cents,
        "baseCostInCents": run.base_cost_in_cents,
        "durationMs": run.usage_duration_ms,
        "metadata": run.metadata,
        "depth": 0,
        "triggerFunction": "trigger",
        "payload": run.parsed_payload(),
        "relatedRuns": {"children": []},
        "attemptCount": 1 if run.started_at else 0,
        "attempts": [],
    }
    if status == "COMPLETED":
        body["output"] = _parse_packet(run.output, run.output_type)
    if run.error is not None:
        body["error"] = {
            k: v for k, v in run.error.items() if k in {"message", "name", "stackTrace"} and v
        }
    return {k: v for k, v in body.items() if v is not None}


class _DroppingResponse(Response):
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


__all__ = [
    "Delay",
    "Drop",
    "DroppedConnection",
    "Executor",
    "FakeTrigger",
    "PendingFault",
    "RecordedRequest",
    "Refuse",
    "Respond",
    "RunControl",
    "RunView",
]
