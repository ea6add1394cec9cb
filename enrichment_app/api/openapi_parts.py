"""Building blocks of the OpenAPI document, shared by its parts (``openapi``, ``openapi_tables``)."""

from __future__ import annotations

from typing import Any

MAX_ID = 2**63 - 1


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return {"description": description, **json_content(ref("Error"))}


def nullable(type_: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": [type_, "null"], "description": description, **extra}


UNAUTHORIZED = {
    "description": (
        "The bearer token is missing, or is neither a valid personal API token nor the service"
        " key (ENRICHMENT_API_KEY)."
    ),
    "headers": {
        "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge."}
    },
    **json_content(ref("Error")),
}
FORBIDDEN = error(
    "The token's role in the table's workspace is too low for this: a viewer's token reads"
    " and exports; changing anything needs an editor's (deleting a table, an admin's)."
)
SETUP_PENDING = {
    "description": (
        "No account exists yet and no service key is configured: create the owner account in"
        " the app first. Sent with Retry-After."
    ),
    "headers": {"Retry-After": {"schema": {"type": "string"}}},
    **json_content(ref("Error")),
}
RATE_LIMITED = {
    "description": (
        "Too many calls from this client (API_RATE_LIMIT; job starts also JOB_START_RATE_LIMIT) "
        "(rate_limited), or, for a job, today's MAX_CELLS_PER_DAY is used up "
        "(daily_cap_reached). Retry-After says when to try again."
    ),
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    **json_content(ref("Error")),
}

SERVER_ERROR = error("An unexpected error; the details are in the server's log.")


def id_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 1},
        "example": 1,
    }


def common(responses: dict[str, Any]) -> dict[str, Any]:
    """``responses`` plus what every route may answer: 401, 429 and 500."""
    return {
        **responses,
        "401": UNAUTHORIZED,
        "403": FORBIDDEN,
        "429": RATE_LIMITED,
        "500": SERVER_ERROR,
        "503": SETUP_PENDING,
    }
