"""The egress guard: every request an enricher makes goes to an address this package checked.

``policy`` decides (pure, table-tested); ``transport`` resolves, checks and connects. The app
builds the enrichers' client with ``guarded_client(settings.enricher_allowed)``; the Trigger.dev
and LLM clients, whose base URLs come from settings, use ``provider_client()`` instead.
"""

from enrichment_app.egress.policy import (
    AllowedEntry,
    Refusal,
    address_kind,
    check_address,
    parse_allowed,
)
from enrichment_app.egress.transport import (
    EgressRefusedError,
    GuardedTransport,
    Resolver,
    guarded_client,
    provider_client,
    system_resolver,
)

__all__ = [
    "AllowedEntry",
    "EgressRefusedError",
    "GuardedTransport",
    "Refusal",
    "Resolver",
    "address_kind",
    "check_address",
    "guarded_client",
    "parse_allowed",
    "provider_client",
    "system_resolver",
]
