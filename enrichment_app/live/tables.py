"""One table-wide live view per table per process, shared by every tab showing the table.

A ``TableFeed`` follows one table from two sources: the table change bus (every write that
changes the table, in any backend process: cells edited, rows or columns added, jobs created
or ended, the local runner's results), and in Trigger.dev mode the table's runs over
Realtime's tag feed (``subscribe_to_runs_with_tag("table:<id>")``, with a token that reads that
tag alone): a run started elsewhere, a run's progress, a run that ended (whose cells the
Trigger.dev worker wrote without the bus). Both become ``TableChange`` hints; the page reads
the database, which stays the source of truth.

Each tab's ``TableWatcher`` holds what changed since its tab last looked, merged, and whether
the feed is live: ``FeedState(live=False, reason)`` while the bus or the tag feed is down, so
the page polls and says why. The tag feed is tried again with a growing wait (1 s, doubling,
at most 30 s) and the bus reconnects by itself; once both answer, the feed is live again.
The feed closes with its last watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from enrichment_app.bus import CELLS, JOB, BusState, Subscription, TableChange, TableChangeBus
from enrichment_app.live.registry import FeedRegistry
from enrichment_app.trigger import AuthenticationError, TriggerApiError, TriggerClient

logger = logging.getLogger(__name__)

TOKEN_LIFETIME_SECONDS = 3600.0
TOKEN_REFRESH_MARGIN_SECONDS = 300.0
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
TAG_FEED_CREATED_AT = "1d"
TAG_FEED_SKIP_COLUMNS = ("payload", "output")
"""The page needs a run's status and progress; its payload and output are not read."""

TagTokenSource = Callable[[int], Awaitable[str]]
"""Mints a public access token that can read the runs tagged ``table:<id>``."""


def table_tag(table_id: int) -> str:
    return f"table:{table_id}"


def retry_delay(attempt: int) -> float:
    """Seconds before trying a failed feed again, for attempt number ``attempt`` (1-based)."""
    return min(RETRY_FIRST_SECONDS * 2.0 ** (attempt - 1), RETRY_MAX_SECONDS)


@dataclass(frozen=True, slots=True)
class FeedState:
    """Whether the table's changes are pushed to its tabs; else why not (they poll)."""

    live: bool
    reason: str = ""


LIVE = FeedState(True)


class TableWatcher:
    """One tab's view of a table feed: what changed since the tab last looked, and the state."""

    def __init__(self, state: FeedState) -> None:
        self.state = state
        self._change: TableChange | None = None
        self._ready = asyncio.Event()

    def _put(self, change: TableChange) -> None:
        self._change = change if self._change is None else self._change.merge(change)
        self._ready.set()

    def _put_state(self, state: FeedState) -> None:
        if state != self.state:
            self.state = state
            self._ready.set()

    async def next(self, within: float) -> TableChange | None:
        """What changed since the last call, merged; an empty change when only the feed's
        state changed; None when ``within`` seconds passed with no news."""
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(within):
                    await self._ready.wait()
            except TimeoutError:
                return None
        self._ready.clear()
        change, self._change = self._change, None
        return change if change is not None else TableChange(frozenset())


@dataclass
class TableFeed:
    table_id: int
    bus: TableChangeBus
    client: TriggerClient | None = None
    mint_token: TagTokenSource | None = None
    give_up_after: float | None = None
    watchers: set[TableWatcher] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    bus_state: FeedState = LIVE
    runs_state: FeedState = LIVE

    @property
    def state(self) -> FeedState:
        return self.bus_state if not self.bus_state.live else self.runs_state

    def publish(self, change: TableChange) -> None:
        for watcher in list(self.watchers):
            watcher._put(change)

    def _set(self, *, bus: FeedState | None = None, runs: FeedState | None = None) -> None:
        self.bus_state = bus or self.bus_state
        self.runs_state = runs or self.runs_state
        for watcher in list(self.watchers):
            watcher._put_state(self.state)

    async def follow(self) -> None:
        with self.bus.subscribe(self.table_id) as subscription:
            self._set(bus=_feed_state(subscription.state))
            async with asyncio.TaskGroup() as group:
                group.create_task(self._follow_bus(subscription))
                if self.client is not None and self.mint_token is not None:
                    group.create_task(self._follow_runs(self.client, self.mint_token))

    async def _follow_bus(self, subscription: Subscription) -> None:
        while True:
            news = await subscription.next()
            if isinstance(news, BusState):
                self._set(bus=_feed_state(news))
            else:
                self.publish(news)

    async def _follow_runs(self, client: TriggerClient, mint_token: TagTokenSource) -> None:
        """The table's runs over the tag feed; tried again with a growing wait when it fails."""
        attempt = 0
        token: str | None = None
        refresh_after = TOKEN_LIFETIME_SECONDS - TOKEN_REFRESH_MARGIN_SECONDS
        while True:
            try:
                token = token or await mint_token(self.table_id)
                async with asyncio.timeout(refresh_after):
                    async for run in client.subscribe_to_runs_with_tag(
                        table_tag(self.table_id),
                        access_token=token,
                        created_at=TAG_FEED_CREATED_AT,
                        skip_columns=TAG_FEED_SKIP_COLUMNS,
                        give_up_after=self.give_up_after,
                    ):
                        attempt = 0
                        if not self.runs_state.live:
                            logger.info("table %s: its runs' live feed is back", self.table_id)
                            self._set(runs=LIVE)
                        # A run that ended: its worker wrote the cells without the bus.
                        self.publish(_RUN_ENDED if run.is_final else _RUN)
            except TimeoutError:
                token = None  # a fresh token before this one expires
                continue
            except TriggerApiError as exc:
                attempt += 1
                if isinstance(exc, AuthenticationError):
                    token = None
                delay = retry_delay(attempt)
                reason = f"the live feed of the table's runs failed ({exc.message})"
                if self.runs_state.live:
                    logger.warning(
                        "table %s: %s; trying again in %g s", self.table_id, reason, delay
                    )
                self._set(runs=FeedState(False, reason))
                await asyncio.sleep(delay)


_RUN = TableChange.of(JOB)
_RUN_ENDED = TableChange(frozenset({JOB, CELLS}), None)


def _feed_state(state: BusState) -> FeedState:
    return LIVE if state.up else FeedState(False, state.reason)


class TableHub(FeedRegistry[int, TableFeed]):
    """The process's registry of table feeds."""

    def __init__(
        self,
        *,
        bus: TableChangeBus,
        client: TriggerClient | None = None,
        mint_token: TagTokenSource | None = None,
        give_up_after: float | None = None,
    ) -> None:
        super().__init__()
        self._bus = bus
        self._client = client
        self._mint_token = mint_token
        self._give_up_after = give_up_after

    def _start(self, key: int) -> TableFeed:
        feed = TableFeed(
            table_id=key,
            bus=self._bus,
            client=self._client,
            mint_token=self._mint_token,
            give_up_after=self._give_up_after,
        )
        feed.task = asyncio.create_task(self._run(feed), name=f"table-feed-{key}")
        return feed

    async def _run(self, feed: TableFeed) -> None:
        try:
            await feed.follow()
        except* Exception:
            logger.exception("table %s: its live feed crashed", feed.table_id)
            feed._set(bus=FeedState(False, "the table's live feed stopped unexpectedly"))
        finally:
            self._forget(feed.table_id, feed)

    @contextlib.asynccontextmanager
    async def watch(self, table_id: int) -> AsyncIterator[TableWatcher]:
        """Watch a table; the feed is shared, and closes with its last watcher."""
        feed = self._feed(table_id)
        watcher = TableWatcher(feed.state)
        feed.watchers.add(watcher)
        try:
            yield watcher
        finally:
            await self._leave(table_id, feed, watcher)
