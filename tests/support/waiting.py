"""Waiting for a condition, for tests and benchmarks: one way, with a failure that says what.

``wait_until`` (blocking) and ``await_until`` (async) check ``condition`` at once, then every
``interval`` seconds, and sooner when ``wake`` signals a change, until it returns something
truthy, which they return. After ``timeout`` seconds they raise ``WaitTimeout``, naming what
was awaited (``message``) and, with ``found``, what there was instead. They are for conditions
that become true by themselves (a server starting, a job finishing, a page updating); a test
that wants a thing to happen at a known moment makes it happen instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.05
"""How often a condition is checked when nothing signals a change."""


class WaitTimeout(TimeoutError):
    """The condition did not hold in time; the message says what was awaited."""


def _failure(message: str, timeout: float, found: Callable[[], object] | None) -> WaitTimeout:
    text = f"timed out after {timeout:g} s waiting for {message}"
    if found is not None:
        text += f"; found {found()!r}"
    return WaitTimeout(text)


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float,
    message: str,
    interval: float = INTERVAL,
    found: Callable[[], object] | None = None,
    wake: threading.Condition | None = None,
) -> T:
    """Block until ``condition()`` is truthy and return it; ``WaitTimeout`` after ``timeout`` s.

    With ``wake`` (a ``threading.Condition`` notified on every change) the condition is checked
    while holding its lock, and each notification checks it again at once.
    """
    deadline = time.monotonic() + timeout
    with wake if wake is not None else contextlib.nullcontext():
        while not (value := condition()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _failure(message, timeout, found)
            if wake is not None:
                wake.wait(min(interval, remaining))
            else:
                time.sleep(min(interval, remaining))
    return value


async def await_until(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float,  # noqa: ASYNC109 (the blocking twin's signature; it bounds the whole wait)
    message: str,
    interval: float = INTERVAL,
    found: Callable[[], object] | None = None,
    wake: asyncio.Event | None = None,
) -> T:
    """Wait until ``condition()`` (a function or a coroutine function) is truthy; return it.

    With ``wake`` (an ``asyncio.Event`` set on every change) the condition is checked again as
    soon as the event is set; it is cleared before each check, so no change is missed.
    ``WaitTimeout`` after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if wake is not None:
            wake.clear()
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise _failure(message, timeout, found)
        if wake is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(interval, remaining))
        else:
            await asyncio.sleep(min(interval, remaining))
