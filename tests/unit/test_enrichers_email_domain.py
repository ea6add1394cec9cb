"""The email_domain enricher."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from enrichment_app.enrichers import EnrichContext, get_enricher
from enrichment_app.enrichers.email_domain import email_domain
from enrichment_app.errors import EnricherConfigError, EnrichError
from enrichment_app.settings import Settings


def _refuse_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected network call to {request.url}")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_refuse_network)) as client:
        yield client


@pytest.mark.parametrize(
    ("value", "domain"),
    [
        ("ada@example.com", "example.com"),
        ("  Ada.Lovelace+tag@Mail.Example.CO.UK  ", "mail.example.co.uk"),
        ("Ada Lovelace <ada@Example.com>", "example.com"),
        ('"weird@local"@example.org', "example.org"),
        ("ada@example.com.", "example.com"),
        ("ada@bücher.de", "bücher.de"),
        ("ada@xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("ada@sub-domain.example.io", "sub-domain.example.io"),
    ],
)
def test_email_domain_extracts_the_lowercased_domain(value: str, domain: str) -> None:
    assert email_domain(value) == domain


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "No email address"),
        ("   ", "No email address"),
        ("ada.example.com", "no '@'"),
        ("@example.com", "nothing before '@'"),
        ("ada@", "bad domain"),
        ("ada@localhost", "bad domain"),
        ("ada@-example.com", "bad domain"),
        ("ada@example-.com", "bad domain"),
        ("ada@exa_mple.com", "bad domain"),
        ("ada@example..com", "bad domain"),
        ("ada @example.com", "contains spaces"),
        ("a" * 400 + "@example.com", "too long"),
    ],
)
def test_invalid_emails_say_why(value: str, reason: str) -> None:
    with pytest.raises(EnrichError, match=reason):
        email_domain(value)


async def _enrich(http: httpx.AsyncClient, row: dict[str, str | None]) -> str:
    enricher = get_enricher("email_domain")
    config = enricher.validate_config({"column": "email"})
    context = EnrichContext(row=row, config=config, http=http, settings=Settings(_env_file=None))
    return await enricher.enrich(context)


async def test_enrich_reads_the_configured_column(http: httpx.AsyncClient) -> None:
    assert await _enrich(http, {"email": "Grace@Navy.MIL", "other": "x@y.com"}) == "navy.mil"


@pytest.mark.parametrize("value", [None, "", "  "])
async def test_an_empty_cell_names_the_column(http: httpx.AsyncClient, value: str | None) -> None:
    with pytest.raises(EnrichError, match="No email address in column 'email'"):
        await _enrich(http, {"email": value})


async def test_a_missing_column_is_a_clear_error(http: httpx.AsyncClient) -> None:
    with pytest.raises(EnrichError, match="no column 'email'"):
        await _enrich(http, {"mail": "ada@example.com"})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "needs 'column'"),
        ({"column": ""}, "must not be empty"),
        ({"column": ["email"]}, "must be a string"),
        ({"column": "email", "lower": True}, "unknown config key 'lower'"),
    ],
)
def test_validation(config: dict[str, object], message: str) -> None:
    with pytest.raises(EnricherConfigError, match=message):
        get_enricher("email_domain").validate_config(config)
