"""The OpenAPI parts of views: the ``f``/``s``/``q`` query of ``GET …/rows`` and
``POST /api/tables/{table_id}/enrich-view`` (``api/view_routes.py``)."""

from __future__ import annotations

from typing import Any

from enrichment_app.api.openapi_parts import common, error, id_parameter, json_content, ref
from enrichment_app.views import (
    MAX_CONDITIONS,
    MAX_ID,
    MAX_PARAM_CHARS,
    MAX_VALUE_CHARS,
    Op,
    StatusFilter,
)

VIEW_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "f",
        "in": "query",
        "required": False,
        "description": (
            "Conditions, as in the page's URL: `<column id>.<op>[.<value>]` joined by commas, "
            "the value percent-encoded. Ops: "
            + ", ".join(o.value for o in Op)
            + f"; a status is one of {', '.join(s.value for s in StatusFilter)}."
        ),
        "schema": {"type": "string", "maxLength": MAX_PARAM_CHARS},
        "example": "4.empty,2.contains.acme",
    },
    {
        "name": "s",
        "in": "query",
        "required": False,
        "description": (
            "Sort by a column id, `-<id>` for descending (ties keep the table's order); empty: "
            "the table's order."
        ),
        "schema": {"type": "string", "pattern": "^(-?[0-9]{1,18})?$"},
    },
    {
        "name": "q",
        "in": "query",
        "required": False,
        "description": "Rows with a cell containing this text (case-insensitive).",
        "schema": {"type": "string", "maxLength": MAX_VALUE_CHARS},
    },
]

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1 to 255 visible ASCII characters; a UUID is a good choice.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "example": "view-run-1",
}

_CONDITION = {
    "type": "object",
    "required": ["columnId", "op"],
    "additionalProperties": False,
    "properties": {
        "columnId": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "op": {"type": "string", "enum": [o.value for o in Op]},
        "value": {
            "type": "string",
            "maxLength": MAX_VALUE_CHARS,
            "description": "For equals, not_equals, contains, not_contains; for status, one of "
            + ", ".join(s.value for s in StatusFilter)
            + ".",
        },
    },
}

VIEW_SCHEMAS: dict[str, Any] = {
    "View": {
        "type": "object",
        "additionalProperties": False,
        "description": "Which rows (every condition, and the search) in which order.",
        "properties": {
            "conditions": {
                "type": ["array", "null"],
                "maxItems": MAX_CONDITIONS,
                "items": _CONDITION,
            },
            "sort": {
                "type": ["object", "null"],
                "required": ["columnId"],
                "additionalProperties": False,
                "properties": {
                    "columnId": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                    "descending": {"type": "boolean", "default": False},
                },
            },
            "search": {"type": ["string", "null"], "maxLength": MAX_VALUE_CHARS},
        },
    },
    "EnrichViewRequest": {
        "type": "object",
        "required": ["columnId"],
        "additionalProperties": False,
        "properties": {
            "columnId": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_ID,
                "description": "An enrichment column.",
            },
            "view": {"oneOf": [ref("View"), {"type": "null"}]},
        },
        "examples": [
            {"columnId": 4, "view": {"conditions": [{"columnId": 4, "op": "empty"}]}},
        ],
    },
}

VIEW_PATHS: dict[str, Any] = {
    "/api/tables/{table_id}/enrich-view": {
        "post": {
            "operationId": "enrichView",
            "summary": "Run a column for every row a view shows (Run the view)",
            "description": (
                "One job for the enrichment column `columnId` over every row the view shows "
                "when the request arrives, as the page's Run the view button does. Cells already "
                "queued or running are skipped; MAX_CELLS_PER_JOB and the daily cap apply. "
                "An Idempotency-Key is bound to the rows the view showed at the first request "
                "(a retry after they changed answers 422)."
            ),
            "parameters": [id_parameter("table_id", "The table's id."), IDEMPOTENCY_KEY],
            "requestBody": {"required": True, **json_content(ref("EnrichViewRequest"))},
            "responses": common(
                {
                    "202": {
                        "description": "The job was created and handed to its runner.",
                        **json_content(ref("EnrichTableResponse")),
                    },
                    "400": error(
                        "The body or the view is refused (a bad operator, a column not in the "
                        "table, an input column, no rows shown, more rows than one job runs)."
                    ),
                    "404": error("No such table, or the column is not in it."),
                    "409": error(
                        "Every cell of the view is already queued or running, or a request "
                        "with this Idempotency-Key is still in progress."
                    ),
                    "422": error("The Idempotency-Key was used for another request."),
                    "413": error("The body is larger than 64 KiB."),
                    "415": error("The body is not JSON."),
                }
            ),
        }
    },
}
