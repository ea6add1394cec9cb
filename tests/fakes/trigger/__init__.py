"""A fake Trigger.dev server for tests: a Starlette app served by uvicorn on 127.0.0.1.

It speaks the wire protocol of ../shared/reference/trigger-dev-protocol.md closely enough that the
official `@trigger.dev/sdk@4.8.3` works against it (proved by tests/conformance/). The pure parts
live in `protocol.py` (statuses, error bodies, tokens, scopes, metadata operations) and
`encoding.py` (shape messages, SSE records); `server.py` is the server and its request log,
`store.py` the runs and streams, `faults.py` the faults, and `api_routes.py`, `shape_routes.py`
and `stream_routes.py` the HTTP glue. `worker.py` is the task that runs the real worker.

Starting and stopping
---------------------
    with FakeTrigger(live_poll_timeout=2.0) as fake:      # or fake.start() ... fake.stop()
        fake.url            # "http://127.0.0.1:<ephemeral port>"
        fake.secret_key     # "tr_dev_<24 alnum>" (root key: the env's JWT signing key)
        fake.additional_key # "tr_dev_sk_<24 alnum>" (server mints public tokens for it)
        fake.environment_id # the `sub` of every public token

Constructor options (all keyword-only): `secret_key`, `environment_id`, `live_poll_timeout`
(seconds a `live=true` poll is held, 20 by default as on Trigger.dev), `stream_timeout` (seconds
of silence after which an SSE stream closes when the client sends no `Timeout-Seconds`; 15),
`ping_interval` (SSE keep-alives, 10), `stream_version` ("v1"/"v2" forces the read format;
None = as the SDK asked at trigger time via `x-trigger-realtime-streams-version`),
`issue_trigger_jwt` (send `x-trigger-jwt` on trigger; False leaves only the claims header so the
client self-signs), `partial_updates` (live updates carry only changed columns, as real Electric
does; the default full rows are what Trigger.dev's native backend sends), `tasks` (known task ids;
None accepts any), `executor` (below).

Hooks (plain methods, safe from any thread; a run is named by its friendly id `run_…`)
-------------------------------------------------------------------------------------
Runs:       create_run(task, payload=None, *, tags=(), status="QUEUED", metadata=None) -> run_id
            set_status(run_id, status)            # SDK names (QUEUED, EXECUTING, ...) or DB names
            complete_run(run_id, output=None)     # COMPLETED + output + completedAt
            fail_run(run_id, message, *, status="FAILED", name="Error")
            set_metadata(run_id, metadata) / update_metadata(run_id, operations)
            append_chunk(run_id, key, chunk) / append_chunks(run_id, key, chunks)
            run(run_id) -> RunView (a copy), run_ids() -> list, stream_chunks(run_id, key)
Waiting:    wait_for_runs(count=1, within=10) -> list of run ids (blocks the calling thread)
            wait_for_live_poll(run_id, within=10, count=1)  # polls held at the current row
            wait_for_stream_reader(run_id, key, within=10)
            wait_for_tag_poll(tag, within=10, count=1)   # tag-feed polls held, all changes seen
            tag_polls(tag) -> int                        # tag-feed polls held right now
            wait_for_status(run_id, status, within=10)
            await_* variants of these for async tests (they run the wait in a thread)
Tag feed:   GET /realtime/v1/runs?tags=a,b&createdAt=1d (tag_routes.py): the runs that have
            every tag, as runs.subscribeToRunsWithTag reads them; tokens need read:tags:<tag>.
Tokens:     mint_token(scopes, *, expires_in=900.0, exp=None, extra_claims=None) -> str
            expire_tokens()        # every token issued or presented so far now gets 401
            advance_clock(seconds) # the server's clock for `exp` checks and new timestamps
Faults:     inject(kind, fault, *, times=1, run_id=None), with fault one of
              Respond(status, body, headers)  answer this instead (e.g. 500, 503)
              Delay(seconds)                  a slow response, then the normal one
              Hold(released)                  wait until the test sets `released` (a
                                              threading.Event), then answer normally
              Drop(after=None, before_response=False, mid_event=False)
                                              handle normally, then cut the connection mid-body
                                              (SSE: after `after` records, or inside the next
                                              record with `mid_event`), or reset it before the
                                              response (a network error for the client)
              Refuse()                        reset the connection before handling anything
                                              (Trigger.dev unreachable: nothing is created)
            and shortcuts fail_next(kind, status=500), rate_limit_next(kind, reset_in=1.0)
            (429 + `x-ratelimit-reset` in epoch ms), drop_next(kind, after=None, before_response=False,
            mid_event=False), refuse_next(kind),
            delay_next(kind, seconds), rotate_handle(run_id) (409 must-refetch on the next poll,
            held polls included), rotate_tag_feeds() (the same for every tag feed).
            `inject` and the shortcuts return a `PendingFault` whose `fired` counts its uses; `withdraw(pending)` takes back one not used up. With
            `tag=...` a fault hits only requests for runs with that tag (a trigger: whose
            request asks for it), so concurrent runs can each get their own faults.
            Kinds: trigger, claims, public_tokens, realtime_run, realtime_runs (the tag feed,
            ``GET /realtime/v1/runs?tags=...``; ``tag=`` matches the tags it asks for), retrieve,
            cancel, metadata, stream_create, stream_write, stream_append, stream_read.
Recording:  requests (list of RecordedRequest: kind, method, path, query, headers, body, run_id),
            requests_of(kind).

Executor (issue 4: the fake plays the task)
-------------------------------------------
`executor` is an async callable `executor(run: RunControl) -> None` started on the server's event
loop for each newly created run (not for cached idempotent replays). `RunControl` carries
`id`, `task_identifier`, `payload` (parsed), `tags`, `metadata`, and the run hooks bound to the run:
`set_status`, `set_metadata`, `update_metadata`, `append_chunk`, `complete`, `fail`. A typical
executor: `await asyncio.sleep(queue_delay)`, `run.set_status("EXECUTING")`, relay the worker's
lines into `run.update_metadata(...)` / `run.append_chunk("cells", ...)`, then `run.complete()`.
Cancelling the run (API or hook) cancels the executor task; an executor that raises marks the
run CRASHED with the exception message (also kept in `executor_errors`).

Deviations from Trigger.dev, on purpose: streams are stored once and served in either format
(`PUT` on a stream always answers `{"version": "v1"}` since there is no S2 to write to); cancel
sets `completedAt` at once (the real engine may wait for the worker); the legacy (pre-2025-07-16)
API version only rewrites DEQUEUED to EXECUTING on the realtime feed.
"""

from tests.fakes.trigger.faults import (
    Delay,
    Drop,
    DroppedConnection,
    Fault,
    FaultKind,
    Hold,
    PendingFault,
    Refuse,
    Respond,
)
from tests.fakes.trigger.runs import Executor, RunControl, RunView
from tests.fakes.trigger.server import FakeTrigger, RecordedRequest
from tests.fakes.trigger.worker import WorkerTask

__all__ = [
    "Delay",
    "Drop",
    "DroppedConnection",
    "Executor",
    "FakeTrigger",
    "Fault",
    "FaultKind",
    "Hold",
    "PendingFault",
    "RecordedRequest",
    "Refuse",
    "Respond",
    "RunControl",
    "RunView",
    "WorkerTask",
]
