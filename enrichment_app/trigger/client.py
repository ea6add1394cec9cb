"""``TriggerClient``: the I/O around the pure protocol modules, wire-compatible with SDK 4.8.3.

The decoding, token building and retry schedules live in sibling modules; this module only
sends requests, waits and loops. Time and randomness are injected (``sleep``, ``clock``,
``random``) so tests run the retry schedules without waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random as random_module
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode

import httpx
import httpx_sse

from enrichment_app.errors import ConfigError
from enrichment_app.trigger import retries, tokens
from enrichment_app.trigger.errors import (
    ApiConnectionError,
    ProtocolError,
    RealtimeUnavailableError,
    TriggerApiError,
    error_from_response,
)
from enrichment_app.trigger.runs import RealtimeRun, run_from_api, run_from_row
from enrichment_app.trigger.shapes import ShapeStream
from enrichment_app.trigger.streams import StreamDecoder, StreamReadError
from enrichment_app.trigger.tasks import IdempotencyKey, build_trigger_body, task_path

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.trigger.dev"
SDK_VERSION = "4.8.3"
API_VERSION = "2025-07-16"
ELECTRIC_VERSION = "1.0.0-beta.1"
# The server holds a live poll for ~20 s (±15 %); the read timeout must comfortably exceed it.
LIVE_POLL_READ_TIMEOUT = 60.0
# Stream statuses the SDK never retries (401/403 are terminal too without a token refresher).
TERMINAL_STREAM_STATUSES = frozenset({400, 401, 403, 404, 409, 410, 422})

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RunHandle:
    """What ``trigger`` returns. The token reads this run only and is kept out of the repr."""

    id: str
    is_cached: bool
    public_access_token: str = field(repr=False)


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


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_for(response: httpx.Response, default_text: str | None = None) -> TriggerApiError:
    body = _json_or_none(response)
    text = None if body is not None else (response.text or default_text)
    return error_from_response(response.status_code, body, text, response.headers)


class TriggerClient:
    """An async client for the Trigger.dev API: trigger, tokens, runs and realtime.

    Pass ``http`` to share an ``httpx.AsyncClient`` (it is left open); otherwise the client
    makes its own and closes it in :meth:`aclose` / ``async with``. ``timeout`` bounds each API
    call (then it is retried); ``realtime_timeout`` is how long a live poll may go unanswered
    before the client gives up on it and polls again.
    """

    def __init__(
        self,
        *,
        secret_key: str,
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        realtime_timeout: float = LIVE_POLL_READ_TIMEOUT,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        if not secret_key:
            raise ConfigError("A Trigger.dev secret key is required")
        self._secret_key = secret_key
        self.base_url = base_url.rstrip("/")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._timeout = timeout
        self._realtime_timeout = realtime_timeout
        self._sleep = sleep
        self._clock = clock
        self._random = random
        self._claims: dict[str, Any] | None = None
        self._claims_lock = asyncio.Lock()
        # Electric keeps expired shape handles per shape URL and sends them after a 409.
        self._expired_handles: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"TriggerClient(base_url={self.base_url!r}, secret_key='***')"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    # -- headers ---------------------------------------------------------------------------

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

    # -- REST with the SDK's retries -------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        access_token: str | None = None,
        body: Any = None,
    ) -> tuple[Any, httpx.Response]:
        """Send one API call with ``zodfetch``'s retries; return the JSON body and the response."""
        headers = self._api_headers(access_token)
        # One request idempotency key for the call, reused by every retry.
        headers["x-trigger-request-idempotency-key"] = str(uuid.uuid4())
        content = (
            json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            if body is not None
            else None
        )
        url = self.base_url + path
        attempt = 1
        while True:
            try:
                response = await self._http.request(
                    method, url, headers=headers, content=content, timeout=self._timeout
                )
            except httpx.TransportError as exc:
                delay = retries.next_retry_delay(attempt)
                if delay is None:
                    raise ApiConnectionError(f"Connection error: {exc!r}") from exc
                logger.warning(
                    "Trigger.dev %s %s failed (%s); retry %d in %.2fs",
                    method,
                    path,
                    type(exc).__name__,
                    attempt,
                    delay,
                )
                await self._sleep(delay)
                attempt += 1
                continue
            if response.is_success:
                data = _json_or_none(response)
                if data is None:
                    raise TriggerApiError(
                        "Trigger.dev answered with a body that is not JSON",
                        status=response.status_code,
                        headers=response.headers,
                    )
                return data, response
            delay = retries.response_retry_delay(
                response.status_code,
                response.headers,
                attempt,
                now_ms=self._clock() * 1000,
                random=self._random(),
            )
            if delay is None:
                raise _error_for(response)
            logger.warning(
                "Trigger.dev %s %s answered %d; retry %d in %.2fs",
                method,
                path,
                response.status_code,
                attempt,
                delay,
            )
            await self._sleep(delay)
            attempt += 1

    # -- triggering and tokens -------------------------------------------------------------

    async def trigger(
        self,
        task_id: str,
        payload: Any,
        *,
        idempotency_key: IdempotencyKey | None = None,
        tags: str | Sequence[str] | None = None,
        ttl: str | int | None = None,
        queue: str | None = None,
        concurrency_key: str | None = None,
        max_attempts: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        delay: str | datetime | None = None,
        idempotency_key_ttl: str | None = None,
        max_duration: int | None = None,
        machine: str | None = None,
    ) -> RunHandle:
        """``tasks.trigger``: start a run and return its handle with a read token for it."""
        body = build_trigger_body(
            payload,
            idempotency_key=idempotency_key,
            idempotency_key_ttl=idempotency_key_ttl,
            tags=tags,
            ttl=ttl,
            queue=queue,
            concurrency_key=concurrency_key,
            max_attempts=max_attempts,
            metadata=metadata,
            delay=delay,
            max_duration=max_duration,
            machine=machine,
        )
        data, response = await self._request("POST", task_path(task_id), body=body)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise TriggerApiError(
                "Trigger.dev answered a trigger without a run id", status=response.status_code
            )
        run_id: str = data["id"]
        token = response.headers.get("x-trigger-jwt")
        if token is None:
            token = self._self_signed_run_token(
                run_id, response.headers.get("x-trigger-jwt-claims")
            )
        logger.info("Triggered %s as run %s (cached: %s)", task_id, run_id, data.get("isCached"))
        return RunHandle(id=run_id, is_cached=bool(data.get("isCached")), public_access_token=token)

    def _self_signed_run_token(self, run_id: str, claims_header: str | None) -> str:
        if not tokens.can_self_sign(self._secret_key):
            raise ConfigError(
                "This credential cannot self-sign public tokens, and the server did not return one. "
                "Use the root API key."
            )
        claims = tokens.claims_from_header(claims_header)
        return tokens.create_run_token(self._secret_key, claims, run_id, now=self._clock())

    async def _jwt_claims(self) -> dict[str, Any]:
        """``POST /api/v1/auth/jwt/claims``, fetched once per client (the SDK fetches every time)."""
        async with self._claims_lock:
            if self._claims is None:
                data, _ = await self._request("POST", "/api/v1/auth/jwt/claims")
                if not isinstance(data, dict):
                    raise TriggerApiError("Trigger.dev answered claims that are not an object")
                self._claims = data
            return dict(self._claims)

    async def create_public_token(
        self,
        *,
        scopes: tokens.Scopes | None = None,
        expiration_time: tokens.ExpirationTime = tokens.DEFAULT_PUBLIC_TOKEN_EXPIRATION,
        realtime: Mapping[str, Any] | None = None,
    ) -> str:
        """``auth.createPublicToken``: signed here with a root key, minted by the server otherwise.

        ``expiration_time`` is a duration ("15m", "1h", "1d"), an absolute Unix time in seconds,
        or a datetime.
        """
        if tokens.can_self_sign(self._secret_key):
            claims = await self._jwt_claims()
            return tokens.create_public_token(
                self._secret_key,
                claims,
                scopes=scopes,
                expiration_time=expiration_time,
                realtime=realtime,
                now=self._clock(),
            )
        flat = tokens.flatten_scopes(scopes) if scopes is not None else []
        if not flat:
            raise ConfigError("create_public_token needs at least one scope with an additional key")
        body: dict[str, Any] = {
            "scopes": flat,
            "expirationTime": (
                int(expiration_time.timestamp())
                if isinstance(expiration_time, datetime)
                else expiration_time
            ),
        }
        if realtime is not None:
            body["realtime"] = dict(realtime)
        data, _ = await self._request("POST", "/api/v1/auth/public-tokens", body=body)
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str):
            raise TriggerApiError("Trigger.dev answered public-tokens without a token")
        return token

    # -- runs ------------------------------------------------------------------------------

    async def retrieve_run(self, run_id: str, *, access_token: str | None = None) -> RealtimeRun:
        """``runs.retrieve``: ``GET /api/v3/runs/{id}``."""
        data, _ = await self._request(
            "GET", f"/api/v3/runs/{quote(run_id, safe='')}", access_token=access_token
        )
        return run_from_api(data)

    async def cancel_run(self, run_id: str, *, access_token: str | None = None) -> str:
        """``runs.cancel``: ``POST /api/v2/runs/{id}/cancel``; returns the run id."""
        data, _ = await self._request(
            "POST", f"/api/v2/runs/{quote(run_id, safe='')}/cancel", access_token=access_token
        )
        return str(data.get("id", run_id)) if isinstance(data, dict) else run_id

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
        shape_key = path + "?" + "&".join(f"{k}={v}" for k, v in sorted(extra.items()))
        shape = ShapeStream(expired_handle=self._expired_handles.get(shape_key))
        headers = self._realtime_headers(access_token)
        timeout = httpx.Timeout(self._timeout, read=self._realtime_timeout)
        failures = 0
        outage = _Outage(f"The live feed of run {run_id}", give_up_after, self._clock)
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
                        self._expired_handles[shape_key] = shape.expired_handle
                    logger.info("Run %s shape must be refetched", run_id)
                    failures = 0
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    raise _RetryableStatus(response.status_code)
                if not response.is_success:
                    raise _error_for(response)
                runs = [
                    run_from_row(row)
                    for row in shape.accept_response(response.headers, response.text)
                ]
            except (httpx.TransportError, _RetryableStatus) as exc:
                failures += 1
                delay = retries.shape_retry_delay(failures)
                outage.failed(exc, delay)
                logger.warning(
                    "Run %s subscription request failed (%s); retry %d in %.2fs",
                    run_id,
                    exc,
                    failures,
                    delay,
                )
                await self._sleep(delay)
                continue
            except ProtocolError as exc:
                raise TriggerApiError(
                    f"Invalid realtime response for run {run_id}: {exc.message}",
                    status=response.status_code,
                ) from exc
            failures = 0
            outage.ended()
            for run in runs:
                yield run
                if stop_on_completion and (run.finished_at is not None or run.is_final):
                    return

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
                            raise _error_for(response, "Could not subscribe to stream")
                        raise _RetryableStatus(response.status_code)
                    version = response.headers.get("x-stream-version", "v1")
                    async for event in source.aiter_sse():
                        parts = decoder.decode(version, event.event, event.data, event.id or None)
                        for part in parts:
                            retry_count = 0
                            outage.ended()
                            yield part.chunk
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
