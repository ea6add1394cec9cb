"""Checking the bodies and queries of the table, row and column routes.

Only the JSON shape is checked here (types, required fields, sizes a request may not exceed);
what the values mean (a name already used, a column the table lacks, a config its enricher
refuses) is for the services, which say it the same way to the page and to the API.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from enrichment_app.api.errors import ApiError
from enrichment_app.api.parsing import kind_of

MAX_COLUMNS = 200
"""As many columns as a CSV import may create."""
MAX_ROWS = 1000
"""Rows per POST, and per page of GET rows."""


@dataclass(frozen=True, slots=True)
class NewTable:
    name: str
    columns: list[str]


@dataclass(frozen=True, slots=True)
class NewColumn:
    name: str
    enricher: str | None
    config: dict[str, Any]


def _object(payload: object, example: str) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise ApiError(
            400,
            "invalid_body",
            f"The request body must be a JSON object like {example}, not {kind_of(payload)}.",
        )
    return payload


def _string(payload: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    if key not in payload or payload[key] is None:
        if required:
            raise ApiError(400, "invalid_body", f'The request body has no "{key}".')
        return None
    value = payload[key]
    if not isinstance(value, str):
        raise ApiError(400, "invalid_body", f'"{key}" must be a string, not {kind_of(value)}.')
    return value


def _unknown(payload: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(payload) - allowed)
    if extra:
        raise ApiError(
            400,
            "invalid_body",
            f"Unknown field {extra[0]!r}; the body may have {', '.join(sorted(allowed))}.",
        )


def parse_new_table(payload: object) -> NewTable:
    """``{"name": "Leads", "columns": ["Company", "Website"]}``."""
    body = _object(payload, '{"name": "Leads", "columns": ["Company"]}')
    _unknown(body, {"name", "columns"})
    name = _string(body, "name")
    assert name is not None
    columns = body.get("columns", [])
    if not isinstance(columns, list):
        raise ApiError(400, "invalid_body", f'"columns" must be an array, not {kind_of(columns)}.')
    if len(columns) > MAX_COLUMNS:
        raise ApiError(
            400,
            "invalid_body",
            f'"columns" lists {len(columns)} columns; a table may have at most {MAX_COLUMNS}.',
        )
    for index, column in enumerate(columns):
        if not isinstance(column, str):
            raise ApiError(
                400,
                "invalid_body",
                f"columns[{index}] must be a column name (a string), not {kind_of(column)}.",
            )
    return NewTable(name=name, columns=list(columns))


def cell_text(value: object, *, where: str) -> str | None:
    """A cell value as sent in JSON: text as it is, numbers and booleans as JSON writes them."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and math.isfinite(value):
        return json.dumps(value)
    raise ApiError(
        400,
        "invalid_body",
        f"{where} must be text, a number, a boolean or null, not {kind_of(value)}.",
    )


def _row(value: object, *, where: str) -> dict[str, str | None]:
    if not isinstance(value, dict):
        raise ApiError(
            400,
            "invalid_body",
            f'{where} must be an object like {{"Company": "Acme"}}, not {kind_of(value)}.',
        )
    return {str(k): cell_text(v, where=f"{where}[{json.dumps(k)}]") for k, v in value.items()}


def parse_new_rows(payload: object) -> list[dict[str, str | None]]:
    """``{"rows": [{"Company": "Acme", "Website": "acme.com"}]}``."""
    body = _object(payload, '{"rows": [{"Company": "Acme"}]}')
    _unknown(body, {"rows"})
    rows = body.get("rows")
    if not isinstance(rows, list):
        raise ApiError(
            400,
            "invalid_body",
            f'"rows" must be an array of objects, not {kind_of(rows)}.',
        )
    if not rows:
        raise ApiError(400, "invalid_body", '"rows" is empty; send at least one row.')
    if len(rows) > MAX_ROWS:
        raise ApiError(
            400,
            "invalid_body",
            f'"rows" lists {len(rows)} rows; send at most {MAX_ROWS} per request.',
        )
    return [_row(row, where=f"rows[{n}]") for n, row in enumerate(rows)]


def parse_row_edit(payload: object) -> dict[str, str | None]:
    """``{"Company": "New name"}``: the input cells to change, by column name."""
    return _row(payload, where="The request body")


def parse_new_column(payload: object) -> NewColumn:
    """``{"name": "Domain", "enricher": "email_domain", "config": {"column": "Email"}}``; with
    no ``enricher``, an input column."""
    body = _object(payload, '{"name": "Domain", "enricher": "email_domain", "config": {...}}')
    _unknown(body, {"name", "enricher", "config"})
    name = _string(body, "name")
    assert name is not None
    enricher = _string(body, "enricher", required=False)
    config = body.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ApiError(400, "invalid_body", f'"config" must be an object, not {kind_of(config)}.')
    if enricher is None and config:
        raise ApiError(
            400,
            "invalid_input",
            'A column without "enricher" is an input column and takes no "config".',
        )
    return NewColumn(name=name, enricher=enricher, config=config)


def query_int(request: Request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if (
        not text.isascii()
        or not text.isdigit()
        or len(text) > 20
        or not (minimum <= int(text) <= maximum)
    ):
        raise ApiError(
            400,
            "invalid_query",
            f"{name} must be a whole number from {minimum} to {maximum}, not {raw[:40]!r}.",
        )
    return int(text)


def query_flag(request: Request, name: str) -> bool:
    """A yes/no query parameter: absent, or one of the values the document lists."""
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw in ("1", "true"):
        return True
    if raw in ("0", "false"):
        return False
    raise ApiError(
        400, "invalid_query", f"{name} must be 1 or 0 (true or false), not {raw[:40]!r}."
    )
