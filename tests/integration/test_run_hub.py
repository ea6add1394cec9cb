"""RunHub against the fake Trigger.dev server: tokens, refusals and cancellation of its feeds.

The runs are made straight in the fake (no task runs them): these tests are about how the hub
subscribes, not about the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from enrichment_app.live.events import CellBatch, FeedFailed, RunEvent
from enrichment_app.live.hub import RunHub
from enrichment_app.trigger import TriggerClient
from tests.fakes.trigger import FakeTrigger
from tests.support.waiting import await_until

TASK = "process-enrichment-job"
TIMEOUT = 20


@pytest.fixture
def fake() -> Iterator[FakeTrigger]:
    with FakeTrigger(live_poll_timeout=1.0, stream_timeout=5.0, ping_interval=0.2) as server:
        yield server


@pytest.fixture
async def client(fake: FakeTrigger) -> AsyncIterator[TriggerClient]:
    async with TriggerClient(secret_key=fake.secret_key, base_url=fake.url) as trigger:
        yield trigger


class Minter:
    """Mints run tokens as the app does, and counts how often it is asked."""

    def __init__(self, client: TriggerClient) -> None:
        self.client = client
        self.calls: list[str] = []

    async def __call__(self, run_id: str) -> str:
        self.calls.append(run_id)
        return await self.client.create_public_token(
            scopes={"read": {"runs": [run_id]}}, expiration_time="1h"
        )


@pytest.fixture
def mint(client: TriggerClient) -> Minter:
    return Minter(client)


@pytest.fixture
async def hub(client: TriggerClient, mint: Minter) -> AsyncIterator[RunHub]:
    hub = RunHub(client=client, mint_token=mint)
    try:
        yield hub
    finally:
        await hub.aclose()


async def test_both_halves_of_a_feed_share_one_minted_token(
    hub: RunHub, fake: FakeTrigger, mint: Minter
) -> None:
    """The run feed and its ``cells`` stream start together; they must not mint a token each."""
    run_id = fake.create_run(TASK, status="EXECUTING")
    async with hub.watch(run_id) as watcher:
        await watcher.next()  # the run's first snapshot
        await fake.await_live_poll(run_id, within=TIMEOUT)
        await fake.await_stream_reader(run_id, "cells", within=TIMEOUT)
        assert mint.calls == [run_id], "one token for the feed, minted once"
        tokens = {
            r.headers["authorization"]
            for r in fake.requests
            if r.kind in ("realtime_run", "stream_read")
        }
        assert len(tokens) == 1


async def test_a_cells_stream_that_keeps_refusing_its_token_backs_off_and_ends(
    hub: RunHub, fake: FakeTrigger, mint: Minter
) -> None:
    """A persistent 401 on the ``cells`` stream: fresh tokens with a growing wait, then the
    feed ends with a message (the page polls instead), not a tight loop of reconnections."""
    run_id = fake.create_run(TASK, status="EXECUTING")
    fake.fail_next("stream_read", 401, times=10_000, run_id=run_id)
    events: list[RunEvent] = []

    async def follow() -> None:
        async with hub.watch(run_id) as watcher:
            while (event := await watcher.next()) is not None:
                events.append(event)

    following = asyncio.create_task(follow())
    try:
        await await_until(
            lambda: following.done() or len(fake.requests_of("stream_read")) > 50,
            timeout=TIMEOUT,
            message="the feed to end after the cells stream kept answering 401",
        )
        refused = len(fake.requests_of("stream_read"))
        assert refused <= 5, f"a persistent 401 was retried in a tight loop: {refused} requests"
        failed = [e for e in events if isinstance(e, FeedFailed)]
        assert failed and "refus" in failed[-1].reason, events
        assert len(mint.calls) == refused, "each retry presented a freshly minted token"
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)


async def test_leaving_a_feed_keeps_the_cancellation_of_the_watcher(
    hub: RunHub, fake: FakeTrigger
) -> None:
    """A tab's task cancelled while it leaves the feed (the tab closed, the server stops) must
    end cancelled; the hub closing the feed's own task must not swallow it."""
    run_id = fake.create_run(TASK, status="EXECUTING")
    went_on: list[str] = []

    async def watch_then_leave() -> None:
        async with hub.watch(run_id) as watcher:
            await watcher.next()
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # delivered at the next await: inside the hub's clean-up
        went_on.append("the cancelled task went on after leaving the feed")

    task = asyncio.create_task(watch_then_leave())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, TIMEOUT)
    assert went_on == []
    assert task.cancelled()


async def test_a_reopened_cells_stream_resumes_after_the_last_event_it_saw(
    client: TriggerClient, mint: Minter, fake: FakeTrigger
) -> None:
    """The server ends a stream after a silence; the feed reopens it from where it was, not
    from the start (``Last-Event-ID``, which Trigger.dev honours for v1 and v2 streams)."""
    hub = RunHub(client=client, mint_token=mint, stream_timeout_seconds=1)
    run_id = fake.create_run(TASK, status="EXECUTING")
    cell = {"taskId": 1, "rowId": 10, "columnId": 3, "status": "done", "value": "a", "error": None}
    fake.append_chunks(run_id, "cells", [cell, {**cell, "taskId": 2, "rowId": 11}])
    try:
        async with hub.watch(run_id) as watcher:
            cells: list[int] = []
            while len(cells) < 2:
                event = await asyncio.wait_for(watcher.next(), TIMEOUT)
                if isinstance(event, CellBatch):
                    cells += [cell.task_id for cell in event.cells]
            assert cells == [1, 2]
            await await_until(
                lambda: len(fake.requests_of("stream_read")) >= 2,
                timeout=TIMEOUT,
                message="the cells stream to be reopened after a second of silence",
            )
            fake.append_chunk(run_id, "cells", {**cell, "taskId": 3, "rowId": 12})
            event = await asyncio.wait_for(watcher.next(), TIMEOUT)
            while not isinstance(event, CellBatch):
                event = await asyncio.wait_for(watcher.next(), TIMEOUT)
            assert [cell.task_id for cell in event.cells] == [3]
    finally:
        await hub.aclose()
    first, reopened = fake.requests_of("stream_read")[:2]
    assert "last-event-id" not in first.headers
    assert reopened.headers["last-event-id"] == "1", "the second chunk's position (v2 seq_num)"
