// Runs the official Trigger.dev SDK (@trigger.dev/sdk 4.8.3, pinned in package.json) against a
// Trigger.dev-compatible server and prints what it saw as one JSON document on stdout.
//
// Used by tests/integration/test_conformance.py against the fake server
// (tests/fakes/trigger/). Environment:
//   TRIGGER_API_URL, TRIGGER_SECRET_KEY   the server and its root secret key
//   PROBE_TASK                           task id to trigger (default process-enrichment-job)
//   PROBE_PAYLOAD                        JSON payload (default {})
//   PROBE_IDEMPOTENCY_KEY                idempotency key for the trigger (optional)
//   PROBE_TAGS                           JSON array of tags (optional)
//   PROBE_STREAM                         realtime stream key to read (default cells)
//   PROBE_STREAM_TIMEOUT                 streams.read timeoutInSeconds (default 3)
//   PROBE_TOKENS                         JSON {name: token} for the "tokens" command
//   PROBE_RUN_ID                         run the tokens are tried against (retrieve)
//   PROBE_TAG                            the tag the "tags" command follows
//   PROBE_TOKEN                          public access token for the "tags" command
//   PROBE_CREATED_AT                     its createdAt filter (optional)
//   PROBE_UNTIL_COMPLETED                the "tags" command stops once this many runs completed
//
// Commands (argv[2]):
//   run     trigger (twice, to see idempotency), createPublicToken, subscribeToRun to completion
//           with that token, streams.read with the trigger handle's token, runs.retrieve
//   tokens  validateJWT from @trigger.dev/core for each token, then runs.retrieve with each
//   tags    runs.subscribeToRunsWithTag with the token, until PROBE_UNTIL_COMPLETED runs completed

import { auth, configure, runs, streams, tasks } from "@trigger.dev/sdk";
import { validateJWT } from "@trigger.dev/core/v3/jwt";

const env = process.env;
const baseURL = env.TRIGGER_API_URL;
const secretKey = env.TRIGGER_SECRET_KEY;
if (!baseURL || !secretKey) {
  process.stderr.write("TRIGGER_API_URL and TRIGGER_SECRET_KEY are required\n");
  process.exit(2);
}
configure({ baseURL, accessToken: secretKey });

function plain(value) {
  return JSON.parse(
    JSON.stringify(value, (_key, v) => (v instanceof Date ? v.toISOString() : v)),
  );
}

function describeError(error) {
  return {
    ok: false,
    name: error?.constructor?.name ?? "Error",
    status: error?.status ?? null,
    message: String(error?.message ?? error),
  };
}

async function collectStream(runId, key, accessToken, timeoutInSeconds) {
  return auth.withAuth({ accessToken }, async () => {
    const chunks = [];
    const stream = await streams.read(runId, key, { timeoutInSeconds });
    for await (const chunk of stream) {
      chunks.push(chunk);
    }
    return chunks;
  });
}

async function collectRun(runId, accessToken) {
  return auth.withAuth({ accessToken }, async () => {
    const updates = [];
    for await (const run of runs.subscribeToRun(runId)) {
      updates.push(
        plain({
          id: run.id,
          taskIdentifier: run.taskIdentifier,
          status: run.status,
          payload: run.payload,
          metadata: run.metadata,
          output: run.output,
          error: run.error,
          tags: run.tags,
          realtimeStreams: run.realtimeStreams,
          isQueued: run.isQueued,
          isExecuting: run.isExecuting,
          isCompleted: run.isCompleted,
          isSuccess: run.isSuccess,
          isFailed: run.isFailed,
          createdAt: run.createdAt,
          startedAt: run.startedAt,
          finishedAt: run.finishedAt,
        }),
      );
    }
    return updates;
  });
}

async function commandRun() {
  const task = env.PROBE_TASK ?? "process-enrichment-job";
  const payload = JSON.parse(env.PROBE_PAYLOAD ?? "{}");
  const options = {};
  if (env.PROBE_IDEMPOTENCY_KEY) options.idempotencyKey = env.PROBE_IDEMPOTENCY_KEY;
  if (env.PROBE_TAGS) options.tags = JSON.parse(env.PROBE_TAGS);
  const streamKey = env.PROBE_STREAM ?? "cells";
  const streamTimeout = Number(env.PROBE_STREAM_TIMEOUT ?? "3");

  const handle = await tasks.trigger(task, payload, options);
  const replay = await tasks.trigger(task, payload, options);
  const publicToken = await auth.createPublicToken({
    scopes: { read: { runs: [handle.id] } },
    expirationTime: "1h",
  });

  // Both feeds run at once, as a page would consume them.
  const [updates, chunks] = await Promise.all([
    collectRun(handle.id, publicToken),
    collectStream(handle.id, streamKey, handle.publicAccessToken, streamTimeout),
  ]);
  const retrieved = await runs.retrieve(handle.id);

  return {
    trigger: { id: handle.id, isCached: handle.isCached, publicAccessToken: handle.publicAccessToken },
    replay: { id: replay.id, isCached: replay.isCached },
    publicToken,
    updates,
    chunks,
    retrieved: plain({
      id: retrieved.id,
      status: retrieved.status,
      metadata: retrieved.metadata,
      output: retrieved.output,
      tags: retrieved.tags,
      isCompleted: retrieved.isCompleted,
      isSuccess: retrieved.isSuccess,
    }),
  };
}

async function commandTokens() {
  const tokens = JSON.parse(env.PROBE_TOKENS ?? "{}");
  const runId = env.PROBE_RUN_ID;
  const validated = {};
  const retrieved = {};
  for (const [name, token] of Object.entries(tokens)) {
    const result = await validateJWT(token, secretKey);
    validated[name] = result.ok
      ? { ok: true, sub: result.payload.sub, scopes: result.payload.scopes ?? null }
      : { ok: false, code: result.code, error: result.error };
    if (runId) {
      try {
        const run = await auth.withAuth({ accessToken: token }, () => runs.retrieve(runId));
        retrieved[name] = { ok: true, id: run.id, status: run.status };
      } catch (error) {
        retrieved[name] = describeError(error);
      }
    }
  }
  return { validated, retrieved };
}

async function commandTags() {
  const tag = env.PROBE_TAG;
  const until = Number(env.PROBE_UNTIL_COMPLETED ?? "1");
  const filters = env.PROBE_CREATED_AT ? { createdAt: env.PROBE_CREATED_AT } : undefined;
  return auth.withAuth({ accessToken: env.PROBE_TOKEN ?? secretKey }, async () => {
    const updates = [];
    const completed = new Set();
    // The feed never ends by itself: leave it once the runs the test scripted are done.
    for await (const run of runs.subscribeToRunsWithTag(tag, filters)) {
      updates.push(
        plain({
          id: run.id,
          status: run.status,
          metadata: run.metadata,
          tags: run.tags,
          isCompleted: run.isCompleted,
        }),
      );
      if (run.isCompleted) completed.add(run.id);
      if (completed.size >= until) break;
    }
    return { updates };
  });
}

const commands = { run: commandRun, tokens: commandTokens, tags: commandTags };
const command = commands[process.argv[2]];
if (!command) {
  process.stderr.write(`usage: node sdk_probe.mjs ${Object.keys(commands).join("|")}\n`);
  process.exit(2);
}
try {
  const result = await command();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.stdout.write(`${JSON.stringify({ error: describeError(error) })}\n`);
  process.exit(1);
}
