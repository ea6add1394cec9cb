"""Trigger.dev mode without a browser: the app's runtime against the fake Trigger.dev server,
whose task runs the real worker subprocess on the same database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import warnings
from collections.abc import AsyncIterator, Iterator

import jwt
import pytest
from pydantic import SecretStr
from sqlmodel import select

from enrichment_app.db.models import EnrichmentJob, TableColumn, TableRow
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellRef, ColumnKind, JobBackend, JobStatus, utcnow
from enrichment_app.live.events import CellBatch, FeedFailed, RunEvent, RunSnapshot
from enrichment_app.live.hub import RECENT_BATCHES, Watcher
from enrichment_app.runtime import Runtime
from enrichment_app.services.demo import seed_demo
from enrichment_app.services.enrichment import (
    EnrichmentStarted,
    cancel_enrichment,
    read_job,
    start_enrichment,
)
from enrichment_app.services.jobs import JobView, create_job
from enrichment_app.settings import Settings
from enrichment_app.trigger.tokens import JWT_AUDIENCE
from tests.fakes.trigger import FakeTrigger, Respond, WorkerTask
from tests.integration.runtimes import closing
from tests.support.waiting import await_until

TIMEOUT = 30


@pytest.fixture
def worker_task(settings: Settings) -> WorkerTask:
    return WorkerTask(database_url=settings.database_url, queue_delay=0.2)


@pytest.fixture
def fake(worker_task: WorkerTask) -> Iterator[FakeTrigger]:
    with FakeTrigger(live_poll_timeout=2.0, stream_timeout=2.0, executor=worker_task) as fake:
        yield fake


@contextlib.asynccontextmanager
async def demo_runtime(
    settings: Settings, fake: FakeTrigger, **updates: object
) -> AsyncIterator[Runtime]:
    """A runtime on the fake Trigger.dev with the demo table seeded (``updates``: settings)."""
    runtime = Runtime(
        settings=settings.model_copy(
            update={
                "trigger_secret_key": SecretStr(fake.secret_key),
                "trigger_api_url": fake.url,
                **updates,
            }
        )
    )
    async with closing(runtime):
        with unit_of_work(runtime.open_session) as session:
            seed_demo(session=session, max_cell_chars=settings.max_cell_chars)
        yield runtime


@pytest.fixture
async def runtime(settings: Settings, fake: FakeTrigger) -> AsyncIterator[Runtime]:
    async with demo_runtime(settings, fake) as runtime:
        yield runtime


def demo_cells(runtime: Runtime, column_name: str, rows: int) -> list[CellRef]:
    with runtime.open_session() as session:
        column = session.exec(select(TableColumn).where(TableColumn.name == column_name)).one()
        assert column.kind == ColumnKind.ENRICHMENT
        row_ids = session.exec(select(TableRow.id).order_by(TableRow.position).limit(rows)).all()
        return [CellRef(row_id=r, column_id=column.id or 0) for r in row_ids if r is not None]


async def start(runtime: Runtime, cells: list[CellRef]) -> EnrichmentStarted:
    """Run these cells of the demo table, as the page's Run button does."""
    return await start_enrichment(
        open_session=runtime.open_session,
        runner=runtime.dispatcher,
        backend=runtime.backend,
        table_id=1,
        cells=cells,
        max_cells=100,
    )


async def collect(runtime: Runtime, run_id: str) -> list[RunEvent]:
    hub = runtime.hub
    assert hub is not None
    events: list[RunEvent] = []
    async with asyncio.timeout(TIMEOUT), hub.watch(run_id) as watcher:
        while (event := await watcher.next()) is not None:
            events.append(event)
            if isinstance(event, FeedFailed) or (isinstance(event, RunSnapshot) and event.is_final):
                break
    return events


async def test_run_triggers_the_task_and_the_feed_shows_every_step(
    runtime: Runtime, fake: FakeTrigger
) -> None:
    cells = demo_cells(runtime, "Email domain", 5)
    started = await start(runtime, cells)
    response = started.to_json()
    assert response["runId"] is not None and str(response["runId"]).startswith("run_")
    assert response["publicAccessToken"] and response["fallbackReason"] is None
    assert response["job"]["backend"] == JobBackend.TRIGGER.value  # type: ignore[index]

    with warnings.catch_warnings():  # Trigger.dev keys are 31 bytes, below PyJWT's advice for HS256
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        claims = jwt.decode(
            str(response["publicAccessToken"]),
            fake.secret_key,
            algorithms=["HS256"],
            audience=JWT_AUDIENCE,
        )
    assert claims["scopes"] == [f"read:runs:{response['runId']}"]
    assert 3500 <= claims["exp"] - claims["iat"] <= 3700

    trigger_request = json.loads(fake.requests_of("trigger")[0].body)
    assert trigger_request["options"]["payloadType"] == "application/super+json"
    assert json.loads(trigger_request["payload"])["json"] == {
        "jobId": started.job.id,
        "tableId": 1,
        "taskCount": 5,
    }  # type: ignore[index]
    assert sorted(trigger_request["options"]["tags"]) == sorted(
        [f"job:{started.job.id}", "table:1"]
    )  # type: ignore[index]

    events = await collect(runtime, str(response["runId"]))
    statuses = [e.status for e in events if isinstance(e, RunSnapshot)]
    assert statuses[-1] == "COMPLETED"
    assert "EXECUTING" in statuses
    progress = [
        (e.done + e.failed, e.total) for e in events if isinstance(e, RunSnapshot) and e.total
    ]
    assert progress == sorted(progress) and progress[-1] == (5, 5)
    batches = [e for e in events if isinstance(e, CellBatch)]
    cell_events = [cell for batch in batches for cell in batch.cells]
    assert len(batches) < len(cell_events), "the cells stored together arrive as one batch"
    assert {(c.row_id, c.column_id) for c in cell_events} <= {
        (c.row_id, c.column_id) for c in cells
    }
    # Each finished cell arrived live from the ``cells`` stream, once, before the run's end.
    assert len(cell_events) == len(cells) == 5, cell_events
    assert sorted((c.row_id, c.column_id) for c in cell_events) == sorted(
        (c.row_id, c.column_id) for c in cells
    )
    assert all(c.status == "done" and c.value for c in cell_events)

    job = await read_job(open_session=runtime.open_session, job_id=started.job.id)
    assert (
        job.status == JobStatus.COMPLETED.value
        and job.done == 5
        and job.run_id == response["runId"]
    )


async def test_every_watcher_shares_one_upstream_subscription(
    runtime: Runtime, fake: FakeTrigger, worker_task: WorkerTask
) -> None:
    worker_task.gate = asyncio.Event()
    started = await start(runtime, demo_cells(runtime, "Intro line", 3))
    run_id = started.dispatch.run_id
    assert run_id is not None and runtime.hub is not None
    results = asyncio.gather(*(collect(runtime, run_id) for _ in range(5)))
    await fake.await_live_poll(run_id, within=TIMEOUT)
    assert runtime.hub.upstream_count == 1
    snapshots = [r for r in fake.requests_of("realtime_run") if "offset=-1" in r.query]
    assert len(snapshots) == 1, "five watchers, one upstream subscription"
    worker_task.gate.set()
    per_watcher = await results
    assert all(
        isinstance(events[-1], RunSnapshot) and events[-1].status == "COMPLETED"
        for events in per_watcher
    )
    assert runtime.hub.upstream_count == 0


async def test_a_watcher_joining_as_the_last_one_leaves_gets_a_live_feed(
    runtime: Runtime, fake: FakeTrigger, worker_task: WorkerTask
) -> None:
    """A tab re-attaching while its previous follow task closes the feed must not join the
    closing feed: that ends at once and sends the tab to polling."""
    worker_task.gate = asyncio.Event()
    started = await start(runtime, demo_cells(runtime, "Intro line", 3))
    run_id = started.dispatch.run_id
    assert run_id is not None and runtime.hub is not None
    leaving = runtime.hub.watch(run_id)
    await leaving.__aenter__()
    await fake.await_live_poll(run_id, within=TIMEOUT)
    closing = asyncio.create_task(leaving.__aexit__(None, None, None))
    await asyncio.sleep(0)  # one turn of the loop: the leaver has cancelled the feed's task
    assert not closing.done()
    events = asyncio.create_task(collect(runtime, run_id))
    await closing
    await fake.await_live_poll(run_id, within=TIMEOUT)
    worker_task.gate.set()
    joined = await events
    assert not any(isinstance(e, FeedFailed) for e in joined)
    final = joined[-1]
    assert isinstance(final, RunSnapshot) and final.status == "COMPLETED", joined


async def test_trigger_refused_falls_back_to_the_local_runner(
    runtime: Runtime, fake: FakeTrigger
) -> None:
    fake.fail_next("trigger", 401)
    started = await start(runtime, demo_cells(runtime, "Email domain", 4))
    assert started.dispatch.run_id is None and started.dispatch.public_access_token is None
    assert started.dispatch.fallback_reason and "runs locally" in started.dispatch.fallback_reason
    assert started.job.backend == JobBackend.LOCAL.value and started.job.dispatch_error
    summary = await runtime.runner.wait(started.job.id)
    assert summary is not None and summary.status == JobStatus.COMPLETED.value and summary.done == 4
    assert fake.run_ids() == []


async def test_expired_token_is_replaced_and_a_rotated_handle_loses_nothing(
    runtime: Runtime, fake: FakeTrigger, worker_task: WorkerTask
) -> None:
    worker_task.gate = asyncio.Event()
    started = await start(runtime, demo_cells(runtime, "Email domain", 6))
    run_id = started.dispatch.run_id
    assert run_id is not None
    collecting = asyncio.ensure_future(collect(runtime, run_id))
    await fake.await_live_poll(run_id)
    fake.expire_tokens()
    fake.rotate_handle(run_id)
    worker_task.gate.set()
    events = await collecting
    snapshots = [e for e in events if isinstance(e, RunSnapshot)]
    assert snapshots[-1].status == "COMPLETED" and (snapshots[-1].done, snapshots[-1].total) == (
        6,
        6,
    )
    assert not any(isinstance(e, FeedFailed) for e in events)
    presented = {r.headers.get("authorization") for r in fake.requests_of("realtime_run")}
    assert len(presented) >= 2, "a fresh token should have been minted after the 401"


async def test_a_refused_feed_reports_failure_so_the_page_can_poll(
    runtime: Runtime, fake: FakeTrigger, worker_task: WorkerTask
) -> None:
    worker_task.gate = asyncio.Event()
    started = await start(runtime, demo_cells(runtime, "Email domain", 2))
    assert started.dispatch.run_id is not None
    fake.inject("realtime_run", Respond(403, {"error": "You don't have permission"}), times=50)
    events = await collect(runtime, started.dispatch.run_id)
    assert isinstance(events[-1], FeedFailed) and "refused" in events[-1].reason
    worker_task.gate.set()


async def test_a_feed_that_keeps_failing_is_given_up_so_the_page_can_poll(
    settings: Settings, fake: FakeTrigger, worker_task: WorkerTask
) -> None:
    async with demo_runtime(settings, fake, trigger_realtime_give_up_seconds=1.0) as runtime:
        worker_task.gate = asyncio.Event()
        started = await start(runtime, demo_cells(runtime, "Email domain", 2))
        run_id = started.dispatch.run_id
        assert run_id is not None
        fake.fail_next("realtime_run", 503, times=1000, run_id=run_id)
        fake.fail_next("stream_read", 503, times=1000, run_id=run_id)
        events = await collect(runtime, run_id)
        assert isinstance(events[-1], FeedFailed), events
        assert "failed" in events[-1].reason and "HTTP 503" in events[-1].reason
        failed_polls = len(fake.requests_of("realtime_run"))
        assert 3 <= failed_polls < 20, "backed off, then gave up after about a second"
        worker_task.gate.set()
        await fake.await_status(run_id, "COMPLETED", within=TIMEOUT)
        assert len(fake.requests_of("realtime_run")) == failed_polls, "nothing polls it any more"


async def test_cancel_cancels_the_run_and_closes_open_tasks(
    runtime: Runtime, fake: FakeTrigger, worker_task: WorkerTask
) -> None:
    worker_task.gate = asyncio.Event()
    started = await start(runtime, demo_cells(runtime, "Intro line", 3))
    run_id = started.dispatch.run_id
    assert run_id is not None
    view = await cancel_enrichment(
        open_session=runtime.open_session, runner=runtime.dispatcher, job_id=started.job.id
    )
    assert view.status == JobStatus.CANCELED.value
    await asyncio.to_thread(fake.wait_for_status, run_id, "CANCELED", TIMEOUT)
    with runtime.open_session() as session:
        job = session.get(EnrichmentJob, started.job.id)
        assert job is not None and job.status == JobStatus.CANCELED.value


async def test_start_up_settles_a_run_that_crashed_while_no_one_watched(
    runtime: Runtime, fake: FakeTrigger, worker_task: WorkerTask
) -> None:
    worker_task.gate = asyncio.Event()
    started = await start(runtime, demo_cells(runtime, "Intro line", 2))
    run_id = started.dispatch.run_id
    assert run_id is not None and runtime.trigger is not None
    fake.fail_run(run_id, "Worker ran out of memory", status="CRASHED")
    running = await read_job(open_session=runtime.open_session, job_id=started.job.id)
    assert running.status in (JobStatus.QUEUED.value, JobStatus.RUNNING.value)

    assert await runtime.trigger.settle_unfinished() == [started.job.id]
    job = await read_job(open_session=runtime.open_session, job_id=started.job.id)
    assert job.status == JobStatus.FAILED.value and job.error == "Worker ran out of memory"
    assert await runtime.trigger.settle_unfinished() == []


async def test_a_run_that_crashes_while_no_one_watches_is_settled_while_the_app_runs(
    settings: Settings, fake: FakeTrigger, worker_task: WorkerTask
) -> None:
    """A job started through the REST API, with no tab open: nothing else would settle it."""
    async with demo_runtime(settings, fake, trigger_sweep_seconds=0.2) as runtime:
        await runtime.start()
        worker_task.gate = asyncio.Event()
        started = await start(runtime, demo_cells(runtime, "Intro line", 2))
        run_id = started.dispatch.run_id
        assert run_id is not None
        fake.fail_run(run_id, "Worker ran out of memory", status="CRASHED")

        async def final_job() -> JobView | None:  # the database tells no one: poll it
            job = await read_job(open_session=runtime.open_session, job_id=started.job.id)
            return job if job.is_final else None

        job = await await_until(final_job, timeout=TIMEOUT, message="the sweep to settle the job")
        assert job.status == JobStatus.FAILED.value and job.error == "Worker ran out of memory"
        assert runtime.hub is not None and runtime.hub.upstream_count == 0, "no one watched it"


async def test_start_up_leaves_alone_a_job_this_process_is_triggering(
    runtime: Runtime, fake: FakeTrigger
) -> None:
    """Start-up recovery runs beside new requests: a job created after the process started is
    being triggered by that request, so recovery must not trigger it too (if its first run had
    already crashed, Trigger.dev would make a second run and the job would follow that one)."""
    started_at = utcnow()
    cells = demo_cells(runtime, "Email domain", 2)
    with unit_of_work(runtime.open_session) as session:
        create_job(
            session=session, table_id=1, cells=cells, max_cells=100, backend=JobBackend.TRIGGER
        )
    assert runtime.trigger is not None
    assert await runtime.trigger.recover_unfinished(created_before=started_at) == []
    assert fake.run_ids() == []


async def test_start_up_triggers_a_job_whose_process_died_before_triggering_it(
    runtime: Runtime, fake: FakeTrigger
) -> None:
    """The soak's crash during the trigger's retries: the job exists, Trigger.dev never had it."""
    cells = demo_cells(runtime, "Email domain", 3)
    with unit_of_work(runtime.open_session) as session:
        created = create_job(
            session=session, table_id=1, cells=cells, max_cells=100, backend=JobBackend.TRIGGER
        )
    job_id = created.job.id
    assert job_id is not None and runtime.trigger is not None and fake.run_ids() == []

    assert await runtime.trigger.recover_unfinished() == [job_id]
    job = await read_job(open_session=runtime.open_session, job_id=job_id)
    assert job.backend == JobBackend.TRIGGER.value and job.run_id in fake.run_ids()
    await fake.await_status(job.run_id, "COMPLETED", TIMEOUT)
    job = await read_job(open_session=runtime.open_session, job_id=job_id)
    assert (job.status, job.done) == (JobStatus.COMPLETED.value, 3)
    assert await runtime.trigger.recover_unfinished() == []  # triggered once, not again
    assert len(fake.run_ids()) == 1


async def test_a_feed_keeps_only_its_recent_batches_for_tabs_that_arrive_late(
    runtime: Runtime, fake: FakeTrigger, worker_task: WorkerTask
) -> None:
    """A job of any size costs the hub the same memory: it keeps the last ``RECENT_BATCHES``
    batches for tabs that arrive mid-run (their page read the cells before those from the
    database moments ago), and no cell it has relayed."""
    worker_task.gate = asyncio.Event()  # the run stays queued: the test writes its chunks
    started = await start(runtime, demo_cells(runtime, "Intro line", 1))
    run_id, hub = started.dispatch.run_id, runtime.hub
    assert run_id is not None and hub is not None
    sent = RECENT_BATCHES + 10

    def chunk(n: int) -> dict[str, object]:
        cell = {"taskId": n, "rowId": n, "columnId": 9, "status": "done", "value": f"v{n}"}
        return {"cells": [{**cell, "error": None}]}

    async def task_ids(watcher: Watcher, count: int) -> list[int]:
        got: list[int] = []
        while len(got) < count:
            event = await watcher.next()
            if isinstance(event, CellBatch):
                got += [cell.task_id for cell in event.cells]
        return got

    fake.append_chunks(run_id, "cells", [chunk(n) for n in range(1, sent + 1)])
    async with hub.watch(run_id) as first:
        assert await asyncio.wait_for(task_ids(first, sent), TIMEOUT) == list(range(1, sent + 1))
        feed = hub._feeds[run_id]
        assert len(feed.recent) == RECENT_BATCHES
        assert not hasattr(feed, "cells"), "no record of every cell relayed"
        async with hub.watch(run_id) as late:
            replayed = await asyncio.wait_for(task_ids(late, RECENT_BATCHES), TIMEOUT)
        assert replayed == list(range(sent + 1 - RECENT_BATCHES, sent + 1))
    worker_task.gate.set()
