"""Process one enrichment job from the command line: ``python -m enrichment_app.worker <job_id>``.

Prints one JSON line per finished cell and a final summary line to stdout; logs go to stderr.
The Trigger.dev task runs exactly this and relays the lines as run metadata and stream chunks.
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


def _emit(out: TextIO, record: dict[str, object]) -> None:
    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    out.flush()


async def run_worker(job_id: int, *, settings: Settings, out: TextIO) -> int:
    engine = create_db_engine(settings.database_url)
    try:
        upgrade_database(engine)
        open_session = session_factory(engine)

        def report(result: CellResult) -> None:
            _emit(out, {"type": "cell", **asdict(result)})

        async with guarded_client(settings.enricher_allowed) as http, provider_client() as provider:
            try:
                summary = await process_job(
                    job_id,
                    session_factory=open_session,
                    http=http,
                    provider_http=provider,
                    settings=settings,
                    on_result=report,
                )
            except EnrichmentAppError as exc:
                _emit(out, {"type": "error", "job_id": job_id, "error": str(exc)})
                return 1
            except Exception as exc:
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
