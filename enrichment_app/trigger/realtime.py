"""The realtime half of ``TriggerClient``: a run's live feed and its realtime streams.

``subscribe_to_run`` long-polls the run's shape (ElectricSQL's protocol) and ``read_stream``
reads a stream over SSE; both retry the way the SDK does, or give up after an outage that
lasted ``give_up_after`` seconds. ``TriggerClient`` mixes this in; it holds the connection.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import httpx_sse

from enrichment_app.trigger import retries
from enrichment_app.trigger.errors import (
    ProtocolError,
    RealtimeUnavailableError,
    TriggerApiError,
    error_for,
)
from enrichment_app.trigger.runs import RealtimeRun, run_from_row
from enrichment_app.trigger.shapes import ShapeStream
from enrichment_app.trigger.streams import StreamDecoder, StreamPart, StreamReadError

logger = logging.getLogger(__name__)

SDK_VERSION = "4.8.3"
API_VERSION = "2025-07-16"
ELECTRIC_VERSION = "1.0.0-beta.1"
# The server holds a live poll for ~20 s (±15 %); the read timeout must comfortably exceed it.
LIVE_POLL_READ_TIMEOUT = 60.0
# Stream statuses the SDK never retries (401/403 are terminal too without a token refresher).
TERMINAL_STREAM_STATUSES = frozenset({400, 401, 403, 404, 409, 410, 422})
EXPIRED_HANDLES_KEPT = 250
"""Expired shape handles remembered, most recently used first (Electric's ExpiredShapesCache)."""

Sleep = Callable[[float], Awaitable[None]]


class _RetryableStatus(Exception):
    """A stream or shape response the SDK answers by reconnecting (429, 5xx…)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _Outage:
    """A streak of retryable realtime failures, and whether it has lasted too long to go on."""

    def __init__(self, what: str, give_up_after: float | None, clock: Callable[[], float]) -> None:
        self._what = what
        self._give_up_after = give_up_after
        self._clock = clock
        self._since: float | None = None
        self._count = 0

    def failed(self, exc: Exception, delay: float) -> None:
        """Count a failure; raise if retrying after ``delay`` would pass the limit."""
        now = self._clock()
        if self._since is None:
            self._since = now
        self._count += 1
        if self._give_up_after is None or now + delay - self._since <= self._give_up_after:
            return
        status = exc.status if isinstance(exc, _RetryableStatus) else None
        last = f"HTTP {status}" if status is not None else type(exc).__name__
        raise RealtimeUnavailableError(
            f"{self._what} failed {self._count} times in a row over "
            f"{now - self._since:.0f} s (last: {last})",
            status=status,
        ) from exc

    def ended(self) -> None:
        self._since = None
        self._count = 0


class RealtimeApi:
    """The headers every call sends, and realtime runs and streams, over the connection
    (``_http``, timeouts, clock) that ``TriggerClient`` sets up."""

    base_url: str
    _secret_key: str
    _http: httpx.AsyncClient
    _timeout: float
    _realtime_timeout: float
    _sleep: Sleep
    _clock: Callable[[], float]
    _random: Callable[[], float]
    _expired_handles: OrderedDict[str, str]
    """Electric keeps the handle a 409 expired, per shape, and sends it when the shape is
    subscribed again; like Electric, only the ``EXPIRED_HANDLES_KEPT`` most recently used."""

    def _expired_handle(self, shape_key: str) -> str | None:
        handle = self._expired_handles.get(shape_key)
        if handle is not None:
            self._expired_handles.move_to_end(shape_key)
        return handle

    def _remember_expired(self, shape_key: str, handle: str) -> None:
        self._expired_handles[shape_key] = handle
        self._expired_handles.move_to_end(shape_key)
        while len(self._expired_handles) > EXPIRED_HANDLES_KEPT:
            self._expired_handles.popitem(last=False)

    def _api_headers(self, access_token: str | None = None) -> dict[str, str]:
        """``ApiClient.#getHeaders`` for a plain backend process."""
        return {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {access_token or self._secret_key}",
            "trigger-version": SDK_VERSION,
            "x-trigger-source": "sdk",
            "x-trigger-api-version": API_VERSION,
            "x-trigger-realtime-streams-version": "v2",
        }

    def _realtime_headers(self, access_token: str | None = None) -> dict[str, str]:
        """``#getRealtimeHeaders`` plus what ``zodShapeStream`` adds."""
        return {
            "Authorization": f"Bearer {access_token or self._secret_key}",
            "trigger-version": SDK_VERSION,
            "x-trigger-electric-version": ELECTRIC_VERSION,
            "x-trigger-api-version": API_VERSION,
        }

    async def subscribe_to_run(
        self,
        run_id: str,
        *,
        access_token: str | None = None,
        stop_on_completion: bool = True,
        skip_columns: Sequence[str] | None = None,
        give_up_after: float | None = None,
    ) -> AsyncIterator[RealtimeRun]:
        """``runs.subscribeToRun``: every new state of the run, over the shape long-poll protocol.

        429, 5xx and network errors are retried with Electric's capped backoff, forever as the
        SDK does, or until they have lasted ``give_up_after`` seconds without a success
        (``RealtimeUnavailableError``); any other 4xx raises at once. With
        ``stop_on_completion`` the iteration ends after the state that has ``finished_at`` set
        or a final status.
        """
        path = f"/realtime/v1/runs/{quote(run_id, safe='')}"
        extra = {"skipColumns": ",".join(skip_columns)} if skip_columns else {}
        batches = self._shape_batches(path, extra, f"run {run_id}", access_token, give_up_after)
        async with contextlib.aclosing(batches):
            async for runs in batches:
                for run in runs:
                    yield run
                    if stop_on_completion and (run.finished_at is not None or run.is_final):
                        return

    async def subscribe_to_runs_with_tag(
        self,
        tag_or_tags: str | Sequence[str],
        *,
        access_token: str | None = None,
        created_at: str | None = "1d",
        skip_columns: Sequence[str] = (),
        give_up_after: float | None = None,
    ) -> AsyncIterator[RealtimeRun]:
        """``runs.subscribeToRunsWithTag``: each run that has every one of the tags, every time
        it changes, over the shape protocol. It never ends by itself.

        ``GET /realtime/v1/runs?tags=a,b&createdAt=1d`` as ``ApiClient.subscribeToRunsWithTag``
        asks for it (``createdAt`` bounds how old a run may be, "24h" when absent and capped by
        the server; ``None`` leaves it out). Runs that already exist come first, then every
        change. A public token needs ``read:tags:<tag>`` (or ``read:runs``). Failures are
        handled as in :meth:`subscribe_to_run`.
        """
        tags = [tag_or_tags] if isinstance(tag_or_tags, str) else list(tag_or_tags)
        if not tags or not all(isinstance(tag, str) and tag for tag in tags):
            raise ValueError("subscribe_to_runs_with_tag needs one or more non-empty tags")
        extra = {"tags": ",".join(tags)}
        if created_at:
            extra["createdAt"] = created_at
        if skip_columns:
            extra["skipColumns"] = ",".join(skip_columns)
        batches = self._shape_batches(
            "/realtime/v1/runs",
            extra,
            f"runs tagged {', '.join(tags)}",
            access_token,
            give_up_after,
        )
        async with contextlib.aclosing(batches):
            async for runs in batches:
                for run in runs:
                    yield run

    async def _shape_batches(
        self,
        path: str,
        extra: dict[str, str],
        subject: str,
        access_token: str | None,
        give_up_after: float | None,
    ) -> AsyncGenerator[list[RealtimeRun], None]:
        """The runs each response of a run shape hands out, following Electric's protocol;
        ``subject`` names the shape in messages ("run run_abc")."""
        shape_key = path + "?" + "&".join(f"{k}={v}" for k, v in sorted(extra.items()))
        shape = ShapeStream(expired_handle=self._expired_handle(shape_key))
        headers = self._realtime_headers(access_token)
        timeout = httpx.Timeout(self._timeout, read=self._realtime_timeout)
        failures = 0
        outage = _Outage(f"The live feed of {subject}", give_up_after, self._clock)
        while True:
            try:
                response = await self._http.get(
                    self.base_url + path + "?" + urlencode(shape.request_params(extra)),
                    headers=headers,
                    timeout=timeout,
                )
                if response.status_code == 409:
                    shape.must_refetch(response.headers.get("electric-handle"))
                    if shape.expired_handle:
                        self._remember_expired(shape_key, shape.expired_handle)
                    logger.info("The live feed of %s must be refetched", subject)
                    failures = 0
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    raise _RetryableStatus(response.status_code)
                if not response.is_success:
                    raise error_for(response)
                runs = [
                    run_from_row(row)
                    for row in shape.accept_response(response.headers, response.text)
                ]
            except (httpx.TransportError, _RetryableStatus) as exc:
                failures += 1
                delay = retries.shape_retry_delay(failures)
                outage.failed(exc, delay)
                logger.warning(
                    "The live feed of %s: request failed (%s); retry %d in %.2fs",
                    subject,
                    exc,
                    failures,
                    delay,
                )
                await self._sleep(delay)
                continue
            except ProtocolError as exc:
                raise TriggerApiError(
                    f"Invalid realtime response for {subject}: {exc.message}",
                    status=response.status_code,
                ) from exc
            failures = 0
            outage.ended()
            if runs:
                yield runs

    # -- realtime streams ------------------------------------------------------------------

    async def read_stream(
        self,
        run_id: str,
        stream_key: str,
        *,
        access_token: str | None = None,
        last_event_id: str | None = None,
        timeout_seconds: int = 60,
        give_up_after: float | None = None,
    ) -> AsyncIterator[Any]:
        """``streams.read``: the chunks of a run's realtime stream, v1 or v2, as parsed JSON.

        A dropped connection, 429, 5xx or other status outside the terminal ones reconnects
        with ``Last-Event-ID`` (nothing lost, nothing repeated), forever as the SDK does, or
        until failures have lasted ``give_up_after`` seconds without a chunk or a clean end
        (``RealtimeUnavailableError``); a clean end of the body ends the iteration (the server
        closes after ``timeout_seconds`` of silence); 400/401/403/404/409/410/422 raise.
        """
        parts = self.read_stream_parts(
            run_id,
            stream_key,
            access_token=access_token,
            last_event_id=last_event_id,
            timeout_seconds=timeout_seconds,
            give_up_after=give_up_after,
        )
        async with contextlib.aclosing(parts):
            async for part in parts:
                yield part.chunk

    async def read_stream_parts(
        self,
        run_id: str,
        stream_key: str,
        *,
        access_token: str | None = None,
        last_event_id: str | None = None,
        timeout_seconds: int = 60,
        give_up_after: float | None = None,
    ) -> AsyncGenerator[StreamPart, None]:
        """:meth:`read_stream`, each chunk with its position (``StreamPart.id``): pass the last
        one as ``last_event_id`` to read a stream again from after it."""
        url = f"{self.base_url}/realtime/v1/streams/{quote(run_id, safe='')}/{quote(stream_key, safe='')}"
        decoder = StreamDecoder(last_event_id)
        timeout = httpx.Timeout(
            self._timeout, read=max(self._realtime_timeout, timeout_seconds + 30)
        )
        retry_count = 0
        outage = _Outage(f"Stream {stream_key} of run {run_id}", give_up_after, self._clock)
        while True:
            headers = self._api_headers(access_token)
            headers["Accept"] = "text/event-stream"
            if decoder.last_event_id:
                headers["Last-Event-ID"] = decoder.last_event_id
            if timeout_seconds:
                headers["Timeout-Seconds"] = str(timeout_seconds)
            try:
                async with httpx_sse.aconnect_sse(
                    self._http, "GET", url, headers=headers, timeout=timeout
                ) as source:
                    response = source.response
                    if not response.is_success:
                        await response.aread()
                        if response.status_code in TERMINAL_STREAM_STATUSES:
                            raise error_for(response, "Could not subscribe to stream")
                        raise _RetryableStatus(response.status_code)
                    version = response.headers.get("x-stream-version", "v1")
                    async for event in source.aiter_sse():
                        parts = decoder.decode(version, event.event, event.data, event.id or None)
                        for part in parts:
                            retry_count = 0
                            outage.ended()
                            yield part
                    return
            except httpx_sse.SSEError as exc:
                raise TriggerApiError(f"Stream {stream_key} of run {run_id}: {exc}") from exc
            except (httpx.TransportError, StreamReadError, _RetryableStatus) as exc:
                retry_count += 1
                delay = retries.stream_retry_delay(retry_count, random=self._random())
                outage.failed(exc, delay)
                logger.warning(
                    "Stream %s of run %s interrupted (%s); reconnect %d in %.2fs",
                    stream_key,
                    run_id,
                    exc,
                    retry_count,
                    delay,
                )
                await self._sleep(delay)
