"""The fake's runs and their streams: the run hooks tests call, waiting on them, the executor.

Every hook is safe from any thread: the state sits behind one lock, and each change wakes both
the test threads waiting on the condition and the HTTP handlers waiting on the server's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.trigger import encoding, protocol
from tests.fakes.trigger.runs import (
    Chunk,
    Executor,
    Run,
    RunControl,
    RunView,
    Stream,
    cuid,
    random_id,
)
from tests.support.waiting import wait_until

logger = logging.getLogger(__name__)


class RunStore:
    """Runs, streams, the server's clock and the notifications of change."""

    stream_version: encoding.StreamVersion | None
    executor: Executor | None

    def __init__(self) -> None:
        self.executor_errors: list[BaseException] = []
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._runs: dict[str, Run] = {}
        self._run_numbers = itertools.count(1)
        self._idempotency: dict[tuple[str, str], str] = {}
        self._request_idempotency: dict[tuple[str, str], str] = {}
        self._clock_offset = 0.0
        self._changes = itertools.count(1)
        self._tag_polls: list[tuple[frozenset[str], int]] = []
        """(tags, change seq seen) of each held live poll of the tag feed."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._closing = False

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

    def _get(self, run_id: str) -> Run:
        run = self._runs.get(run_id)
        if run is None:
            raise KeyError(f"no run {run_id!r}")
        return run

    def _touch(self, run: Run) -> None:
        """Advance `updatedAt` (at least 1 ms) and remember the row for partial updates."""
        now = self._now_dt()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        run.updated_at = max(now, run.updated_at + timedelta(milliseconds=1))
        run.history[run.version] = encoding.serialize_run_row(run.row())
        run.change_seq = next(self._changes)

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
            payload="" if payload is None else encoding.dumps_chunk(payload),
            payload_type="application/json",
            metadata=None if metadata is None else dict(metadata),
            metadata_type="application/json",
            tags=list(tags),
            streams_version=self.stream_version or "v2",
            status=protocol.to_db_status(status),
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
    ) -> Run:
        now = self._now_dt().replace(microsecond=0)
        internal_id = cuid()
        with self._lock:
            run = Run(
                internal_id=internal_id,
                friendly_id="run_" + cuid(),
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
            run.history[run.version] = encoding.serialize_run_row(run.row())
            run.created_seq = run.change_seq = next(self._changes)
            self._runs[run.friendly_id] = run
        self._notify()
        return run

    def set_status(self, run_id: str, status: str) -> None:
        """Move a run to a status (SDK or DB name), setting `startedAt`/`completedAt` as the engine does."""
        db_status = protocol.to_db_status(status)
        with self._lock:
            run = self._get(run_id)
            run.status = db_status
            now = self._now_dt()
            if db_status in {"DEQUEUED", "EXECUTING"} and run.started_at is None:
                run.started_at = now
            if db_status in protocol.FINAL_DB_STATUSES and run.completed_at is None:
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
            run.output = None if output is None else encoding.dumps_chunk(output)
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
            run.metadata = protocol.apply_metadata_operations(run.metadata or {}, operations)
            run.metadata_type = "application/json"
            self._touch(run)
            result = dict(run.metadata)
        self._notify()
        return result

    def _ensure_stream(self, run: Run, key: str) -> Stream:
        stream = run.streams.get(key)
        if stream is None:
            stream = run.streams[key] = Stream()
        if key not in run.realtime_streams:
            run.realtime_streams.append(key)
            self._touch(run)
        return stream

    def _append(self, run: Run, key: str, chunk: Any) -> None:
        stream = self._ensure_stream(run, key)
        ms = int(self._now() * 1000)
        if ms <= stream.last_ms:
            ms = stream.last_ms
            stream.last_n += 1
        else:
            stream.last_n = 0
        stream.last_ms = ms
        stream.chunks.append(
            Chunk(
                seq=len(stream.chunks),
                redis_id=f"{ms}-{stream.last_n}",
                record_id=random_id(7, string.ascii_letters + string.digits + "_-"),
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
            if run.status in protocol.FINAL_DB_STATUSES:
                return False
            task = run.executor_task
            self.set_status(run_id, "CANCELED")
        if task is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(task.cancel)
        return True

    def run(self, run_id: str) -> RunView:
        with self._lock:
            return self._get(run_id).view()

    def run_ids(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    def stream_chunks(self, run_id: str, key: str) -> list[Any]:
        with self._lock:
            stream = self._get(run_id).streams.get(key)
            return [] if stream is None else [json.loads(json.dumps(c.data)) for c in stream.chunks]

    def live_readers(self, run_id: str) -> tuple[int, int]:
        """Right now: the run's held ``live=true`` polls, and its connected stream readers."""
        with self._lock:
            run = self._get(run_id)
            return len(run.parked_polls), sum(s.readers for s in run.streams.values())

    # -- waiting ---------------------------------------------------------------------------

    def _wait(self, predicate: Callable[[], bool], within: float, what: str) -> None:
        wait_until(predicate, timeout=within, message=f"FakeTrigger: {what}", wake=self._cond)

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

    def wait_for_tag_poll(self, tag: str, within: float = 10.0, *, count: int = 1) -> None:
        """Block until `count` live polls of the tag feed asking for `tag` are held, each having
        seen every change so far (the next change is delivered on its own)."""

        def held() -> bool:
            latest = max((r.change_seq for r in self._runs.values()), default=0)
            return sum(tag in tags and seen >= latest for tags, seen in self._tag_polls) >= count

        self._wait(held, within, f"{count} live poll(s) of the feed of tag {tag}")

    def tag_polls(self, tag: str) -> int:
        """How many live polls of the tag feed asking for `tag` are held right now."""
        with self._lock:
            return sum(tag in tags for tags, _ in self._tag_polls)

    def wait_for_stream_reader(self, run_id: str, key: str, within: float = 10.0) -> None:
        """Block until an SSE reader of the run's stream `key` is connected."""

        def connected() -> bool:
            stream = self._get(run_id).streams.get(key)
            return stream is not None and stream.readers > 0

        self._wait(connected, within, f"a reader of {run_id}/{key}")

    def wait_for_status(self, run_id: str, status: str, within: float = 10.0) -> None:
        """Block until the run reaches `status` (an SDK or a database status name)."""
        db_status = protocol.to_db_status(status)
        self._wait(lambda: self._get(run_id).status == db_status, within, f"{run_id} {status}")

    async def await_status(self, run_id: str, status: str, within: float = 10.0) -> None:
        await asyncio.to_thread(self.wait_for_status, run_id, status, within)

    async def await_runs(self, count: int = 1, within: float = 10.0) -> list[str]:
        return await asyncio.to_thread(self.wait_for_runs, count, within)

    async def await_live_poll(self, run_id: str, within: float = 10.0, *, count: int = 1) -> None:
        await asyncio.to_thread(lambda: self.wait_for_live_poll(run_id, within, count=count))

    async def await_tag_poll(self, tag: str, within: float = 10.0, *, count: int = 1) -> None:
        await asyncio.to_thread(lambda: self.wait_for_tag_poll(tag, within, count=count))

    async def await_stream_reader(self, run_id: str, key: str, within: float = 10.0) -> None:
        await asyncio.to_thread(self.wait_for_stream_reader, run_id, key, within)

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
                if self.run(run_id).db_status not in protocol.FINAL_DB_STATUSES:
                    self.fail_run(run_id, str(exc), status="CRASHED", name=type(exc).__name__)
