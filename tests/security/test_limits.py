"""Abuse limits, attacked through the REST API: rates answer 429 with Retry-After, the daily
cell cap holds across processes, and the limiter neither stores tokens nor grows without end.

Each test fails without its limit: with no rate limit every request gets through; with no
daily cap the second job starts; with unhashed keys the token is in the limiter's memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from enrichment_app.api import build_api
from enrichment_app.db.models import CellUsage, EnrichmentJob
from enrichment_app.rate_limits import Limit, RateLimits, client_key
from enrichment_app.runtime import Runtime
from enrichment_app.services.access import Role
from enrichment_app.services.usage import seconds_to_reset
from enrichment_app.settings import Settings
from tests.integration.db_helpers import column_refs, seed_demo_table
from tests.integration.runtimes import closing
from tests.support.accounts import add_user, api_token
from tests.support.waiting import wait_until

KEY = "limits-key-" + "7" * 20


def _client(runtime: Runtime, address: str = "203.0.113.5", token: str = KEY) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_api(lambda: runtime), client=(address, 50000))
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Runtime]:
    update = {
        "api_rate_limit": "3/minute",
        "job_start_rate_limit": "2/minute",
        "seed_demo": True,
        "enrichment_api_key": SecretStr(KEY),
    }
    async with closing(Runtime(settings=settings.model_copy(update=update))) as runtime:
        yield runtime


def _retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= 60
    return seconds


async def test_api_calls_over_the_rate_get_429_with_retry_after_per_person(
    limited: Runtime,
) -> None:
    box = limited.secret_box
    with limited.open_session() as session:
        ann = add_user(session, email="ann@example.com", role=Role.EDITOR)
        bob = add_user(session, email="bob@example.com", role=Role.EDITOR)
        ann_tokens = [
            api_token(session, box=box, user_id=ann, workspace_id=1, role=Role.EDITOR)
            for _ in range(2)
        ]
        bob_token = api_token(session, box=box, user_id=bob, workspace_id=1, role=Role.EDITOR)
    async with (
        _client(limited, token=ann_tokens[0]) as first,
        _client(limited, "198.51.100.7", token=ann_tokens[1]) as second,
        _client(limited, token=bob_token) as other,
    ):
        answers = [(await first.get("/api/tables")).status_code for _ in range(3)]
        assert answers == [200, 200, 200]
        # Ann's second token, from another address, shares her allowance.
        over = await second.get("/api/tables")
        _retry_after(over)
        assert over.json()["error"]["code"] == "rate_limited"
        assert "the limit is 3 per 1 minute, API_RATE_LIMIT" in over.json()["error"]["message"]
        assert (await other.get("/api/tables")).status_code == 200  # another person


async def test_with_a_key_the_limit_is_the_key_s_and_guessing_keys_is_limited_too(
    settings: Settings,
) -> None:
    update = {"api_rate_limit": "3/minute", "enrichment_api_key": SecretStr(KEY)}
    async with closing(Runtime(settings=settings.model_copy(update=update))) as runtime:
        good = {"Authorization": f"Bearer {KEY}"}
        async with _client(runtime) as guesser, _client(runtime, "198.51.100.9") as owner:
            guesses = [
                (await guesser.get("/api/tables", headers={"Authorization": f"Bearer g{n}"}))
                for n in range(4)
            ]
            assert [g.status_code for g in guesses] == [401, 401, 401, 429]
            # The owner's key has its own allowance, wherever it calls from.
            assert [
                (await owner.get("/api/tables", headers=good)).status_code for _ in range(3)
            ] == [
                200,
                200,
                200,
            ]
            _retry_after(await guesser.get("/api/tables", headers=good))


async def test_job_starts_over_their_rate_get_429_and_start_nothing(settings: Settings) -> None:
    update = {
        "job_start_rate_limit": "2/minute",
        "seed_demo": True,
        "enrichment_api_key": SecretStr(KEY),
    }
    async with closing(Runtime(settings=settings.model_copy(update=update))) as limited:
        await _start_three(limited)


async def _start_three(limited: Runtime) -> None:
    with limited.open_session() as session:
        cells = column_refs(session, 1, "Email domain")
    async with _client(limited) as client:
        for n in range(2):
            body = {"cells": [{"rowId": cells[n].row_id, "columnId": cells[n].column_id}]}
            started = await client.post("/api/tables/1/enrich", json=body)
            assert started.status_code == 202, started.text
            await limited.runner.wait(started.json()["job"]["id"])
        body = {"cells": [{"rowId": cells[5].row_id, "columnId": cells[5].column_id}]}
        over = await client.post("/api/tables/1/enrich", json=body)
        _retry_after(over)
        assert "JOB_START_RATE_LIMIT" in over.json()["error"]["message"]
    with limited.open_session() as session:
        assert len(session.exec(select(EnrichmentJob.id)).all()) == 2


async def test_the_daily_cell_cap_holds_across_processes_and_says_when_it_resets(
    settings: Settings,
) -> None:
    capped = settings.model_copy(
        update={"max_cells_per_day": 5, "enrichment_api_key": SecretStr(KEY)}
    )
    async with (
        closing(Runtime(settings=capped)) as first,
        closing(Runtime(settings=capped)) as second,
    ):
        with first.open_session() as session:
            table_id = seed_demo_table(session)
            cells = column_refs(session, table_id, "Email domain")

        def body(start: int, stop: int) -> dict[str, object]:
            return {
                "cells": [{"rowId": c.row_id, "columnId": c.column_id} for c in cells[start:stop]]
            }

        async with _client(first) as one, _client(second) as other:
            started = await one.post(f"/api/tables/{table_id}/enrich", json=body(0, 3))
            assert started.status_code == 202, started.text
            await first.runner.wait(started.json()["job"]["id"])
            # Another process, on the same database, sees the 3 already counted.
            over = await other.post(f"/api/tables/{table_id}/enrich", json=body(3, 6))
            assert _retry_after_cap(over) <= seconds_to_reset(datetime.now(UTC)) + 5
            error = over.json()["error"]
            assert error["code"] == "daily_cap_reached"
            assert "This job needs 3 cells, and only 2 of today's 5 remain" in error["message"]
            assert "resets at 00:00 UTC" in error["message"]
            fits = await other.post(f"/api/tables/{table_id}/enrich", json=body(3, 5))
            assert fits.status_code == 202, fits.text
            await second.runner.wait(fits.json()["job"]["id"])
            full = await one.post(f"/api/tables/{table_id}/enrich", json=body(5, 6))
            assert "none of today's 5 remain" in full.json()["error"]["message"]
        with first.open_session() as session:
            assert len(session.exec(select(EnrichmentJob.id)).all()) == 2
            assert session.exec(select(CellUsage.cells)).one() == 5


def _retry_after_cap(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    return int(response.headers["retry-after"])


def test_the_limiter_keeps_hashes_not_tokens_and_forgets_idle_clients() -> None:
    limits = RateLimits(api="1/second", job_start="1/second")
    token = "secret-token-" + "x" * 20
    assert limits.hit(Limit.API, client_key("key", token)) is None
    assert all(token not in key for key in limits._storage.storage)
    for n in range(2000):
        limits.hit(Limit.API, client_key("ip", f"10.0.{n // 256}.{n % 256}"))
    assert limits.keys() >= 2000

    def forgotten() -> bool:
        limits.hit(Limit.API, client_key("ip", "192.0.2.1"))  # any use sweeps expired keys
        return limits.keys() <= 4

    wait_until(forgotten, timeout=10, interval=0.2, message="the limiter to forget idle clients")
