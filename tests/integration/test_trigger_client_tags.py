"""``TriggerClient.subscribe_to_runs_with_tag`` against the fake Trigger.dev server: a table's
runs as they come and change, tag-scoped tokens, and the faults (409, 401, 403, 5xx).

(The official SDK reads the same feed in test_conformance.py.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from enrichment_app.trigger import (
    AuthenticationError,
    PermissionDeniedError,
    RealtimeRun,
    RealtimeUnavailableError,
    TriggerClient,
)
from tests.fakes.trigger import FakeTrigger
from tests.support.sleeps import FastSleep

TASK = "process-enrichment-job"
TAG = "table:7"
WAIT = 20.0


@pytest.fixture
def fake() -> Iterator[FakeTrigger]:
    with FakeTrigger(live_poll_timeout=1.0) as server:
        yield server


@pytest.fixture
def sleep() -> FastSleep:
    return FastSleep()


@pytest.fixture
async def client(fake: FakeTrigger, sleep: FastSleep) -> AsyncIterator[TriggerClient]:
    async with TriggerClient(secret_key=fake.secret_key, base_url=fake.url, sleep=sleep) as trigger:
        yield trigger


class Follower:
    """Follows the tag feed in a task and keeps every run it yields."""

    def __init__(self, client: TriggerClient, token: str | None, **options: object) -> None:
        self.runs: list[RealtimeRun] = []
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._follow(client, token, options))

    async def _follow(self, client: TriggerClient, token: str | None, options: dict) -> None:
        try:
            async for run in client.subscribe_to_runs_with_tag(TAG, access_token=token, **options):
                self.runs.append(run)
                self._changed.set()
        except Exception as exc:
            self.error = exc
            self._changed.set()

    def seen(self) -> list[tuple[str, str]]:
        return [(r.id, r.status) for r in self.runs]

    async def until(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.runs) < count and self.error is None:
                self._changed.clear()
                await self._changed.wait()
        assert self.error is None, self.error

    async def failure(self) -> BaseException:
        async with asyncio.timeout(WAIT):
            await self._task
        assert self.error is not None
        return self.error

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def tag_token(client: TriggerClient, *scope_tags: str) -> str:
    return await client.create_public_token(
        scopes={"read": {"tags": list(scope_tags)}}, expiration_time="1h"
    )


async def test_the_feed_yields_the_table_s_runs_as_they_come_and_change(
    fake: FakeTrigger, client: TriggerClient
) -> None:
    first = fake.create_run(TASK, tags=["job:1", TAG])
    fake.create_run(TASK, tags=["job:2", "table:8"])
    follower = Follower(client, await tag_token(client, TAG))
    try:
        await follower.until(1)
        await fake.await_tag_poll(TAG)
        second = fake.create_run(TASK, tags=["job:3", TAG])
        await follower.until(2)
        await fake.await_tag_poll(TAG)
        fake.set_status(first, "EXECUTING")
        await follower.until(3)
        await fake.await_tag_poll(TAG)
        fake.complete_run(second)
        await follower.until(4)
        await fake.await_tag_poll(TAG)  # the feed goes on after a run of it ended
        assert follower.seen() == [
            (first, "QUEUED"),
            (second, "QUEUED"),
            (first, "EXECUTING"),
            (second, "COMPLETED"),
        ]
    finally:
        await follower.stop()
    (request, *_) = fake.requests_of("realtime_runs")
    assert request.query == "createdAt=1d&log=full&offset=-1&tags=table%3A7"


async def test_runs_older_than_created_at_are_left_out(
    fake: FakeTrigger, client: TriggerClient
) -> None:
    fake.create_run(TASK, tags=[TAG])
    fake.advance_clock(2 * 86400)
    recent = fake.create_run(TASK, tags=[TAG])
    token = fake.mint_token([f"read:tags:{TAG}"])  # on the fake's clock, two days on
    follower = Follower(client, token, created_at="1d")
    try:
        await follower.until(1)
        await fake.await_tag_poll(TAG)
        assert follower.seen() == [(recent, "QUEUED")]
    finally:
        await follower.stop()


async def test_a_rotated_handle_refetches_without_losing_or_repeating_a_run(
    fake: FakeTrigger, client: TriggerClient
) -> None:
    first = fake.create_run(TASK, tags=[TAG])
    follower = Follower(client, await tag_token(client, TAG))
    try:
        await follower.until(1)
        await fake.await_tag_poll(TAG)
        fake.rotate_tag_feeds()  # the held poll is answered 409 must-refetch
        second = fake.create_run(TASK, tags=[TAG])
        await follower.until(2)
        await fake.await_tag_poll(TAG)
        fake.set_status(first, "EXECUTING")
        await follower.until(3)
        assert follower.seen() == [(first, "QUEUED"), (second, "QUEUED"), (first, "EXECUTING")]
    finally:
        await follower.stop()
    refetches = [r for r in fake.requests_of("realtime_runs") if "expired_handle=" in r.query]
    assert refetches and "offset=-1" in refetches[0].query


async def test_server_errors_are_retried_and_nothing_is_lost(
    fake: FakeTrigger, client: TriggerClient, sleep: FastSleep
) -> None:
    first = fake.create_run(TASK, tags=[TAG])
    follower = Follower(client, await tag_token(client, TAG))
    try:
        await follower.until(1)
        await fake.await_tag_poll(TAG)
        fake.fail_next("realtime_runs", 503, times=3)
        fake.set_status(first, "EXECUTING")  # answers the held poll; the next three fail
        await follower.until(2)
        await fake.await_tag_poll(TAG)
        fake.set_status(first, "COMPLETED")
        await follower.until(3)
        assert follower.seen() == [(first, "QUEUED"), (first, "EXECUTING"), (first, "COMPLETED")]
        assert len(sleep.delays) == 3, "Electric's backoff, once per failed poll"
    finally:
        await follower.stop()


async def test_server_errors_that_outlast_the_limit_end_the_feed(
    fake: FakeTrigger, client: TriggerClient
) -> None:
    fake.create_run(TASK, tags=[TAG])
    clocked = TriggerClient(
        secret_key=fake.secret_key,
        base_url=fake.url,
        sleep=lambda s: asyncio.sleep(0),
        clock=iter(range(0, 10_000, 10)).__next__,  # each failure 10 s after the last
    )
    fake.fail_next("realtime_runs", 503, times=100)
    async with clocked:
        follower = Follower(clocked, await tag_token(client, TAG), give_up_after=30.0)
        error = await follower.failure()
    assert isinstance(error, RealtimeUnavailableError) and error.status == 503
    assert "runs tagged table:7" in error.message


async def test_a_refused_token_raises(fake: FakeTrigger, client: TriggerClient) -> None:
    fake.create_run(TASK, tags=[TAG])
    expired = fake.mint_token([f"read:tags:{TAG}"], exp=time.time() - 5)
    error = await Follower(client, expired).failure()
    assert isinstance(error, AuthenticationError) and error.status == 401


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        ([f"read:tags:{TAG}"], True),
        (["read:tags"], True),
        (["read:runs"], True),
        (["read:tags:table:8"], False),
        (["read:runs:run_x"], False),
        ([f"write:tags:{TAG}"], False),
    ],
)
async def test_which_scopes_may_read_the_feed(
    fake: FakeTrigger, client: TriggerClient, scopes: list[str], allowed: bool
) -> None:
    run_id = fake.create_run(TASK, tags=[TAG])
    follower = Follower(client, fake.mint_token(scopes))
    try:
        if allowed:
            await follower.until(1)
            assert follower.seen() == [(run_id, "QUEUED")]
        else:
            error = await follower.failure()
            assert isinstance(error, PermissionDeniedError) and error.status == 403
    finally:
        await follower.stop()


async def test_tags_must_be_given(client: TriggerClient) -> None:
    with pytest.raises(ValueError, match="tags"):
        async for _ in client.subscribe_to_runs_with_tag([]):
            pass
