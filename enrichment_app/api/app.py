"""The REST API: a plain Starlette app the Reflex backend mounts itself under (``api_transformer``).

This module is the route table: every path under ``/api``, its methods and the action each
is declared with (documented in ``openapi.py``; ``docs/api.md`` is the guide). Who may call a
route, the rate limits and the error shape are ``callers.py``'s; the handlers live in
``tables.py`` and ``table_edits.py`` (tables, rows, columns), ``job_routes.py`` (jobs) and
``auth_routes.py`` (``/auth``).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from enrichment_app.api import table_edits, tables
from enrichment_app.api.auth_routes import auth_routes
from enrichment_app.api.callers import Gate, RuntimeProvider, TableHandler
from enrichment_app.api.errors import error_response
from enrichment_app.api.job_routes import JobRoutes
from enrichment_app.services.access import Action


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (unknown path, wrong method) in the API's error shape."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {
        404: f"There is no API route at {request.url.path}; see /api/openapi.json.",
        405: f"{request.method} is not allowed on {request.url.path}; see /api/openapi.json.",
    }.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, code, message, headers=exc.headers)


def api_routes(gate: Gate, jobs: JobRoutes) -> list[BaseRoute]:
    def resource(path: str, **handlers: tuple[TableHandler, Action]) -> Route:
        """One route per path, whatever its methods, so that a 405 lists them all in Allow;
        each method is its own endpoint, declared with its action."""
        endpoints = {
            method.upper(): gate.endpoint(gate.bind(handler), action)
            for method, (handler, action) in handlers.items()
        }

        async def by_method(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await endpoints[method](request)

        by_method.actions = {m: e.action for m, e in endpoints.items()}  # type: ignore[attr-defined]
        return Route(path, by_method, methods=list(endpoints))

    return [
        resource(
            "/tables",
            get=(tables.list_tables, Action.VIEW),
            post=(tables.create_table, Action.CREATE_TABLE),
        ),
        resource("/tables/import", post=(tables.import_csv, Action.CREATE_TABLE)),
        resource("/tables/{table_id:int}", delete=(tables.delete_table, Action.DELETE_TABLE)),
        resource(
            "/tables/{table_id:int}/rows",
            get=(tables.list_rows, Action.VIEW),
            post=(tables.add_rows, Action.EDIT),
        ),
        resource(
            "/tables/{table_id:int}/rows/{row_id:int}",
            patch=(tables.edit_row, Action.EDIT),
            delete=(table_edits.delete_row, Action.EDIT),
        ),
        resource("/tables/{table_id:int}/columns", post=(tables.add_column, Action.EDIT_COLUMNS)),
        resource(
            "/tables/{table_id:int}/columns/{column_id:int}",
            delete=(tables.delete_column, Action.EDIT_COLUMNS),
            patch=(table_edits.change_column, Action.EDIT_COLUMNS),
        ),
        resource("/tables/{table_id:int}/export.csv", get=(tables.export_csv, Action.EXPORT)),
        Route(
            "/tables/{table_id:int}/enrich",
            gate.endpoint(jobs.enrich_table, Action.RUN),
            methods=["POST"],
        ),
        Route(
            "/tables/{table_id:int}/enrich-view",
            gate.endpoint(jobs.enrich_view, Action.RUN),
            methods=["POST"],
        ),
        Route("/jobs/{job_id:int}", gate.endpoint(jobs.get_job, Action.VIEW), methods=["GET"]),
        Route(
            "/jobs/{job_id:int}/cancel",
            gate.endpoint(jobs.cancel_job, Action.CANCEL),
            methods=["POST"],
        ),
        Route("/openapi.json", gate.endpoint(jobs.openapi, Action.VIEW), methods=["GET"]),
    ]


def build_api(runtime_provider: RuntimeProvider) -> Starlette:
    """The API as a Starlette app; ``runtime_provider`` is called per request (lazily).

    Pass it to ``rx.App(api_transformer=...)``: Reflex mounts its own app under this one, so
    everything outside ``/api`` still reaches Reflex.
    """
    gate = Gate(runtime_provider=runtime_provider)
    return Starlette(
        routes=[
            Mount("/api", routes=api_routes(gate, JobRoutes(gate)), name="api"),
            Mount("/auth", routes=auth_routes(runtime_provider), name="auth"),
        ],
        exception_handlers={HTTPException: _http_exception},
    )
