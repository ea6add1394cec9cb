"""The table, row and column routes: HTTP in, the services' work, JSON out.

Each handler gets the request and the ``Runtime`` (the key and the rate limit already checked
by ``app.py``), reads its input with ``table_parsing``, calls the same service the page calls,
and shapes the answer. Refusals come from the services as ``EnrichmentAppError``s and leave as
the API's JSON errors (``callers.Gate.endpoint``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from enrichment_app.api.errors import NO_STORE, ApiError
from enrichment_app.api.parsing import media_type, path_id, read_column_body, read_json_body
from enrichment_app.api.table_parsing import (
    MAX_ROWS,
    parse_new_column,
    parse_new_rows,
    parse_new_table,
    parse_row_edit,
    query_flag,
    query_int,
)
from enrichment_app.api.view_routes import query_view
from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import DEFAULT_WORKSPACE_ID, DataTable, TableColumn
from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import ColumnKind
from enrichment_app.runtime import Runtime
from enrichment_app.services import (
    audit,
    columns as column_service,
    credentials,
    csv_export,
    csv_files,
    csv_import,
    rows as row_service,
    tables as table_service,
)
from enrichment_app.services.access import Action, Grant, TokenPrincipal
from enrichment_app.services.audit import Audited
from enrichment_app.services.credentials import masked_config
from enrichment_app.services.transfer import Spool

if TYPE_CHECKING:
    from enrichment_app.api.callers import Caller

SMALL_BODY_BYTES = 64 * 1024
CSV_TYPES = {"text/csv", "application/csv", "text/plain"}


def _json(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers=NO_STORE)


def column_json(column: TableColumn) -> dict[str, Any]:
    """A column as the API shows it; saved credentials in its config read ``•••``."""
    return {
        "id": column.id,
        "name": column.name,
        "kind": column.kind,
        "enricher": column.enricher,
        "config": masked_config(column.config),
    }


def table_json(
    table_id: int, name: str, row_count: int, columns: list[TableColumn]
) -> dict[str, Any]:
    return {
        "id": table_id,
        "name": name,
        "rowCount": row_count,
        "columns": [column_json(c) for c in columns],
    }


def _row_json(row: row_service.RowCells) -> dict[str, Any]:
    return {
        "id": row.id,
        "cells": {
            name: {"value": value, "status": status, "error": error}
            for name, (value, status, error) in row.cells.items()
        },
    }


def workspace_asked(caller: Caller, request: Request) -> int | None:
    """The workspace a request is about: a personal token's own; for the service key the
    ``workspace`` query parameter, else None (listing) or the default workspace (creating)."""
    if isinstance(caller.principal, TokenPrincipal):
        return caller.principal.workspace_id
    raw = request.query_params.get("workspace")
    if raw is None:
        return None
    return query_int(request, "workspace", default=DEFAULT_WORKSPACE_ID, minimum=1, maximum=2**62)


def _tables(session: Session, *, workspace_id: int | None) -> list[dict[str, Any]]:
    columns = column_service.columns_by_table(session)
    return [
        table_json(t.id, t.name, t.rows, columns.get(t.id, []))
        for t in table_service.list_tables(session, workspace_id=workspace_id)
    ]


def _one_table(session: Session, *, table: DataTable) -> dict[str, Any]:
    assert table.id is not None
    page = row_service.read_rows(session, table_id=table.id, offset=0, limit=1)
    columns = table_service.list_columns(session=session, table_id=table.id)
    return table_json(table.id, table.name, page.total, columns)


def _create_table(
    session: Session, *, grant: Grant, name: str, columns: list[str], max_cell_chars: int
) -> dict[str, Any]:
    table = table_service.create_table(
        session=session,
        name=name,
        columns=[table_service.ColumnSpec(name=c) for c in columns],
        rows=[],
        max_cell_chars=max_cell_chars,
        workspace_id=grant.workspace_id,
    )
    session.flush()
    assert table.id is not None
    audit.record_on_table(
        session, grant=grant, action=Audited.TABLE_CREATE, table_id=table.id, label=table.name
    )
    return _one_table(session, table=table)


def _import(
    session: Session, *, grant: Grant, name: str, spool: Spool, max_cell_chars: int
) -> dict[str, Any]:
    table = csv_import.import_csv_stream(
        session,
        name=name,
        chunks=spool.chunks(),
        max_bytes=spool.max_bytes,
        max_cell_chars=max_cell_chars,
        workspace_id=grant.workspace_id,
    )
    session.flush()
    assert table.id is not None
    audit.record_on_table(
        session, grant=grant, action=Audited.TABLE_IMPORT, table_id=table.id, label=table.name
    )
    return _one_table(session, table=table)


async def _workspace_grant(caller: Caller, request: Request) -> Grant:
    """Creating a table: in the token's workspace, or (service key) ``?workspace=``/default."""
    workspace_id = workspace_asked(caller, request) or DEFAULT_WORKSPACE_ID
    return await caller.authorize(workspace_id=workspace_id)


async def list_tables(caller: Caller, request: Request) -> Response:
    """The token's workspace's tables (the service key: every workspace's, or ``?workspace=``)."""
    runtime = caller.runtime
    workspace_id = workspace_asked(caller, request)
    if workspace_id is None:
        await caller.authorize_any()  # the service key: an owner of every workspace
    else:
        await caller.authorize(workspace_id=workspace_id)
    found = await in_session(runtime.open_session, _tables, workspace_id=workspace_id)
    return _json({"tables": found})


async def create_table(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    grant = await _workspace_grant(caller, request)
    payload = await read_json_body(
        request,
        limit=SMALL_BODY_BYTES,
        example='{"name": "Leads", "columns": ["Company"]}',
        too_large="send fewer or shorter column names",
    )
    new = parse_new_table(payload)
    table = await in_transaction(
        runtime.open_session,
        _create_table,
        grant=grant,
        name=new.name,
        columns=new.columns,
        max_cell_chars=runtime.settings.max_cell_chars,
    )
    return _json({"table": table}, 201)


async def delete_table(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    table_id = path_id(request, "table_id", what="Table")
    grant = await caller.authorize(table_id=table_id)
    await in_transaction(runtime.open_session, _delete_table, grant=grant, table_id=table_id)
    return Response(status_code=204, headers=NO_STORE)


async def add_rows(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    table_id = path_id(request, "table_id", what="Table")
    await caller.authorize(table_id=table_id)
    payload = await read_json_body(
        request,
        limit=runtime.settings.max_csv_bytes,
        example='{"rows": [{"Company": "Acme"}]}',
        too_large="send fewer rows per request",
    )
    rows = parse_new_rows(payload)
    row_ids = await in_transaction(
        runtime.open_session,
        row_service.append_rows,
        table_id=table_id,
        rows=rows,
        max_cell_chars=runtime.settings.max_cell_chars,
    )
    return _json({"rowIds": row_ids}, 201)


async def edit_row(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    table_id = path_id(request, "table_id", what="Table")
    await caller.authorize(table_id=table_id)
    row_id = path_id(request, "row_id", what="Row")
    payload = await read_json_body(
        request,
        limit=max(SMALL_BODY_BYTES, 8 * runtime.settings.max_cell_chars),
        example='{"Company": "Acme"}',
        too_large="change fewer or shorter values",
    )
    row = await in_transaction(
        runtime.open_session,
        row_service.edit_row,
        table_id=table_id,
        row_id=row_id,
        values=parse_row_edit(payload),
        max_cell_chars=runtime.settings.max_cell_chars,
    )
    return _json({"row": _row_json(row)})


async def list_rows(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    table_id = path_id(request, "table_id", what="Table")
    await caller.authorize(table_id=table_id)
    offset = query_int(request, "offset", default=0, minimum=0, maximum=2**62)
    limit = query_int(request, "limit", default=100, minimum=1, maximum=MAX_ROWS)
    page = await in_session(
        runtime.open_session,
        row_service.read_rows,
        table_id=table_id,
        offset=offset,
        limit=limit,
        view=query_view(request),
    )
    return _json({"rows": [_row_json(r) for r in page.rows], "total": page.total})


def _add_column(
    session: Session,
    runtime: Runtime,
    *,
    grant: Grant,
    table_id: int,
    name: str,
    enricher: str | None,
    config: dict[str, Any],
) -> dict[str, Any]:
    kind = ColumnKind.INPUT if enricher is None else ColumnKind.ENRICHMENT
    spec = table_service.ColumnSpec(name=name, kind=kind, enricher=enricher, config=config)
    column = table_service.add_column(
        session,
        table_id=table_id,
        spec=spec,
        box=runtime.secret_box,
        max_config_bytes=runtime.settings.max_config_bytes,
    )
    session.flush()
    audit.record_on_table(
        session,
        grant=grant,
        action=Audited.COLUMN_ADD,
        table_id=table_id,
        detail=f"'{column.name}' ({enricher or 'input'})",
    )
    return column_json(column)


async def add_column(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    table_id = path_id(request, "table_id", what="Table")
    grant = await caller.authorize(table_id=table_id)
    payload = await read_column_body(
        request,
        max_config_bytes=runtime.settings.max_config_bytes,
        example='{"name": "Domain", "enricher": "email_domain", "config": {"column": "Email"}}',
    )
    new = parse_new_column(payload)
    if credentials.secret_paths(new.enricher, new.config):  # credentials: an admin's to save
        grant = await caller.authorize(table_id=table_id, action=Action.SAVE_CREDENTIALS)
    column = await in_transaction(
        runtime.open_session,
        lambda session: _add_column(
            session,
            runtime,
            grant=grant,
            table_id=table_id,
            name=new.name,
            enricher=new.enricher,
            config=new.config,
        ),
    )
    return _json({"column": column}, 201)


async def delete_column(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    table_id = path_id(request, "table_id", what="Table")
    column_id = path_id(request, "column_id", what="Column")
    grant = await caller.authorize(table_id=table_id)
    await in_transaction(
        runtime.open_session, _delete_column, grant=grant, table_id=table_id, column_id=column_id
    )
    return Response(status_code=204, headers=NO_STORE)


def _delete_table(session: Session, *, grant: Grant, table_id: int) -> None:
    label = audit.table_label(session, table_id)
    table_service.delete_table(session, table_id=table_id)
    audit.record_on_table(
        session, grant=grant, action=Audited.TABLE_DELETE, table_id=table_id, label=label
    )


def _delete_column(session: Session, *, grant: Grant, table_id: int, column_id: int) -> None:
    column_service.delete_column(session, table_id=table_id, column_id=column_id)
    audit.record_on_table(
        session,
        grant=grant,
        action=Audited.COLUMN_DELETE,
        table_id=table_id,
        detail=f"column {column_id}",
    )


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact UTF-8 one (RFC 6266)."""
    fallback = "".join(ch if ch.isascii() and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def _export_name(session: Session, *, grant: Grant, table_id: int, raw: bool) -> str:
    """The download's file name; the export is noted in the audit log as it starts."""
    name = csv_files.start_export(session, grant=grant, table_id=table_id, raw=raw)
    return table_service.export_filename(name, raw=raw)


def _export_pieces(open_session: SessionFactory, *, table_id: int, raw: bool) -> Iterator[bytes]:
    """The table as CSV, a batch of rows per piece, read in a session of its own (Starlette
    runs each step of a plain iterator on a worker thread)."""
    with open_session() as session:
        for piece in csv_export.iter_csv(session, table_id=table_id, raw=raw):
            yield piece.encode("utf-8")


async def export_csv(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    table_id = path_id(request, "table_id", what="Table")
    raw = query_flag(request, "raw")
    grant = await caller.authorize(table_id=table_id)
    filename = await in_transaction(
        runtime.open_session, _export_name, grant=grant, table_id=table_id, raw=raw
    )
    return StreamingResponse(
        _export_pieces(runtime.open_session, table_id=table_id, raw=raw),
        media_type="text/csv; charset=utf-8",
        headers={**NO_STORE, "Content-Disposition": content_disposition(filename)},
    )


async def import_csv(caller: Caller, request: Request) -> Response:
    runtime = caller.runtime
    grant = await _workspace_grant(caller, request)
    kind = media_type(request)
    if kind not in CSV_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the CSV file itself as the request body, with Content-Type: text/csv.",
        )
    name = (request.query_params.get("name") or "").strip() or "Imported table"
    limit = runtime.settings.max_csv_bytes
    refusal = ApiError(413, "body_too_large", csv_import.too_large(limit))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise refusal
    # The body is kept as it streams in (on disk past 1 MiB), then imported from there in one
    # transaction: memory stays bounded, and a slow client holds no database lock.
    spool = Spool(max_bytes=limit)
    try:
        async for chunk in request.stream():
            if not spool.write(chunk):
                raise refusal
        table = await in_transaction(
            runtime.open_session,
            _import,
            grant=grant,
            name=name,
            spool=spool,
            max_cell_chars=runtime.settings.max_cell_chars,
        )
    finally:
        spool.close()
    return _json({"table": table}, 201)
