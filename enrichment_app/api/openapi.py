"""The hand-written OpenAPI 3.1 document for the REST API, served at ``/api/openapi.json``.

Kept next to the routes and checked by the tests: the document must validate, every route
must be documented, every documented route must exist, and real responses must match their
schemas.
"""

from __future__ import annotations

import copy
from typing import Any

from enrichment_app.api.openapi_parts import (
    FORBIDDEN,
    RATE_LIMITED,
    SETUP_PENDING,
    UNAUTHORIZED,
    error,
    id_parameter,
    json_content,
    nullable,
    ref,
)
from enrichment_app.api.openapi_table_schemas import TABLE_SCHEMAS
from enrichment_app.api.openapi_tables import TABLE_PATHS
from enrichment_app.api.openapi_views import VIEW_PATHS, VIEW_SCHEMAS

OPENAPI_VERSION = "3.1.0"

_ERROR_CODES = [
    "unauthorized",
    "forbidden",
    "setup_pending",
    "malformed_json",
    "invalid_body",
    "invalid_cells",
    "invalid_columns",
    "empty_selection",
    "too_many_cells",
    "invalid_input",
    "invalid_idempotency_key",
    "not_found",
    "method_not_allowed",
    "idempotency_key_in_progress",
    "cells_busy",
    "body_too_large",
    "unsupported_media_type",
    "idempotency_key_reused",
    "internal_error",
    "invalid_query",
    "invalid_csv",
    "in_use",
    "rate_limited",
    "daily_cap_reached",
    "invalid_config",
]


_ref = ref
_json = json_content
_error = error
_nullable = nullable


_SCHEMAS: dict[str, Any] = {
    "CellRef": {
        "type": "object",
        "description": "One cell, addressed by its row id and column id.",
        "required": ["rowId", "columnId"],
        "properties": {
            "rowId": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
            "columnId": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        },
    },
    "WholeColumn": {
        "type": "object",
        "description": "Every row of one column, however many (no need to list them).",
        "required": ["columnId", "rows"],
        "properties": {
            "columnId": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
            "rows": {"const": "all"},
        },
    },
    "EnrichTableRequest": {
        "type": "object",
        "anyOf": [
            {"required": ["cells"], "properties": {"cells": {"minItems": 1}}},
            {"required": ["columns"]},
        ],
        "examples": [
            {"cells": [{"rowId": 1, "columnId": 4}, {"rowId": 2, "columnId": 4}]},
            {"columns": [{"columnId": 4, "rows": "all"}]},
        ],
        "properties": {
            "cells": {
                "type": "array",
                "description": (
                    "The cells to enrich, at most MAX_CELLS_PER_JOB entries (100,000 by "
                    "default), and at least one unless columns is given. Cells in input "
                    "columns are ignored; the job needs at least one cell in an enrichment "
                    "column. Duplicates are ignored, and so are cells that already have a "
                    "queued or running task (counted in skippedActive)."
                ),
                "items": _ref("CellRef"),
            },
            "columns": {
                "type": "array",
                "minItems": 1,
                "maxItems": 200,
                "description": (
                    "Whole columns to enrich, every row of each (with cells, if both are "
                    "given): a whole column of a big table without a body listing each cell. "
                    "The cap on cells per job applies to the total."
                ),
                "items": _ref("WholeColumn"),
            },
        },
    },
    "Job": {
        "type": "object",
        "required": [
            "id",
            "tableId",
            "status",
            "backend",
            "runId",
            "total",
            "done",
            "failed",
            "error",
            "dispatchError",
            "createdAt",
            "startedAt",
            "finishedAt",
        ],
        "properties": {
            "id": {"type": "integer"},
            "tableId": {"type": "integer"},
            "status": {
                "type": "string",
                "enum": ["queued", "running", "completed", "failed", "canceled"],
                "description": (
                    "completed, failed and canceled are final. completed means every task "
                    "finished; some cells may still have failed (see failed)."
                ),
            },
            "backend": {"type": "string", "enum": ["local", "trigger"]},
            "runId": _nullable("string", "The Trigger.dev run id when Trigger.dev runs the job."),
            "total": {"type": "integer", "minimum": 0},
            "done": {"type": "integer", "minimum": 0},
            "failed": {"type": "integer", "minimum": 0},
            "error": _nullable("string", "Why the job itself failed."),
            "dispatchError": _nullable(
                "string", "Why Trigger.dev could not take the job, when it fell back to local."
            ),
            "createdAt": {"type": "string", "format": "date-time"},
            "startedAt": _nullable("string", "When the first cell started.", format="date-time"),
            "finishedAt": _nullable(
                "string", "When the job reached a final status.", format="date-time"
            ),
        },
    },
    "JobEnvelope": {
        "type": "object",
        "required": ["job"],
        "properties": {"job": _ref("Job")},
    },
    "EnrichTableResponse": {
        "type": "object",
        "required": ["job", "taskIds", "taskCount", "runId", "publicAccessToken"],
        "properties": {
            "job": _ref("Job"),
            "taskIds": {
                "type": "array",
                "items": {"type": "integer"},
                "maxItems": 1000,
                "description": "The ids of the job's first 1,000 tasks, in creation order "
                "(all of them for a job of up to 1,000 cells); taskCount says how many there are.",
            },
            "taskCount": {
                "type": "integer",
                "minimum": 1,
                "description": "How many tasks (cells to fill) the job has.",
            },
            "runId": _nullable(
                "string", "The Trigger.dev run (run_…), or null when the job runs locally."
            ),
            "publicAccessToken": _nullable(
                "string",
                "A token that can read this one run over Trigger.dev Realtime for 1 hour "
                "(scope read:runs:<runId>), or null when the job runs locally.",
            ),
            "fallbackReason": _nullable(
                "string",
                "Why the job runs locally although Trigger.dev is configured; poll the job instead.",
            ),
            "skippedActive": {
                "type": "integer",
                "minimum": 0,
                "description": "Selected cells left out because they already have an active task.",
            },
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "code"],
                "properties": {
                    "message": {"type": "string", "description": "What went wrong, for people."},
                    "code": {"type": "string", "enum": _ERROR_CODES},
                },
            }
        },
    },
}

_UNAUTHORIZED = UNAUTHORIZED
_id_parameter = id_parameter


def _job_link(operation_id: str, description: str) -> dict[str, Any]:
    """An OpenAPI link from a response holding ``job`` to an operation on that job."""
    return {
        "operationId": operation_id,
        "parameters": {"job_id": "$response.body#/job/id"},
        "description": description,
    }


_DOCUMENT: dict[str, Any] = {
    "openapi": OPENAPI_VERSION,
    "info": {
        "title": "enrichment_app API",
        "version": "1.0.0",
        "description": (
            "Create, fill, read and export tables, and start enrichment jobs on their cells, "
            "follow them and cancel them.\n\n"
            "Authentication: when the server has ENRICHMENT_API_KEY set, every route requires "
            "`Authorization: Bearer <key>`. When it is not set, the routes are open (meant for "
            "local use only).\n\n"
            'Errors always have the shape `{"error": {"message", "code"}}`.'
        ),
    },
    "security": [{"bearerAuth": []}],
    "paths": {
        **TABLE_PATHS,
        **VIEW_PATHS,
        "/api/tables/{table_id}/enrich": {
            "post": {
                "operationId": "enrichTable",
                "summary": "Start enriching cells of a table",
                "description": (
                    "Creates a job with one task per selected enrichment cell and starts it, on "
                    "Trigger.dev when configured (follow it live with runId and "
                    "publicAccessToken) or on the local runner (poll GET /api/jobs/{job_id}).\n\n"
                    "Send an Idempotency-Key to retry safely: the same key with the same table "
                    "and set of cells returns the job the first request created (with the "
                    "header Idempotent-Replayed: true and a fresh publicAccessToken) for 24 "
                    "hours; the same key with a different request is refused with 422."
                ),
                "parameters": [
                    _id_parameter("table_id", "The table's id."),
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "1 to 255 visible ASCII characters; a UUID is a good choice.",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 255,
                            "pattern": "^[!-~]+$",
                        },
                        "example": "run-1",
                    },
                ],
                "requestBody": {"required": True, **_json(_ref("EnrichTableRequest"))},
                "responses": {
                    "202": {
                        "description": "The job was created and handed to its runner.",
                        "headers": {
                            "Idempotent-Replayed": {
                                "schema": {"type": "string", "enum": ["true"]},
                                "description": "Present when an Idempotency-Key replayed an earlier job.",
                            }
                        },
                        **_json(_ref("EnrichTableResponse")),
                        "links": {
                            "GetJob": _job_link("getJob", "Poll the job this request started."),
                            "CancelJob": _job_link("cancelJob", "Cancel the job."),
                        },
                    },
                    "400": _error(
                        "The request is malformed (JSON, types, missing or empty cells, too many "
                        "cells, a bad Idempotency-Key), or the service refused it: no cell in an "
                        "enrichment column, or a column's enricher config is invalid "
                        "(code invalid_input)."
                    ),
                    "401": _UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "503": SETUP_PENDING,
                    "429": RATE_LIMITED,
                    "404": _error("The table, or one of the cells, does not exist."),
                    "409": {
                        "description": (
                            "Every selected cell is already queued or running (cells_busy), or "
                            "another request with this Idempotency-Key is still in progress "
                            "(idempotency_key_in_progress, with Retry-After)."
                        ),
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                        **_json(_ref("Error")),
                    },
                    "413": _error("The request body is too large."),
                    "415": _error("The request body is not sent as application/json."),
                    "422": _error("The Idempotency-Key was already used for a different request."),
                    "500": _error("An unexpected error; the details are in the server's log."),
                },
            }
        },
        "/api/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "Read a job (for polling clients)",
                "parameters": [_id_parameter("job_id", "The job's id.")],
                "responses": {
                    "200": {
                        "description": "The job.",
                        **_json(_ref("JobEnvelope")),
                        "links": {"CancelJob": _job_link("cancelJob", "Cancel the job.")},
                    },
                    "401": _UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "503": SETUP_PENDING,
                    "429": RATE_LIMITED,
                    "404": _error("The job does not exist."),
                    "500": _error("An unexpected error; the details are in the server's log."),
                },
            }
        },
        "/api/jobs/{job_id}/cancel": {
            "post": {
                "operationId": "cancelJob",
                "summary": "Cancel a job",
                "description": (
                    "Unfinished tasks and their cells become canceled; finished cells keep "
                    "their values. Cancelling a job that already finished changes nothing and "
                    "returns it as it is."
                ),
                "parameters": [_id_parameter("job_id", "The job's id.")],
                "responses": {
                    "200": {
                        "description": "The job after cancelling.",
                        **_json(_ref("JobEnvelope")),
                    },
                    "401": _UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "503": SETUP_PENDING,
                    "429": RATE_LIMITED,
                    "404": _error("The job does not exist."),
                    "500": _error("An unexpected error; the details are in the server's log."),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document.",
                        **_json({"type": "object"}),
                    },
                    "401": _UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "503": SETUP_PENDING,
                    "429": RATE_LIMITED,
                },
            }
        },
    },
    "components": {
        "schemas": {**_SCHEMAS, **TABLE_SCHEMAS, **VIEW_SCHEMAS},
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "The value of ENRICHMENT_API_KEY.",
            }
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """A copy of the document (callers may not change the shared one)."""
    return copy.deepcopy(_DOCUMENT)
