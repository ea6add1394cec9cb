"""Views over REST: the body of ``POST /api/tables/{id}/enrich-view`` and the query of
``GET …/rows``.

The body names a column and a view, in the JSON form of ``enrichment_app.views``:
``{"columnId": 5, "view": {"conditions": [{"columnId": 2, "op": "empty"}], "search": "acme"}}``;
the route (``job_routes.JobRoutes.enrich_view``) resolves the view's rows with ``services/view_runs`` (what
the page's **Run the view** button does) and starts the job as ``/enrich`` does, Idempotency-Key
included: a key is bound to the rows the view showed at its first request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from enrichment_app.errors import InvalidInputError
from enrichment_app.views import View, as_id, parse_view, view_from_json

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

VIEW_BODY_BYTES = 64 * 1024
"""A view of 20 conditions of 500 characters each fits several times over."""


def parse_view_run(payload: Any) -> tuple[int, View]:
    """The column id and the view of an ``enrich-view`` body (``InvalidInputError``)."""
    if not isinstance(payload, dict):
        raise InvalidInputError('The body must be a JSON object: {"columnId": …, "view": {…}}.')
    unknown = set(payload) - {"columnId", "view"}
    if unknown:
        raise InvalidInputError(f"Unknown field(s): {', '.join(sorted(unknown))[:80]}.")
    column_id = as_id(payload.get("columnId"))
    if column_id is None:
        raise InvalidInputError("'columnId' must be the id of an enrichment column.")
    return column_id, view_from_json(payload.get("view"))


def query_view(request: Request) -> View:
    """The view in a request's ``f``, ``s`` and ``q`` query parameters (the page's URL form)."""
    params = request.query_params
    return parse_view(params.get("f"), params.get("s"), params.get("q"))
