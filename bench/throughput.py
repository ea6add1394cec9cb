"""Runner throughput: cells per second through ``process_job``, database writes included.

(a) 10,000 cells of the built-in ``template`` enricher (instant: it formats a string), on
SQLite and on a throwaway PostgreSQL cluster (Debian's binaries, as tests/integration does).
(b) 2,000 cells of ``http_json`` calling a loopback API (bench/slow_api.py, its own process)
that answers in 50 ms, through a bench-only variant of ``http_json`` registered in this process
with concurrency 20 (the built-in has 4). The limit is 20 / 0.05 s = 400 cells/s.

Each run creates its table and job with the services, then times ``process_job`` from call to
return. SQL statements are counted with a ``before_cursor_execute`` listener.

    python -m bench.throughput [--cells 10000] [--http-cells 2000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.slow_api import serve
from enrichment_app.db.engine import create_db_engine, session_factory
from enrichment_app.db.migrate import upgrade_database
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellRef, ColumnKind
from enrichment_app.egress import guarded_client
from enrichment_app.enrichers import register
from enrichment_app.enrichers.http_json import HttpJsonEnricher
from enrichment_app.runner.processing import process_job
from enrichment_app.services.jobs import create_job
from enrichment_app.services.tables import ColumnSpec, list_columns, list_rows
from enrichment_app.settings import Settings
from tests.support.database import add_table, greeting
from tests.support.live_server import allowance
from tests.support.machine import describe, figure, write_result
from tests.support.servers import ServerUnavailable, postgres_bindir, postgres_cluster

INSTANT_TARGET = 1000.0
HTTP_LIMIT = 400.0
HTTP_SHARE = 0.9
"""Issue 11's target: ``http_json`` at 90 % of the bare client's rate measured in the same run."""
HTTP_CONCURRENCY = 20


class BenchHttpJson(HttpJsonEnricher):
    """``http_json`` with concurrency 20, registered in this process only."""

    name = "bench_http_json"
    concurrency = HTTP_CONCURRENCY


def _settings(url: str, allowed: str = "") -> Settings:
    return Settings(
        database_url=url,
        enricher_allowed_networks=allowed,
        seed_demo=False,
        max_cells_per_job=100_000,
        trigger_secret_key=None,
        enrichment_api_key=None,
    )


def _prepare(engine: sa.Engine, cells: int, column: ColumnSpec) -> int:
    """A table with ``cells`` rows and one enrichment column, and a job for all of it."""
    open_session = session_factory(engine)
    with unit_of_work(open_session) as session:
        table_id = add_table(
            session,
            name="bench",
            columns=[ColumnSpec("Name"), column],
            rows=([f"company {i}"] for i in range(cells)),
            max_cell_chars=10_000,
        )
        target = next(
            c for c in list_columns(session=session, table_id=table_id) if c.kind == "enrichment"
        )
        refs = [
            CellRef(row.id, target.id or 0)
            for row in list_rows(session=session, table_id=table_id)
            if row.id is not None
        ]
        created = create_job(session=session, table_id=table_id, cells=refs, max_cells=cells)
        assert created.job.id is not None
        return created.job.id


def _run(url: str, cells: int, column: ColumnSpec, allowed: str = "") -> dict[str, Any]:
    """Time one job; ``allowed`` lets the enrichers' guarded client (as the app's) reach the
    loopback API."""
    engine = create_db_engine(url)
    try:
        upgrade_database(engine)
        job_id = _prepare(engine, cells, column)
        statements = 0

        def count(*_args: Any) -> None:
            nonlocal statements
            statements += 1

        sa.event.listen(engine, "before_cursor_execute", count)

        async def go() -> tuple[float, Any]:
            settings = _settings(url, allowed)
            async with guarded_client(settings.enricher_allowed) as http:
                start = time.perf_counter()
                summary = await process_job(
                    job_id, session_factory=session_factory(engine), http=http, settings=settings
                )
                return time.perf_counter() - start, summary

        seconds, summary = asyncio.run(go())
        sa.event.remove(engine, "before_cursor_execute", count)
        return {
            "cells": cells,
            "seconds": round(seconds, 3),
            "cells_per_s": round(cells / seconds, 1),
            "done": summary.done,
            "failed": summary.failed,
            "status": summary.status,
            "sql_statements": statements,
            "statements_per_cell": round(statements / cells, 2),
        }
    finally:
        engine.dispose()


def _client_ceiling(api: str, requests: int) -> dict[str, Any]:
    """The same API through a bare httpx client at concurrency 20: the harness's own ceiling."""

    async def go() -> float:
        async with httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
        ) as http:
            gate = asyncio.Semaphore(HTTP_CONCURRENCY)

            async def one(i: int) -> None:
                async with gate, http.stream("GET", f"{api}/lookup?q={i}") as response:
                    await response.aread()

            start = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(requests)))
            return time.perf_counter() - start

    seconds = asyncio.run(go())
    return {
        "requests": requests,
        "seconds": round(seconds, 3),
        "per_s": round(requests / seconds, 1),
    }


def _instant_column() -> ColumnSpec:
    return greeting("Hello {Name}")


@contextmanager
def _postgres() -> Iterator[str | None]:
    """A throwaway PostgreSQL cluster (default durability settings), or None if unavailable."""
    try:
        postgres_bindir()
    except ServerUnavailable:
        yield None
        return
    with postgres_cluster(durable=True) as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--http-cells", type=int, default=2_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--label", default="", help="tag for this run (e.g. before/after)")
    parser.add_argument("--out", type=Path, help="write the result here instead (bench.perf)")
    args = parser.parse_args()
    machine = describe()
    register(BenchHttpJson(), replace=True)
    raw: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        raw["sqlite_instant"] = _run(f"sqlite:///{tmp}/instant.db", args.cells, _instant_column())
        print("sqlite instant", raw["sqlite_instant"])
        rate = raw["sqlite_instant"]["cells_per_s"]
        rows.append(
            figure(
                f"instant enricher, {args.cells:,} cells, SQLite",
                rate,
                "cells/s",
                target=f">= {INSTANT_TARGET:,.0f} cells/s",
                met=rate >= INSTANT_TARGET,
            )
        )
        if not args.no_postgres:
            with _postgres() as pg_url:
                if pg_url is not None:
                    raw["postgres_instant"] = _run(pg_url, args.cells, _instant_column())
                    print("postgres instant", raw["postgres_instant"])
                    rate = raw["postgres_instant"]["cells_per_s"]
                    rows.append(
                        figure(
                            f"instant enricher, {args.cells:,} cells, PostgreSQL",
                            rate,
                            "cells/s",
                            target=f">= {INSTANT_TARGET:,.0f} cells/s (SQLite target)",
                            met=rate >= INSTANT_TARGET,
                        )
                    )
        with serve() as api:
            column = ColumnSpec(
                "Lookup",
                kind=ColumnKind.ENRICHMENT,
                enricher=BenchHttpJson.name,
                config={"url": api + "/lookup?q={Name}", "path": "data.value"},
            )
            raw["sqlite_http"] = _run(
                f"sqlite:///{tmp}/http.db", args.http_cells, column, allowance(api)
            )
            print("sqlite http", raw["sqlite_http"])
            raw["bare_httpx_ceiling"] = _client_ceiling(api, args.http_cells)
            print("bare httpx", raw["bare_httpx_ceiling"])
    rate, ceiling = raw["sqlite_http"]["cells_per_s"], raw["bare_httpx_ceiling"]["per_s"]
    rows.append(
        figure(
            f"http_json, 50 ms API, concurrency {HTTP_CONCURRENCY}, {args.http_cells:,} cells, SQLite",
            rate,
            "cells/s",
            target=f">= {HTTP_SHARE:.0%} of the ceiling below ({HTTP_SHARE * ceiling:,.0f})",
            met=rate >= HTTP_SHARE * ceiling,
        )
    )
    rows.append(
        figure(
            f"same API, bare httpx client, concurrency {HTTP_CONCURRENCY} (the harness ceiling; "
            f"the API's own limit is {HTTP_LIMIT:,.0f})",
            ceiling,
            "requests/s",
        )
    )
    path = write_result(
        "throughput",
        label=args.label or ("perf" if args.out else ""),
        machine=machine,
        rows=rows,
        raw=raw,
    )
    if args.out:
        path.replace(args.out)


if __name__ == "__main__":
    main()
