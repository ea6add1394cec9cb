"""The REST routes for what the page does to rows and columns beyond issue 9's: delete a row,
rename, move or resize a column. They call the page's services with the page's messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from enrichment_app.api.errors import NO_STORE, ApiError
from enrichment_app.api.parsing import path_id, read_json_body
from enrichment_app.api.tables import column_json
from enrichment_app.db.sessions import in_transaction
from enrichment_app.services import audit, columns as column_service, row_edits
from enrichment_app.services.access import Grant
from enrichment_app.services.audit import Audited

if TYPE_CHECKING:
    from enrichment_app.api.callers import Caller

CHANGE_KEYS = ("name", "position", "width")


def parse_column_change(payload: object) -> dict[str, Any]:
    """``{"name": str, "position": int, "width": int}``, any of them, at least one."""
    if not isinstance(payload, dict) or not payload:
        raise ApiError(
            400,
            "invalid_body",
            'Send what to change, like {"name": "Firm"}, {"position": 0} or {"width": 240}.',
        )
    unknown = sorted(str(k) for k in payload if k not in CHANGE_KEYS)
    if unknown:
        raise ApiError(
            400,
            "invalid_body",
            f"Unknown field {', '.join(repr(k) for k in unknown)}; a column change may set "
            "name, position and width.",
        )
    if "name" in payload and not isinstance(payload["name"], str):
        raise ApiError(400, "invalid_body", "'name' must be a string.")
    change = dict(payload)
    for key in ("position", "width"):
        value = payload.get(key)
        if isinstance(value, float) and value.is_integer():
            value = change[key] = int(value)  # 240.0 is a whole number in JSON
        if key in payload and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31
        ):
            raise ApiError(400, "invalid_body", f"'{key}' must be a whole number, 0 or more.")
    return change


def _change_column(
    session: Session, *, grant: Grant, table_id: int, column_id: int, change: dict[str, Any]
) -> dict[str, Any]:
    rewritten: list[str] = []
    if "name" in change:
        rewritten = column_service.rename_column(
            session, table_id=table_id, column_id=column_id, name=change["name"]
        )
    if "position" in change:
        column_service.move_column(
            session, table_id=table_id, column_id=column_id, to=change["position"]
        )
    if "width" in change:
        column_service.set_column_width(
            session, table_id=table_id, column_id=column_id, width=change["width"]
        )
    column = column_service.get_column(session, table_id=table_id, column_id=column_id)
    audit.record_on_table(
        session,
        grant=grant,
        action=Audited.COLUMN_CHANGE,
        table_id=table_id,
        detail=f"'{column.name}': {', '.join(sorted(change))}",
    )
    return {
        "column": {**column_json(column), "position": column.position, "width": column.width},
        "rewritten": rewritten,
    }


async def change_column(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    table_id = path_id(request, "table_id", what="Table")
    column_id = path_id(request, "column_id", what="Column")
    grant = await caller.authorize(table_id=table_id)
    payload = await read_json_body(
        request, limit=16 * 1024, example='{"name": "Firm"}', too_large="send a shorter name"
    )
    body = await in_transaction(
        runtime.open_session,
        _change_column,
        grant=grant,
        table_id=table_id,
        column_id=column_id,
        change=parse_column_change(payload),
    )
    return JSONResponse(body, headers=NO_STORE)


def _delete_row(session: Session, *, grant: Grant, table_id: int, row_id: int) -> None:
    row_edits.delete_rows(session, table_id=table_id, row_ids=[row_id])
    audit.record_on_table(
        session,
        grant=grant,
        action=Audited.ROW_EDIT,
        table_id=table_id,
        detail=f"row {row_id} deleted",
    )


async def delete_row(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    table_id = path_id(request, "table_id", what="Table")
    row_id = path_id(request, "row_id", what="Row")
    grant = await caller.authorize(table_id=table_id)
    await in_transaction(
        runtime.open_session, _delete_row, grant=grant, table_id=table_id, row_id=row_id
    )
    return Response(status_code=204, headers=NO_STORE)
