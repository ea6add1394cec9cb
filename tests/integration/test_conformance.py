"""The official Trigger.dev SDK (4.8.3) against the fake server: proof that the fake is faithful.

`tests/conformance/sdk_probe.mjs` drives `@trigger.dev/sdk` (tasks.trigger, auth.createPublicToken,
runs.subscribeToRun, streams.read, runs.retrieve) and `@trigger.dev/core`'s `validateJWT`, and prints
what it saw; these tests script the run on the fake and compare. The node packages come from
`tests/conformance/package-lock.json`, installed by `scripts/bootstrap.sh`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jwt
import pytest

from enrichment_app.trigger import TriggerClient
from tests.fakes.trigger import FakeTrigger, RunControl, protocol as proto

CONFORMANCE_DIR = Path(__file__).resolve().parents[1] / "conformance"
PROBE = CONFORMANCE_DIR / "sdk_probe.mjs"
PROBE_TIMEOUT = 120.0
TASK = "process-enrichment-job"

# Mints a public access token: (secret_key, environment_id, scopes, expires_at) -> JWT.


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node 20 and run scripts/bootstrap.sh")
    sdk = CONFORMANCE_DIR / "node_modules" / "@trigger.dev" / "sdk" / "package.json"
    if not sdk.is_file():
        pytest.fail(
            "tests/conformance/node_modules is missing: run scripts/bootstrap.sh "
            "(it runs `npm ci --prefix tests/conformance --no-audit --no-fund`)"
        )
    return node


def run_probe(command: str, fake: FakeTrigger, **env: str) -> dict[str, Any]:
    """Run the SDK probe against the fake and return its JSON report."""
    node = _node()
    completed = subprocess.run(
        [node, str(PROBE), command],
        cwd=CONFORMANCE_DIR,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "TRIGGER_API_URL": fake.url,
            "TRIGGER_SECRET_KEY": fake.secret_key,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, (
        f"sdk_probe {command} exited {completed.returncode}\n"
        f"stdout: {completed.stdout[-2000:]}\nstderr: {completed.stderr[-4000:]}"
    )
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


async def _run_probe_async(command: str, fake: FakeTrigger, **env: str) -> dict[str, Any]:
    return await asyncio.to_thread(run_probe, command, fake, **env)


def pyjwt_minter(
    secret_key: str, environment_id: str, scopes: Sequence[str], expires_at: float
) -> str:
    """A public token built with PyJWT exactly as the protocol doc (§2.1) describes the SDK's.

    Used only for a key the fake does not know (its claims endpoint would refuse the client).
    """
    now = int(time.time())
    claims = {
        "sub": environment_id,
        "pub": True,
        "scopes": list(scopes),
        "iss": "https://id.trigger.dev",
        "aud": "https://api.trigger.dev",
        "iat": now,
        "exp": int(expires_at),
    }
    with warnings.catch_warnings():
        # Trigger.dev root keys are 31 bytes, under PyJWT's HS256 minimum; the format is theirs.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret_key, algorithm="HS256")


def _scopes_object(scopes: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """``["read:runs:run_1"]`` back to the SDK's ``{"read": {"runs": ["run_1"]}}``."""
    result: dict[str, dict[str, list[str]]] = {}
    for scope in scopes:
        action, resource, ident = scope.split(":", 2)
        result.setdefault(action, {}).setdefault(resource, []).append(ident)
    return result


async def client_minter(fake: FakeTrigger, scopes: Sequence[str], expires_at: float) -> str:
    """A token minted by ``TriggerClient.create_public_token`` with the fake's claims."""
    async with TriggerClient(secret_key=fake.secret_key, base_url=fake.url) as client:
        return await client.create_public_token(
            scopes=_scopes_object(scopes), expiration_time=int(expires_at)
        )


def scripted_executor(
    fake: FakeTrigger,
    cells: Sequence[dict[str, Any]],
    *,
    subscribers: int = 1,
    before_step: Callable[[int, str], None] | None = None,
) -> Any:
    """Play the task: each row change waits until every subscriber's live poll holds the last row.

    Waiting for the held polls before each change makes every change its own shape response, so
    the exact sequence of updates each client yields can be asserted (nothing merged, lost or
    doubled). `before_step(step, run_id)` runs just before change number `step` (faults go there).
    """

    async def execute(run: RunControl) -> None:
        step = 0

        async def change(apply: Callable[[], object]) -> None:
            nonlocal step
            await fake.await_live_poll(run.id, count=subscribers)
            if before_step is not None:
                before_step(step, run.id)
            apply()
            step += 1

        await change(lambda: run.set_status("EXECUTING"))
        for done, cell in enumerate(cells, start=1):
            progress = {"done": done, "total": len(cells)}
            await change(
                lambda progress=progress: run.update_metadata(
                    [{"type": "set", "key": "progress", "value": progress}]
                )
            )
            await change(lambda cell=cell: run.append_chunk("cells", cell))
        await change(lambda: run.complete({"ok": True, "cells": len(cells)}))

    return execute


CELLS = [
    {"rowId": 1, "columnId": 2, "status": "done", "value": "acme.com"},
    {"rowId": 2, "columnId": 2, "status": "failed", "error": "timeout"},
]


def expected_updates(run_id: str) -> list[tuple[str, Any, list[str]]]:
    """(status, metadata, realtimeStreams) of every update the SDK must yield, in order."""
    p1 = {"progress": {"done": 1, "total": 2}}
    p2 = {"progress": {"done": 2, "total": 2}}
    return [
        ("QUEUED", None, []),
        ("EXECUTING", None, []),
        ("EXECUTING", p1, []),
        ("EXECUTING", p1, ["cells"]),  # the first chunk adds the stream to the run row
        ("EXECUTING", p2, ["cells"]),
        ("COMPLETED", p2, ["cells"]),
    ]


@pytest.fixture
def fake_factory() -> Iterator[Callable[..., FakeTrigger]]:
    started: list[FakeTrigger] = []

    def make(**options: Any) -> FakeTrigger:
        fake = FakeTrigger(**options)
        started.append(fake.start())
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.mark.parametrize(
    ("stream_version", "partial_updates"),
    [("v2", False), ("v1", True)],
    ids=["sse-v2-full-rows", "sse-v1-partial-updates"],
)
async def test_sdk_sees_the_scripted_run(
    fake_factory: Callable[..., FakeTrigger], stream_version: str, partial_updates: bool
) -> None:
    fake = fake_factory(
        live_poll_timeout=5.0, stream_version=stream_version, partial_updates=partial_updates
    )
    fake.executor = scripted_executor(fake, CELLS)

    report = await _run_probe_async(
        "run",
        fake,
        PROBE_PAYLOAD=json.dumps({"jobId": "j1", "tableId": "t1", "taskIds": [1, 2]}),
        PROBE_IDEMPOTENCY_KEY="job-j1",
        PROBE_TAGS=json.dumps(["job:j1", "table:t1"]),
        PROBE_STREAM_TIMEOUT="2",
    )

    run_id = report["trigger"]["id"]
    assert fake.run_ids() == [run_id]
    assert report["trigger"]["isCached"] is False
    assert report["replay"] == {"id": run_id, "isCached": True}
    view = fake.run(run_id)
    assert view.payload == {"jobId": "j1", "tableId": "t1", "taskIds": [1, 2]}
    assert view.tags == ("job:j1", "table:t1")
    assert fake.executor_errors == []

    seen = [(u["status"], u.get("metadata"), u["realtimeStreams"]) for u in report["updates"]]
    assert seen == expected_updates(run_id)
    first, last = report["updates"][0], report["updates"][-1]
    assert first["id"] == run_id
    assert first["taskIdentifier"] == TASK
    assert first["payload"] == {"jobId": "j1", "tableId": "t1", "taskIds": [1, 2]}
    assert first["tags"] == ["job:j1", "table:t1"]
    assert first["isQueued"] is True
    assert "finishedAt" not in first
    assert last["isCompleted"] is True
    assert last["isSuccess"] is True
    assert last["output"] == {"ok": True, "cells": 2}
    assert last["finishedAt"] is not None

    assert report["chunks"] == CELLS
    assert report["retrieved"]["status"] == "COMPLETED"
    assert report["retrieved"]["output"] == {"ok": True, "cells": 2}
    assert report["retrieved"]["metadata"] == {"progress": {"done": 2, "total": 2}}

    # The server-issued handle token and the SDK-signed public token both pass the fake's rules.
    now = time.time()
    handle_claims = proto.verify_public_token(
        report["trigger"]["publicAccessToken"], fake.secret_key, now=now
    )
    assert handle_claims["scopes"] == [f"read:runs:{run_id}", f"write:inputStreams:{run_id}"]
    sdk_claims = proto.verify_public_token(report["publicToken"], fake.secret_key, now=now)
    assert sdk_claims["scopes"] == [f"read:runs:{run_id}"]
    assert sdk_claims["sub"] == fake.environment_id
    assert 3590 <= sdk_claims["exp"] - sdk_claims["iat"] <= 3600

    # The SDK spoke the protocol the fake (and the Python client) assume.
    trigger_requests = fake.requests_of("trigger")
    assert len(trigger_requests) == 2
    assert trigger_requests[0].headers["x-trigger-api-version"] == "2025-07-16"
    body = json.loads(trigger_requests[0].body)
    assert body["options"]["payloadType"] == "application/super+json"
    assert body["options"]["idempotencyKeyOptions"] == {"key": "job-j1", "scope": "run"}
    polls = fake.requests_of("realtime_run")
    assert polls[0].query.startswith("log=full&offset=-1")
    assert all(p.headers["authorization"] == f"Bearer {report['publicToken']}" for p in polls)
    reads = fake.requests_of("stream_read")
    assert reads
    assert reads[0].headers["authorization"] == f"Bearer {report['trigger']['publicAccessToken']}"


async def test_core_validate_jwt_judges_python_tokens_like_the_fake(
    fake_factory: Callable[..., FakeTrigger],
) -> None:
    fake = fake_factory()
    run_id = fake.create_run(TASK, {"jobId": "j1"}, tags=["job:j1"])
    other_run = fake.create_run(TASK, {"jobId": "j2"})
    now = time.time()
    tokens = {
        "good": await client_minter(fake, [f"read:runs:{run_id}"], now + 3600),
        "task_scope": await client_minter(fake, [f"read:tasks:{TASK}"], now + 600),
        "expired": await client_minter(fake, [f"read:runs:{run_id}"], now - 10),
        "wrong_scope": await client_minter(fake, [f"read:runs:{other_run}"], now + 3600),
        "write_only": await client_minter(fake, [f"write:runs:{run_id}"], now + 3600),
        "wrong_key": pyjwt_minter(
            "tr_dev_" + "x" * 24, fake.environment_id, [f"read:runs:{run_id}"], now + 3600
        ),
    }

    report = await _run_probe_async(
        "tokens", fake, PROBE_TOKENS=json.dumps(tokens), PROBE_RUN_ID=run_id
    )
    validated, retrieved = report["validated"], report["retrieved"]

    assert validated["good"] == {
        "ok": True,
        "sub": fake.environment_id,
        "scopes": [f"read:runs:{run_id}"],
    }
    assert validated["task_scope"]["ok"] is True
    assert (
        validated["wrong_scope"]["ok"] is True
    )  # the signature is fine; the scope is the server's call
    assert validated["write_only"]["ok"] is True
    assert validated["expired"]["ok"] is False
    assert validated["expired"]["code"] == "ERR_JWT_EXPIRED"
    assert validated["wrong_key"]["ok"] is False
    assert validated["wrong_key"]["code"] == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"

    # The fake's own verification reaches the same verdicts as @trigger.dev/core.
    for name, token in tokens.items():
        try:
            proto.verify_public_token(token, fake.secret_key, now=time.time())
        except proto.TokenRejected as exc:
            assert validated[name] == {**validated[name], "ok": False, "code": exc.reason}, name
        else:
            assert validated[name]["ok"] is True, name

    # And the SDK, presenting each token to the fake, gets the documented statuses.
    assert retrieved["good"] == {"ok": True, "id": run_id, "status": "QUEUED"}
    assert retrieved["task_scope"]["ok"] is True
    assert retrieved["expired"]["status"] == 401
    assert retrieved["expired"]["name"] == "AuthenticationError"
    assert retrieved["wrong_key"]["status"] == 401
    assert retrieved["wrong_scope"]["status"] == 403
    assert retrieved["wrong_scope"]["name"] == "PermissionDeniedError"
    assert retrieved["write_only"]["status"] == 403


async def test_sdk_rides_out_the_fakes_faults(fake_factory: Callable[..., FakeTrigger]) -> None:
    """Every fault hook, met by the official client: it recovers as documented, losing nothing."""
    fake = fake_factory(live_poll_timeout=5.0, stream_version="v2")
    injected: list[str] = []

    def faults(step: int, run_id: str) -> None:
        if step == 0:
            fake.rotate_handle(run_id)  # the held poll is answered 409 must-refetch
        elif step == 1:
            fake.fail_next("realtime_run", 503, run_id=run_id)
        elif step == 2:
            fake.rate_limit_next("realtime_run", reset_in=0.2, run_id=run_id)
        elif step == 3:
            fake.drop_next("realtime_run", before_response=True, run_id=run_id)
        elif step == 4:
            fake.delay_next("realtime_run", 0.3, run_id=run_id)
        injected.append(f"step {step}")

    fake.executor = scripted_executor(fake, CELLS, before_step=faults)
    # The run is created, then the connection is reset: the SDK retries with the same request key.
    fake.drop_next("trigger", before_response=True)
    # The stream reader's first connection is cut after one record; it resumes with Last-Event-ID.
    fake.drop_next("stream_read", after=1)

    report = await _run_probe_async(
        "run", fake, PROBE_STREAM_TIMEOUT="2", PROBE_IDEMPOTENCY_KEY="job-faults"
    )

    run_id = report["trigger"]["id"]
    assert fake.run_ids() == [run_id]
    assert report["replay"] == {"id": run_id, "isCached": True}
    assert len(injected) == 6
    seen = [(u["status"], u.get("metadata"), u["realtimeStreams"]) for u in report["updates"]]
    assert seen == expected_updates(run_id)
    assert report["chunks"] == CELLS

    polls = fake.requests_of("realtime_run")
    first_handle = f"handle={polls[1].query.split('handle=')[1].split('&')[0]}"
    refetch = [p for p in polls if "expired_handle=" in p.query]
    assert refetch
    assert "offset=-1" in refetch[0].query
    assert f"expired_{first_handle}" in refetch[0].query
    assert all(f"&{first_handle}&" not in f"&{p.query}&" for p in refetch)
    assert polls.index(refetch[0]) == len(polls) - len(refetch)  # never back to the old handle
    reads = fake.requests_of("stream_read")
    assert len(reads) >= 2
    assert reads[1].headers["last-event-id"] == "0"
    keys = {r.headers["x-trigger-request-idempotency-key"] for r in fake.requests_of("trigger")}
    assert len(fake.requests_of("trigger")) == 3  # dropped + retried, then the replay
    assert len(keys) == 2


async def test_sdk_and_trigger_client_see_the_same_run(
    fake_factory: Callable[..., FakeTrigger],
) -> None:
    """The official SDK and `TriggerClient` subscribe to one scripted run side by side."""
    from enrichment_app.trigger import TriggerClient

    fake = fake_factory(live_poll_timeout=5.0, stream_version="v2")
    fake.executor = scripted_executor(fake, CELLS, subscribers=2)

    async def python_side() -> tuple[list[tuple[str, Any]], list[Any]]:
        (run_id,) = await fake.await_runs(1)
        async with TriggerClient(secret_key=fake.secret_key, base_url=fake.url) as client:
            token = await client.create_public_token(
                scopes={"read": {"runs": [run_id]}}, expiration_time="1h"
            )

            async def updates() -> list[tuple[str, Any]]:
                return [
                    (run.status, run.metadata)
                    async for run in client.subscribe_to_run(run_id, access_token=token)
                ]

            async def chunks() -> list[Any]:
                return [
                    chunk
                    async for chunk in client.read_stream(
                        run_id, "cells", access_token=token, timeout_seconds=2
                    )
                ]

            return await asyncio.gather(updates(), chunks())

    sdk_report, (py_updates, py_chunks) = await asyncio.gather(
        _run_probe_async("run", fake, PROBE_STREAM_TIMEOUT="2"), python_side()
    )

    sdk_updates = [(u["status"], u.get("metadata")) for u in sdk_report["updates"]]
    assert sdk_updates == [(status, metadata) for status, metadata, _ in expected_updates("")]
    assert py_updates == sdk_updates
    assert py_chunks == sdk_report["chunks"] == CELLS


async def test_sdk_and_trigger_client_follow_the_same_tag_feed(
    fake_factory: Callable[..., FakeTrigger],
) -> None:
    """``runs.subscribeToRunsWithTag`` and ``TriggerClient.subscribe_to_runs_with_tag`` follow
    one table's runs side by side, with a token scoped to the table's tag: the same runs, the
    same changes, in the same order, asked for with the same request."""
    fake = fake_factory(live_poll_timeout=5.0)
    first = fake.create_run(TASK, {"jobId": 1}, tags=["job:1", "table:t1"])
    fake.create_run(TASK, {"jobId": 2}, tags=["job:2", "table:t2"])  # another table's run
    token = await client_minter(fake, ["read:tags:table:t1"], time.time() + 3600)
    progress = {"progress": {"done": 1, "total": 2}}
    second: list[str] = []

    async def script() -> None:
        async def step(apply: Callable[[], object]) -> None:
            await fake.await_tag_poll("table:t1", count=2, within=60)
            apply()

        await step(lambda: fake.set_status(first, "EXECUTING"))
        await step(
            lambda: second.append(fake.create_run(TASK, {"jobId": 3}, tags=["job:3", "table:t1"]))
        )
        await step(
            lambda: fake.update_metadata(
                first, [{"type": "set", "key": "progress", "value": progress["progress"]}]
            )
        )
        await step(lambda: fake.complete_run(second[0]))
        await step(lambda: fake.complete_run(first))

    async def python_side() -> list[tuple[str, str, Any]]:
        seen: list[tuple[str, str, Any]] = []
        completed: set[str] = set()
        async with TriggerClient(secret_key=fake.secret_key, base_url=fake.url) as client:
            async for run in client.subscribe_to_runs_with_tag("table:t1", access_token=token):
                seen.append((run.id, run.status, run.metadata))
                if run.is_final:
                    completed.add(run.id)
                if len(completed) == 2:
                    break
        return seen

    sdk_report, py_seen, _ = await asyncio.gather(
        _run_probe_async(
            "tags",
            fake,
            PROBE_TAG="table:t1",
            PROBE_TOKEN=token,
            PROBE_CREATED_AT="1d",
            PROBE_UNTIL_COMPLETED="2",
        ),
        python_side(),
        script(),
    )

    expected = [
        (first, "QUEUED", None),
        (first, "EXECUTING", None),
        (second[0], "QUEUED", None),
        (first, "EXECUTING", progress),
        (second[0], "COMPLETED", None),
        (first, "COMPLETED", progress),
    ]
    sdk_seen = [(u["id"], u["status"], u.get("metadata")) for u in sdk_report["updates"]]
    assert sdk_seen == expected
    assert py_seen == expected
    assert all(u["tags"][-1] == "table:t1" for u in sdk_report["updates"])

    polls = fake.requests_of("realtime_runs")
    first_queries = [p.query for p in polls if "offset=-1" in p.query]
    assert first_queries == ["createdAt=1d&log=full&offset=-1&tags=table%3At1"] * 2
    assert all(p.headers["authorization"] == f"Bearer {token}" for p in polls)
    assert all(p.headers["x-trigger-electric-version"] == "1.0.0-beta.1" for p in polls)
