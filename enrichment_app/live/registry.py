"""What ``RunHub`` and ``TableHub`` share: one feed per key in the process, shared by every
watcher of that key, and closed with its last watcher."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any, Generic, Protocol, TypeVar


class SharedFeed(Protocol):
    watchers: set[Any]
    task: asyncio.Task[None] | None


K = TypeVar("K", bound=Hashable)
F = TypeVar("F", bound=SharedFeed)


class FeedRegistry(Generic[K, F]):
    """The running feeds, by key. Subclasses build and start a feed (``_start``)."""

    def __init__(self) -> None:
        self._feeds: dict[K, F] = {}

    @property
    def upstream_count(self) -> int:
        """How many feeds this process holds right now (introspection)."""
        return len(self._feeds)

    def _start(self, key: K) -> F:
        """A new feed for ``key``, its task started."""
        raise NotImplementedError

    def _feed(self, key: K) -> F:
        """The running feed of ``key``, or a new one."""
        feed = self._feeds.get(key)
        if feed is None or feed.task is None or feed.task.done():
            feed = self._feeds[key] = self._start(key)
        return feed

    def _forget(self, key: K, feed: F) -> None:
        if self._feeds.get(key) is feed:
            del self._feeds[key]

    async def _leave(self, key: K, feed: F, watcher: object) -> None:
        """The watcher leaves; the feed closes if it was the last one."""
        feed.watchers.discard(watcher)
        if not feed.watchers and feed.task is not None and not feed.task.done():
            self._forget(key, feed)  # a watcher arriving while this one closes gets a new feed
            feed.task.cancel()
            # Wait for the feed's task to end without taking its CancelledError for ours: a
            # watcher cancelled meanwhile (its tab closed) must end cancelled.
            await asyncio.wait([feed.task])

    async def aclose(self) -> None:
        feeds = list(self._feeds.values())
        for feed in feeds:
            if feed.task is not None:
                feed.task.cancel()
        await asyncio.gather(*(f.task for f in feeds if f.task is not None), return_exceptions=True)
        self._feeds.clear()
