"""Reading and checking request input: bounded JSON bodies, ids, the enrich request, headers.

Every refusal is an ``ApiError`` whose message names the offending field, so an API client
can fix its request without reading the server's logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from enrichment_app.api.errors import ApiError
from enrichment_app.domain import CellRef
from enrichment_app.services.task_ranges import RowRanges

MAX_ID = 2**63 - 1
"""Ids are 64-bit signed integers in every database we support; larger ones cannot exist."""
MIN_BODY_BYTES = 64 * 1024
BYTES_PER_CELL = 128
"""Room for one pretty-printed ``{"rowId": …, "columnId": …}`` entry with generous whitespace."""
MAX_IDEMPOTENCY_KEY_CHARS = 255


MAX_WHOLE_COLUMNS = 200
"""At most this many entries in ``columns`` (a table has at most 200 columns from a file)."""


@dataclass(frozen=True, slots=True)
class EnrichRequest:
    cells: tuple[CellRef, ...]
    """The cells as sent (duplicates included; the job service removes them)."""
    columns: tuple[int, ...] = ()
    """Column ids to run for every row of the table (``{"columnId": 4, "rows": "all"}``)."""
    ranges: tuple[RowRanges, ...] = ()
    """Columns run for the rows of a view (Run the view)."""


def max_body_bytes(max_cells: int) -> int:
    """The body cap for an enrich request: enough for ``max_cells`` entries, never below 64 KiB."""
    return max(MIN_BODY_BYTES, max_cells * BYTES_PER_CELL)


def kind_of(value: object) -> str:
    """A JSON type name for messages; the value itself is never echoed back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_body(request: Request, *, limit: int, too_large: ApiError) -> bytes:
    """The raw body, refused with ``too_large`` by ``Content-Length`` or as soon as more than
    ``limit`` bytes have streamed in (nothing past the cap is kept)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str | None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower()


async def read_json_body(
    request: Request,
    *,
    limit: int,
    example: str = '{"cells": [...]}',
    too_large: str = "send fewer cells",
) -> object:
    """The request body parsed as JSON, refusing bodies over ``limit`` bytes before reading them all."""
    kind = media_type(request)
    if kind is not None and kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "Send the request body as application/json.")
    refusal = ApiError(
        413, "body_too_large", f"The request body is larger than {limit} bytes; {too_large}."
    )
    body = await read_body(request, limit=limit, too_large=refusal)
    if not body.strip():
        raise ApiError(400, "malformed_json", f"The request body is empty; send {example} as JSON.")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; so is an integer too long to parse.
        detail = (
            f" ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise ApiError(
            400, "malformed_json", f"The request body is not valid JSON{detail}."
        ) from exc


async def read_column_body(request: Request, *, max_config_bytes: int, example: str) -> object:
    """A column's JSON body (add or change): its config up to ``MAX_CONFIG_BYTES``, with room
    for the name and the enricher besides."""
    return await read_json_body(
        request,
        limit=max_config_bytes + 4096,
        example=example,
        too_large="the config is over MAX_CONFIG_BYTES",
    )


def _positive_id(value: object, *, where: str, code: str = "invalid_cells") -> int:
    # JSON has one number type: 1.0 is the integer 1 (JSON Schema, and so the OpenAPI
    # document, agree), so a whole-number float is read as the integer it is.
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise ApiError(400, code, f"{where} must be a positive integer, not {kind_of(value)}.")
    if not 1 <= value <= MAX_ID:
        raise ApiError(400, code, f"{where} must be a positive integer below 2^63.")
    return value


def parse_enrich_request(payload: object, *, max_cells: int) -> EnrichRequest:
    """Check the body of ``POST /api/tables/{id}/enrich``: ``{"cells": [{"rowId", "columnId"},
    …]}``, ``{"columns": [{"columnId", "rows": "all"}, …]}`` (a whole column, however many
    rows: no body of 100,000 cells needed), or both."""
    if not isinstance(payload, dict):
        raise ApiError(
            400,
            "invalid_body",
            f'The request body must be a JSON object like {{"cells": [...]}}, not {kind_of(payload)}.',
        )
    if "cells" not in payload and "columns" not in payload:
        raise ApiError(
            400,
            "invalid_body",
            'The request body has no "cells": send {"cells": [{"rowId": 1, "columnId": 2}]}, '
            'or {"columns": [{"columnId": 2, "rows": "all"}]} for every row of a column.',
        )
    columns = _whole_columns(payload["columns"]) if "columns" in payload else ()
    if "cells" not in payload:
        return EnrichRequest(cells=(), columns=columns)
    cells = payload["cells"]
    if not isinstance(cells, list):
        raise ApiError(400, "invalid_cells", f'"cells" must be an array, not {kind_of(cells)}.')
    if not cells and not columns:
        raise ApiError(
            400, "empty_selection", '"cells" is empty; list at least one cell to enrich.'
        )
    if len(cells) > max_cells:
        raise ApiError(
            400,
            "too_many_cells",
            f'"cells" lists {len(cells)} cells; one job can run at most {max_cells}. Send fewer cells.',
        )
    refs: list[CellRef] = []
    for index, item in enumerate(cells):
        where = f"cells[{index}]"
        if not isinstance(item, dict):
            raise ApiError(
                400,
                "invalid_cells",
                f'{where} must be an object like {{"rowId": 1, "columnId": 2}}, not {kind_of(item)}.',
            )
        for name in ("rowId", "columnId"):
            if name not in item:
                raise ApiError(400, "invalid_cells", f'{where} has no "{name}".')
        refs.append(
            CellRef(
                row_id=_positive_id(item["rowId"], where=f"{where}.rowId"),
                column_id=_positive_id(item["columnId"], where=f"{where}.columnId"),
            )
        )
    return EnrichRequest(cells=tuple(refs), columns=columns)


def _whole_columns(columns: object) -> tuple[int, ...]:
    """``"columns": [{"columnId": 4, "rows": "all"}, …]``: the column ids."""
    if not isinstance(columns, list):
        raise ApiError(
            400, "invalid_columns", f'"columns" must be an array, not {kind_of(columns)}.'
        )
    if not columns:
        raise ApiError(
            400, "empty_selection", '"columns" is empty; list at least one column to enrich.'
        )
    if len(columns) > MAX_WHOLE_COLUMNS:
        raise ApiError(
            400,
            "invalid_columns",
            f'"columns" lists {len(columns)} columns; at most {MAX_WHOLE_COLUMNS} are allowed.',
        )
    ids: list[int] = []
    for index, item in enumerate(columns):
        where = f"columns[{index}]"
        if not isinstance(item, dict):
            raise ApiError(
                400,
                "invalid_columns",
                f'{where} must be an object like {{"columnId": 2, "rows": "all"}}, '
                f"not {kind_of(item)}.",
            )
        if "columnId" not in item:
            raise ApiError(400, "invalid_columns", f'{where} has no "columnId".')
        if item.get("rows") != "all":
            raise ApiError(
                400,
                "invalid_columns",
                f'{where}.rows must be "all" (every row of the column); list single cells in '
                '"cells" instead.',
            )
        ids.append(
            _positive_id(item["columnId"], where=f"{where}.columnId", code="invalid_columns")
        )
    return tuple(ids)


def path_id(request: Request, name: str, *, what: str) -> int:
    """An ``{name:int}`` path parameter; one no database could hold is simply not found."""
    value = request.path_params[name]
    assert isinstance(value, int)
    if not 1 <= value <= MAX_ID:
        raise ApiError(404, "not_found", f"{what} {value} does not exist.")
    return value


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header: 1 to 255 visible ASCII characters, or absent."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_CHARS or not all("!" <= ch <= "~" for ch in key):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters "
            "(a UUID is a good choice).",
        )
    return key
