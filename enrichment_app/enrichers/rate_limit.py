"""A per-key rate limiter for enrichers that call rate-limited APIs.

Callers get evenly spaced slots: with 5 requests per second, one slot every 0.2 s. A caller
reserves its slot and then sleeps until it, so concurrent cells queue up in arrival order. The
reservation happens without an ``await`` in between, so no lock is needed and the limiter works
from any event loop. The clock and the sleep are injectable for tests.

A key whose next slot is in the past makes no one wait, so it is forgotten: the limiter sweeps
such keys at most once a second, and whenever it holds twice as many as after the last sweep.
It lives as long as the process, and its callers' keys come and go with the columns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

SWEEP_EVERY_SECONDS = 1.0
SWEEP_AT_LEAST = 64
"""Below this many keys the size alone never triggers a sweep."""


class RateLimiter:
    """Spaces out calls sharing a key to at most ``rate`` per second."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._next_slot: dict[Hashable, float] = {}
        self._sweep_at = float("-inf")
        self._sweep_size = SWEEP_AT_LEAST

    async def wait(self, key: Hashable, rate_per_second: float) -> None:
        """Return once the caller may make its call under ``key``'s limit."""
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        now = self._clock()
        if now >= self._sweep_at or len(self._next_slot) > self._sweep_size:
            self._sweep(now)
        slot = max(now, self._next_slot.get(key, now))
        self._next_slot[key] = slot + 1.0 / rate_per_second
        if slot > now:
            await self._sleep(slot - now)

    def _sweep(self, now: float) -> None:
        """Forget the keys whose next slot has passed."""
        self._next_slot = {k: slot for k, slot in self._next_slot.items() if slot > now}
        self._sweep_at = now + SWEEP_EVERY_SECONDS
        self._sweep_size = max(SWEEP_AT_LEAST, 2 * len(self._next_slot))
