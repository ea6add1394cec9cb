import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { AbortTaskRunError, logger, metadata, schemaTask, streams } from "@trigger.dev/sdk";

/** `taskCount` is informational: the worker reads the job's tasks from the database, so the
 * payload stays a few bytes for a job of any size. (Runs triggered by older versions of the
 * app carried `taskIds` instead; they are accepted and ignored.) */
export type ProcessEnrichmentJobPayload = { jobId: number; tableId: number; taskCount?: number };

export type ProcessEnrichmentJobOutput = {
  jobId: number;
  status: string;
  total: number;
  done: number;
  failed: number;
};

/** A cell the worker just finished. */
export type FinishedCell = {
  taskId: number;
  rowId: number;
  columnId: number;
  status: "done" | "error";
  value: string | null;
  error: string | null;
};

/** One chunk of the `cells` realtime stream: the cells one line of the worker reported (the
 * cells one write of the job's results stored together, at most 200). */
export type CellChunk = { cells: FinishedCell[] };

export type Progress = { done: number; failed: number; total: number };

// The worker's stdout protocol (enrichment_app/worker.py): one JSON object per line.
type WorkerCell = {
  task_id: number;
  row_id: number;
  column_id: number;
  status: "done" | "error";
  value: string | null;
  error: string | null;
};
type CellsLine = Progress & { type: "cells"; job_id: number; cells: WorkerCell[] };
type SummaryLine = Progress & {
  type: "summary";
  job_id: number;
  status: string;
  error: string | null;
};
type ErrorLine = { type: "error"; job_id: number; error: string };
type WorkerLine = CellsLine | SummaryLine | ErrorLine;

export const cells = streams.define<CellChunk>({ id: "cells" });

export const processEnrichmentJob = schemaTask({
  id: "process-enrichment-job",
  schema: parsePayload,
  maxDuration: 3600,
  // One retry. It is safe: the worker is resumable (it only runs the job's unfinished tasks
  // and reports a finished job's summary at once), so a second attempt after a crash (OOM, lost
  // machine, worker killed before its summary) picks up where the first stopped. Outcomes that
  // a retry cannot change (job failed, canceled or missing) throw AbortTaskRunError: no retry.
  retry: { maxAttempts: 2 },
  run: async (payload, { signal }): Promise<ProcessEnrichmentJobOutput> => {
    const { jobId } = payload;

    // Realtime stream `cells`: cells.pipe() keeps one write open for the whole run and sends
    // each chunk as it is enqueued (v1: a streaming NDJSON POST; v2: S2 with a short flush
    // interval). streams.append() would POST a raw BodyInit per cell, and the defined stream's
    // append() opens a whole new writer per call (sdk dist/esm/v3/streams.js).
    let push: ReadableStreamDefaultController<CellChunk> | undefined;
    const source = new ReadableStream<CellChunk>({
      start(controller) {
        push = controller;
      },
    });
    const { waitUntilComplete } = cells.pipe(source);
    const sendCells = (chunk: CellChunk): void => {
      try {
        push?.enqueue(chunk);
      } catch (error) {
        // The stream was closed by a failed writer; the database stays the source of truth.
        logger.warn("could not append to the cells stream", { error: String(error) });
      }
    };

    let summary: SummaryLine | undefined;
    let workerError: string | undefined;
    let exitCode: number | null;
    try {
      exitCode = await runWorker(jobId, signal, (line) => {
        switch (line.type) {
          case "cells":
            metadata.set("progress", progressOf(line));
            sendCells({
              cells: line.cells.map((cell) => ({
                taskId: cell.task_id,
                rowId: cell.row_id,
                columnId: cell.column_id,
                status: cell.status,
                value: cell.value,
                error: cell.error,
              })),
            });
            break;
          case "summary":
            summary = line;
            metadata.set("progress", progressOf(line)).set("status", line.status);
            if (line.error !== null) metadata.set("error", line.error);
            break;
          case "error":
            workerError = line.error;
            metadata.set("error", line.error);
            break;
        }
      });
    } finally {
      try {
        push?.close();
      } catch {
        // already closed or errored
      }
    }

    try {
      await waitUntilComplete();
    } catch (error) {
      // Not fatal: every cell is already in the database, which the app reloads at the end.
      logger.warn("the cells stream did not finish cleanly", { error: String(error) });
    }
    await metadata.flush().catch((error: unknown) => {
      logger.warn("could not flush the final metadata", { error: String(error) });
    });

    if (signal.aborted) throw new Error(`Job ${jobId}: the run was canceled or timed out.`);
    if (summary === undefined) {
      const message = workerError ?? `the worker exited with code ${exitCode} without a summary`;
      // The worker's own "error" line means the job cannot run (e.g. it does not exist).
      if (workerError !== undefined) throw new AbortTaskRunError(message);
      throw new Error(`Job ${jobId}: ${message}`); // a crash: retried, the worker resumes
    }
    if (summary.status !== "completed" || exitCode !== 0) {
      throw new AbortTaskRunError(
        summary.error ?? `Job ${jobId} ended ${summary.status} (worker exit code ${exitCode}).`,
      );
    }
    const { status, total, done, failed } = summary;
    return { jobId, status, total, done, failed };
  },
});

function parsePayload(input: unknown): ProcessEnrichmentJobPayload {
  const value = (input ?? {}) as Record<string, unknown>;
  const { jobId, tableId, taskCount } = value;
  const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
  if (!isId(jobId) || !isId(tableId) || (taskCount !== undefined && !isId(taskCount))) {
    throw new Error("payload must be {jobId: number, tableId: number, taskCount?: number}");
  }
  return taskCount === undefined ? { jobId, tableId } : { jobId, tableId, taskCount };
}

function progressOf({ done, failed, total }: Progress): Progress {
  return { done, failed, total };
}

function parseLine(text: string): WorkerLine | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || !("type" in value)) return undefined;
    const { type } = value;
    if (type === "cells") {
      return "cells" in value && Array.isArray(value.cells) ? (value as WorkerLine) : undefined;
    }
    return type === "summary" || type === "error" ? (value as WorkerLine) : undefined;
  } catch {
    return undefined;
  }
}

/** The directory holding the enrichment_app package: the task's cwd once deployed (the build
 * copies it there), the repository root under `trigger.dev dev` (cwd is trigger/). */
function appRoot(): string {
  const candidates = [process.cwd(), resolve(process.cwd(), "..")];
  const root = candidates.find((dir) => existsSync(join(dir, "enrichment_app", "worker.py")));
  if (root === undefined) throw new Error(`enrichment_app not found in ${candidates.join(", ")}`);
  return root;
}

/**
 * Runs `python -m enrichment_app.worker <jobId>`, calls `onLine` for each JSON line of its
 * stdout and resolves with its exit code (null when killed by a signal).
 *
 * Spawned with node:child_process rather than @trigger.dev/python's python.stream.run(): that
 * one can pass `-m`, but it merges stderr into the same line stream (tinyexec iterates both)
 * and never exposes the exit code (throwOnError is forced off), and both matter here. The
 * interpreter is the one the python extension sets up: PYTHON_BIN_PATH (/opt/venv/bin/python
 * when deployed, devPythonBinaryPath in dev), as python.run() uses
 * (@trigger.dev/python dist/esm/index.js).
 */
async function runWorker(
  jobId: number,
  signal: AbortSignal,
  onLine: (line: WorkerLine) => void,
): Promise<number | null> {
  const python = process.env.PYTHON_BIN_PATH || "python3";
  // The worker needs DATABASE_URL, LLM_* and the other app settings, not the Trigger.dev key.
  const { TRIGGER_SECRET_KEY: _secret, ...env } = process.env;
  const child = spawn(python, ["-m", "enrichment_app.worker", String(jobId)], {
    cwd: appRoot(),
    env: { ...env, PYTHONUNBUFFERED: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    signal, // a canceled or timed-out run kills the worker (SIGTERM)
  });
  // Settles on "close" (exit code) or "error" (spawn failed, or the abort signal killed it).
  const exit = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code: number | null) => resolve(code));
  });
  exit.catch(() => undefined); // awaited below, once stdout is drained

  createInterface({ input: child.stderr, crlfDelay: Infinity }).on("line", (line) => {
    logger.info(line, { stream: "stderr" });
  });
  for await (const text of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
    const line = parseLine(text);
    if (line === undefined) {
      if (text.trim() !== "") logger.warn("ignoring a non-JSON worker line", { line: text });
      continue;
    }
    onLine(line);
  }
  try {
    return await exit;
  } catch (error) {
    if (signal.aborted) return null;
    throw new Error(`could not run ${python} -m enrichment_app.worker: ${String(error)}`);
  }
}
