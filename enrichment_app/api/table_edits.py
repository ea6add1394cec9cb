"""The REST routes for what the page does to rows and columns beyond issue 9's: delete a row;
rename, move, resize a column, or change its config and enricher (the column dialog's edit).
They call the page's services with the page's messages and its access rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from enrichment_app.api.errors import NO_STORE, ApiError
from enrichment_app.api.parsing import path_id, read_column_body
from enrichment_app.api.tables import column_json
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.errors import InvalidInputError
from enrichment_app.runtime import Runtime
from enrichment_app.services import (
    audit,
    columns as column_service,
    credentials,
    row_edits,
    tables as table_service,
)
from enrichment_app.services.access import Action, Grant
from enrichment_app.services.audit import Audited

if TYPE_CHECKING:
    from enrichment_app.api.callers import Caller

CHANGE_KEYS = ("name", "position", "width", "config", "enricher")


def parse_column_change(payload: object) -> dict[str, Any]:
    """``{"name": str, "position": int, "width": int, "config": {…}, "enricher": str}``, any of
    them, at least one; a new enricher comes with its config."""
    if not isinstance(payload, dict) or not payload:
        raise ApiError(
            400,
            "invalid_body",
            'Send what to change, like {"name": "Firm"}, {"position": 0}, {"width": 240} or '
            '{"config": {"template": "Hi {Name}"}}.',
        )
    unknown = sorted(str(k) for k in payload if k not in CHANGE_KEYS)
    if unknown:
        raise ApiError(
            400,
            "invalid_body",
            f"Unknown field {', '.join(repr(k) for k in unknown)}; a column change may set "
            "name, position, width, config and enricher.",
        )
    for key in ("name", "enricher"):
        if key in payload and not isinstance(payload[key], str):
            raise ApiError(400, "invalid_body", f"'{key}' must be a string.")
    if "config" in payload and not isinstance(payload["config"], dict):
        raise ApiError(400, "invalid_body", "'config' must be a JSON object.")
    if "enricher" in payload and "config" not in payload:
        raise ApiError(
            400, "invalid_body", "Send the new enricher's 'config' with it (GET it from the table)."
        )
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
    session: Session,
    *,
    runtime: Runtime,
    grant: Grant,
    table_id: int,
    column_id: int,
    change: dict[str, Any],
) -> dict[str, Any]:
    """Every change in one unit of work: one refused, none is made."""
    rewritten: list[str] = []
    if "config" in change:
        try:
            table_service.update_column_config(
                session,
                table_id=table_id,
                column_id=column_id,
                config=change["config"],
                box=runtime.secret_box,
                max_config_bytes=runtime.settings.max_config_bytes,
                enricher_name=change.get("enricher"),
            )
        except InvalidInputError as exc:  # the enricher refused it: the dialog's own message
            raise ApiError(422, "invalid_config", exc.message) from exc
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
        detail=f"'{column.name}' ({column.enricher or 'input'}): {', '.join(sorted(change))}",
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
    payload = await read_column_body(
        request, max_config_bytes=runtime.settings.max_config_bytes, example='{"name": "Firm"}'
    )
    change = parse_column_change(payload)
    if "config" in change and await _holds_credentials(runtime, table_id, column_id, change):
        # Credentials are an admin's to save, as on the page (the same rule, another action).
        grant = await caller.authorize(table_id=table_id, action=Action.SAVE_CREDENTIALS)
    body = await in_transaction(
        runtime.open_session,
        _change_column,
        runtime=runtime,
        grant=grant,
        table_id=table_id,
        column_id=column_id,
        change=change,
    )
    return JSONResponse(body, headers=NO_STORE)


async def _holds_credentials(
    runtime: Runtime, table_id: int, column_id: int, change: dict[str, Any]
) -> bool:
    """Whether the new config has a credential in it (``•••`` for a kept one counts)."""
    enricher = change.get("enricher")
    if enricher is None:
        column = await in_session(
            runtime.open_session, column_service.get_column, table_id=table_id, column_id=column_id
        )
        enricher = column.enricher
    return bool(credentials.secret_paths(enricher, change["config"]))


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
