"""The ``llm`` enricher: ask an OpenAI-compatible chat-completions API about each row.

It sends ``POST {LLM_BASE_URL}/chat/completions`` with the bearer key from ``LLM_API_KEY`` and
returns the first choice's message, stripped. The base URL, default model and key come from
settings; the column config holds the prompt::

    {"prompt": "Summarise {name} in 5 words",   # required; a row template (see template.py)
     "system": "You are terse.",                # optional; also a row template
     "model": "gpt-4o-mini",                    # optional; overrides LLM_MODEL
     "max_tokens": 50,                          # optional
     "temperature": 0}                          # optional, 0 to 2; default 0

The key is never logged or put in a message: error text from the API is scrubbed of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from enrichment_app.enrichers.base import ConfigField, EnrichContext, Enricher
from enrichment_app.enrichers.config import (
    optional_int,
    optional_number,
    optional_str,
    refuse_unknown_keys,
    require_mapping,
    require_str,
)
from enrichment_app.enrichers.template import parse_template
from enrichment_app.errors import EnrichError, NotConfiguredError
from enrichment_app.redact import scrub

logger = logging.getLogger(__name__)

DEFAULT_TEMPERATURE = 0.0
NOT_CONFIGURED_MESSAGE = (
    "LLM is not configured: set LLM_API_KEY (and LLM_BASE_URL and LLM_MODEL for a "
    "provider other than OpenAI) in the environment or .env, then restart the app"
)


class LlmEnricher(Enricher):
    """Fills a cell with a chat model's answer to a prompt built from the row."""

    name = "llm"
    label = "AI prompt (LLM)"
    description = (
        "Ask an OpenAI-compatible chat model a question built from the row, e.g. "
        '"Summarise {name} in 5 words". Needs LLM_API_KEY.'
    )
    concurrency = 4
    timeout_seconds = 60.0
    config_example: ClassVar[dict[str, Any]] = {
        "prompt": "Describe the company {name} ({website}) in five words.",
    }
    config_fields = (
        ConfigField(
            ("prompt",),
            "Prompt",
            "template",
            required=True,
            help="The question for each row; {column} fields are filled from the row.",
        ),
        ConfigField(("system",), "System prompt", "template", help="Optional instructions."),
        ConfigField(("model",), "Model", help="Blank: the LLM_MODEL setting."),
        ConfigField(("temperature",), "Temperature", "number", default=DEFAULT_TEMPERATURE),
    )

    def validate_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        config = require_mapping(self.name, config)
        refuse_unknown_keys(
            self.name, config, {"prompt", "system", "model", "max_tokens", "temperature"}
        )
        prompt = require_str(self.name, config, "prompt", max_length=20_000)
        parse_template(prompt, where=f"{self.name}: 'prompt'")
        system = optional_str(self.name, config, "system", max_length=20_000)
        if system is not None:
            parse_template(system, where=f"{self.name}: 'system'")
        max_tokens = config.get("max_tokens")
        return {
            "prompt": prompt,
            "system": system,
            "model": optional_str(self.name, config, "model", max_length=200),
            "max_tokens": None
            if max_tokens is None
            else optional_int(
                self.name, config, "max_tokens", default=0, minimum=1, maximum=128_000
            ),
            "temperature": optional_number(
                self.name,
                config,
                "temperature",
                default=DEFAULT_TEMPERATURE,
                minimum=0,
                maximum=2,
            ),
        }

    def referenced_columns(self, config: Mapping[str, Any]) -> set[str]:
        columns = parse_template(config["prompt"], where=f"{self.name}: 'prompt'").columns
        if config.get("system"):
            columns |= parse_template(config["system"], where=f"{self.name}: 'system'").columns
        return columns

    async def enrich(self, ctx: EnrichContext) -> str:
        settings = ctx.settings
        key = settings.llm_api_key.get_secret_value().strip() if settings.llm_api_key else ""
        if not key:
            raise NotConfiguredError(NOT_CONFIGURED_MESSAGE)
        config = ctx.config
        prompt = parse_template(config["prompt"], where=f"{self.name}: 'prompt'").render(ctx.row)
        if not prompt.strip():
            raise EnrichError("The prompt is empty for this row")
        messages: list[dict[str, str]] = []
        if config.get("system"):
            system = parse_template(config["system"], where=f"{self.name}: 'system'")
            messages.append({"role": "system", "content": system.render(ctx.row)})
        messages.append({"role": "user", "content": prompt})
        payload: dict[str, Any] = {
            "model": config.get("model") or settings.llm_model,
            "messages": messages,
            "temperature": config.get("temperature", DEFAULT_TEMPERATURE),
        }
        if config.get("max_tokens"):
            payload["max_tokens"] = config["max_tokens"]
        base_url = settings.llm_base_url.rstrip("/")
        timeout = self.timeout_seconds - 5
        logger.debug("llm: asking %s (model %s)", base_url, payload["model"])
        try:
            # The base URL comes from settings, not from a cell: the unguarded client.
            response = await (ctx.provider_http or ctx.http).post(
                f"{base_url}/chat/completions",
                json=payload,
                headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
                timeout=timeout,
            )
        except httpx.TimeoutException as exc:
            raise EnrichError(f"The LLM API did not answer within {timeout:g} s") from exc
        except httpx.ConnectError as exc:
            raise EnrichError(f"Could not connect to the LLM API at {base_url}") from exc
        except httpx.HTTPError as exc:
            raise EnrichError(f"Calling the LLM API failed: {type(exc).__name__}") from exc
        if not response.is_success:
            raise EnrichError(_status_message(response, key))
        return _answer(response)


def _status_message(response: httpx.Response, key: str) -> str:
    status = response.status_code
    if status == 401:
        summary = "The LLM API rejected the API key"
    elif status == 403:
        summary = "The LLM API refused access"
    elif status == 404:
        summary = "The LLM API does not know this model or URL"
    elif status == 429:
        summary = "The LLM API is rate limiting or out of quota"
    elif status >= 500:
        summary = "The LLM API failed"
    else:
        summary = "The LLM API refused the request"
    detail = _api_error_message(response, key)
    if detail:
        return f"{summary} (HTTP {status}): {detail}"
    return f"{summary} (HTTP {status})"


def _api_error_message(response: httpx.Response, key: str) -> str:
    """``error.message`` from an OpenAI-style error body, shortened; "" if there is none.

    The key is taken out before the message is shortened: shortening first could cut the key
    in two and leave its first half in the message.
    """
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str):
        return ""
    message = " ".join(scrub(message, [key]).split())
    return message if len(message) <= 300 else message[:297] + "..."


def _answer(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError as exc:
        raise EnrichError("The LLM API answered with something that is not JSON") from exc
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise EnrichError("The LLM API answered without any choices")
    choice = choices[0]
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        reason = choice.get("finish_reason")
        raise EnrichError(f"The LLM returned no text (finish_reason: {reason or 'unknown'})")
    return content.strip()
