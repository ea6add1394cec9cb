"""The template enricher and the row templates that http_json and llm reuse."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from enrichment_app.enrichers import EnrichContext, get_enricher
from enrichment_app.enrichers.template import parse_template
from enrichment_app.errors import EnricherConfigError, EnrichError
from enrichment_app.settings import Settings

ROW = {"name": "Acme", "website": "acme.com", "Company Size": "50", "empty": None, "blank": ""}


def _refuse_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected network call to {request.url}")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_refuse_network)) as client:
        yield client


async def _enrich(http: httpx.AsyncClient, template: str, row: dict[str, str | None]) -> str:
    enricher = get_enricher("template")
    config = enricher.validate_config({"template": template})
    return await enricher.enrich(
        EnrichContext(row=row, config=config, http=http, settings=Settings(_env_file=None))
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {name} at {website}", "Hello Acme at acme.com"),
        ("{name}{name}", "AcmeAcme"),
        ("Size: {Company Size}", "Size: 50"),
        ("{{literal}} {name}", "{literal} Acme"),
        ("[{empty}|{blank}]", "[|]"),
        ("no fields at all", "no fields at all"),
    ],
)
async def test_template_fills_fields_from_the_row(
    http: httpx.AsyncClient, template: str, expected: str
) -> None:
    assert await _enrich(http, template, ROW) == expected


async def test_a_column_missing_from_the_row_is_a_clear_cell_error(http: httpx.AsyncClient) -> None:
    with pytest.raises(EnrichError, match=r"uses column \{ceo\}, which this table does not have"):
        await _enrich(http, "CEO of {name}: {ceo}", ROW)


async def test_dunder_names_are_just_column_names_not_attribute_access(
    http: httpx.AsyncClient,
) -> None:
    with pytest.raises(EnrichError, match="__class__"):
        await _enrich(http, "{__class__}", ROW)
    assert await _enrich(http, "{__class__}", {"__class__": "harmless"}) == "harmless"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hello {name", "not a valid template"),
        ("Hello name}", "not a valid template"),
        ("Hello {}", "must name a column"),
        ("Hello {0}", "must name a column"),
        ("Hello { }", "must name a column"),
        ("{name.__class__}", "not allowed"),
        ("{name[0]}", "not allowed"),
        ("{name!r}", "conversion or format spec"),
        ("{name:>10}", "conversion or format spec"),
        ("{name:{width}}", "conversion or format spec"),
        ("   ", "must not be empty"),
    ],
)
def test_validation_refuses_malformed_and_unsafe_templates(template: str, message: str) -> None:
    with pytest.raises(EnricherConfigError, match=message):
        get_enricher("template").validate_config({"template": template})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "needs 'template'"),
        ({"template": 42}, "must be a string"),
        ({"template": "{a}", "extra": 1}, "unknown config key 'extra'"),
        ({"template": "x" * 10_001}, "longer than 10000"),
    ],
)
def test_validation_refuses_bad_configs(config: dict[str, object], message: str) -> None:
    with pytest.raises(EnricherConfigError, match=message):
        get_enricher("template").validate_config(config)


def test_referenced_columns_are_the_template_fields() -> None:
    enricher = get_enricher("template")
    config = enricher.validate_config({"template": "{name} {{not}} {Company Size} {name}"})
    assert enricher.referenced_columns(config) == {"name", "Company Size"}


def test_escape_applies_to_values_only() -> None:
    template = parse_template("https://x.test/?q={name}&w={website}", where="test")
    rendered = template.render(ROW, escape=lambda value: value.upper())
    assert rendered == "https://x.test/?q=ACME&w=ACME.COM"
