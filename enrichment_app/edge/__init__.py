"""The backend's front door: which sites and hosts it serves, and how much a request may send.

``sites`` decides from the app's own URLs (the ports and URLs Reflex serves on) plus
``ALLOWED_ORIGINS`` and ``ALLOWED_HOSTS``; ``guard`` is the ASGI middleware that applies it to
every request before Reflex or the REST API sees it. Plain Starlette/ASGI: no Reflex here.
"""

from __future__ import annotations

from enrichment_app.edge.guard import EdgeGuard, GuardRules
from enrichment_app.edge.sites import Site, parse_hosts, parse_origins

__all__ = ["EdgeGuard", "GuardRules", "Site", "parse_hosts", "parse_origins"]
