"""The llm enricher's error messages never carry its key, however the provider's message is cut."""

from __future__ import annotations

import httpx
import pytest

from enrichment_app.enrichers import EnrichContext, get_enricher
from enrichment_app.errors import EnrichError
from enrichment_app.settings import Settings

KEY = "sk-unit-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("offset", [0, 200, 280, 290, 296, 320])
async def test_a_provider_message_that_repeats_the_key_is_scrubbed_before_it_is_cut(
    offset: int,
) -> None:
    """Messages are cut at 300 characters; the key may sit across the cut."""
    message = "x" * offset + f" key {KEY} was refused " + "y" * 400

    def provider(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": message, "type": "auth"}})

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        llm_base_url="http://llm.invalid/v1",
        llm_api_key=KEY,
    )
    enricher = get_enricher("llm")
    async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as http:
        context = EnrichContext(
            row={"name": "Acme"},
            config=enricher.validate_config({"prompt": "Hi {name}"}),
            http=http,
            settings=settings,
        )
        with pytest.raises(EnrichError) as caught:
            await enricher.enrich(context)
    text = str(caught.value)
    assert text.startswith("The LLM API rejected the API key (HTTP 401): ")
    assert KEY[:8] not in text, text  # not even a part of the key
    if offset <= 200:
        assert "[redacted]" in text, text
