"""Reflex configuration. Application settings live in enrichment_app/settings.py."""

import os

import reflex as rx

from enrichment_app.edge.sites import LiveOrigins

# Where Reflex keeps each tab's state. With REFLEX_REDIS_URL, Redis (Reflex picks it itself;
# several workers need it). Without, one process holds them in memory: Reflex's default, the
# disk manager, pickles every tab's state every 2 s and scans its folder, which cost a third
# of the backend's CPU with 300 tabs watching a run (bench/README.md), and keeps nothing the
# page needs: every (re)connect reloads the table from the database (``hydrate_and_load``).
_states = {} if os.environ.get("REFLEX_REDIS_URL") else {"state_manager_mode": "memory"}


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
    **_states,
)
