"""The OpenAPI paths of the table, row and column routes (``api/tables.py``); their schemas are
in ``api/openapi_table_schemas.py``.

The schemas state what the parsers in ``api/table_parsing.py`` accept, so a request the
document allows is never refused by the parser (the fuzzing checks that); what the services
may still refuse (a name already used, a column the table lacks) is a 400 ``invalid_input``.
"""

from __future__ import annotations

from typing import Any

from enrichment_app.api.openapi_parts import (
    common,
    error,
    id_parameter,
    json_content,
    ref,
)
from enrichment_app.api.openapi_views import VIEW_PARAMETERS
from enrichment_app.api.table_parsing import MAX_ROWS

TABLE = id_parameter("table_id", "The table's id.")
NOT_FOUND = error("The table (or the row or column) does not exist.")
BAD_REQUEST = error(
    "The body or query is malformed (invalid_body, invalid_query, malformed_json), or the "
    "service refused it (invalid_input): a name that is empty, too long or already used, a "
    "column the table lacks or that is an enrichment column, a config its enricher refuses."
)
TOO_LARGE = error("The request body is too large.")
NOT_JSON = error("The request body is not sent as application/json.")


def _body(name: str) -> dict[str, Any]:
    return {"required": True, **json_content(ref(name))}


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, **json_content(ref(schema))}


NO_CONTENT = {"description": "Deleted."}
IN_USE = error("Something still needs it: a running job, or a column whose config reads it.")

TABLE_PATHS: dict[str, Any] = {
    "/api/tables": {
        "get": {
            "operationId": "listTables",
            "summary": "List the tables, with their columns and row counts",
            "responses": common({"200": _ok("The tables.", "TableList")}),
        },
        "post": {
            "operationId": "createTable",
            "summary": "Create an empty table with input columns",
            "requestBody": _body("NewTable"),
            "responses": common(
                {
                    "201": _ok("The table.", "TableEnvelope"),
                    "400": BAD_REQUEST,
                    "413": TOO_LARGE,
                    "415": NOT_JSON,
                }
            ),
        },
    },
    "/api/tables/import": {
        "post": {
            "operationId": "importTable",
            "summary": "Create a table from a CSV file (the body)",
            "description": (
                "The body is the file itself, sent as text/csv (UTF-8; comma, semicolon or tab "
                "separated; the header row names the columns), at most MAX_CSV_BYTES. The same "
                "checks and messages as the tables page's import; nothing is stored on a refusal."
            ),
            "parameters": [
                {
                    "name": "name",
                    "in": "query",
                    "required": False,
                    "description": 'The table\'s name ("Imported table" by default).',
                    "schema": {"type": "string", "maxLength": 200},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            "responses": common(
                {
                    "201": _ok("The table.", "TableEnvelope"),
                    "400": error(
                        "The file cannot be imported (invalid_csv, with what is wrong), or the "
                        "name is refused (invalid_input)."
                    ),
                    "413": error("The file is larger than MAX_CSV_BYTES."),
                    "415": error("The body is not sent as text/csv."),
                }
            ),
        }
    },
    "/api/tables/{table_id}": {
        "delete": {
            "operationId": "deleteTable",
            "summary": "Delete a table with its rows, columns and jobs",
            "parameters": [TABLE],
            "responses": common(
                {"204": NO_CONTENT, "404": NOT_FOUND, "409": error("A job is running on it.")}
            ),
        }
    },
    "/api/tables/{table_id}/rows": {
        "get": {
            "operationId": "listRows",
            "summary": "Read rows, in the table's order or a view's (f, s, q)",
            "parameters": [
                TABLE,
                *VIEW_PARAMETERS,
                {
                    "name": "offset",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0, "maximum": 2**62, "default": 0},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_ROWS,
                        "default": 100,
                    },
                },
            ],
            "responses": common(
                {
                    "200": _ok("The rows, and how many the table (or view) has.", "RowPage"),
                    "400": error(
                        "offset or limit out of range (invalid_query), or the view is refused "
                        "(invalid_input, saying what to fix)."
                    ),
                    "404": NOT_FOUND,
                }
            ),
        },
        "post": {
            "operationId": "addRows",
            "summary": "Append rows (a webhook's target)",
            "description": (
                "All or nothing: a row naming a column the table lacks, or an enrichment "
                "column, is refused with a message naming it, and no row is added."
            ),
            "parameters": [TABLE],
            "requestBody": _body("NewRows"),
            "responses": common(
                {
                    "201": _ok("The new rows' ids, in order.", "RowIds"),
                    "400": BAD_REQUEST,
                    "404": NOT_FOUND,
                    "413": TOO_LARGE,
                    "415": NOT_JSON,
                }
            ),
        },
    },
    "/api/tables/{table_id}/rows/{row_id}": {
        "patch": {
            "operationId": "editRow",
            "summary": "Change input cells of a row",
            "parameters": [TABLE, id_parameter("row_id", "The row's id.")],
            "requestBody": _body("RowValues"),
            "responses": common(
                {
                    "200": _ok("The row as stored.", "RowEnvelope"),
                    "400": BAD_REQUEST,
                    "404": NOT_FOUND,
                    "413": TOO_LARGE,
                    "415": NOT_JSON,
                }
            ),
        },
        "delete": {
            "operationId": "deleteRow",
            "summary": "Delete a row and its cells",
            "description": "Refused with 409 (in_use) while a cell of the row is queued or running.",
            "parameters": [TABLE, id_parameter("row_id", "The row's id.")],
            "responses": common({"204": NO_CONTENT, "404": NOT_FOUND, "409": IN_USE}),
        },
    },
    "/api/tables/{table_id}/columns": {
        "post": {
            "operationId": "addColumn",
            "summary": "Add a column at the right",
            "parameters": [TABLE],
            "requestBody": _body("NewColumn"),
            "responses": common(
                {
                    "201": _ok("The column; saved credentials read •••.", "ColumnEnvelope"),
                    "400": BAD_REQUEST,
                    "404": NOT_FOUND,
                    "413": TOO_LARGE,
                    "415": NOT_JSON,
                }
            ),
        }
    },
    "/api/tables/{table_id}/columns/{column_id}": {
        "delete": {
            "operationId": "deleteColumn",
            "summary": "Delete a column and its cells",
            "description": (
                "Refused with 409 (in_use) while another column's config reads it, naming "
                "that column, or while its cells are queued or running."
            ),
            "parameters": [TABLE, {**id_parameter("column_id", "The column's id."), "example": 4}],
            "responses": common({"204": NO_CONTENT, "404": NOT_FOUND, "409": IN_USE}),
        },
        "patch": {
            "operationId": "changeColumn",
            "summary": "Rename, move, resize or reconfigure a column",
            "description": (
                "A new name is written into the configs that read the column ({Old} becomes "
                "{New}), which rewritten lists. A move that would put a column right of one "
                "that reads it is refused (400). A config the enricher refuses is refused "
                "(422, invalid_config). The changes are made together or not at all."
            ),
            "parameters": [TABLE, {**id_parameter("column_id", "The column's id."), "example": 4}],
            "requestBody": _body("ColumnChange"),
            "responses": common(
                {
                    "200": _ok("The column as stored.", "ColumnChanged"),
                    "400": BAD_REQUEST,
                    "404": NOT_FOUND,
                    "413": TOO_LARGE,
                    "415": NOT_JSON,
                    "422": error(
                        "The enricher refused the config, or ••• stands for a credential that "
                        "is not saved (invalid_config); nothing was changed."
                    ),
                }
            ),
        },
    },
    "/api/tables/{table_id}/export.csv": {
        "get": {
            "operationId": "exportTable",
            "summary": "Download the table as CSV",
            "description": (
                "Values a spreadsheet would run as formulas (starting with = + - @, a tab or "
                "CR) get a leading ' unless raw=1; the file is named after the table, with "
                "' (raw)' for a raw export (Content-Disposition)."
            ),
            "parameters": [
                TABLE,
                {
                    "name": "raw",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
                },
            ],
            "responses": common(
                {
                    "200": {
                        "description": "The CSV file.",
                        "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    "400": error("raw is not 1 or 0 (invalid_query)."),
                    "404": NOT_FOUND,
                }
            ),
        }
    },
}
