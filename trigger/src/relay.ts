// The relay between the Python worker and Trigger.dev, as pure code: no SDK, no process.
//
// The worker (`python -m enrichment_app.worker <jobId>`) writes one JSON object per line on
// stdout (the protocol is in ../README.md). `WorkerRelay` takes its stdout as it arrives, in
// chunks cut anywhere, and turns each line into calls on the injected sinks: the run's
// `progress` metadata and a `cells` stream chunk per line of finished cells (the cells one
// write of the job's results stored together, at most 200). `outcomeOf` then says how
// the run ends, from what the worker reported and how it exited. The task
// (trigger/process-enrichment-job.ts) only wires these to the SDK and to the child process;
// test/relay.test.ts runs them under `node --test`.

export type Progress = { done: number; failed: number; total: number };

/** A cell the worker just finished. */
export type FinishedCell = {
  taskId: number;
  rowId: number;
  columnId: number;
  status: "done" | "error";
  value: string | null;
  error: string | null;
};

/** One chunk of the `cells` realtime stream: the cells of one line of the worker. */
export type CellChunk = { cells: FinishedCell[] };

export type ProcessEnrichmentJobOutput = {
  jobId: number;
  status: string;
  total: number;
  done: number;
  failed: number;
};

type WorkerCell = {
  task_id: number;
  row_id: number;
  column_id: number;
  status: "done" | "error";
  value: string | null;
  error: string | null;
};
type CellsLine = Progress & { type: "cells"; job_id: number; cells: WorkerCell[] };
export type SummaryLine = Progress & {
  type: "summary";
  job_id: number;
  status: string;
  error: string | null;
};
type ErrorLine = { type: "error"; job_id: number; error: string };
type WorkerLine = CellsLine | SummaryLine | ErrorLine;

/** Where the relay sends what the worker reports. */
export interface RelaySinks {
  /** `metadata.set("progress", …)`: the run's counters, read by the app's live header. */
  setProgress(progress: Progress): void;
  /** One chunk of the `cells` stream. */
  sendCells(chunk: CellChunk): void;
  /** Other run metadata the summary and error lines set (`status`, `error`). */
  setMetadata(key: "status" | "error", value: string): void;
  /** A line that is not one of the protocol's (logged, then skipped). */
  ignored(line: string): void;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function progressOf(line: Record<string, unknown>): Progress | undefined {
  const { done, failed, total } = line;
  return isCount(done) && isCount(failed) && isCount(total) ? { done, failed, total } : undefined;
}

function isWorkerCell(value: unknown): value is WorkerCell {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const cell = value as Record<string, unknown>;
  const text = (v: unknown): boolean => v === null || typeof v === "string";
  return (
    [cell.task_id, cell.row_id, cell.column_id].every(isCount) &&
    (cell.status === "done" || cell.status === "error") &&
    text(cell.value) &&
    text(cell.error)
  );
}

/** A line of the worker's protocol, or undefined for anything else (not JSON, another shape). */
export function parseLine(text: string): WorkerLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const line = value as Record<string, unknown>;
  switch (line.type) {
    case "cells": {
      const cells = line.cells;
      return progressOf(line) !== undefined && Array.isArray(cells) && cells.every(isWorkerCell)
        ? (line as CellsLine)
        : undefined;
    }
    case "summary":
      return progressOf(line) !== undefined && typeof line.status === "string"
        ? (line as SummaryLine)
        : undefined;
    case "error":
      return typeof line.error === "string" ? (line as ErrorLine) : undefined;
    default:
      return undefined;
  }
}

/** Feeds the worker's stdout, chunk by chunk, to the sinks; remembers its summary or error. */
export class WorkerRelay {
  summary: SummaryLine | undefined;
  workerError: string | undefined;
  #pending = "";
  #decoder = new TextDecoder();

  constructor(private readonly sinks: RelaySinks) {}

  /** A chunk of stdout, cut anywhere (mid-line, mid-character). */
  push(chunk: string | Uint8Array): void {
    this.#pending += typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    let newline = this.#pending.indexOf("\n");
    while (newline >= 0) {
      this.#line(this.#pending.slice(0, newline));
      this.#pending = this.#pending.slice(newline + 1);
      newline = this.#pending.indexOf("\n");
    }
  }

  /** Stdout closed: a last line without its newline still counts. */
  end(): void {
    this.#pending += this.#decoder.decode();
    const last = this.#pending;
    this.#pending = "";
    this.#line(last);
  }

  #line(raw: string): void {
    const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (text.trim() === "") return;
    const line = parseLine(text);
    if (line === undefined) {
      this.sinks.ignored(text);
      return;
    }
    switch (line.type) {
      case "cells":
        this.sinks.setProgress(progressOf(line) as Progress);
        this.sinks.sendCells({
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
        this.summary = line;
        this.sinks.setProgress(progressOf(line) as Progress);
        this.sinks.setMetadata("status", line.status);
        if (line.error !== null) this.sinks.setMetadata("error", line.error);
        break;
      case "error":
        this.workerError = line.error;
        this.sinks.setMetadata("error", line.error);
        break;
    }
  }
}

/** How the run ends: with the job's output; `failed` for good (AbortTaskRunError: no retry
 * can change it); or `crashed` (a plain Error: Trigger.dev may retry the run, and the worker
 * resumes the job where it stopped). */
export type Outcome =
  | { kind: "completed"; output: ProcessEnrichmentJobOutput }
  | { kind: "failed"; message: string }
  | { kind: "crashed"; message: string };

export function outcomeOf(
  jobId: number,
  relay: Pick<WorkerRelay, "summary" | "workerError">,
  exit: { code: number | null; aborted: boolean },
): Outcome {
  if (exit.aborted) {
    return { kind: "crashed", message: `Job ${jobId}: the run was canceled or timed out.` };
  }
  const { summary, workerError } = relay;
  if (summary === undefined) {
    // The worker's own "error" line means the job cannot run (it does not exist, say).
    if (workerError !== undefined) return { kind: "failed", message: workerError };
    const why = `the worker exited with code ${exit.code} without a summary`;
    return { kind: "crashed", message: `Job ${jobId}: ${why}` };
  }
  if (summary.status !== "completed" || exit.code !== 0) {
    const message =
      summary.error ?? `Job ${jobId} ended ${summary.status} (worker exit code ${exit.code}).`;
    return { kind: "failed", message };
  }
  const { status, total, done, failed } = summary;
  return { kind: "completed", output: { jobId, status, total, done, failed } };
}
