"""The registry, and config validation for every built-in enricher."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from enrichment_app.enrichers import (
    EnrichContext,
    Enricher,
    available_enrichers,
    get_enricher,
    register,
    unregister,
)
from enrichment_app.enrichers.config import parse_config_text
from enrichment_app.errors import EnricherConfigError

BUILT_INS = ["email_domain", "http_json", "llm", "template", "website_title"]


def test_built_ins_are_registered_sorted_by_name() -> None:
    names = [enricher.name for enricher in available_enrichers()]
    assert names == sorted(names)
    assert set(BUILT_INS) <= set(names)


def test_unknown_enricher_lists_the_available_ones() -> None:
    with pytest.raises(EnricherConfigError) as caught:
        get_enricher("clearbit")
    assert str(caught.value).startswith("Unknown enricher 'clearbit'. Available: email_domain, ")
    for name in BUILT_INS:
        assert name in str(caught.value)


class _Shout(Enricher):
    name = "shout"
    label = "Shout"
    config_example: ClassVar[dict[str, Any]] = {}

    async def enrich(self, ctx: EnrichContext) -> str:
        return "HEY"


@pytest.fixture
def shout() -> Iterator[_Shout]:
    plugin = _Shout()
    yield register(plugin)
    unregister("shout")


def test_plugins_register_and_are_found(shout: _Shout) -> None:
    assert get_enricher("shout") is shout
    assert shout in available_enrichers()


def test_a_taken_name_is_refused_unless_replacing(shout: _Shout) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(_Shout())
    replacement = _Shout()
    register(replacement, replace=True)
    assert get_enricher("shout") is replacement


def test_unregister_removes_a_plugin(shout: _Shout) -> None:
    unregister("shout")
    with pytest.raises(EnricherConfigError):
        get_enricher("shout")


def test_bad_plugins_are_refused() -> None:
    class Nameless(_Shout):
        name = "not an identifier"

    class Stuck(_Shout):
        name = "stuck"
        concurrency = 0

    with pytest.raises(ValueError, match="identifier"):
        register(Nameless())
    with pytest.raises(ValueError, match="concurrency"):
        register(Stuck())


@pytest.mark.parametrize("name", BUILT_INS)
def test_every_built_in_declares_limits_and_a_valid_example(name: str) -> None:
    enricher = get_enricher(name)
    assert enricher.label and enricher.description
    assert enricher.concurrency >= 1
    assert 0 < enricher.timeout_seconds <= 120
    config = enricher.validate_config(enricher.config_example)
    # Validation is idempotent, so a stored (normalised) config validates again unchanged.
    assert enricher.validate_config(config) == config


@pytest.mark.parametrize("name", BUILT_INS)
def test_every_built_in_refuses_a_non_object_config(name: str) -> None:
    with pytest.raises(EnricherConfigError, match="must be a JSON object"):
        get_enricher(name).validate_config(["not", "an", "object"])  # type: ignore[arg-type]


# --- website_title ---------------------------------------------------------------------------


def test_website_title_fills_defaults() -> None:
    config = get_enricher("website_title").validate_config({"column": "website"})
    assert config == {
        "column": "website",
        "max_bytes": 1_000_000,
        "timeout_seconds": 10.0,
        "max_redirects": 5,
    }
    assert get_enricher("website_title").referenced_columns(config) == {"website"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "needs 'column'"),
        ({"column": "website", "max_bytes": 10}, "'max_bytes' must be between 1024"),
        ({"column": "website", "max_bytes": "big"}, "'max_bytes' must be a whole number"),
        ({"column": "website", "timeout_seconds": 0}, "'timeout_seconds' must be more than 0"),
        ({"column": "website", "timeout_seconds": 300}, "at most 25"),
        ({"column": "website", "timeout_seconds": True}, "must be a number"),
        ({"column": "website", "max_redirects": -1}, "'max_redirects' must be between 0 and 20"),
        ({"column": "website", "follow": True}, "unknown config key 'follow'"),
    ],
)
def test_website_title_refuses(config: dict[str, Any], message: str) -> None:
    with pytest.raises(EnricherConfigError, match=message):
        get_enricher("website_title").validate_config(config)


# --- http_json -------------------------------------------------------------------------------


def test_http_json_normalises_and_lists_columns() -> None:
    enricher = get_enricher("http_json")
    config = enricher.validate_config(
        {
            "method": "post",
            "url": "https://api.example.com/{kind}/lookup?domain={website}",
            "body": {"q": "{name}", "nested": [{"x": "{email}"}], "limit": 1},
            "auth": {"type": "basic", "username": "u"},
        }
    )
    assert config["method"] == "POST"
    assert config["path"] == ""
    assert config["headers"] == {}
    assert config["auth"] == {"type": "basic", "username": "u", "password": ""}
    assert config["rate_limit_per_second"] is None
    assert enricher.referenced_columns(config) == {"kind", "website", "name", "email"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "needs 'url'"),
        ({"url": "https://x.test", "method": "DELETE"}, "must be GET or POST"),
        ({"url": "ftp://x.test/{a}"}, "must start with http:// or https://"),
        ({"url": "{website}/api"}, "must spell out its scheme, host and port"),
        ({"url": "https:///path"}, "must start with http:// or https:// and a host"),
        ({"url": "https://x.test/?q={a.b}"}, "not allowed"),
        ({"url": "https://x.test/?q={a"}, "not a valid template"),
        ({"url": "https://x.test", "path": "a..b"}, "'path': JSON path 'a..b': empty key"),
        ({"url": "https://x.test", "body": {"a": 1}}, "'body' is only allowed with POST"),
        ({"url": "https://x.test", "method": "POST", "body": {"a": "{"}}, "not a valid template"),
        ({"url": "https://x.test", "headers": ["Accept"]}, "'headers' must be an object"),
        ({"url": "https://x.test", "headers": {"Bad Name": "x"}}, "not a valid header name"),
        ({"url": "https://x.test", "headers": {"X-A": "a\r\nX-B: b"}}, "single-line string"),
        ({"url": "https://x.test", "headers": {"X-A": 1}}, "single-line string"),
        ({"url": "https://x.test", "auth": {"type": "oauth"}}, "must be 'bearer' or 'basic'"),
        ({"url": "https://x.test", "auth": {"type": "bearer"}}, "needs 'token'"),
        ({"url": "https://x.test", "auth": "secret"}, "must be an object"),
        (
            {"url": "https://x.test", "auth": {"type": "bearer", "token": "t", "user": "u"}},
            "unknown config key 'user'",
        ),
        ({"url": "https://x.test", "rate_limit_per_second": 0}, "must be more than 0"),
        ({"url": "https://x.test", "rate_limit_per_second": 5000}, "at most 1000"),
        ({"url": "https://x.test", "retries": 3}, "unknown config key 'retries'"),
    ],
)
def test_http_json_refuses(config: dict[str, Any], message: str) -> None:
    with pytest.raises(EnricherConfigError, match=message):
        get_enricher("http_json").validate_config(config)


# --- llm -------------------------------------------------------------------------------------


def test_llm_normalises_and_lists_columns() -> None:
    enricher = get_enricher("llm")
    config = enricher.validate_config(
        {"prompt": "Summarise {name}", "system": "You know {industry}.", "max_tokens": 20}
    )
    assert config == {
        "prompt": "Summarise {name}",
        "system": "You know {industry}.",
        "model": None,
        "max_tokens": 20,
        "temperature": 0.0,
    }
    assert enricher.referenced_columns(config) == {"name", "industry"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "needs 'prompt'"),
        ({"prompt": ""}, "must not be empty"),
        ({"prompt": "About {name!r}"}, "conversion or format spec"),
        ({"prompt": "ok", "system": "{0}"}, "must name a column"),
        ({"prompt": "ok", "temperature": 3}, "'temperature' must be at least 0 and at most 2"),
        ({"prompt": "ok", "max_tokens": 0}, "'max_tokens' must be between 1"),
        ({"prompt": "ok", "max_tokens": 1.5}, "must be a whole number"),
        ({"prompt": "ok", "model": 4}, "'model' must be a string"),
        ({"prompt": "ok", "api_key": "sk-x"}, "unknown config key 'api_key'"),
    ],
)
def test_llm_refuses(config: dict[str, Any], message: str) -> None:
    with pytest.raises(EnricherConfigError, match=message):
        get_enricher("llm").validate_config(config)


# Found by tests/fuzz/test_other_decoders.py: the add-column form read its JSON with a bare
# json.loads, which takes NaN and Infinity, raises RecursionError for deep nesting and plain
# ValueError for a number too long to read (neither was caught, so the handler crashed), and
# the number checks let NaN through into the stored config.
@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('{"column": ', "not valid JSON: Expecting value (line 1", id="cut short"),
        pytest.param('{"temperature": NaN}', "NaN is not valid JSON", id="NaN"),
        pytest.param('{"timeout_seconds": -Infinity}', "-Infinity is not valid JSON", id="inf"),
        pytest.param("[" * 100_000, "not valid JSON", id="nested too deep"),
        pytest.param('{"max_bytes": ' + "9" * 5000 + "}", "not valid JSON", id="huge number"),
        pytest.param("[1]", "must be a JSON object", id="not an object"),
    ],
)
def test_config_text_that_is_not_a_json_object_is_refused(text: str, message: str) -> None:
    with pytest.raises(EnricherConfigError, match=re.escape(message)):
        parse_config_text(text)


def test_blank_config_text_is_an_empty_object() -> None:
    assert parse_config_text("") == {}
    assert parse_config_text(' {"column": "a"} ') == {"column": "a"}


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("name", "config", "key"),
    [
        ("llm", {"prompt": "x"}, "temperature"),
        ("website_title", {"column": "a"}, "timeout_seconds"),
        ("http_json", {"url": "http://x.test"}, "rate_limit_per_second"),
        ("http_json", {"url": "http://x.test"}, "timeout_seconds"),
    ],
)
def test_numbers_that_are_not_finite_are_refused(
    name: str, config: dict[str, Any], key: str, number: float
) -> None:
    with pytest.raises(EnricherConfigError, match=f"'{key}' must be a number"):
        get_enricher(name).validate_config({**config, key: number})
