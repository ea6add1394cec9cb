"""One upstream Realtime subscription per run per process, shared by every tab watching it.

A ``RunFeed`` follows one run: ``subscribe_to_run`` for status and progress, and the run's
``cells`` stream (SSE) for each finished cell. Both halves share one public access token that
can read that run alone, minted once, and again before it expires or after a 401. Either half
failing for good ends the feed (``FeedFailed``, with the reason) so the page can fall back to
polling: a token refused again and again (with a growing wait between tries), 403, 404,
repeated API errors, or retryable failures (5xx, 429, network) that last longer than
``give_up_after`` seconds. The feed closes when its last watcher leaves or the run is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from enrichment_app.live.events import (
    CellBatch,
    FeedFailed,
    RunEvent,
    RunSnapshot,
    cells_from_chunk,
    snapshot_from_run,
)
from enrichment_app.live.registry import FeedRegistry
from enrichment_app.trigger import (
    AuthenticationError,
    PermissionDeniedError,
    RealtimeRun,
    RealtimeUnavailableError,
    TriggerApiError,
    TriggerClient,
    TriggerNotFoundError,
)

logger = logging.getLogger(__name__)

TOKEN_LIFETIME_SECONDS = 3600.0
TOKEN_REFRESH_MARGIN_SECONDS = 300.0
MAX_AUTH_FAILURES = 3
MAX_API_FAILURES = 5
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
CELL_STREAM = "cells"
RECENT_BATCHES = 50

TokenSource = Callable[[str], Awaitable[str]]
"""Mints a public access token that can read the given run."""
FinalHook = Callable[[RealtimeRun], Awaitable[None]]
"""Called with a run once it is final, before the watchers hear of it (the runner settles it)."""


class _Unavailable(Exception):
    """Realtime cannot follow this run; the reason is shown to the user."""


class Watcher:
    """One tab's view of a feed: the latest snapshot first, then every event as it happens."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[RunEvent | None] = asyncio.Queue()
        self.closed = False

    def put(self, event: RunEvent | None) -> None:
        self._queue.put_nowait(event)

    async def next(self) -> RunEvent | None:
        """The next event; None once the feed has ended."""
        if self.closed and self._queue.empty():
            return None
        event = await self._queue.get()
        if event is None:
            self.closed = True
        return event


@dataclass
class RunFeed:
    run_id: str
    client: TriggerClient
    mint_token: TokenSource
    on_final: FinalHook | None = None
    give_up_after: float | None = None
    stream_timeout_seconds: int = 60
    watchers: set[Watcher] = field(default_factory=set)
    latest: RunSnapshot | None = None
    recent: deque[CellBatch] = field(default_factory=lambda: deque(maxlen=RECENT_BATCHES))
    """The last batches, for a watcher that arrives mid-run (its page read the cells before
    them from the database moments ago); older ones are not kept, so memory stays flat."""
    task: asyncio.Task[None] | None = None
    _token: str | None = None
    _token_age: float = 0.0
    _minting: asyncio.Lock = field(default_factory=asyncio.Lock)
    _final: asyncio.Event = field(default_factory=asyncio.Event)

    def publish(self, event: RunEvent | None) -> None:
        for watcher in list(self.watchers):
            watcher.put(event)

    async def token(self, *, replacing: str | None = None) -> str:
        """The feed's token, minted once for both halves of the feed (under a lock).

        ``replacing`` is a token the caller saw refused or about to expire: a new one is minted
        unless the other half already replaced it.
        """
        async with self._minting:
            now = asyncio.get_running_loop().time()
            stale = now - self._token_age > TOKEN_LIFETIME_SECONDS - TOKEN_REFRESH_MARGIN_SECONDS
            if self._token is None or stale or (replacing is not None and replacing == self._token):
                self._token = await self.mint_token(self.run_id)
                self._token_age = now
            return self._token

    async def follow(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                runs = group.create_task(self._follow_runs())
                cells = group.create_task(self._follow_cells())
                await runs
                cells.cancel()
        except* _Unavailable as group:
            reason = str(group.exceptions[0])
            logger.warning("run %s: realtime unavailable (%s)", self.run_id, reason)
            self.publish(FeedFailed(reason))
        except* Exception:
            logger.exception("run %s: realtime feed crashed", self.run_id)
            self.publish(FeedFailed("the realtime feed stopped unexpectedly"))
        finally:
            self.publish(None)

    async def _follow_runs(self) -> None:
        setbacks = _Setbacks("the run's live feed")
        while True:
            token = await self.token()
            refresh_after = TOKEN_LIFETIME_SECONDS - TOKEN_REFRESH_MARGIN_SECONDS
            try:
                async with asyncio.timeout(refresh_after):
                    async for run in self.client.subscribe_to_run(
                        self.run_id, access_token=token, give_up_after=self.give_up_after
                    ):
                        snapshot = snapshot_from_run(run)
                        self.latest = snapshot
                        setbacks.succeeded()
                        if snapshot.is_final:
                            self._final.set()
                            if self.on_final is not None:
                                await self.on_final(run)  # settle the job before watchers reread it
                            self.publish(snapshot)
                            return
                        self.publish(snapshot)
            except TimeoutError:
                await self.token(replacing=token)  # resubscribe before the token expires
                continue
            except TriggerApiError as exc:
                await asyncio.sleep(setbacks.delay_after(exc))
                if isinstance(exc, AuthenticationError):
                    await self.token(replacing=token)
                continue
            if self.latest is not None and self.latest.is_final:
                return

    async def _follow_cells(self) -> None:
        """Relay each chunk's cells, as one batch; the stream closes after silence, so reopen
        it, from after the last chunk seen (``Last-Event-ID``): nothing is relayed twice, and
        the feed keeps no record of the cells it relayed (only its recent batches)."""
        setbacks = _Setbacks("the run's cells stream")
        last_event_id: str | None = None  # a reopened stream resumes after it
        while not self._final.is_set():
            token = await self.token()
            try:
                async for part in self.client.read_stream_parts(
                    self.run_id,
                    CELL_STREAM,
                    access_token=token,
                    last_event_id=last_event_id,
                    timeout_seconds=self.stream_timeout_seconds,
                    give_up_after=self.give_up_after,
                ):
                    setbacks.succeeded()
                    last_event_id = part.id
                    cells = cells_from_chunk(part.chunk)
                    if cells:
                        batch = CellBatch(tuple(cells))
                        self.recent.append(batch)
                        self.publish(batch)
            except TriggerApiError as exc:
                await asyncio.sleep(setbacks.delay_after(exc))
                if isinstance(exc, AuthenticationError):
                    await self.token(replacing=token)


class _Setbacks:
    """The failures in a row of one half of a feed: how long to wait before trying again, or
    ``_Unavailable`` (the feed ends and the page says why) once trying again is pointless.

    A 401 is retried with a fresh token after a growing wait, at most ``MAX_AUTH_FAILURES``
    times; 403 and 404 end the feed at once; other API errors are retried with a growing wait,
    ``MAX_API_FAILURES`` times; a realtime outage the client already gave up on ends it.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.refused = 0
        self.failed = 0

    def succeeded(self) -> None:
        self.refused = self.failed = 0

    def delay_after(self, exc: TriggerApiError) -> float:
        if isinstance(exc, AuthenticationError):
            self.refused += 1
            if self.refused > MAX_AUTH_FAILURES:
                raise _Unavailable(
                    f"Trigger.dev keeps refusing the access token for {self.what}"
                ) from exc
            return backoff(self.refused)  # tokens are minted per second (iat): never at once
        if isinstance(exc, PermissionDeniedError | TriggerNotFoundError):
            raise _Unavailable(f"Trigger.dev refused {self.what} ({exc.message})") from exc
        if isinstance(exc, RealtimeUnavailableError):
            raise _Unavailable(exc.message) from exc
        self.failed += 1
        if self.failed >= MAX_API_FAILURES:
            raise _Unavailable(f"{self.what} keeps failing ({exc.message})") from exc
        return backoff(self.failed)


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): 0.5 s, doubling, up to 10 s."""
    return min(BACKOFF_FIRST_SECONDS * 2.0 ** (attempt - 1), BACKOFF_MAX_SECONDS)


class RunHub(FeedRegistry[str, RunFeed]):
    """The process's registry of run feeds."""

    def __init__(
        self,
        *,
        client: TriggerClient,
        mint_token: TokenSource,
        on_final: FinalHook | None = None,
        give_up_after: float | None = None,
        stream_timeout_seconds: int = 60,
    ) -> None:
        """``stream_timeout_seconds``: the silence after which the server ends a ``cells``
        stream (the feed reopens it)."""
        super().__init__()
        self._client = client
        self._mint_token = mint_token
        self._on_final = on_final
        self._give_up_after = give_up_after
        self._stream_timeout = stream_timeout_seconds

    def _start(self, key: str) -> RunFeed:
        feed = RunFeed(
            run_id=key,
            client=self._client,
            mint_token=self._mint_token,
            on_final=self._on_final,
            give_up_after=self._give_up_after,
            stream_timeout_seconds=self._stream_timeout,
        )
        feed.task = asyncio.create_task(feed.follow(), name=f"run-feed-{key}")
        feed.task.add_done_callback(lambda _t: self._forget(key, feed))
        return feed

    @contextlib.asynccontextmanager
    async def watch(self, run_id: str) -> AsyncIterator[Watcher]:
        """Watch a run; the upstream subscription is shared and closes with its last watcher."""
        feed = self._feed(run_id)
        watcher = Watcher()
        if feed.latest is not None:
            watcher.put(feed.latest)
        for batch in feed.recent:
            watcher.put(batch)
        feed.watchers.add(watcher)
        try:
            yield watcher
        finally:
            await self._leave(run_id, feed, watcher)
