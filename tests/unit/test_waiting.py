"""The one way tests and benchmarks wait for a condition (tests/support/waiting.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.support.waiting import WaitTimeout, await_until, wait_until


def test_returns_the_first_truthy_value_of_the_condition() -> None:
    answers = iter([None, 0, "", "ready"])
    assert wait_until(lambda: next(answers), timeout=5, interval=0, message="ready") == "ready"


def test_a_timeout_says_what_was_awaited_and_what_there_was() -> None:
    with pytest.raises(WaitTimeout) as failure:
        wait_until(lambda: False, timeout=0.05, message="the moon", found=lambda: {"sun": 1})
    assert str(failure.value) == "timed out after 0.05 s waiting for the moon; found {'sun': 1}"
    assert isinstance(failure.value, TimeoutError)


def test_a_notified_condition_is_checked_again_at_once() -> None:
    wake = threading.Condition()
    ready = threading.Event()

    def notify() -> None:
        with wake:
            ready.set()
            wake.notify_all()

    threading.Timer(0.05, notify).start()
    started = time.monotonic()
    assert wait_until(ready.is_set, timeout=60, interval=60, message="ready", wake=wake)
    assert time.monotonic() - started < 30, "woken by the notification, not by the interval"


async def test_the_async_twin_awaits_a_coroutine_condition() -> None:
    calls = 0

    async def third_time() -> int | None:
        nonlocal calls
        calls += 1
        return calls if calls == 3 else None

    assert await await_until(third_time, timeout=5, interval=0, message="three calls") == 3


async def test_the_async_twin_wakes_on_its_event_and_fails_naming_the_wait() -> None:
    changed = asyncio.Event()
    state = {"done": False}

    def finish() -> None:
        state["done"] = True
        changed.set()

    asyncio.get_running_loop().call_later(0.05, finish)
    started = time.monotonic()
    assert await await_until(
        lambda: state["done"], timeout=60, interval=60, message="done", wake=changed
    )
    assert time.monotonic() - started < 30, "woken by the event, not by the interval"
    with pytest.raises(WaitTimeout, match=r"waiting for nothing; found 0$"):
        await await_until(lambda: None, timeout=0.05, message="nothing", found=lambda: 0)
