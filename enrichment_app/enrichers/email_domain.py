"""The ``email_domain`` enricher: ``Ada <ADA@Example.COM>`` becomes ``example.com``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from enrichment_app.enrichers.base import ConfigField, EnrichContext, Enricher
from enrichment_app.enrichers.config import refuse_unknown_keys, require_mapping, require_str
from enrichment_app.errors import EnrichError

# A DNS label: letters (any script), digits and inner hyphens, at most 63 characters.
_LABEL = re.compile(r"^[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?$")
_ANGLE_ADDRESS = re.compile(r"<([^<>]*)>\s*$")
_MAX_EMAIL_LENGTH = 320


def email_domain(value: str) -> str:
    """The lowercased domain of an email address, or ``EnrichError`` saying why there is none.

    Accepts a bare address or the ``Name <address>`` form.
    """
    text = value.strip()
    if not text:
        raise EnrichError("No email address")
    shown = text if len(text) <= 80 else text[:77] + "..."
    if len(text) > _MAX_EMAIL_LENGTH:
        raise EnrichError(f"Not a valid email address: {shown!r} (too long)")
    if match := _ANGLE_ADDRESS.search(text):
        text = match.group(1).strip()
    if any(ch.isspace() for ch in text):
        raise EnrichError(f"Not a valid email address: {shown!r} (contains spaces)")
    local, at, domain = text.rpartition("@")
    if not at:
        raise EnrichError(f"Not a valid email address: {shown!r} (no '@')")
    if not local:
        raise EnrichError(f"Not a valid email address: {shown!r} (nothing before '@')")
    domain = domain.lower().removesuffix(".")
    labels = domain.split(".")
    if not domain or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise EnrichError(f"Not a valid email address: {shown!r} (bad domain)")
    return domain


class EmailDomainEnricher(Enricher):
    """Takes the domain part of an email address column."""

    name = "email_domain"
    label = "Email domain"
    description = (
        "The domain of the email address in a column, lowercased (ada@Example.com → example.com)."
    )
    concurrency = 32
    timeout_seconds = 5.0
    config_example: ClassVar[dict[str, Any]] = {"column": "email"}
    config_fields = (
        ConfigField(
            ("column",),
            "Email column",
            "column",
            help="The column with email addresses.",
            required=True,
        ),
    )

    def validate_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        config = require_mapping(self.name, config)
        refuse_unknown_keys(self.name, config, {"column"})
        return {"column": require_str(self.name, config, "column", max_length=200)}

    def referenced_columns(self, config: Mapping[str, Any]) -> set[str]:
        return {config["column"]}

    async def enrich(self, ctx: EnrichContext) -> str:
        return email_domain(ctx.column_text("email address"))
