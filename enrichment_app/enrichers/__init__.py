"""The enricher registry: look enrichers up by name, list them, register plugins.

The built-in enrichers are registered when this package is imported::

    from enrichment_app.enrichers import get_enricher

    enricher = get_enricher("email_domain")
    config = enricher.validate_config({"column": "email"})
    value = await enricher.enrich(EnrichContext(row=row, config=config, http=http, settings=s))

A plugin subclasses ``Enricher`` and calls ``register(MyEnricher())`` at import time.
"""

from __future__ import annotations

from typing import TypeVar

from enrichment_app.enrichers.base import EnrichContext, Enricher
from enrichment_app.enrichers.email_domain import EmailDomainEnricher
from enrichment_app.enrichers.http_json import HttpJsonEnricher
from enrichment_app.enrichers.llm import LlmEnricher
from enrichment_app.enrichers.template import TemplateEnricher
from enrichment_app.enrichers.website_title import WebsiteTitleEnricher
from enrichment_app.errors import EnricherConfigError

__all__ = [
    "EnrichContext",
    "Enricher",
    "available_enrichers",
    "get_enricher",
    "register",
    "unregister",
]

_registry: dict[str, Enricher] = {}
_E = TypeVar("_E", bound=Enricher)


def register(enricher: _E, *, replace: bool = False) -> _E:
    """Make ``enricher`` available under its ``name``; returns it.

    Registering a second enricher under a taken name is a programming error (``ValueError``)
    unless ``replace`` is true.
    """
    name = getattr(enricher, "name", "")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"An enricher's name must be an identifier, not {name!r}")
    if enricher.concurrency < 1 or enricher.timeout_seconds <= 0:
        raise ValueError(f"Enricher {name!r} needs concurrency >= 1 and a positive timeout")
    if name in _registry and not replace:
        raise ValueError(f"An enricher named {name!r} is already registered")
    _registry[name] = enricher
    return enricher


def unregister(name: str) -> None:
    """Remove the enricher registered as ``name`` (for plugin tests); unknown names are ignored."""
    _registry.pop(name, None)


def get_enricher(name: str) -> Enricher:
    """The enricher registered as ``name``, or ``EnricherConfigError`` listing the known ones."""
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry))
        raise EnricherConfigError(f"Unknown enricher {name!r}. Available: {known}") from None


def available_enrichers() -> list[Enricher]:
    """Every registered enricher, sorted by name."""
    return [_registry[name] for name in sorted(_registry)]


for _builtin in (
    EmailDomainEnricher(),
    HttpJsonEnricher(),
    LlmEnricher(),
    TemplateEnricher(),
    WebsiteTitleEnricher(),
):
    register(_builtin)
del _builtin
