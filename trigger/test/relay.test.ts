// The task's relay under Node's own test runner: `npm test` (tsc -p tsconfig.test.json, then
// node --test build/test/), run by scripts/test.sh.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type CellChunk,
  outcomeOf,
  type Progress,
  type RelaySinks,
  WorkerRelay,
} from "../src/relay.js";

class Recorder implements RelaySinks {
  progress: Progress[] = [];
  chunks: CellChunk[] = [];
  get cells(): CellChunk["cells"] {
    return this.chunks.flatMap((chunk) => chunk.cells);
  }
  metadata: [string, string][] = [];
  skipped: string[] = [];
  setProgress(progress: Progress): void {
    this.progress.push(progress);
  }
  sendCells(chunk: CellChunk): void {
    this.chunks.push(chunk);
  }
  setMetadata(key: "status" | "error", value: string): void {
    this.metadata.push([key, value]);
  }
  ignored(line: string): void {
    this.skipped.push(line);
  }
}

const workerCell = (taskId: number, extra: Record<string, unknown> = {}) => ({
  task_id: taskId,
  row_id: 100 + taskId,
  column_id: 4,
  status: "done",
  value: `v${taskId}`,
  error: null,
  ...extra,
});
/** A worker line holding one cell (``taskId``), after which ``done`` cells are done. */
const cellLine = (taskId: number, done: number, extra: Record<string, unknown> = {}): string =>
  cellsLine([workerCell(taskId, extra)], done);
const cellsLine = (cells: Record<string, unknown>[], done: number): string =>
  JSON.stringify({ type: "cells", job_id: 7, done, failed: 0, total: 3, cells });
const summaryLine = (status = "completed", error: string | null = null): string =>
  JSON.stringify({ type: "summary", job_id: 7, status, total: 3, done: 3, failed: 0, error });

function relayOf(...chunks: (string | Uint8Array)[]): [WorkerRelay, Recorder] {
  const sinks = new Recorder();
  const relay = new WorkerRelay(sinks);
  for (const chunk of chunks) relay.push(chunk);
  relay.end();
  return [relay, sinks];
}

describe("WorkerRelay", () => {
  test("a cells line sets the progress and sends its cells as one chunk", () => {
    const [, sinks] = relayOf(`${cellsLine([workerCell(1), workerCell(2)], 2)}\n`);
    assert.deepEqual(sinks.progress, [{ done: 2, failed: 0, total: 3 }]);
    assert.deepEqual(sinks.chunks, [
      {
        cells: [
          { taskId: 1, rowId: 101, columnId: 4, status: "done", value: "v1", error: null },
          { taskId: 2, rowId: 102, columnId: 4, status: "done", value: "v2", error: null },
        ],
      },
    ]);
  });

  test("lines cut anywhere across chunks are put back together", () => {
    const text = `${cellLine(1, 1, { value: "café ☕" })}\r\n${cellLine(2, 2)}\n${summaryLine()}`;
    const bytes = new TextEncoder().encode(text);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.slice(i, i + 7)); // splits "é", "☕"
    const [relay, sinks] = relayOf(...chunks);
    assert.deepEqual(
      sinks.cells.map((c) => [c.taskId, c.value]),
      [
        [1, "café ☕"],
        [2, "v2"],
      ],
    );
    assert.equal(relay.summary?.status, "completed", "the last line had no newline");
    assert.deepEqual(sinks.skipped, []);
  });

  test("lines that are not the protocol's are skipped and reported", () => {
    const odd = [
      "INFO enrichment_app.worker: starting",
      "{not json",
      "[1, 2]",
      '{"type": "progress", "done": 1}',
      JSON.stringify({ type: "cell", task_id: 1 }),
      cellsLine([workerCell(1, { task_id: "x" })], 1),
      JSON.stringify({ type: "cells", job_id: 7, done: 1, failed: 0, total: 3, cells: "x" }),
    ];
    const [relay, sinks] = relayOf(`${odd.join("\n")}\n\n${cellLine(1, 1)}\n`);
    assert.deepEqual(sinks.skipped, odd);
    assert.equal(sinks.cells.length, 1);
    assert.equal(relay.summary, undefined);
  });

  test("the summary line sets the final progress, the status and any error", () => {
    const [relay, sinks] = relayOf(`${cellLine(1, 1)}\n${summaryLine("failed", "boom")}\n`);
    assert.deepEqual(sinks.progress.at(-1), { done: 3, failed: 0, total: 3 });
    assert.deepEqual(sinks.metadata, [
      ["status", "failed"],
      ["error", "boom"],
    ]);
    assert.equal(relay.summary?.error, "boom");
  });

  test("an error line is remembered and set as the run's error", () => {
    const error = JSON.stringify({ type: "error", job_id: 7, error: "Job 7 does not exist." });
    const [relay, sinks] = relayOf(`${error}\n`);
    assert.equal(relay.workerError, "Job 7 does not exist.");
    assert.deepEqual(sinks.metadata, [["error", "Job 7 does not exist."]]);
    assert.deepEqual(sinks.cells, []);
  });
});

describe("outcomeOf", () => {
  test("a completed summary and exit code 0 complete the run with the job's counts", () => {
    const [relay] = relayOf(`${summaryLine()}\n`);
    assert.deepEqual(outcomeOf(7, relay, { code: 0, aborted: false }), {
      kind: "completed",
      output: { jobId: 7, status: "completed", total: 3, done: 3, failed: 0 },
    });
  });

  test("a worker that dies before its summary crashes the run, so it is retried", () => {
    const [relay] = relayOf(`${cellLine(1, 1)}\n${cellLine(2, 2).slice(0, 20)}`);
    const outcome = outcomeOf(7, relay, { code: 137, aborted: false });
    assert.equal(outcome.kind, "crashed");
    assert.match(outcome.kind === "crashed" ? outcome.message : "", /code 137 without a summary/);
  });

  test("the worker's own error line fails the run for good", () => {
    const error = JSON.stringify({ type: "error", job_id: 7, error: "Job 7 does not exist." });
    const [relay] = relayOf(`${error}\n`);
    assert.deepEqual(outcomeOf(7, relay, { code: 1, aborted: false }), {
      kind: "failed",
      message: "Job 7 does not exist.",
    });
  });

  test("a job that ended otherwise than completed fails the run with its error", () => {
    const [relay] = relayOf(`${summaryLine("canceled")}\n`);
    assert.deepEqual(outcomeOf(7, relay, { code: 1, aborted: false }), {
      kind: "failed",
      message: "Job 7 ended canceled (worker exit code 1).",
    });
  });

  test("a canceled or timed-out run says so", () => {
    const [relay] = relayOf(cellLine(1, 1));
    const outcome = outcomeOf(7, relay, { code: null, aborted: true });
    assert.deepEqual(outcome, {
      kind: "crashed",
      message: "Job 7: the run was canceled or timed out.",
    });
  });
});
