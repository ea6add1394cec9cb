"""The fake Trigger.dev server's stand-in for the ``process-enrichment-job`` task.

It does what ``trigger/src/trigger/process-enrichment-job.ts`` does on Trigger.dev: after a
queue delay it runs ``python -m enrichment_app.worker <jobId>`` against the app's database and
relays the worker's JSON lines, progress into run metadata and each line's cells into one
chunk of the ``cells`` stream, then completes or fails the run. So the real app runs without the cloud.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.fakes.trigger.runs import RunControl
from tests.support.paths import ROOT


@dataclass
class WorkerTask:
    """Configuration of the fake task; ``gate`` (if set) holds each run in the queue until set."""

    database_url: str
    queue_delay: float = 0.3
    gate: asyncio.Event | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    """Every line the workers wrote, stdout and stderr (their logs), for the secret scan."""

    async def __call__(self, run: RunControl) -> None:
        self.runs.append(run.id)
        payload = run.payload if isinstance(run.payload, Mapping) else {}
        job_id = payload.get("jobId")
        if not isinstance(job_id, int):
            run.fail(f"payload has no integer jobId: {payload!r}")
            return
        run.set_status("QUEUED")
        await asyncio.sleep(self.queue_delay)  # the queue, as Trigger.dev has one
        if self.gate is not None:
            await self.gate.wait()
        run.set_status("EXECUTING")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": self.database_url,
            "SEED_DEMO": "false",
            **self.env,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "enrichment_app.worker",
            str(job_id),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        summary: dict[str, object] = {}
        error: str | None = None
        drain = asyncio.create_task(self._keep_stderr(process))
        try:
            assert process.stdout is not None
            async for raw in process.stdout:
                self.output.append(raw.decode("utf-8", "replace"))
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                kind = line.get("type")
                if kind == "cells":
                    progress = {k: line[k] for k in ("done", "failed", "total")}
                    run.update_metadata([{"type": "set", "key": "progress", "value": progress}])
                    run.append_chunk("cells", {"cells": [_chunk_cell(c) for c in line["cells"]]})
                elif kind == "summary":
                    summary = line
                elif kind == "error":
                    error = str(line.get("error"))
            code = await process.wait()
            await drain
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            await drain
            raise
        if code != 0 or summary.get("status") != "completed":
            run.fail(error or str(summary.get("error") or f"the worker exited with status {code}"))
            return
        run.complete(
            {
                "jobId": summary.get("job_id"),
                **{k: summary.get(k) for k in ("status", "total", "done", "failed")},
            }
        )

    async def _keep_stderr(self, process: asyncio.subprocess.Process) -> None:
        """Read the worker's stderr as it comes (a full pipe would block it) and keep it."""
        assert process.stderr is not None
        async for raw in process.stderr:
            self.output.append(raw.decode("utf-8", "replace"))


def _chunk_cell(cell: Mapping[str, object]) -> dict[str, object]:
    """A cell of a worker line as the task writes it to the ``cells`` stream."""
    return {
        "taskId": cell["task_id"],
        "rowId": cell["row_id"],
        "columnId": cell["column_id"],
        "status": cell["status"],
        "value": cell["value"],
        "error": cell["error"],
    }
