"""The add-column form drawn from the enrichers' declared fields."""

from __future__ import annotations

import pytest

from enrichment_app.enrichers import available_enrichers, get_enricher
from enrichment_app.enrichers.forms import MASK, example_for, field_values, set_field
from enrichment_app.enrichers.template import rename_in_template
from enrichment_app.errors import EnricherConfigError


@pytest.mark.parametrize("enricher", available_enrichers(), ids=lambda e: e.name)
def test_every_built_in_declares_fields_its_validator_accepts(enricher: object) -> None:
    from enrichment_app.enrichers.base import Enricher

    assert isinstance(enricher, Enricher)
    assert enricher.config_fields, f"{enricher.name} declares no form fields"
    config = example_for(enricher, ["Company", "Website", "Email"])
    enricher.validate_config(config)  # the example, with the table's columns, is valid
    keys = {f.key for f in enricher.config_fields}
    assert len(keys) == len(enricher.config_fields)


def test_the_example_names_the_open_tables_columns() -> None:
    template = get_enricher("template")
    assert example_for(template, ["Company", "Website"]) == {"template": "{Company} ({Website})"}
    assert example_for(template, ["Website", "Name"]) == {"template": "{Name} ({Website})"}
    assert example_for(get_enricher("email_domain"), ["Company", "Email"]) == {"column": "Email"}
    assert example_for(get_enricher("email_domain"), ["Company"]) == {"column": "Company"}


def test_form_and_json_edit_one_config() -> None:
    http = get_enricher("http_json")
    config = set_field(http, {"url": "https://a.example/{Website}"}, "auth.token", "tok")
    assert config["auth"] == {"type": "bearer", "token": "tok"}
    config = set_field(http, config, "rate_limit_per_second", "2.5")
    assert config["rate_limit_per_second"] == 2.5
    config = set_field(http, config, "rate_limit_per_second", "3")
    assert config["rate_limit_per_second"] == 3
    rows = {
        r["key"]: r
        for r in field_values(
            http, {**config, "auth": {"type": "bearer", "token": {"sealed": "x"}}}
        )
    }
    assert rows["auth.token"]["value"] == MASK
    assert rows["url"]["value"] == "https://a.example/{Website}"
    assert rows["url"]["label"] == "URL *"
    config = set_field(http, config, "auth.token", "")
    assert "auth" not in config
    config = set_field(http, config, "rate_limit_per_second", "lots")
    with pytest.raises(EnricherConfigError, match="'rate_limit_per_second' must be a number"):
        http.validate_config(config)
    with pytest.raises(EnricherConfigError, match="no field"):
        set_field(http, config, "nope", "x")


@pytest.mark.parametrize(
    ("source", "renamed"),
    [
        ("{Old} and {Other}", "{New} and {Other}"),
        ("{{Old}} {Old}", "{{Old}} {New}"),
        ("no fields", "no fields"),
        ("{Older}", "{Older}"),
    ],
)
def test_rename_in_template(source: str, renamed: str) -> None:
    assert rename_in_template(source, "Old", "New") == renamed


def test_rename_rewrites_column_and_template_fields_only() -> None:
    llm = get_enricher("llm")
    assert llm.rename_column({"prompt": "Hi {A}", "system": "{A}!", "model": "A"}, "A", "B") == {
        "prompt": "Hi {B}",
        "system": "{B}!",
        "model": "A",
    }
    assert get_enricher("website_title").rename_column({"column": "A"}, "A", "B") == {"column": "B"}
