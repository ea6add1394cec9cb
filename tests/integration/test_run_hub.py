"""RunHub against the fake Trigger.dev server: tokens, refusals and cancellation of its feeds.

The runs are made straight in the fake (no task runs them): these tests are about how the hub
subscribes, not about the job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from enrichment_app.live.hub import RunHub
from enrichment_app.trigger import TriggerClient
from tests.fakes.trigger import FakeTrigger

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
