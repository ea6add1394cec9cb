"""Process one enrichment job from the command line: ``python -m enrichment_app.worker <job_id>``.

Prints the finished cells to stdout as JSON lines, a batch per line (the cells one write of
the job's results stored together, at most ``MAX_CELLS_PER_LINE`` and about
``MAX_LINE_CHARS``), then a summary line; logs go to stderr. The Trigger.dev task runs exactly
this and relays each line as the run's progress metadata and one chunk of its ``cells``
stream, so a job of 100,000 cells is some hundreds of chunks, not 100,000.
Exit status: 0 when the job completed (even with some failed cells), 1 when it failed, was
canceled or does not exist, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import asdict
from typing import TextIO

from enrichment_app.db.engine import create_db_engine, session_factory
from enrichment_app.db.migrate import upgrade_database
from enrichment_app.db.sessions import in_transaction
from enrichment_app.domain import JobStatus
from enrichment_app.egress import guarded_client, provider_client
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.redact import quiet_request_logs
from enrichment_app.runner.processing import CellResult, process_job
from enrichment_app.services.jobs import fail_job
from enrichment_app.settings import Settings, get_settings

logger = logging.getLogger("enrichment_app.worker")


MAX_CELLS_PER_LINE = 200
MAX_LINE_CHARS = 256 * 1024
"""A line's values and errors stop growing past this (Realtime stream records are at most
1 MiB)."""


def _emit(out: TextIO, record: dict[str, object]) -> None:
    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    out.flush()


class CellLines:
    """Collects finished cells and writes them a batch per ``cells`` line.

    The cells a flush of the job's results stored reach ``add`` in one turn of the event loop;
    the line is written at the end of that turn (or as soon as it is full), so cells are
    reported as they are stored, with no timer.
    """

    def __init__(self, out: TextIO, job_id: int) -> None:
        self._out = out
        self._job_id = job_id
        self._cells: list[dict[str, object]] = []
        self._chars = 0
        self._latest: CellResult | None = None
        self._scheduled = False

    def add(self, result: CellResult) -> None:
        self._cells.append(
            {
                "task_id": result.task_id,
                "row_id": result.row_id,
                "column_id": result.column_id,
                "status": result.status,
                "value": result.value,
                "error": result.error,
            }
        )
        self._chars += len(result.value or "") + len(result.error or "") + 100
        latest = self._latest
        if latest is None or result.done + result.failed >= latest.done + latest.failed:
            self._latest = result
        if len(self._cells) >= MAX_CELLS_PER_LINE or self._chars >= MAX_LINE_CHARS:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        latest, cells = self._latest, self._cells
        if latest is None or not cells:
            return
        self._cells, self._chars = [], 0
        _emit(
            self._out,
            {
                "type": "cells",
                "job_id": self._job_id,
                "done": latest.done,
                "failed": latest.failed,
                "total": latest.total,
                "cells": cells,
            },
        )


async def run_worker(job_id: int, *, settings: Settings, out: TextIO) -> int:
    engine = create_db_engine(settings.database_url)
    try:
        upgrade_database(engine)
        open_session = session_factory(engine)

        lines = CellLines(out, job_id)

        async with guarded_client(settings.enricher_allowed) as http, provider_client() as provider:
            try:
                summary = await process_job(
                    job_id,
                    session_factory=open_session,
                    http=http,
                    provider_http=provider,
                    settings=settings,
                    on_result=lines.add,
                )
            except EnrichmentAppError as exc:
                lines.flush()
                _emit(out, {"type": "error", "job_id": job_id, "error": str(exc)})
                return 1
            except Exception as exc:
                lines.flush()
                logger.exception("job %s crashed", job_id)
                error = f"The worker crashed: {type(exc).__name__}: {exc}"
                job = await in_transaction(open_session, fail_job, job_id=job_id, error=error)
                _emit(
                    out,
                    {
                        "type": "summary",
                        "job_id": job_id,
                        "status": job.status,
                        "total": job.total,
                        "done": job.done,
                        "failed": job.failed,
                        "error": job.error,
                    },
                )
                return 1
        lines.flush()
        _emit(out, {"type": "summary", **asdict(summary)})
        return 0 if summary.status == JobStatus.COMPLETED.value else 1
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m enrichment_app.worker", description=__doc__.splitlines()[0]
    )
    parser.add_argument("job_id", type=int, help="the id of the enrichment job to process")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    quiet_request_logs()
    return asyncio.run(run_worker(args.job_id, settings=get_settings(), out=sys.stdout))


if __name__ == "__main__":
    sys.exit(main())
