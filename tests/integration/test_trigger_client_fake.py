"""TriggerClient end to end against the fake Trigger.dev server on a real loopback socket.

The fake (``tests/fakes/trigger/``) is the one the official SDK is checked against in
``tests/conformance/``, so these tests tie TriggerClient to the SDK's view of the same wire.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import jwt
import pytest

from enrichment_app.trigger import (
    ApiConnectionError,
    AuthenticationError,
    PermissionDeniedError,
    RealtimeRun,
    TriggerClient,
)
from tests.fakes.trigger import FakeTrigger
from tests.support.sleeps import FastSleep

TASK = "process-enrichment-job"


@pytest.fixture
def fake() -> Iterator[FakeTrigger]:
    with FakeTrigger(live_poll_timeout=1.0, stream_timeout=5.0, ping_interval=0.2) as server:
        yield server


@pytest.fixture
def sleep() -> FastSleep:
    return FastSleep()


@pytest.fixture
async def client(fake: FakeTrigger, sleep: FastSleep) -> AsyncIterator[TriggerClient]:
    async with TriggerClient(secret_key=fake.secret_key, base_url=fake.url, sleep=sleep) as trigger:
        yield trigger


async def drive(fake: FakeTrigger, run_id: str, steps: list[Callable[[], object]]) -> None:
    """Apply each step once the client's live poll is parked at the current row."""
    for step in steps:
        await fake.await_live_poll(run_id)
        step()


async def follow(
    client: TriggerClient, run_id: str, token: str, driver: Awaitable[None]
) -> list[RealtimeRun]:
    task = asyncio.ensure_future(driver)
    try:
        runs = [run async for run in client.subscribe_to_run(run_id, access_token=token)]
    finally:
        await task
    return runs


async def test_trigger_token_subscribe_and_stream(fake, client):
    handle = await client.trigger(TASK, {"jobId": "j1"}, tags=["job:j1"], metadata={"progress": 0})
    assert handle.id.startswith("run_") and not handle.is_cached
    view = fake.run(handle.id)
    assert view.payload == {"jobId": "j1"} and view.tags == ("job:j1",)

    token = await client.create_public_token(
        scopes={"read": {"runs": [handle.id]}}, expiration_time="1h"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scopes"] == [f"read:runs:{handle.id}"] and claims["sub"] == fake.environment_id

    steps: list[Callable[[], object]] = [
        lambda: fake.set_status(handle.id, "EXECUTING"),
        lambda: fake.set_metadata(handle.id, {"progress": 0.5}),
        lambda: fake.append_chunks(handle.id, "cells", [{"cell": "a1"}, {"cell": "b2"}]),
        lambda: fake.complete_run(handle.id, {"ok": True}),
    ]
    runs = await follow(client, handle.id, token, drive(fake, handle.id, steps))

    assert [(r.status, r.metadata) for r in runs] == [
        ("QUEUED", {"progress": 0}),
        ("EXECUTING", {"progress": 0}),
        ("EXECUTING", {"progress": 0.5}),
        ("EXECUTING", {"progress": 0.5}),
        ("COMPLETED", {"progress": 0.5}),
    ]
    assert runs[3].realtime_streams == ("cells",)
    final = runs[-1]
    assert final.is_success and final.finished_at is not None and final.output == {"ok": True}
    assert final.id == handle.id and final.task_identifier == TASK and final.tags == ("job:j1",)

    chunks = [
        c
        async for c in client.read_stream(handle.id, "cells", access_token=token, timeout_seconds=1)
    ]
    assert chunks == [{"cell": "a1"}, {"cell": "b2"}]

    retrieved = await client.retrieve_run(handle.id, access_token=token)
    assert retrieved.status == "COMPLETED" and retrieved.output == {"ok": True}


async def test_handle_token_reads_its_run(fake, client):
    handle = await client.trigger(TASK, {"jobId": "j2"})
    fake.complete_run(handle.id)
    runs = [
        r async for r in client.subscribe_to_run(handle.id, access_token=handle.public_access_token)
    ]
    assert [r.status for r in runs] == ["COMPLETED"]


async def test_self_signed_handle_token_is_accepted(sleep):
    with FakeTrigger(live_poll_timeout=1.0, issue_trigger_jwt=False) as fake:
        async with TriggerClient(
            secret_key=fake.secret_key, base_url=fake.url, sleep=sleep
        ) as client:
            handle = await client.trigger(TASK, {})
            fake.set_status(handle.id, "CANCELED")
            runs = [
                r
                async for r in client.subscribe_to_run(
                    handle.id, access_token=handle.public_access_token
                )
            ]
    assert [r.status for r in runs] == ["CANCELED"]


async def test_subscription_rides_out_faults_without_losing_or_repeating(fake, client, sleep):
    handle = await client.trigger(TASK, {"jobId": "j3"}, metadata={"progress": 0})
    run_id = handle.id

    def fault_then(fault: Callable[[], object], progress: float) -> Callable[[], object]:
        def step() -> None:
            fault()
            fake.set_metadata(run_id, {"progress": progress})

        return step

    steps: list[Callable[[], object]] = [
        fault_then(lambda: fake.rate_limit_next("realtime_run", reset_in=0.0, run_id=run_id), 0.2),
        fault_then(lambda: fake.fail_next("realtime_run", 503, run_id=run_id), 0.4),
        fault_then(lambda: fake.drop_next("realtime_run", run_id=run_id), 0.6),
        fault_then(lambda: fake.rotate_handle(run_id), 0.8),
        lambda: fake.complete_run(run_id),
    ]
    runs = await follow(client, run_id, handle.public_access_token, drive(fake, run_id, steps))

    assert [r.metadata["progress"] for r in runs] == [0, 0.2, 0.4, 0.6, 0.8, 0.8]
    assert runs[-1].status == "COMPLETED"
    assert len(sleep.delays) >= 3  # 429, 503 and the drop were each retried
    polls = fake.requests_of("realtime_run")
    assert any("expired_handle=" in request.query for request in polls)


async def test_stream_resumes_after_a_drop(fake, client):
    handle = await client.trigger(TASK, {})
    fake.append_chunks(handle.id, "cells", [{"n": n} for n in range(5)])
    fake.drop_next("stream_read", after=2, run_id=handle.id)
    chunks = [c async for c in client.read_stream(handle.id, "cells", timeout_seconds=1)]
    assert chunks == [{"n": n} for n in range(5)]
    reads = fake.requests_of("stream_read")
    assert len(reads) == 2
    assert "last-event-id" not in reads[0].headers and reads[1].headers.get("last-event-id")


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_stream_cut_mid_event_resumes_without_loss_or_repeat(sleep, version):
    with FakeTrigger(stream_version=version, ping_interval=0.2) as fake:
        async with TriggerClient(
            secret_key=fake.secret_key, base_url=fake.url, sleep=sleep
        ) as client:
            handle = await client.trigger(TASK, {})
            fake.drop_next("stream_read", after=2, mid_event=True, run_id=handle.id)
            reader = asyncio.ensure_future(
                _collect(client.read_stream(handle.id, "cells", timeout_seconds=1))
            )
            await fake.await_stream_reader(handle.id, "cells")
            for n in range(5):  # one record at a time: the cut falls inside the third event
                fake.append_chunk(handle.id, "cells", {"n": n})
                await asyncio.sleep(0.05)
            chunks = await reader
        reads = fake.requests_of("stream_read")
    assert chunks == [{"n": n} for n in range(5)]
    assert len(reads) == 2 and reads[1].headers.get("last-event-id")


async def _collect(source: AsyncIterator[object]) -> list[object]:
    return [item async for item in source]


async def test_unreachable_server_fails_the_trigger_after_retries_and_creates_no_run(
    fake, client, sleep
):
    fake.refuse_next("trigger", times=5)
    with pytest.raises(ApiConnectionError):
        await client.trigger(TASK, {})
    assert fake.run_ids() == []
    assert len(fake.requests_of("trigger")) == 5 and len(sleep.delays) == 4
    handle = await client.trigger(TASK, {})  # reachable again
    assert fake.run_ids() == [handle.id]


async def test_a_live_poll_held_past_the_realtime_timeout_is_polled_again(fake, sleep):
    async with TriggerClient(
        secret_key=fake.secret_key, base_url=fake.url, sleep=sleep, realtime_timeout=0.5
    ) as client:
        handle = await client.trigger(TASK, {})
        fake.delay_next("realtime_run", 1.5, run_id=handle.id)  # the first poll hangs
        fake.set_status(handle.id, "COMPLETED")
        runs = [r async for r in client.subscribe_to_run(handle.id)]
    assert runs[-1].status == "COMPLETED"
    assert len(fake.requests_of("realtime_run")) >= 2 and sleep.delays


async def test_stream_v1_format(sleep):
    with FakeTrigger(stream_version="v1", ping_interval=0.2) as fake:
        async with TriggerClient(
            secret_key=fake.secret_key, base_url=fake.url, sleep=sleep
        ) as client:
            handle = await client.trigger(TASK, {})
            fake.append_chunks(handle.id, "cells", ["x", {"y": 1}])
            fake.drop_next("stream_read", after=1, run_id=handle.id)
            chunks = [c async for c in client.read_stream(handle.id, "cells", timeout_seconds=1)]
    assert chunks == ["x", {"y": 1}]


async def test_expired_and_wrongly_scoped_tokens_raise(fake, client):
    handle = await client.trigger(TASK, {})
    other = await client.create_public_token(scopes={"read": {"runs": ["run_other"]}})
    with pytest.raises(PermissionDeniedError):
        _ = [r async for r in client.subscribe_to_run(handle.id, access_token=other)]
    token = await client.create_public_token(scopes={"read": {"runs": [handle.id]}})
    fake.advance_clock(16 * 60)  # past the default 15 minute expiry
    with pytest.raises(AuthenticationError):
        _ = [r async for r in client.subscribe_to_run(handle.id, access_token=token)]
    with pytest.raises(AuthenticationError):
        _ = [c async for c in client.read_stream(handle.id, "cells", access_token=token)]


async def test_idempotent_trigger_returns_the_cached_run(client):
    first = await client.trigger(TASK, {"a": 1}, idempotency_key="job-1")
    second = await client.trigger(TASK, {"a": 1}, idempotency_key="job-1")
    assert second.id == first.id and second.is_cached and not first.is_cached


async def test_trigger_retries_a_server_error_and_cancel(fake, client, sleep):
    fake.fail_next("trigger", 500)
    handle = await client.trigger(TASK, {})
    assert len(fake.requests_of("trigger")) == 2
    keys = {r.headers.get("x-trigger-request-idempotency-key") for r in fake.requests_of("trigger")}
    assert len(keys) == 1
    assert sleep.delays == [1.0]
    assert await client.cancel_run(handle.id) == handle.id
    assert fake.run(handle.id).status == "CANCELED"
