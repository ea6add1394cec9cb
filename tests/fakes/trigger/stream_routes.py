"""The fake's realtime streams: the task's writes (v1 NDJSON, appends) and the SSE reads.

Streams are stored once and served in either format: v1 (Redis ids, ``: ping``) or v2 (S2
batches), as the run was triggered or as ``stream_version`` forces.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.trigger import encoding
from tests.fakes.trigger.access import Access
from tests.fakes.trigger.faults import Drop, DroppedConnection, Fault
from tests.fakes.trigger.runs import Chunk, Run, Stream


class StreamRoutes(Access):
    """The handlers of ``/realtime/v1/streams/...``; part of ``FakeTrigger``."""

    stream_timeout: float
    ping_interval: float

    def _stream_routes(self) -> list[Route]:
        return [
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
            Route(
                "/realtime/v1/streams/{run_id}/{key}",
                self._stream_read,
                methods=["GET", "HEAD", "POST", "PUT", "OPTIONS"],
            ),
        ]

    async def _writer_target(
        self, kind: str, request: Request
    ) -> tuple[bytes, Fault | None, Run] | Response:
        """A write's prologue: record, fault, secret key, then the run it writes to."""
        raw, fault, early = await self._begin(kind, request, request.path_params["run_id"])
        if early is not None:
            return early
        auth = self._authenticate(request, allow_jwt=False)
        if isinstance(auth, Response):
            return auth
        target = self._stream_target(request)
        if isinstance(target, Response):
            return target
        return raw, fault, target

    def _stream_target(self, request: Request) -> Run | Response:
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
        key = request.path_params["key"]
        admitted = await self._writer_target(kind, request)
        if isinstance(admitted, Response):
            return admitted
        _, fault, target = admitted
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
        self, run: Run, key: str, client_id: str, lines: Sequence[str], index: int
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
        admitted = await self._writer_target("stream_append", request)
        if isinstance(admitted, Response):
            return admitted
        raw, fault, target = admitted
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
        if request.method not in ("GET", "OPTIONS"):
            return JSONResponse({"error": "Method not allowed"}, status_code=405)
        key = request.path_params["key"]
        admitted = await self._begin_read("stream_read", request)
        if isinstance(admitted, Response):
            return admitted
        fault, found = admitted
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
            start = encoding.parse_v2_last_event_id(last_event_id)
            cursor = start if start is not None else (total if from_latest else 0)
            headers = {"X-Stream-Version": "v2", "Access-Control-Expose-Headers": "*"}
        else:
            parsed = encoding.parse_v1_last_event_id(last_event_id)
            cursor = self._v1_cursor(found, key, parsed)
            headers = {"Cache-Control": "no-cache", "Connection": "keep-alive"}
        if isinstance(fault, Drop) and fault.before_response:
            return self._maybe_drop(fault, Response())
        drop_after = (fault.after or 0) if isinstance(fault, Drop) else None
        mid_event = isinstance(fault, Drop) and fault.mid_event
        body = self._sse(found, key, version, cursor, timeout, drop_after, mid_event)
        response = StreamingResponse(body, media_type="text/event-stream", headers=headers)
        return self._cors(request, response)

    def _v1_cursor(self, run: Run, key: str, last: tuple[int, int] | None) -> int:
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
        run: Run,
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

        def encode(chunks: Sequence[Chunk]) -> bytes:
            nonlocal count, size
            if version != "v2":
                return b"".join(
                    encoding.sse_v1_data(c.redis_id, encoding.dumps_chunk(c.data)) for c in chunks
                )
            records = [
                {
                    "seq_num": c.seq,
                    "timestamp": c.timestamp_ms,
                    "headers": [],
                    "body": encoding.v2_record_body(c.data, c.record_id),
                }
                for c in chunks
            ]
            count += len(records)
            size += sum(len(r["body"]) for r in records)
            return encoding.sse_v2_batch(records, count=count, size=size)

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
                        encoding.sse_v2_ping(int(self._now() * 1000))
                        if version == "v2"
                        else encoding.sse_v1_ping()
                    )
                    last_sent = now
                wake = min(last_data + idle_seconds, last_sent + self.ping_interval)
                await self._wait_change(event, wake - loop.time())
            if version == "v2":
                yield encoding.sse_v2_done()
        finally:
            with self._lock:
                run.streams[key].readers -= 1
            self._notify()

    def _ensure_stream_quietly(self, run: Run, key: str) -> Stream:
        """A reader may connect before the writer: hold an empty stream without touching the row."""
        stream = run.streams.get(key)
        if stream is None:
            stream = run.streams[key] = Stream()
        return stream
