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
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from enrichment_app.errors import ConfigError
from enrichment_app.trigger import retries, tokens
from enrichment_app.trigger.errors import (
    ApiConnectionError,
    TriggerApiError,
    error_for,
    json_or_none,
)
from enrichment_app.trigger.realtime import LIVE_POLL_READ_TIMEOUT, RealtimeApi, Sleep
from enrichment_app.trigger.runs import RealtimeRun, run_from_api
from enrichment_app.trigger.tasks import IdempotencyKey, build_trigger_body, task_path

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.trigger.dev"


@dataclass(frozen=True, slots=True)
class RunHandle:
    """What ``trigger`` returns. The token reads this run only and is kept out of the repr."""

    id: str
    is_cached: bool
    public_access_token: str = field(repr=False)


class TriggerClient(RealtimeApi):
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
        self._expired_handles: OrderedDict[str, str] = OrderedDict()

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
                data = json_or_none(response)
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
                raise error_for(response)
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
