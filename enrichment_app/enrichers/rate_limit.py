"""A per-key rate limiter for enrichers that call rate-limited APIs.

Callers get evenly spaced slots: with 5 requests per second, one slot every 0.2 s. A caller
reserves its slot and then sleeps until it, so concurrent cells queue up in arrival order. The
reservation happens without an ``await`` in between, so no lock is needed and the limiter works
from any event loop. The clock and the sleep are injectable for tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """Spaces out calls sharing a key to at most ``rate`` per second."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._next_slot: dict[Hashable, float] = {}

    async def wait(self, key: Hashable, rate_per_second: float) -> None:
        """Return once the caller may make its call under ``key``'s limit."""
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        now = self._clock()
        slot = max(now, self._next_slot.get(key, now))
        self._next_slot[key] = slot + 1.0 / rate_per_second
        if slot > now:
            await self._sleep(slot - now)
