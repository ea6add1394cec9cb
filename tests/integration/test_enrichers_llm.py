"""The llm enricher against a local fake of the OpenAI chat-completions API.

The ``http`` client fixture comes from tests/conftest.py.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from enrichment_app.enrichers import EnrichContext, get_enricher
from enrichment_app.errors import EnrichError, NotConfiguredError
from enrichment_app.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, openai_server_fixture  # noqa: F401

ROW: dict[str, str | None] = {"name": "Acme", "website": "acme.com", "industry": "anvils"}


def _settings(fake: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm_base_url": fake.base_url,
        "llm_api_key": fake.api_key,
        "llm_model": "gpt-fake",
        **overrides,
    }
    return Settings(_env_file=None, **values)


async def _ask(
    http: httpx.AsyncClient,
    settings: Settings,
    config: dict[str, Any],
    row: dict[str, str | None] = ROW,
) -> str:
    enricher = get_enricher("llm")
    checked = enricher.validate_config(config)
    return await enricher.enrich(
        EnrichContext(row=row, config=checked, http=http, settings=settings)
    )


async def test_the_answer_is_the_first_choice_stripped(
    openai_server: FakeOpenAI, http: httpx.AsyncClient
) -> None:
    answer = await _ask(
        http,
        _settings(openai_server),
        {"prompt": "Summarise {name} ({website}) in 5 words", "system": "You know {industry}."},
    )
    assert answer == "Echo: Summarise Acme (acme.com) in 5 words"
    assert openai_server.last_request() == {
        "model": "gpt-fake",
        "messages": [
            {"role": "system", "content": "You know anvils."},
            {"role": "user", "content": "Summarise Acme (acme.com) in 5 words"},
        ],
        "temperature": 0.0,
    }


async def test_config_overrides_model_and_sets_limits(
    openai_server: FakeOpenAI, http: httpx.AsyncClient
) -> None:
    config = {"prompt": "Hi {name}", "model": "gpt-other", "max_tokens": 7, "temperature": 0.7}
    assert await _ask(http, _settings(openai_server), config) == "Echo: Hi Acme"
    sent = openai_server.last_request()
    assert (sent["model"], sent["max_tokens"], sent["temperature"]) == ("gpt-other", 7, 0.7)
    assert [m["role"] for m in sent["messages"]] == ["user"]


async def test_a_trailing_slash_on_the_base_url_is_fine(
    openai_server: FakeOpenAI, http: httpx.AsyncClient
) -> None:
    settings = _settings(openai_server, llm_base_url=openai_server.base_url + "/")
    assert await _ask(http, settings, {"prompt": "Hi"}) == "Echo: Hi"


@pytest.mark.parametrize("key", [None, "   "])
async def test_without_a_key_it_is_not_configured_and_makes_no_call(key: str | None) -> None:
    calls: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    settings = Settings(_env_file=None, llm_api_key=key)
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
        with pytest.raises(NotConfiguredError) as caught:
            await _ask(http, settings, {"prompt": "Hi {name}"})
    assert str(caught.value).startswith("LLM is not configured: set LLM_API_KEY")
    assert calls == []


async def test_a_wrong_key_is_reported_without_echoing_it(
    openai_server: FakeOpenAI, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk-wrong-key-do-not-show-me"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(EnrichError) as caught:
        await _ask(http, _settings(openai_server, llm_api_key=wrong), {"prompt": "Hi"})
    message = str(caught.value)
    assert message.startswith(
        "The LLM API rejected the API key (HTTP 401): Incorrect API key provided: [redacted]."
    )
    assert wrong not in message
    assert wrong not in caplog.text


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            "fake-unknown-model",
            "The LLM API does not know this model or URL (HTTP 404): "
            "The model `fake-unknown-model` does not exist",
        ),
        (
            "fake-429",
            "The LLM API is rate limiting or out of quota (HTTP 429): Rate limit reached",
        ),
        ("fake-500", "The LLM API failed (HTTP 500): The server had an error"),
        ("fake-no-choices", "The LLM API answered without any choices"),
        ("fake-null-content", "The LLM returned no text (finish_reason: content_filter)"),
        ("fake-not-json", "The LLM API answered with something that is not JSON"),
    ],
)
async def test_api_failures_become_clear_cell_errors(
    openai_server: FakeOpenAI, http: httpx.AsyncClient, model: str, message: str
) -> None:
    with pytest.raises(EnrichError) as caught:
        await _ask(http, _settings(openai_server), {"prompt": "Hi", "model": model})
    assert str(caught.value).startswith(message)


async def test_a_request_the_api_refuses_shows_its_message(
    openai_server: FakeOpenAI, http: httpx.AsyncClient
) -> None:
    with pytest.raises(EnrichError) as caught:
        await _ask(http, _settings(openai_server), {"prompt": "Hi", "max_tokens": 100_000})
    assert str(caught.value) == (
        "The LLM API refused the request (HTTP 400): max_tokens is too large: 100000. "
        "This model supports at most 4096 completion tokens, whereas you provided 100000."
    )


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_an_unreachable_api_is_reported(
    openai_server: FakeOpenAI, http: httpx.AsyncClient, closed_port: int
) -> None:
    base_url = f"http://127.0.0.1:{closed_port}/v1"
    with pytest.raises(EnrichError) as caught:
        await _ask(http, _settings(openai_server, llm_base_url=base_url), {"prompt": "Hi"})
    assert str(caught.value) == f"Could not connect to the LLM API at {base_url}"


async def test_an_empty_prompt_is_an_error(
    openai_server: FakeOpenAI, http: httpx.AsyncClient
) -> None:
    with pytest.raises(EnrichError, match="The prompt is empty for this row"):
        await _ask(http, _settings(openai_server), {"prompt": "{name}"}, {"name": "  "})


async def test_the_fake_validates_requests_like_the_real_api(
    openai_server: FakeOpenAI, http: httpx.AsyncClient
) -> None:
    url = f"{openai_server.base_url}/chat/completions"
    auth = {"Authorization": f"Bearer {openai_server.api_key}"}
    missing_key = await http.post(url, json={"model": "m", "messages": []})
    assert missing_key.status_code == 401
    assert missing_key.json()["error"]["type"] == "invalid_request_error"
    bad = await http.post(url, json={"model": "m", "messages": [{"role": "robot"}]}, headers=auth)
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "messages[0].role"


async def test_the_official_openai_client_talks_to_the_fake(openai_server: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(
        base_url=openai_server.base_url, api_key=openai_server.api_key, max_retries=0
    ) as client:
        completion = await client.chat.completions.create(
            model="gpt-fake",
            messages=[{"role": "user", "content": "Hello there"}],
            temperature=0,
        )
        assert completion.object == "chat.completion"
        assert completion.choices[0].message.content.strip() == "Echo: Hello there"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None and completion.usage.total_tokens > 0
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="fake-429", messages=[{"role": "user", "content": "Hi"}]
            )
        assert caught.value.code == "rate_limit_exceeded"
    async with openai.AsyncOpenAI(
        base_url=openai_server.base_url, api_key="sk-wrong", max_retries=0
    ) as client:
        with pytest.raises(openai.AuthenticationError) as auth_error:
            await client.chat.completions.create(
                model="gpt-fake", messages=[{"role": "user", "content": "Hi"}]
            )
        assert auth_error.value.status_code == 401
        assert auth_error.value.code == "invalid_api_key"
