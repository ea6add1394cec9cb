"""Retry schedules of the SDK, as pure functions of the attempt (delays in seconds).

- REST calls (``v3/apiClient/core.js`` with ``DEFAULT_ZOD_FETCH_OPTIONS``): 5 attempts,
  ``min(30, 1.0 * 1.6 ** (attempt - 1))`` → 1.0, 1.6, 2.56, 4.096 s.
- Shape long-polls (``@electric-sql/client`` ``BackoffDefaults``): 0.1 s, ×1.3, capped at 10 s, forever.
- Stream reads (``SSEStreamSubscription``): 0.1 s × 2 ** (n - 1), capped at 5 s, minus up to 50 % jitter.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_ATTEMPTS = 5
MIN_TIMEOUT = 1.0
MAX_TIMEOUT = 30.0
FACTOR = 1.6

SHAPE_INITIAL_DELAY = 0.1
SHAPE_MAX_DELAY = 10.0
SHAPE_MULTIPLIER = 1.3

STREAM_INITIAL_DELAY = 0.1
STREAM_MAX_DELAY = 5.0
STREAM_JITTER = 0.5


def next_retry_delay(attempt: int) -> float | None:
    """``calculateNextRetryDelay``: the wait before attempt ``attempt + 1``, or None when exhausted."""
    if attempt >= MAX_ATTEMPTS:
        return None
    return round(min(MAX_TIMEOUT, MIN_TIMEOUT * FACTOR ** (attempt - 1)) * 1000) / 1000


def response_retry_delay(
    status: int,
    headers: Mapping[str, str],
    attempt: int,
    *,
    now_ms: float,
    random: float,
) -> float | None:
    """``shouldRetry`` for a failed response: the wait before retrying, or None to give up.

    ``headers`` must be case-insensitive (an ``httpx.Headers``) or lower-cased; ``random`` is
    a number in [0, 1) for the rate-limit jitter.
    """
    should_retry = headers.get("x-should-retry")
    if should_retry == "true":
        return next_retry_delay(attempt)
    if should_retry == "false":
        return None
    if status in (408, 409):
        return next_retry_delay(attempt)
    if status == 429:
        if attempt >= MAX_ATTEMPTS:
            return None
        reset = headers.get("x-ratelimit-reset")
        if reset:
            try:
                reset_ms = int(reset.strip())
            except ValueError:
                reset_ms = None
            if reset_ms is not None:
                delay_ms = reset_ms - now_ms + int(random * 1000)
                if delay_ms > 0:
                    return delay_ms / 1000
        return next_retry_delay(attempt)
    if status >= 500:
        return next_retry_delay(attempt)
    return None


def shape_retry_delay(failures: int) -> float:
    """Electric's backoff before retry number ``failures`` (1-based) of one shape request."""
    return min(SHAPE_INITIAL_DELAY * SHAPE_MULTIPLIER ** (failures - 1), SHAPE_MAX_DELAY)


def stream_retry_delay(retry_count: int, *, random: float) -> float:
    """The stream reconnect delay for retry number ``retry_count`` (1-based), with jitter."""
    base = min(STREAM_INITIAL_DELAY * 2.0 ** (retry_count - 1), STREAM_MAX_DELAY)
    return base * (1 - STREAM_JITTER * random)
