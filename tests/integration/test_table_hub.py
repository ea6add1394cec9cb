"""TableHub: one table-wide live view per table per process, fed by the table change bus and,
in Trigger.dev mode, by the table's Realtime tag feed (the fake Trigger.dev server)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from enrichment_app.bus import CELLS, JOB, SHAPE, TableChange
from enrichment_app.db.sessions import in_transaction, unit_of_work
from enrichment_app.live.tables import FeedState, TableWatcher
from enrichment_app.runtime import Runtime
from enrichment_app.services import tables as table_service
from enrichment_app.services.enrichment import start_enrichment
from enrichment_app.settings import Settings
from tests.fakes.trigger import FakeTrigger
from tests.integration.db_helpers import column_refs
from tests.integration.runtimes import closing

WAIT = 20.0
TABLE = 1


@contextlib.asynccontextmanager
async def started(settings: Settings, **updates: object) -> AsyncIterator[Runtime]:
    """A runtime started as the app's lifespan starts it, with the demo table."""
    runtime = Runtime(settings=settings.model_copy(update={"seed_demo": True, **updates}))
    async with closing(runtime):
        await runtime.start()
        yield runtime


async def news_until(watcher: TableWatcher, wanted: set[str]) -> TableChange:
    """Merge what the watcher hears until it has heard of every kind in ``wanted``."""
    heard = TableChange(frozenset())
    async with asyncio.timeout(WAIT):
        while not wanted <= heard.kinds:
            change = await watcher.next(WAIT)
            if change is not None:
                heard = heard.merge(change)
    return heard


async def state_until(watcher: TableWatcher, live: bool) -> tuple[FeedState, TableChange]:
    """Wait for the feed to be live (or not); its state, and what was heard meanwhile."""
    heard = TableChange(frozenset())
    async with asyncio.timeout(WAIT):
        while watcher.state.live != live:
            change = await watcher.next(WAIT)
            heard = heard if change is None else heard.merge(change)
    return watcher.state, heard


async def test_tabs_hear_of_every_write_to_their_table_through_one_feed(
    settings: Settings,
) -> None:
    async with started(settings) as runtime:
        hub = runtime.tables
        async with hub.watch(TABLE) as first, hub.watch(TABLE) as second:
            assert hub.upstream_count == 1
            assert first.state == FeedState(True)
            with runtime.open_session() as session:
                company = column_refs(session, TABLE, "Company")[3]
                domains = column_refs(session, TABLE, "Email domain")[:3]
            await in_transaction(
                runtime.open_session,
                table_service.update_cell,
                table_id=TABLE,
                row_id=company.row_id,
                column_id=company.column_id,
                value="Acme Two",
                max_cell_chars=100,
            )
            for watcher in (first, second):
                heard = await news_until(watcher, {CELLS})
                assert heard.row_ids == {company.row_id}

            spec = table_service.ColumnSpec(name="Note")
            await in_transaction(
                runtime.open_session, table_service.add_column, table_id=TABLE, spec=spec
            )
            assert SHAPE in (await news_until(first, {SHAPE})).kinds

            started_job = await start_enrichment(
                open_session=runtime.open_session,
                runner=runtime.dispatcher,
                backend=runtime.backend,
                table_id=TABLE,
                cells=domains,
                max_cells=10,
            )
            await runtime.runner.wait(started_job.job.id)
            heard = await news_until(second, {JOB, CELLS})
            assert heard.row_ids is None or {d.row_id for d in domains} <= heard.row_ids
        assert hub.upstream_count == 0


async def test_a_table_s_runs_arrive_over_its_tag_feed_with_a_token_for_that_tag(
    settings: Settings,
) -> None:
    with FakeTrigger(live_poll_timeout=1.0) as fake:
        updates = {"trigger_secret_key": SecretStr(fake.secret_key), "trigger_api_url": fake.url}
        async with started(settings, **updates) as runtime:
            async with runtime.tables.watch(TABLE) as first, runtime.tables.watch(TABLE):
                await fake.await_tag_poll(f"table:{TABLE}")
                run_id = fake.create_run("process-enrichment-job", tags=["job:9", "table:1"])
                await news_until(first, {JOB})
                await fake.await_tag_poll(f"table:{TABLE}")
                fake.complete_run(run_id)
                assert await news_until(first, {JOB, CELLS}) == TableChange(
                    frozenset({JOB, CELLS}), None
                ), "a run that ended: its cells were written by another process"
            polls = fake.requests_of("realtime_runs")
            assert len({p.headers["authorization"] for p in polls}) == 1
            (token,) = {p.headers["authorization"].removeprefix("Bearer ") for p in polls}
            claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
            assert claims["scopes"] == [f"read:tags:table:{TABLE}"]
            assert len([p for p in polls if "offset=-1" in p.query]) == 1, "one feed, two tabs"


async def test_a_tag_feed_that_fails_is_reported_and_followed_again_once_it_answers(
    settings: Settings,
) -> None:
    with FakeTrigger(live_poll_timeout=1.0) as fake:
        updates = {
            "trigger_secret_key": SecretStr(fake.secret_key),
            "trigger_api_url": fake.url,
            "trigger_realtime_give_up_seconds": 0.5,
        }
        async with started(settings, **updates) as runtime, runtime.tables.watch(TABLE) as watcher:
            await fake.await_tag_poll(f"table:{TABLE}")
            outage = fake.fail_next("realtime_runs", 503, times=10_000)
            fake.create_run("process-enrichment-job", tags=["table:1"])  # ends the held poll
            down, _ = await state_until(watcher, live=False)
            assert "failed" in down.reason and "503" in down.reason
            fake.withdraw(outage)
            up, heard = await state_until(watcher, live=True)
            assert up == FeedState(True)
            assert JOB in heard.kinds, "the runs it missed, to read again"


@pytest.fixture
def postgres_settings(settings: Settings, postgres_database: str) -> Settings:
    return settings.model_copy(update={"database_url": postgres_database})


@pytest.mark.postgres
async def test_a_write_in_one_backend_process_reaches_a_tab_of_another(
    postgres_settings: Settings,
) -> None:
    """Two runtimes on one PostgreSQL database, as two backend workers: LISTEN/NOTIFY."""
    async with started(postgres_settings) as here, started(postgres_settings) as there:
        assert type(here.bus).__name__ == "PostgresBus"
        async with there.tables.watch(TABLE) as watcher:
            await state_until(watcher, live=True)
            while await watcher.next(0) is not None:  # nothing but the write below counts
                pass
            with unit_of_work(here.open_session) as session:
                spec = table_service.ColumnSpec(name="Remote")
                table_service.add_column(session, table_id=TABLE, spec=spec)
            assert SHAPE in (await news_until(watcher, {SHAPE})).kinds


async def test_a_watcher_waits_no_longer_than_it_asked(settings: Settings) -> None:
    async with started(settings) as runtime, runtime.tables.watch(TABLE) as watcher:
        assert await watcher.next(0.01) is None
        runtime.bus.publish(TABLE, TableChange.of(JOB))
        assert await watcher.next(WAIT) == TableChange.of(JOB)
