"""A local fake of the OpenAI chat-completions API, speaking its wire format.

``POST /v1/chat/completions`` checks the bearer key and the request body the way the real API
does and answers with a ``chat.completion`` object, or with an ``{"error": {...}}`` body and the
real status codes. The official ``openai`` client accepts it (see test_enrichers_llm.py).

The answer is ``"Echo: <last user message>"`` padded with whitespace (so callers must strip).
A ``max_tokens`` above 4096 gets the real API's 400. Special model names script failures:

    fake-unknown-model 404 model_not_found
    fake-429           429 rate_limit_exceeded
    fake-500           500 server_error
    fake-no-choices    200 with "choices": []
    fake-null-content  200 with "content": null, finish_reason "content_filter"
    fake-not-json      200 with an HTML body

Unlike the real API, a 401 message repeats the offered key in full, so that tests can prove
callers scrub it. Use the ``openai_server`` fixture by importing ``openai_server_fixture`` into a test module.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.support.live_server import serve_in_thread

FAKE_API_KEY = "sk-fake-test-0123456789abcdef"
MAX_COMPLETION_TOKENS = 4096
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


@dataclass
class FakeOpenAI:
    """The running fake: base URL (ending in ``/v1``), the accepted key and the requests seen."""

    api_key: str = FAKE_API_KEY
    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Bodies of the well-formed, authorised requests, in order."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def last_request(self) -> dict[str, Any]:
        with self._lock:
            return self.requests[-1]


def _error(
    status: int, message: str, type_: str, code: str | None, param: str | None = None
) -> Response:
    return JSONResponse(
        {"error": {"message": message, "type": type_, "param": param, "code": code}},
        status_code=status,
    )


def _invalid(message: str, param: str | None = None) -> Response:
    return _error(400, message, "invalid_request_error", None, param)


def _validate(body: Any) -> Response | None:
    if not isinstance(body, dict):
        return _invalid("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _invalid("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _invalid("[] is too short - 'messages'", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            return _invalid(
                f"Invalid value for 'messages[{index}].role'.", f"messages[{index}].role"
            )
        if not isinstance(message.get("content"), str):
            return _invalid(
                f"Invalid type for 'messages[{index}].content': expected a string.",
                f"messages[{index}].content",
            )
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        return _invalid("Invalid 'temperature': expected a number from 0 to 2.", "temperature")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        return _invalid("Invalid 'max_tokens': expected a positive integer.", "max_tokens")
    if isinstance(max_tokens, int) and max_tokens > MAX_COMPLETION_TOKENS:
        return _invalid(
            f"max_tokens is too large: {max_tokens}. This model supports at most "
            f"{MAX_COMPLETION_TOKENS} completion tokens, whereas you provided {max_tokens}.",
            "max_tokens",
        )
    if body.get("stream"):
        return _invalid("This fake does not stream.", "stream")
    return None


def build_app(fake: FakeOpenAI) -> Starlette:
    ids = itertools.count(1)

    async def chat_completions(request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            )
        offered = authorization.removeprefix("Bearer ")
        if offered != fake.api_key:
            return _error(
                401,
                f"Incorrect API key provided: {offered}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _invalid("Invalid Content-Type header, expected application/json.")
        try:
            body = await request.json()
        except ValueError:
            return _invalid("We could not parse the JSON body of your request.")
        if (problem := _validate(body)) is not None:
            return problem
        with fake._lock:
            fake.requests.append(body)
        model = body["model"]
        if model == "fake-429":
            return _error(
                429,
                "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1.",
                "requests",
                "rate_limit_exceeded",
            )
        if model == "fake-unknown-model":
            return _error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        if model == "fake-500":
            return _error(
                500,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
            )
        if model == "fake-not-json":
            return HTMLResponse("<html><body>502 Bad Gateway</body></html>")
        user_messages = [m["content"] for m in body["messages"] if m["role"] == "user"]
        content: str | None = f"\n  Echo: {user_messages[-1] if user_messages else ''}  \n"
        finish_reason = "stop"
        if model == "fake-null-content":
            content, finish_reason = None, "content_filter"
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        completion_tokens = len((content or "").split())
        choices = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ]
        return JSONResponse(
            {
                "id": f"chatcmpl-fake{next(ids):06d}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [] if model == "fake-no-choices" else choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "system_fingerprint": "fp_fake",
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])


@pytest.fixture(name="openai_server", scope="module")
def openai_server_fixture() -> Iterator[FakeOpenAI]:
    """The fake, running on a loopback port for the whole test module."""
    fake = FakeOpenAI()
    with serve_in_thread(build_app(fake)) as base_url:
        fake.base_url = base_url + "/v1"
        yield fake
