"""What the ``publicAccessToken`` the API hands out can and cannot do, on Trigger.dev's own rules.

The app (its real ``Runtime``, ``TriggerRunner`` and REST API) runs against the fake Trigger.dev
server, whose token checks are the webapp's: HS256 signed with the environment's secret key,
``iss``/``aud``/``exp`` checked by its clock, and the scope grammar of ``buildJwtAbility``
(``tests/fakes/trigger/protocol.py``). The fake has no executor here, so every run stays where a
test puts it and nothing changes behind the test's back.

A token from ``POST /api/tables/{id}/enrich`` must read its own run (the realtime feed, retrieve,
the ``cells`` stream) and nothing else: every other run, every write endpoint and every token
endpoint refuse it, and so does everything once it has expired. Each refusal is also checked
for having changed nothing on the server.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from enrichment_app.api import build_api
from enrichment_app.db.models import TableColumn, TableRow
from enrichment_app.domain import ColumnKind
from enrichment_app.runner.trigger import TASK_ID
from enrichment_app.runtime import Runtime
from enrichment_app.services.tables import ColumnSpec, create_table
from enrichment_app.settings import Settings
from enrichment_app.trigger import TriggerClient
from enrichment_app.trigger.tokens import flatten_scopes
from tests.fakes.trigger import FakeTrigger, protocol as proto
from tests.integration.db_helpers import seed_demo_table
from tests.integration.runtimes import closing
from tests.support.database import greeting

API_KEY = "access-test-api-key-5d4c3b2a1f0e"
TOKEN_LIFETIME = 3600
"""What the app promises: one hour (``TOKEN_EXPIRATION`` in runner/trigger.py)."""


@dataclass(frozen=True)
class Started:
    """One job started through the REST API, as a client sees it."""

    job_id: int
    run_id: str
    token: str


@dataclass(frozen=True)
class World:
    runtime: Runtime
    api: httpx.AsyncClient
    mine: Started
    """The run whose token is under test."""
    sibling: Started
    """Another job on the same table (same task, same ``table:`` tag)."""
    other_table: Started
    """A job on another table."""
    foreign_run: str
    """A run of another task that the app never started."""


@pytest.fixture
def fake() -> Iterator[FakeTrigger]:
    with FakeTrigger(live_poll_timeout=1.0, stream_timeout=1.0) as fake:
        yield fake


@pytest.fixture
async def runtime(settings: Settings, fake: FakeTrigger) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        settings=settings.model_copy(
            update={
                "trigger_secret_key": SecretStr(fake.secret_key),
                "trigger_api_url": fake.url,
                "enrichment_api_key": SecretStr(API_KEY),
            }
        )
    )
    async with closing(runtime):
        yield runtime


def _enrichment_cells(runtime: Runtime, table_id: int, rows: int) -> list[dict[str, int]]:
    with runtime.open_session() as session:
        column = session.exec(
            select(TableColumn).where(
                TableColumn.table_id == table_id, TableColumn.kind == ColumnKind.ENRICHMENT
            )
        ).first()
        assert column is not None and column.id is not None
        row_ids = session.exec(
            select(TableRow.id)
            .where(TableRow.table_id == table_id)
            .order_by(TableRow.position)
            .limit(rows)
        ).all()
    return [{"rowId": r, "columnId": column.id} for r in row_ids if r is not None]


async def _start(api: httpx.AsyncClient, table_id: int, cells: list[dict[str, int]]) -> Started:
    response = await api.post(f"/api/tables/{table_id}/enrich", json={"cells": cells})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["fallbackReason"] is None, body
    return Started(job_id=body["job"]["id"], run_id=body["runId"], token=body["publicAccessToken"])


@pytest.fixture
async def world(runtime: Runtime, fake: FakeTrigger) -> AsyncIterator[World]:
    with runtime.open_session() as session:
        demo_id = seed_demo_table(session, max_cell_chars=runtime.settings.max_cell_chars)
        other = create_table(
            session=session,
            name="Other",
            columns=[
                ColumnSpec("Name"),
                greeting(),
            ],
            rows=[["Ada"], ["Grace"]],
            max_cell_chars=1000,
        )
        session.commit()
        other_id = other.id
    assert other_id is not None
    transport = httpx.ASGITransport(app=build_api(lambda: runtime))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as api:
        cells = _enrichment_cells(runtime, demo_id, 4)
        mine = await _start(api, demo_id, cells[:2])
        sibling = await _start(api, demo_id, cells[2:])
        other_table = await _start(api, other_id, _enrichment_cells(runtime, other_id, 2))
        foreign = fake.create_run("some-other-task", tags=["table:1"], status="EXECUTING")
        for run_id in (mine.run_id, sibling.run_id, other_table.run_id, foreign):
            fake.append_chunk(run_id, "cells", {"runId": run_id, "value": "cell"})
            fake.set_metadata(run_id, {"progress": {"done": 0, "total": 2}})
        yield World(runtime, api, mine, sibling, other_table, foreign)


def _as(fake: FakeTrigger, token: str) -> httpx.AsyncClient:
    """A plain client presenting ``token`` the way the SDK does (bearer, current API version)."""
    return httpx.AsyncClient(
        base_url=fake.url,
        headers={"Authorization": f"Bearer {token}", "x-trigger-api-version": "2025-07-16"},
        timeout=10.0,
    )


async def _reads(http: httpx.AsyncClient, run_id: str) -> dict[str, httpx.Response]:
    """Every read a run-scoped token is for: the realtime feed, retrieve, the cells stream."""
    return {
        "realtime": await http.get(f"/realtime/v1/runs/{run_id}", params={"offset": "-1"}),
        "retrieve": await http.get(f"/api/v3/runs/{run_id}"),
        "stream": await http.get(
            f"/realtime/v1/streams/{run_id}/cells",
            headers={"Accept": "text/event-stream", "Timeout-Seconds": "1"},
        ),
    }


def _claims(token: str) -> dict[str, Any]:
    claims = proto.unverified_claims(token)
    assert claims is not None, "not a JWT"
    return claims


@dataclass(frozen=True)
class ServerState:
    runs: tuple[tuple[str, str, str], ...]
    """(run id, status, metadata as JSON) for every run."""
    chunks: tuple[tuple[str, int], ...]
    """(run id, number of chunks in ``cells``) for every run."""


def _state(fake: FakeTrigger) -> ServerState:
    runs, chunks = [], []
    for run_id in sorted(fake.run_ids()):
        view = fake.run(run_id)
        runs.append((run_id, view.status, json.dumps(view.metadata, sort_keys=True)))
        chunks.append((run_id, len(fake.stream_chunks(run_id, "cells"))))
    return ServerState(tuple(runs), tuple(chunks))


# --- the token ------------------------------------------------------------------------


async def test_the_token_is_scoped_to_one_run_for_one_hour(world: World, fake: FakeTrigger) -> None:
    claims = _claims(world.mine.token)
    assert claims["scopes"] == [f"read:runs:{world.mine.run_id}"]
    assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME
    assert claims["pub"] is True and claims["sub"] == fake.environment_id
    # Verified the way the webapp verifies it (signature with the secret key, iss, aud, exp).
    verified = proto.verify_public_token(world.mine.token, fake.secret_key, now=time.time())
    assert verified["scopes"] == claims["scopes"]
    tokens = {world.mine.token, world.sibling.token, world.other_table.token}
    assert len(tokens) == 3, "every job gets its own token"
    with pytest.raises(ValueError, match="must not be empty"):
        flatten_scopes({"read": {"runs": [""]}})  # `read:runs:` would read every run


async def test_the_token_reads_its_own_run(world: World, fake: FakeTrigger) -> None:
    async with _as(fake, world.mine.token) as http:
        reads = await _reads(http, world.mine.run_id)
    assert {name: r.status_code for name, r in reads.items()} == {
        "realtime": 200,
        "retrieve": 200,
        "stream": 200,
    }
    rows = [m["value"] for m in reads["realtime"].json() if "value" in m]
    assert [row["friendlyId"] for row in rows] == [world.mine.run_id]
    assert reads["retrieve"].json()["id"] == world.mine.run_id
    assert world.mine.run_id in reads["stream"].text  # the chunk appended for this run

    # The app's own client, as the page's feed uses it, follows the run with the token alone
    # (its secret key here is a wrong one, so only the token can be what gets it in).
    async with TriggerClient(secret_key="tr_dev_" + "0" * 24, base_url=fake.url) as client:
        runs = client.subscribe_to_run(world.mine.run_id, access_token=world.mine.token)
        async with aclosing(runs):
            first = await anext(runs)
        assert first.id == world.mine.run_id
        chunks = client.read_stream(
            world.mine.run_id, "cells", access_token=world.mine.token, timeout_seconds=1
        )
        async with aclosing(chunks):
            chunk = await anext(chunks)
        assert chunk == {"runId": world.mine.run_id, "value": "cell"}
        retrieved = await client.retrieve_run(world.mine.run_id, access_token=world.mine.token)
        assert retrieved.id == world.mine.run_id


async def test_the_token_is_refused_by_every_other_run(world: World, fake: FakeTrigger) -> None:
    others = {
        "same table": world.sibling.run_id,
        "other table": world.other_table.run_id,
        "other task, same table tag": world.foreign_run,
    }
    async with _as(fake, world.mine.token) as http:
        for what, run_id in others.items():
            reads = await _reads(http, run_id)
            for name, response in reads.items():
                assert response.status_code == 403, (what, name, response.text)
                assert response.json() == proto.UNAUTHORIZED_BODY
                assert run_id not in response.text
        # Trigger.dev looks the run up before the scopes: an unknown run is a 404.
        missing = await http.get("/realtime/v1/runs/run_doesnotexist", params={"offset": "-1"})
        assert missing.status_code == 404
    # Each token reads its own run, so the refusals above are about scope, not a broken token.
    for started in (world.sibling, world.other_table):
        async with _as(fake, started.token) as http:
            reads = await _reads(http, started.run_id)
        assert all(r.status_code == 200 for r in reads.values()), started


async def test_the_token_is_refused_by_every_write_and_token_endpoint(
    world: World, fake: FakeTrigger
) -> None:
    run_id = world.mine.run_id
    before = _state(fake)
    attempts: dict[str, tuple[str, str, dict[str, Any]]] = {
        "trigger": (
            "POST",
            f"/api/v1/tasks/{TASK_ID}/trigger",
            {"json": {"payload": {"jobId": world.mine.job_id}}},
        ),
        "cancel own run": ("POST", f"/api/v2/runs/{run_id}/cancel", {}),
        "cancel another run": ("POST", f"/api/v2/runs/{world.sibling.run_id}/cancel", {}),
        "metadata update": (
            "PUT",
            f"/api/v1/runs/{run_id}/metadata",
            {"json": {"operations": [{"type": "set", "key": "progress", "value": 1}]}},
        ),
        "metadata read (API keys only)": ("GET", f"/api/v1/runs/{run_id}/metadata", {}),
        "stream create": ("PUT", f"/realtime/v1/streams/{run_id}/self/cells", {}),
        "stream write": (
            "POST",
            f"/realtime/v1/streams/{run_id}/self/cells",
            {"content": b'{"forged": true}\n'},
        ),
        "stream append": (
            "POST",
            f"/realtime/v1/streams/{run_id}/self/cells/append",
            {"content": b'{"forged": true}'},
        ),
        "public token minting": (
            "POST",
            "/api/v1/auth/public-tokens",
            {"json": {"scopes": ["read:runs"], "expirationTime": "1h"}},
        ),
        "JWT claims (self-signing)": ("POST", "/api/v1/auth/jwt/claims", {}),
    }
    # The status Trigger.dev answers: routes that take public tokens check the scope (403),
    # routes that take API keys only treat the token as a wrong key (401).
    expected = {
        "trigger": 403,
        "cancel own run": 403,
        "cancel another run": 403,
    }
    async with _as(fake, world.mine.token) as http:
        for what, (method, path, kwargs) in attempts.items():
            response = await http.request(method, path, **kwargs)
            assert response.status_code == expected.get(what, 401), (what, response.text)
            assert "eyJ" not in response.text, f"{what} handed out a token"
    assert _state(fake) == before, "a refused write changed the server"
    assert fake.requests_of("trigger")[-1].headers["authorization"] == f"Bearer {world.mine.token}"


async def test_a_tampered_token_is_refused(world: World, fake: FakeTrigger) -> None:
    header, _, signature = world.mine.token.split(".")
    claims = _claims(world.mine.token)
    widened = {**claims, "scopes": ["read:runs"]}
    forged_payload = base64.urlsafe_b64encode(json.dumps(widened).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    signed_elsewhere = fake.mint_token(["read:runs"], secret_key="tr_dev_" + "x" * 24)
    for token in (forged, signed_elsewhere):
        async with _as(fake, token) as http:
            reads = await _reads(http, world.sibling.run_id)
        assert {r.status_code for r in reads.values()} == {401}


async def test_the_token_is_refused_after_it_expires(world: World, fake: FakeTrigger) -> None:
    claims = _claims(world.mine.token)
    # Just before `exp` (by the server's clock) the token still reads its run...
    fake.advance_clock(claims["exp"] - time.time() - 5)
    async with _as(fake, world.mine.token) as http:
        reads = await _reads(http, world.mine.run_id)
    assert {r.status_code for r in reads.values()} == {200}
    # ...and from `exp` on (no clock tolerance, as jose) every read is refused.
    fake.advance_clock(5)
    async with _as(fake, world.mine.token) as http:
        reads = await _reads(http, world.mine.run_id)
    for name, response in reads.items():
        assert response.status_code == 401, (name, response.text)
        assert response.json() == proto.INVALID_PUBLIC_TOKEN_BODY
