"""The rate limiter that spaces out http_json calls, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from enrichment_app.enrichers.rate_limit import RateLimiter


class FakeClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))


async def test_concurrent_callers_get_evenly_spaced_slots() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    await asyncio.gather(*(limiter.wait("col", 4) for _ in range(4)))
    assert clock.sleeps == [0.25, 0.5, 0.75]


async def test_a_caller_after_a_quiet_spell_does_not_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    await limiter.wait("col", 2)
    clock.now += 10
    await limiter.wait("col", 2)
    await limiter.wait("col", 2)
    assert clock.sleeps == [0.5]


async def test_keys_are_limited_independently() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    await limiter.wait("a", 1)
    await limiter.wait("b", 1)
    await limiter.wait("a", 1)
    assert clock.sleeps == [1.0]


async def test_the_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        await RateLimiter().wait("a", 0)


async def test_slots_that_have_passed_are_not_kept() -> None:
    """One key per column config, for as long as the process runs: the limiter must forget
    the keys whose next slot is already in the past (they would not make anyone wait)."""
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    for i in range(1000):
        await limiter.wait(f"column-{i}", 10)
    clock.now += 1.0  # every slot handed out so far is in the past
    for i in range(1000, 1010):
        await limiter.wait(f"column-{i}", 10)
    assert clock.sleeps == []
    assert len(limiter._next_slot) <= 64, "keys of slots long past are still kept"
