"""Reflex configuration. Application settings live in enrichment_app/settings.py."""

import reflex as rx

from enrichment_app.edge.sites import LiveOrigins


def _allows_origin(origin: str) -> bool:
    """The app's origin rule (enrichment_app/edge), read per request: which origins may use the
    backend follows the ports and URLs Reflex serves on, plus ALLOWED_ORIGINS."""
    from enrichment_app.enrichment_app import allows_origin

    return allows_origin(origin)


config = rx.Config(
    app_name="enrichment_app",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium"))],
    disable_plugins=[rx.plugins.SitemapPlugin],
    # Never "*": Reflex's CORS middleware asks this rule about each request's Origin.
    cors_allowed_origins=LiveOrigins(_allows_origin),
)
