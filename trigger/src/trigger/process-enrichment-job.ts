import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { AbortTaskRunError, logger, metadata, schemaTask, streams } from "@trigger.dev/sdk";
import {
  type CellChunk,
  type ProcessEnrichmentJobOutput,
  outcomeOf,
  type RelaySinks,
  WorkerRelay,
} from "../relay.js";

/** `taskCount` is informational: the worker reads the job's tasks from the database, so the
 * payload stays a few bytes for a job of any size. (Runs triggered by older versions of the
 * app carried `taskIds` instead; they are accepted and ignored.) */
export type ProcessEnrichmentJobPayload = { jobId: number; tableId: number; taskCount?: number };
export type { CellChunk, FinishedCell, ProcessEnrichmentJobOutput, Progress } from "../relay.js";

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

    // The relay (../relay.ts, tested with node --test) turns worker lines into these calls.
    const sinks: RelaySinks = {
      setProgress: (progress) => {
        metadata.set("progress", progress);
      },
      sendCells,
      setMetadata: (key, value) => {
        metadata.set(key, value);
      },
      ignored: (line) => logger.warn("ignoring a line that is not the worker's protocol", { line }),
    };
    const relay = new WorkerRelay(sinks);
    let exitCode: number | null;
    try {
      exitCode = await runWorker(jobId, signal, relay);
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

    const outcome = outcomeOf(jobId, relay, { code: exitCode, aborted: signal.aborted });
    switch (outcome.kind) {
      case "completed":
        return outcome.output;
      case "failed":
        throw new AbortTaskRunError(outcome.message); // a retry cannot change it
      case "crashed":
        throw new Error(outcome.message); // retried: the worker resumes the job
    }
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

/** The directory holding the enrichment_app package: the task's cwd once deployed (the build
 * copies it there), the repository root under `trigger.dev dev` (cwd is trigger/). */
function appRoot(): string {
  const candidates = [process.cwd(), resolve(process.cwd(), "..")];
  const root = candidates.find((dir) => existsSync(join(dir, "enrichment_app", "worker.py")));
  if (root === undefined) throw new Error(`enrichment_app not found in ${candidates.join(", ")}`);
  return root;
}

/**
 * Runs `python -m enrichment_app.worker <jobId>`, feeds its stdout to the relay as it comes
 * and resolves with its exit code (null when killed by a signal).
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
  relay: WorkerRelay,
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
  for await (const chunk of child.stdout) relay.push(chunk as Uint8Array);
  relay.end();
  try {
    return await exit;
  } catch (error) {
    if (signal.aborted) return null;
    throw new Error(`could not run ${python} -m enrichment_app.worker: ${String(error)}`);
  }
}
