"""The OpenAPI schemas of the table, row and column routes' bodies and answers.

They state what the parsers in ``api/table_parsing.py`` accept, so a request the document
allows is never refused by the parser (the fuzzing checks that).
"""

from __future__ import annotations

from typing import Any

from enrichment_app.api.openapi_parts import nullable, ref
from enrichment_app.api.table_parsing import MAX_COLUMNS, MAX_ROWS
from enrichment_app.enrichers import available_enrichers

CELL_VALUE = {
    "type": ["string", "number", "boolean", "null"],
    "description": "Text; a number or boolean is stored as JSON writes it, null leaves it empty.",
}

TABLE_SCHEMAS: dict[str, Any] = {
    "Column": {
        "type": "object",
        "required": ["id", "name", "kind", "enricher", "config"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": ["input", "enrichment"]},
            "enricher": nullable("string", "The enricher of an enrichment column."),
            "config": {
                "type": "object",
                "description": "The enricher's config; saved credentials read •••.",
            },
            "position": {"type": "integer", "description": "Its place, from 0 (after a change)."},
            "width": nullable("integer", "The width kept for it, in pixels (after a change)."),
        },
    },
    "Table": {
        "type": "object",
        "required": ["id", "name", "rowCount", "columns"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "rowCount": {"type": "integer", "minimum": 0},
            "columns": {"type": "array", "items": ref("Column")},
        },
    },
    "TableEnvelope": {
        "type": "object",
        "required": ["table"],
        "properties": {"table": ref("Table")},
    },
    "TableList": {
        "type": "object",
        "required": ["tables"],
        "properties": {"tables": {"type": "array", "items": ref("Table")}},
    },
    "NewTable": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "examples": [{"name": "Leads", "columns": ["Company", "Website"]}],
        "properties": {
            "name": {"type": "string", "description": "1 to 200 characters."},
            "columns": {
                "type": "array",
                "maxItems": MAX_COLUMNS,
                "items": {"type": "string"},
                "description": "Input column names, each used once (in any case).",
            },
        },
    },
    "RowValues": {
        "type": "object",
        "additionalProperties": CELL_VALUE,
        "description": "Input cells by column name (any case).",
        "examples": [{"Company": "Acme", "Website": "acme.com"}],
    },
    "NewRows": {
        "type": "object",
        "required": ["rows"],
        "additionalProperties": False,
        "examples": [{"rows": [{"Company": "Acme", "Contact email": "ada@acme.com"}]}],
        "properties": {
            "rows": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_ROWS,
                "items": ref("RowValues"),
            }
        },
    },
    "RowIds": {
        "type": "object",
        "required": ["rowIds"],
        "properties": {"rowIds": {"type": "array", "items": {"type": "integer"}}},
    },
    "Cell": {
        "type": "object",
        "required": ["value", "status", "error"],
        "properties": {
            "value": nullable("string", "The value, or null when empty."),
            "status": {
                "type": "string",
                "enum": ["empty", "queued", "running", "done", "error", "canceled"],
            },
            "error": nullable("string", "Why enriching the cell failed."),
        },
    },
    "Row": {
        "type": "object",
        "required": ["id", "cells"],
        "properties": {
            "id": {"type": "integer"},
            "cells": {"type": "object", "additionalProperties": ref("Cell")},
        },
    },
    "RowEnvelope": {"type": "object", "required": ["row"], "properties": {"row": ref("Row")}},
    "RowPage": {
        "type": "object",
        "required": ["rows", "total"],
        "properties": {
            "rows": {"type": "array", "items": ref("Row")},
            "total": {"type": "integer", "minimum": 0},
        },
    },
    "NewColumn": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "examples": [
            {"name": "Domain", "enricher": "email_domain", "config": {"column": "Contact email"}}
        ],
        "properties": {
            "name": {"type": "string"},
            "enricher": {
                "type": ["string", "null"],
                "enum": [*sorted(e.name for e in available_enrichers()), None],
                "description": "Without one, the column is an input column (and takes no config).",
            },
            "config": {
                "type": "object",
                "description": "The enricher's config, at most MAX_CONFIG_BYTES as JSON.",
            },
        },
    },
    "ColumnChange": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "dependentRequired": {"enricher": ["config"]},
        "examples": [
            {"name": "Firm"},
            {"position": 0},
            {"width": 240},
            {"config": {"template": "Hello {Company}"}},
        ],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "position": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
            "width": {
                "type": "integer",
                "minimum": 0,
                "maximum": 2**31 - 1,
                "description": "Pixels, kept between 40 and 2000.",
            },
            "config": {
                "type": "object",
                "description": (
                    "The enrichment column's new config, checked by its enricher as the page's "
                    "column dialog checks it. A credential sent back as ••• (as it reads) keeps "
                    "the saved one; a config holding credentials needs an admin's token."
                ),
            },
            "enricher": {
                "type": "string",
                "description": (
                    "Another enricher for the column, with its config (required with it); "
                    "saved credentials are not carried over to it."
                ),
            },
        },
    },
    "ColumnChanged": {
        "type": "object",
        "required": ["column", "rewritten"],
        "properties": {
            "column": ref("Column"),
            "rewritten": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The columns whose configs now name the new name.",
            },
        },
    },
    "ColumnEnvelope": {
        "type": "object",
        "required": ["column"],
        "properties": {"column": ref("Column")},
    },
}
