"""The table change bus: in-process, over PostgreSQL LISTEN/NOTIFY and over Redis pub/sub.

PostgreSQL and Redis are real servers from Debian's packages (tests/support/servers.py). Two
buses on one server stand for two backend processes; one test runs the publisher in a real
second process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest
import redis
import sqlalchemy as sa

from enrichment_app.bus import (
    CELLS,
    JOB,
    SHAPE,
    BusState,
    Subscription,
    TableChange,
    TableChangeBus,
    bus_for,
    bus_kind,
    note_change,
    publishing,
)
from enrichment_app.bus.changes import MAX_ROW_IDS, decode, encode
from enrichment_app.bus.postgres import CHANNEL, PostgresBus, conninfo_of
from enrichment_app.bus.redis import RedisBus
from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.sessions import in_transaction
from enrichment_app.errors import ConfigError
from enrichment_app.settings import Settings
from tests.support.paths import ROOT

WAIT = 15.0


async def news(subscription: Subscription) -> TableChange | BusState:
    async with asyncio.timeout(WAIT):
        return await subscription.next()


async def next_change(subscription: Subscription) -> TableChange:
    """The next change, skipping news of the bus's state."""
    while not isinstance(item := await news(subscription), TableChange):
        pass
    return item


async def until_up(subscription: Subscription) -> None:
    """Wait until the bus is connected; forget the full re-read that connecting asks for."""
    while not subscription.state.up:
        await news(subscription)
    subscription.take()


@pytest.fixture
async def memory_bus() -> AsyncIterator[TableChangeBus]:
    bus = TableChangeBus()
    await bus.start()
    yield bus
    await bus.aclose()


# -- what a change says ----------------------------------------------------------------------


def test_changes_merge_and_stand_for_any_row_past_the_cap() -> None:
    a = TableChange.of(CELLS, rows=[1, 2])
    b = TableChange.of(JOB)
    assert a.merge(b) == TableChange(frozenset({CELLS, JOB}), frozenset({1, 2}))
    many = TableChange.of(CELLS, rows=range(1, MAX_ROW_IDS + 1))
    assert (
        many.row_ids is not None and many.merge(TableChange.of(CELLS, rows=[9999])).row_ids is None
    )
    assert many.merge(TableChange.of(CELLS, rows=[9999])).touches_rows([123_456])
    assert not b.touches_rows([1]) and a.touches_rows([2]) and not a.touches_rows([3])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"o": 1, "t": 2, "k": []}',
        '{"o": "x", "t": 0, "k": []}',
        '{"o": "x", "t": true}',
        '{"o": "x", "t": 2, "k": ["cells"], "r": ["1"]}',
        "[" * 10_000,
    ],
)
def test_malformed_messages_decode_to_none(text: str) -> None:
    assert decode(text) is None


def test_a_message_carries_a_change_whole() -> None:
    change = TableChange.of(CELLS, SHAPE, rows=[3, 1])
    assert decode(encode("me", 7, change)) == ("me", 7, change)
    assert decode(encode("me", 7, TableChange.everything())) == ("me", 7, TableChange.everything())


# -- in one process ---------------------------------------------------------------------------


async def test_a_change_reaches_the_table_s_subscribers_merged(memory_bus: TableChangeBus) -> None:
    with memory_bus.subscribe(1) as one, memory_bus.subscribe(2) as two:
        memory_bus.publish(1, TableChange.of(CELLS, rows=[5]))
        await asyncio.to_thread(memory_bus.publish, 1, TableChange.of(JOB))  # after a commit
        for row in range(10, 10 + MAX_ROW_IDS):
            memory_bus.publish(1, TableChange.of(CELLS, rows=[row]))
        merged = await next_change(one)
        while merged.kinds != {CELLS, JOB} or merged.row_ids is not None:
            merged = merged.merge(await next_change(one))
        assert one.take() is None, "every change was in what it read"
        assert two.take() is None, "another table's subscriber heard nothing"
    assert memory_bus.subscribed_tables() == []


async def test_publishing_needs_a_running_bus() -> None:
    bus = TableChangeBus()
    with bus.subscribe(1) as subscription:
        assert not subscription.state.up
        bus.publish(1, TableChange.of(JOB))  # not started: nobody to tell
        await bus.start()
        await until_up(subscription)
        bus.publish(1, TableChange.of(SHAPE))
        assert await next_change(subscription) == TableChange.of(SHAPE)
        await bus.aclose()
        assert not subscription.state.up
        bus.publish(1, TableChange.of(CELLS, rows=[1]))
        assert subscription.take() is None


async def test_noted_changes_are_published_once_their_unit_of_work_commits(
    open_session: SessionFactory,
) -> None:
    published: list[tuple[int, TableChange]] = []
    sessions = publishing(
        open_session, lambda table_id, change: published.append((table_id, change))
    )

    def write(session: sa.orm.Session, *, fail: bool) -> None:
        note_change(session, 3, TableChange.of(CELLS, rows=[1]))
        note_change(session, 3, TableChange.of(JOB))
        note_change(session, 4, TableChange.of(SHAPE))
        session.execute(sa.text("SELECT 1"))
        assert published == [], "nothing is told before the commit"
        if fail:
            raise RuntimeError("the unit of work fails")

    with pytest.raises(RuntimeError):
        await in_transaction(sessions, write, fail=True)
    assert published == []
    await in_transaction(sessions, write, fail=False)
    assert published == [
        (3, TableChange(frozenset({CELLS, JOB}), frozenset({1}))),
        (4, TableChange.of(SHAPE)),
    ]


# -- between processes ------------------------------------------------------------------------


BusPair = Callable[[], AsyncIterator[tuple[TableChangeBus, TableChangeBus]]]


@pytest.fixture(params=["postgres", "redis"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bus_url(transport: str, request: pytest.FixtureRequest) -> str:
    if transport == "postgres":
        return str(request.getfixturevalue("postgres_database"))
    return str(request.getfixturevalue("redis_url"))


def make_bus(transport: str, url: str) -> TableChangeBus:
    return PostgresBus(url) if transport == "postgres" else RedisBus(url)


@pytest.fixture
async def two_buses(transport: str, bus_url: str) -> AsyncIterator[tuple[TableChangeBus, ...]]:
    """Two buses on one server: two backend processes' worth."""
    buses = (make_bus(transport, bus_url), make_bus(transport, bus_url))
    for bus in buses:
        await bus.start()
    yield buses
    for bus in buses:
        await bus.aclose()


async def test_a_change_published_in_one_process_reaches_the_other_once(
    two_buses: tuple[TableChangeBus, TableChangeBus],
) -> None:
    here, there = two_buses
    with here.subscribe(1) as mine, there.subscribe(1) as theirs, there.subscribe(2) as other:
        for subscription in (mine, theirs, other):
            await until_up(subscription)
        here.publish(1, TableChange.of(CELLS, rows=[7]))
        assert await next_change(theirs) == TableChange.of(CELLS, rows=[7])
        assert await next_change(mine) == TableChange.of(CELLS, rows=[7])
        here.publish(1, TableChange.of(JOB))
        assert await next_change(theirs) == TableChange.of(JOB)
        assert await next_change(mine) == TableChange.of(JOB), "its own message not twice"
        assert other.take() is None


async def test_a_burst_of_changes_is_sent_as_a_few_messages(
    transport: str, bus_url: str, two_buses: tuple[TableChangeBus, TableChangeBus]
) -> None:
    """The runner writes thousands of cells a second: the bus sends a few merged messages."""
    here, there = two_buses
    messages = await _recorded_messages(transport, bus_url)
    with there.subscribe(1) as theirs:
        await until_up(theirs)
        for row in range(1, 101):
            here.publish(1, TableChange.of(CELLS, rows=[row]))
        seen: set[int] = set()
        while seen != set(range(1, 101)):
            change = await next_change(theirs)
            assert change.row_ids is not None
            seen |= change.row_ids
    sent = [m for m in await messages() if (d := decode(m)) and d[0] == here.origin]
    assert 1 <= len(sent) <= 3, f"100 changes went out as {len(sent)} messages"


async def _recorded_messages(transport: str, url: str) -> Callable[[], object]:
    """Start recording the raw messages on the bus's channel; call the result to read them."""
    got: list[str] = []
    if transport == "postgres":
        connection = await psycopg.AsyncConnection.connect(conninfo_of(url), autocommit=True)
        await connection.execute(f"LISTEN {CHANNEL}")

        async def read_pg() -> list[str]:
            async for notify in connection.notifies(timeout=0.5):
                got.append(notify.payload)
            await connection.close()
            return got

        return read_pg
    from redis.asyncio import Redis

    from enrichment_app.bus.redis import CHANNEL as REDIS_CHANNEL

    client = Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(REDIS_CHANNEL)

    async def read_redis() -> list[str]:
        while (message := await pubsub.get_message(timeout=0.5)) is not None:
            if message["type"] == "message":
                got.append(message["data"].decode())
        await pubsub.aclose()
        await client.aclose()
        return got

    return read_redis


async def test_a_lost_connection_is_reported_then_restored_with_a_full_reread(
    transport: str, bus_url: str, two_buses: tuple[TableChangeBus, TableChangeBus]
) -> None:
    here, there = two_buses
    with there.subscribe(1) as theirs:
        await until_up(theirs)
        _drop_listeners(transport, bus_url)
        down = await news(theirs)
        assert isinstance(down, BusState) and not down.up and "unreachable" in down.reason
        while not theirs.state.up:
            await news(theirs)
        assert theirs.take() == TableChange.everything(), "what was missed, to read again"
        here.publish(1, TableChange.of(SHAPE))
        assert await next_change(theirs) == TableChange.of(SHAPE)


def _drop_listeners(transport: str, url: str) -> None:
    """Cut every listening connection on the server, as a restart or a network fault would."""
    if transport == "postgres":
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
                )
            )
        engine.dispose()
        return
    client = redis.Redis.from_url(url)
    client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    client.close()


async def test_a_change_made_by_another_process_arrives(transport: str, bus_url: str) -> None:
    bus = make_bus(transport, bus_url)
    await bus.start()
    try:
        with bus.subscribe(42) as subscription:
            await until_up(subscription)
            script = textwrap.dedent(
                f"""
                import asyncio
                from enrichment_app.bus import TableChange, CELLS
                from enrichment_app.bus.{transport} import {type(bus).__name__} as Bus

                async def main():
                    bus = Bus({bus_url!r})
                    await bus.start()
                    with bus.subscribe(42) as subscription:
                        while not subscription.state.up:
                            await subscription.next()
                    bus.publish(42, TableChange.of(CELLS, rows=[4, 2]))
                    await bus.aclose()  # sends what is pending first

                asyncio.run(main())
                """
            )
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", script],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert await next_change(subscription) == TableChange.of(CELLS, rows=[2, 4])
    finally:
        await bus.aclose()


@pytest.mark.parametrize(
    ("database_url", "redis", "chosen", "kind"),
    [
        ("sqlite:///x.db", None, "auto", "memory"),
        ("postgresql://u@h/db", None, "auto", "postgres"),
        ("postgresql://u@h/db", "unix:///tmp/r.sock", "auto", "redis"),
        ("sqlite:///x.db", "redis://h", "auto", "redis"),
        ("postgresql://u@h/db", "redis://h", "postgres", "postgres"),
        ("sqlite:///x.db", "redis://h", "memory", "memory"),
    ],
)
def test_the_bus_follows_the_deployment(
    settings: Settings, database_url: str, redis: str | None, chosen: str, kind: str
) -> None:
    configured = settings.model_copy(
        update={"database_url": database_url, "redis_url": redis, "table_change_bus": chosen}
    )
    assert bus_kind(configured) == kind


def test_a_bus_the_deployment_cannot_carry_is_refused(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="REFLEX_REDIS_URL"):
        bus_for(settings.model_copy(update={"table_change_bus": "redis", "redis_url": None}))
    with pytest.raises(ConfigError, match="PostgreSQL"):
        bus_for(settings.model_copy(update={"table_change_bus": "postgres"}))
