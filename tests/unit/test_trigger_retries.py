"""The SDK's retry schedules."""

from __future__ import annotations

import httpx
import pytest

from enrichment_app.trigger import retries


def test_rest_schedule_is_1000_1600_2560_4096_ms_then_gives_up():
    assert [retries.next_retry_delay(n) for n in range(1, 6)] == [1.0, 1.6, 2.56, 4.096, None]


@pytest.mark.parametrize(
    ("status", "headers", "attempt", "expected"),
    [
        (500, {}, 1, 1.0),
        (503, {}, 4, 4.096),
        (500, {}, 5, None),
        (408, {}, 2, 1.6),
        (409, {}, 1, 1.0),
        (429, {}, 1, 1.0),
        (429, {}, 5, None),
        (429, {"x-ratelimit-reset": "12000"}, 1, 2.25),  # reset − now + jitter
        (429, {"x-ratelimit-reset": "9000"}, 1, 1.0),  # already past: the schedule
        (400, {}, 1, None),
        (401, {}, 1, None),
        (403, {}, 1, None),
        (404, {}, 1, None),
        (422, {}, 1, None),
        (404, {"x-should-retry": "true"}, 1, 1.0),
        (500, {"x-should-retry": "false"}, 1, None),
    ],
)
def test_response_retry_delay(status, headers, attempt, expected):
    delay = retries.response_retry_delay(
        status, httpx.Headers(headers), attempt, now_ms=10_000, random=0.25
    )
    assert delay == expected


def test_shape_backoff_grows_by_1_3_and_caps_at_10s():
    delays = [retries.shape_retry_delay(n) for n in (1, 2, 3, 100)]
    assert delays[:3] == pytest.approx([0.1, 0.13, 0.169])
    assert delays[3] == 10.0


@pytest.mark.parametrize(
    ("count", "random", "expected"), [(1, 0.0, 0.1), (2, 0.0, 0.2), (3, 1.0, 0.2), (10, 0.0, 5.0)]
)
def test_stream_backoff_doubles_caps_at_5s_with_jitter(count, random, expected):
    assert retries.stream_retry_delay(count, random=random) == pytest.approx(expected)
