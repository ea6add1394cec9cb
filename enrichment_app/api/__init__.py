"""The REST API on the Reflex backend (plain Starlette; Reflex is mounted under it).

``build_api(get_runtime)`` is passed to ``rx.App(api_transformer=...)``. Tests build it with
their own ``Runtime``.
"""

from __future__ import annotations

from enrichment_app.api.app import build_api
from enrichment_app.api.openapi import openapi_document

__all__ = ["build_api", "openapi_document"]
