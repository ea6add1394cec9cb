"""The capture the secret scans use: each channel it records is scanned, so a leak is caught.

These are the negative controls of the scans in the browser suites: the same ``Capture``
methods the suites call are fed a secret here, and the scan must fail. (The Playwright
recorder is exercised by the browser suites, whose page fixture fails when a page's frames
were not captured.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from tests.support.capture import Capture

SECRET = "sk-capture-test-1f2e3d4c5b6a"
SECRETS = {"LLM_API_KEY": SECRET}
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzY29wZXMiOlsicmVhZDpydW5zOnJ1bl8xIl19.c2lnbmF0dXJl"


def _response(body: object, status: int = 200) -> httpx.Response:
    request = httpx.Request("POST", "http://app.test/api/tables/1/enrich")
    return httpx.Response(status, json=body, request=request)


def test_a_clean_capture_passes_and_counts_what_it_holds() -> None:
    capture = Capture()
    with capture.logging(["tests.unit.capture"]):
        logging.getLogger("tests.unit.capture").debug("job %s started", 7)
    capture.add_frame("page 1", '42["event", {"delta": {}}]')
    capture.record_response(_response({"job": {"id": 7}}))
    capture.add("worker output", "done\n")
    capture.assert_clean(SECRETS)
    counts = capture.counts()
    assert (counts.frames, counts.log_records, counts.responses, counts.other) == (1, 1, 1, 1)
    assert "job 7 started" in capture.sources()["log records"]


def test_a_debug_log_record_with_a_secret_is_caught_and_levels_are_restored() -> None:
    logger = logging.getLogger("tests.unit.capture.leaky")
    logger.setLevel(logging.WARNING)
    capture = Capture()
    with capture.logging([logger.name]):
        assert logger.level == logging.DEBUG
        logger.debug("calling with key %s", SECRET)  # below the logger's usual level
    assert logger.level == logging.WARNING
    logger.warning("after the capture: %s", SECRET)  # not recorded any more
    with pytest.raises(AssertionError, match="LLM_API_KEY in log records"):
        capture.assert_clean(SECRETS)
    assert len(capture.log.lines) == 1


def test_a_secret_in_a_traceback_is_caught() -> None:
    capture = Capture()
    with capture.logging(["tests.unit.capture"]):
        try:
            raise RuntimeError(f"bad key {SECRET}")
        except RuntimeError:
            logging.getLogger("tests.unit.capture").exception("request failed")
    with pytest.raises(AssertionError, match="LLM_API_KEY in log records"):
        capture.assert_clean(SECRETS)


@pytest.mark.parametrize(
    ("where", "feed"),
    [
        ("websocket frames of page 1", lambda c: c.add_frame("page 1", f'42["delta", "{SECRET}"]')),
        ("websocket frames of page 2", lambda c: c.add_frame("page 2", SECRET.encode())),
        ("worker output", lambda c: c.add("worker output", f"error: {SECRET}\n")),
        (
            "response 1: POST /api/tables/1/enrich",
            lambda c: c.record_response(_response({"e": SECRET}, 500)),
        ),
    ],
)
def test_a_secret_in_any_channel_is_caught(where: str, feed: Callable[[Capture], object]) -> None:
    capture = Capture()
    capture.add_frame("page 0", "clean")
    feed(capture)
    with pytest.raises(AssertionError, match=f"LLM_API_KEY in {where}"):
        capture.assert_clean(SECRETS)


def test_a_public_token_may_be_in_the_response_that_issued_it_only() -> None:
    capture = Capture()
    issued = capture.record_response(_response({"runId": "run_1", "publicAccessToken": TOKEN}, 202))
    assert capture.public_tokens == {TOKEN}
    capture.add_frame("page 1", '42["delta", {"run": "run_1"}]')
    capture.assert_clean(SECRETS)  # the token is where it was handed out, nowhere else

    capture.add_frame("page 1", f'42["delta", {{"token": "{TOKEN}"}}]')
    with pytest.raises(AssertionError, match="public token #0 in websocket frames of page 1"):
        capture.assert_clean(SECRETS)
    assert issued.startswith("response 1")


def test_tokens_the_backend_used_upstream_must_appear_nowhere() -> None:
    capture = Capture()
    capture.add_public_tokens([TOKEN])
    capture.add("log", f"GET /realtime/v1/runs/run_1 with {TOKEN}")
    with pytest.raises(AssertionError, match="public token #0 in log"):
        capture.assert_clean(SECRETS)


def test_an_empty_capture_is_not_a_clean_one() -> None:
    with pytest.raises(AssertionError, match="nothing was captured"):
        Capture().assert_clean(SECRETS)
