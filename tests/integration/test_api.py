"""The REST API against a real Runtime on a throwaway SQLite database, through httpx's ASGI transport.

Jobs run on the local runner in the test's own event loop, so a test can wait for one with
``runtime.runner.wait(job_id)`` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from pydantic import SecretStr
from sqlalchemy import delete
from sqlmodel import SQLModel, col, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route

from enrichment_app.api import build_api, openapi_document
from enrichment_app.api.errors import ApiError
from enrichment_app.api.parsing import idempotency_key
from enrichment_app.db.models import ApiIdempotencyKey, EnrichmentJob, EnrichmentTask, TableColumn
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellRef, CellStatus, DispatchResult, JobBackend, JobStatus, utcnow
from enrichment_app.runtime import Runtime
from enrichment_app.services.idempotency import CLAIM_TTL, KEY_TTL, fingerprint
from enrichment_app.services.jobs import TASK_IDS_SHOWN, create_job
from enrichment_app.services.tables import ColumnSpec
from enrichment_app.settings import Settings
from tests.integration.db_helpers import cells_of, column_refs, seed_demo_table
from tests.integration.runtimes import closing
from tests.support.accounts import add_user
from tests.support.database import add_table, greeting
from tests.support.waiting import await_until

API_KEY = "test-api-key-9f8e7d6c5b4a"
WAIT = 30.0
FINAL = {"completed", "failed", "canceled"}


# --- fixtures ------------------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    table_id: int
    company: list[CellRef]
    """The input column "Company", one cell per row."""
    domain: list[CellRef]
    """The enrichment column "Email domain"."""
    intro: list[CellRef]
    """The enrichment column "Intro line"."""


def body(refs: list[CellRef]) -> dict[str, Any]:
    return {"cells": [{"rowId": r.row_id, "columnId": r.column_id} for r in refs]}


async def _runtime(settings: Settings, *, keyless: bool = False) -> AsyncIterator[Runtime]:
    """A runtime whose API takes the service key ``API_KEY`` (none with ``keyless``)."""
    key = None if keyless else SecretStr(API_KEY)
    settings = settings.model_copy(update={"enrichment_api_key": key})
    async with closing(Runtime(settings=settings)) as runtime:
        yield runtime


@pytest.fixture
def keyed_settings(settings: Settings) -> Settings:
    """The API needs a token: these tests use the service key (ENRICHMENT_API_KEY)."""
    return settings.model_copy(update={"enrichment_api_key": SecretStr(API_KEY)})


@pytest.fixture
async def runtime(keyed_settings: Settings) -> AsyncIterator[Runtime]:
    async for runtime in _runtime(keyed_settings):
        yield runtime


@pytest.fixture
async def keyed_runtime(keyed_settings: Settings) -> AsyncIterator[Runtime]:
    async for runtime in _runtime(keyed_settings):
        yield runtime


def keyed(settings: Settings) -> Settings:
    return settings.model_copy(update={"enrichment_api_key": SecretStr(API_KEY)})


def _client(runtime: Runtime, key: str | None = API_KEY) -> httpx.AsyncClient:
    app = build_api(lambda: runtime)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends the service key with every request."""
    async with _client(runtime) as client:
        yield client


@pytest.fixture
async def keyed_client(keyed_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no credentials unless a test gives some."""
    async with _client(keyed_runtime, None) as client:
        yield client


def _seed(runtime: Runtime) -> Demo:
    with runtime.open_session() as session:
        table_id = seed_demo_table(session, max_cell_chars=runtime.settings.max_cell_chars)
        return Demo(
            table_id=table_id,
            company=column_refs(session, table_id, "Company"),
            domain=column_refs(session, table_id, "Email domain"),
            intro=column_refs(session, table_id, "Intro line"),
        )


@pytest.fixture
def demo(runtime: Runtime) -> Demo:
    return _seed(runtime)


@pytest.fixture
def keyed_demo(keyed_runtime: Runtime) -> Demo:
    return _seed(keyed_runtime)


# --- helpers -------------------------------------------------------------------------

DOCUMENT = openapi_document()


def assert_schema(name: str, instance: object) -> None:
    """``instance`` matches ``#/components/schemas/<name>`` of the served OpenAPI document."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(instance), key=str)
    assert not errors, [e.message for e in errors]


def assert_error(response: httpx.Response, status: int, code: str, message: str = "") -> str:
    """The response is the API's error shape with this status and code; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert_schema("Error", payload)
    assert payload["error"]["code"] == code
    assert message in payload["error"]["message"]
    assert "Traceback" not in response.text
    return str(payload["error"]["message"])


async def wait_until_final(
    client: httpx.AsyncClient, runtime: Runtime, job_id: int, **kwargs: Any
) -> dict[str, Any]:
    """Poll the job the way a client would, letting the runner finish between polls."""
    seen: list[dict[str, Any]] = []

    async def final_job() -> dict[str, Any] | None:
        response = await client.get(f"/api/jobs/{job_id}", **kwargs)
        assert response.status_code == 200, response.text
        assert_schema("JobEnvelope", response.json())
        seen.append(response.json()["job"])
        if seen[-1]["status"] in FINAL:
            return seen[-1]
        await asyncio.wait_for(runtime.runner.wait(job_id), timeout=WAIT)
        return None

    return await await_until(
        final_job,
        timeout=WAIT,
        interval=0.01,
        message=f"job {job_id} to finish",
        found=lambda: seen[-1],
    )


def job_count(runtime: Runtime) -> int:
    with runtime.open_session() as session:
        return len(session.exec(select(EnrichmentJob.id)).all())


# --- the happy path ------------------------------------------------------------------


async def test_enrich_returns_202_and_the_job_runs_to_completion(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    cells = demo.domain + demo.intro
    response = await client.post(f"/api/tables/{demo.table_id}/enrich", json=body(cells))

    assert response.status_code == 202, response.text
    assert response.headers["cache-control"] == "no-store"
    started = response.json()
    assert_schema("EnrichTableResponse", started)
    assert started["runId"] is None
    assert started["publicAccessToken"] is None
    assert started["fallbackReason"] is None
    assert started["skippedActive"] == 0
    assert len(started["taskIds"]) == len(set(started["taskIds"])) == len(cells)
    job = started["job"]
    assert job["tableId"] == demo.table_id
    assert job["backend"] == "local"
    assert job["total"] == len(cells)
    assert job["status"] in {"queued", "running", "completed"}

    final = await wait_until_final(client, runtime, job["id"])
    assert final["status"] == "completed"
    assert final["done"] + final["failed"] == len(cells)
    assert final["failed"] == 1  # the demo's "not an email address" row
    assert final["finishedAt"] is not None
    with runtime.open_session() as session:
        first_domain, first_intro = cells_of(session, [demo.domain[0], demo.intro[0]])
    assert first_domain.value == "acme-robotics.example"
    assert first_intro.value is not None
    assert first_intro.value.startswith("Hi Acme Robotics team")


async def test_input_cells_in_the_selection_are_ignored(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    cells = demo.company[:3] + demo.domain[:2] + demo.domain[:2]  # duplicates too
    response = await client.post(f"/api/tables/{demo.table_id}/enrich", json=body(cells))
    assert response.status_code == 202, response.text
    assert response.json()["job"]["total"] == 2
    assert len(response.json()["taskIds"]) == 2
    await wait_until_final(client, runtime, response.json()["job"]["id"])


async def test_cells_with_an_active_task_are_skipped_and_counted(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    with unit_of_work(runtime.open_session) as session:
        create_job(session=session, table_id=demo.table_id, cells=demo.domain[:2], max_cells=100)
    response = await client.post(f"/api/tables/{demo.table_id}/enrich", json=body(demo.domain[:5]))
    assert response.status_code == 202, response.text
    assert response.json()["skippedActive"] == 2
    assert response.json()["job"]["total"] == 3
    await wait_until_final(client, runtime, response.json()["job"]["id"])


async def test_a_whole_column_needs_no_list_of_its_cells(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    """``{"columns": [{"columnId", "rows": "all"}]}`` runs every row of the column, with the
    cells listed besides, once each; the answer lists the first task ids and the count."""
    column = demo.intro[0].column_id
    response = await client.post(
        f"/api/tables/{demo.table_id}/enrich",
        json={
            "columns": [{"columnId": column, "rows": "all"}],
            "cells": [{"rowId": c.row_id, "columnId": c.column_id} for c in demo.intro[:3]],
        },
    )
    assert response.status_code == 202, response.text
    started = response.json()
    assert_schema("EnrichTableResponse", started)
    assert started["job"]["total"] == started["taskCount"] == len(demo.intro) == 25
    assert len(started["taskIds"]) == 25
    final = await wait_until_final(client, runtime, started["job"]["id"])
    assert final["done"] == 25
    with runtime.open_session() as session:
        assert all(c.value for c in cells_of(session, demo.intro))


async def test_a_whole_column_not_in_the_table_is_not_found(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    response = await client.post(
        f"/api/tables/{demo.table_id}/enrich",
        json={"columns": [{"columnId": 987654, "rows": "all"}]},
    )
    assert_error(response, 404, "not_found", f"Column 987654 is not in table {demo.table_id}")
    assert job_count(runtime) == 0


async def test_whole_columns_count_towards_the_cap_on_cells(settings: Settings) -> None:
    small = settings.model_copy(update={"max_cells_per_job": 30})
    async for runtime in _runtime(small):
        demo = _seed(runtime)
        async with _client(runtime) as client:
            columns = [
                {"columnId": demo.intro[0].column_id, "rows": "all"},
                {"columnId": demo.domain[0].column_id, "rows": "all"},
            ]
            response = await client.post(
                f"/api/tables/{demo.table_id}/enrich", json={"columns": columns}
            )
            assert_error(
                response, 400, "invalid_input", "50 cells selected; one job can run at most 30"
            )
            assert job_count(runtime) == 0


async def test_a_big_job_lists_its_first_task_ids_and_counts_them_all(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    """The answer stays small for a job of any size: the first TASK_IDS_SHOWN ids, in order,
    and taskCount; a retried request (same key) answers the same."""
    with unit_of_work(runtime.open_session) as session:
        add_table(
            session,
            name="Wide",
            columns=[ColumnSpec("Name"), greeting()],
            rows=([f"n{i}"] for i in range(TASK_IDS_SHOWN + 5)),
        )
    table_id = demo.table_id + 1
    with runtime.open_session() as session:
        column = session.exec(
            select(TableColumn.id).where(
                TableColumn.table_id == table_id, TableColumn.name == "Greeting"
            )
        ).one()
    request = {"columns": [{"columnId": column, "rows": "all"}]}
    key = {"Idempotency-Key": "big-job-1"}
    response = await client.post(f"/api/tables/{table_id}/enrich", json=request, headers=key)
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["taskCount"] == TASK_IDS_SHOWN + 5
    assert len(started["taskIds"]) == TASK_IDS_SHOWN
    assert started["taskIds"] == sorted(started["taskIds"])
    again = await client.post(f"/api/tables/{table_id}/enrich", json=request, headers=key)
    assert again.status_code == 202, again.text
    assert (again.json()["taskIds"], again.json()["taskCount"]) == (
        started["taskIds"],
        started["taskCount"],
    )
    await wait_until_final(client, runtime, started["job"]["id"])


# --- authentication ------------------------------------------------------------------


def _requests(demo: Demo) -> list[tuple[str, str, dict[str, Any] | None, int]]:
    """One request per route, with the status it gets once authenticated."""
    return [
        ("POST", f"/api/tables/{demo.table_id}/enrich", body(demo.domain[:1]), 202),
        ("GET", "/api/jobs/424242", None, 404),
        ("POST", "/api/jobs/424242/cancel", None, 404),
        ("GET", "/api/openapi.json", None, 200),
    ]


async def test_every_route_requires_the_api_key_when_one_is_set(
    keyed_client: httpx.AsyncClient, keyed_runtime: Runtime, keyed_demo: Demo
) -> None:
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Bearer {API_KEY}x"},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": API_KEY},
        {"Authorization": "Bearer "},
    ]
    for method, path, payload, authorized_status in _requests(keyed_demo):
        for headers in bad_headers:
            response = await keyed_client.request(method, path, json=payload, headers=headers)
            assert_error(response, 401, "unauthorized", "ENRICHMENT_API_KEY")
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith("Bearer realm=")
            assert ('error="invalid_token"' in challenge) == bool(headers)
            assert API_KEY not in response.text
            assert API_KEY not in str(response.headers)
        response = await keyed_client.request(
            method, path, json=payload, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        assert response.status_code == authorized_status, response.text
        assert API_KEY not in response.text
    assert job_count(keyed_runtime) == 1  # only the authorized enrich request made a job
    await asyncio.wait_for(keyed_runtime.runner.wait(1), timeout=WAIT)


async def test_the_bearer_scheme_is_case_insensitive(
    keyed_client: httpx.AsyncClient, keyed_runtime: Runtime
) -> None:
    response = await keyed_client.get(
        "/api/openapi.json", headers={"Authorization": f"bearer {API_KEY}"}
    )
    assert response.status_code == 200


async def test_authentication_comes_before_validation(
    keyed_client: httpx.AsyncClient, keyed_runtime: Runtime
) -> None:
    response = await keyed_client.post(
        "/api/tables/1/enrich", content=b"{not json", headers={"Authorization": "Bearer nope"}
    )
    assert_error(response, 401, "unauthorized")


async def test_without_a_key_or_an_account_the_api_says_set_up_is_pending(
    settings: Settings,
) -> None:
    """No open mode: with no service key and no account yet, a request without a token gets
    503 setup_pending; once the owner exists, 401. Nothing runs either way."""
    assert settings.enrichment_api_key is None
    async for runtime in _runtime(settings, keyless=True):
        demo = _seed(runtime)
        async with _client(runtime, None) as bare:
            for method, path, payload, _status in _requests(demo):
                response = await bare.request(method, path, json=payload)
                assert_error(response, 503, "setup_pending", "create the owner account")
                assert response.headers["retry-after"] == "60"
            with runtime.open_session() as session:
                add_user(session, email="owner@example.com")
            for method, path, payload, _status in _requests(demo):
                response = await bare.request(method, path, json=payload)
                assert_error(response, 401, "unauthorized", "personal API token")
        assert job_count(runtime) == 0


# --- validation ----------------------------------------------------------------------

BAD_BODIES: list[tuple[str, bytes, int, str, str]] = [
    ("malformed JSON", b'{"cells": [', 400, "malformed_json", "not valid JSON"),
    ("empty body", b"", 400, "malformed_json", "empty"),
    ("NaN", b'{"cells": [{"rowId": NaN, "columnId": 1}]}', 400, "malformed_json", "not valid JSON"),
    ("not UTF-8", b'{"cells": "\xff"}', 400, "malformed_json", "not valid JSON"),
    ("deeply nested", b"[" * 100_000, 400, "malformed_json", "not valid JSON"),
    ("a list", b"[]", 400, "invalid_body", "must be a JSON object"),
    ("a string", b'"cells"', 400, "invalid_body", "not a string"),
    ("no cells", b'{"cell": []}', 400, "invalid_body", 'has no "cells"'),
    ("cells not a list", b'{"cells": {"rowId": 1}}', 400, "invalid_cells", "must be an array"),
    ("cells null", b'{"cells": null}', 400, "invalid_cells", "not null"),
    ("empty cells", b'{"cells": []}', 400, "empty_selection", "at least one cell"),
    (
        "cell not an object",
        b'{"cells": [[1, 2]]}',
        400,
        "invalid_cells",
        "cells[0] must be an object",
    ),
    (
        "missing rowId",
        b'{"cells": [{"columnId": 2}]}',
        400,
        "invalid_cells",
        'cells[0] has no "rowId"',
    ),
    ("missing columnId", b'{"cells": [{"rowId": 1}]}', 400, "invalid_cells", 'has no "columnId"'),
    (
        "rowId a string",
        b'{"cells": [{"rowId": "1", "columnId": 2}]}',
        400,
        "invalid_cells",
        "cells[0].rowId must be a positive integer, not a string",
    ),
    (
        "rowId a float",
        b'{"cells": [{"rowId": 1.5, "columnId": 2}]}',
        400,
        "invalid_cells",
        "not a number",
    ),
    (
        "rowId a boolean",
        b'{"cells": [{"rowId": true, "columnId": 2}]}',
        400,
        "invalid_cells",
        "not a boolean",
    ),
    (
        "columnId null",
        b'{"cells": [{"rowId": 1, "columnId": null}]}',
        400,
        "invalid_cells",
        "cells[0].columnId",
    ),
    (
        "zero id",
        b'{"cells": [{"rowId": 0, "columnId": 2}]}',
        400,
        "invalid_cells",
        "positive integer",
    ),
    (
        "negative id",
        b'{"cells": [{"rowId": 1, "columnId": -2}]}',
        400,
        "invalid_cells",
        "positive integer",
    ),
    (
        "huge id",
        b'{"cells": [{"rowId": 99999999999999999999, "columnId": 2}]}',
        400,
        "invalid_cells",
        "below 2^63",
    ),
    (
        "second cell bad",
        b'{"cells": [{"rowId": 1, "columnId": 2}, {"rowId": 1}]}',
        400,
        "invalid_cells",
        "cells[1]",
    ),
    ("columns not a list", b'{"columns": 4}', 400, "invalid_columns", "must be an array"),
    ("columns empty", b'{"columns": []}', 400, "empty_selection", '"columns" is empty'),
    (
        "a column without rows",
        b'{"columns": [{"columnId": 4}]}',
        400,
        "invalid_columns",
        'columns[0].rows must be "all"',
    ),
    (
        "a column with a range",
        b'{"columns": [{"columnId": 4, "rows": [1, 2]}]}',
        400,
        "invalid_columns",
        'columns[0].rows must be "all"',
    ),
    (
        "a column id a string",
        b'{"columns": [{"columnId": "4", "rows": "all"}]}',
        400,
        "invalid_columns",
        "columns[0].columnId must be a positive integer, not a string",
    ),
    (
        "a column not an object",
        b'{"columns": [4]}',
        400,
        "invalid_columns",
        "columns[0] must be an object",
    ),
]


@pytest.mark.parametrize(
    ("raw", "status", "code", "message"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_bad_bodies_are_refused_with_a_message(
    client: httpx.AsyncClient,
    runtime: Runtime,
    demo: Demo,
    raw: bytes,
    status: int,
    code: str,
    message: str,
) -> None:
    response = await client.post(
        f"/api/tables/{demo.table_id}/enrich",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, status, code, message)
    assert job_count(runtime) == 0


async def test_whole_number_floats_are_integer_ids(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    """Found by tests/fuzz (schemathesis): the document says integer, and JSON Schema counts
    1.0 as one, but the parser refused it; a Python client sending 4.0 got a 400."""
    ref = demo.domain[0]
    raw = json.dumps({"cells": [{"rowId": float(ref.row_id), "columnId": float(ref.column_id)}]})
    assert ".0" in raw
    response = await client.post(
        f"/api/tables/{demo.table_id}/enrich",
        content=raw.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    final = await wait_until_final(client, runtime, response.json()["job"]["id"])
    assert final["total"] == 1


async def test_too_many_cells_are_refused_before_touching_the_database(
    settings: Settings,
) -> None:
    small = settings.model_copy(update={"max_cells_per_job": 3})
    async for runtime in _runtime(small):
        demo = _seed(runtime)
        async with _client(runtime) as client:
            response = await client.post(
                f"/api/tables/{demo.table_id}/enrich", json=body(demo.domain[:4])
            )
            assert_error(
                response, 400, "too_many_cells", "lists 4 cells; one job can run at most 3"
            )
            response = await client.post(
                f"/api/tables/{demo.table_id}/enrich", json=body(demo.domain[:3])
            )
            assert response.status_code == 202
            await wait_until_final(client, runtime, response.json()["job"]["id"])


async def test_a_body_over_the_cap_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    limit = max(64 * 1024, runtime.settings.max_cells_per_job * 128)
    padding = b" " * limit
    raw = b'{"cells": [{"rowId": 1, "columnId": 2}]' + padding + b"}"
    response = await client.post(
        f"/api/tables/{demo.table_id}/enrich",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 413, "body_too_large", f"larger than {limit} bytes")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the cap applies while reading
        yield b'{"cells": ['
        for _ in range(limit // 1000 + 1):
            yield b" " * 1000

    response = await client.post(
        f"/api/tables/{demo.table_id}/enrich",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 413, "body_too_large")


async def test_a_body_that_is_not_json_is_refused(client: httpx.AsyncClient, demo: Demo) -> None:
    response = await client.post(
        f"/api/tables/{demo.table_id}/enrich",
        content=b"cells=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 415, "unsupported_media_type", "application/json")


async def test_json_with_a_charset_or_no_content_type_is_accepted(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    for headers in ({"Content-Type": "application/json; charset=utf-8"}, {}):
        raw = json.dumps(body(demo.domain[:1])).encode()
        response = await client.post(
            f"/api/tables/{demo.table_id}/enrich", content=raw, headers=headers
        )
        assert response.status_code == 202, response.text
        await wait_until_final(client, runtime, response.json()["job"]["id"])


async def test_a_selection_of_input_cells_only_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    response = await client.post(f"/api/tables/{demo.table_id}/enrich", json=body(demo.company))
    assert_error(response, 400, "invalid_input", "no cells in an enrichment column")
    assert job_count(runtime) == 0


async def test_cells_of_a_column_whose_config_broke_are_refused_and_nothing_is_kept(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    """A config the enricher no longer accepts (edited in the database, or an older version's)
    is refused before the job exists, with the enricher's message; the key stays free."""
    intro_column = demo.intro[0].column_id
    with runtime.open_session() as session:
        session.execute(
            sa.update(TableColumn)
            .where(col(TableColumn.id) == intro_column)
            .values(config={"template": "Hi {Company"})
        )
        session.commit()
    response = await client.post(
        f"/api/tables/{demo.table_id}/enrich",
        json=body(demo.intro[:2]),
        headers={"Idempotency-Key": "broken-config"},
    )
    assert_error(response, 400, "invalid_input", "template: 'template' is not a valid template")
    assert job_count(runtime) == 0
    with runtime.open_session() as session:
        assert session.get(ApiIdempotencyKey, "broken-config") is None


async def test_cells_that_are_all_queued_already_are_refused(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    with unit_of_work(runtime.open_session) as session:
        create_job(session=session, table_id=demo.table_id, cells=demo.domain[:2], max_cells=100)
    response = await client.post(f"/api/tables/{demo.table_id}/enrich", json=body(demo.domain[:2]))
    assert_error(response, 409, "cells_busy", "already queued or running")
    assert job_count(runtime) == 1


# --- not found -----------------------------------------------------------------------


async def test_unknown_tables_cells_and_jobs_are_404(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    one = body(demo.domain[:1])
    assert_error(
        await client.post("/api/tables/999/enrich", json=one), 404, "not_found", "Table 999"
    )
    huge = "99999999999999999999999"
    assert_error(await client.post(f"/api/tables/{huge}/enrich", json=one), 404, "not_found")
    stranger = {"cells": [{"rowId": 999_999, "columnId": demo.domain[0].column_id}]}
    assert_error(
        await client.post(f"/api/tables/{demo.table_id}/enrich", json=stranger),
        404,
        "not_found",
        "row 999999",
    )
    assert_error(await client.get("/api/jobs/999"), 404, "not_found", "Job 999 does not exist")
    assert_error(await client.get(f"/api/jobs/{huge}"), 404, "not_found")
    assert_error(await client.post("/api/jobs/999/cancel"), 404, "not_found", "Job 999")
    assert job_count(runtime) == 0


async def test_unknown_api_paths_and_methods_answer_in_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    assert_error(await client.get("/api/jobs/abc"), 404, "not_found", "no API route")
    assert_error(await client.get("/api/nothing-here"), 404, "not_found")
    response = await client.get("/api/tables/1/enrich")
    assert_error(response, 405, "method_not_allowed", "GET is not allowed")
    assert response.headers["allow"] == "POST"


async def test_unexpected_errors_are_a_generic_500(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk_live_do_not_leak"

    class ExplodingRunner:
        async def dispatch(self, job_id: int) -> DispatchResult:
            raise RuntimeError(f"boom with {secret}")

        async def cancel(self, job_id: int) -> None:
            raise RuntimeError(f"boom with {secret}")

    @dataclass
    class ExplodingRuntime(Runtime):
        @property
        def dispatcher(self) -> ExplodingRunner:  # type: ignore[override]
            return ExplodingRunner()

    async with closing(ExplodingRuntime(settings=keyed(settings))) as runtime:
        demo = _seed(runtime)
        async with _client(runtime) as client:
            response = await client.post(
                f"/api/tables/{demo.table_id}/enrich",
                json=body(demo.domain[:1]),
                headers={"Idempotency-Key": "explodes"},
            )
            assert_error(response, 500, "internal_error", "Something went wrong")
            assert secret not in response.text
            assert "RuntimeError" not in response.text
            with runtime.open_session() as session:  # the job exists: the key stays bound to it
                record = session.get(ApiIdempotencyKey, "explodes")
                assert record is not None and record.job_id is not None
            retried = await client.post(
                f"/api/tables/{demo.table_id}/enrich",
                json=body(demo.domain[:1]),
                headers={"Idempotency-Key": "explodes"},
            )
            assert retried.status_code == 202 and retried.headers["idempotent-replayed"] == "true"
            assert retried.json()["job"]["id"] == record.job_id
            assert job_count(runtime) == 1
            assert_error(await client.post("/api/jobs/1/cancel"), 500, "internal_error")
    assert any(r.exc_info for r in caplog.records)  # the details are in the log


# --- cancel --------------------------------------------------------------------------


async def test_cancel_stops_a_queued_job_and_is_harmless_afterwards(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    with unit_of_work(runtime.open_session) as session:
        created = create_job(
            session=session, table_id=demo.table_id, cells=demo.domain[:3], max_cells=100
        )
    job_id = created.job.id

    response = await client.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    assert_schema("JobEnvelope", response.json())
    canceled = response.json()["job"]
    assert canceled["status"] == "canceled"
    assert canceled["finishedAt"] is not None
    with runtime.open_session() as session:
        assert {c.status for c in cells_of(session, demo.domain[:3])} == {CellStatus.CANCELED}

    again = await client.post(f"/api/jobs/{job_id}/cancel")
    assert again.status_code == 200
    assert again.json()["job"] == canceled
    assert (await client.get(f"/api/jobs/{job_id}")).json()["job"] == canceled


async def test_cancelling_a_finished_job_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    response = await client.post(f"/api/tables/{demo.table_id}/enrich", json=body(demo.intro[:2]))
    final = await wait_until_final(client, runtime, response.json()["job"]["id"])
    assert final["status"] == "completed"

    response = await client.post(f"/api/jobs/{final['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["job"] == final


async def test_cancel_of_a_running_job_through_the_api(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    """Cancel right after starting: the job ends canceled or, if it won the race, completed."""
    response = await client.post(f"/api/tables/{demo.table_id}/enrich", json=body(demo.intro))
    job_id = response.json()["job"]["id"]
    cancel = await client.post(f"/api/jobs/{job_id}/cancel")
    assert cancel.status_code == 200
    final = await wait_until_final(client, runtime, job_id)
    assert final["status"] in {"canceled", "completed"}
    assert final["status"] == cancel.json()["job"]["status"]
    with runtime.open_session() as session:
        statuses = {c.status for c in cells_of(session, demo.intro)}
    assert statuses <= {CellStatus.DONE, CellStatus.CANCELED}


# --- idempotency ---------------------------------------------------------------------


async def _enrich(
    client: httpx.AsyncClient, table_id: int, refs: list[CellRef], key: str | None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post(f"/api/tables/{table_id}/enrich", json=body(refs), headers=headers)


async def test_the_same_key_and_request_return_the_same_job(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    first = await _enrich(client, demo.table_id, demo.domain[:4], "retry-1")
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers
    job_id = first.json()["job"]["id"]

    again = await _enrich(client, demo.table_id, demo.domain[:4], "retry-1")
    assert again.status_code == 202, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert_schema("EnrichTableResponse", again.json())
    assert again.json()["job"]["id"] == job_id
    assert again.json()["taskIds"] == first.json()["taskIds"]
    assert again.json()["skippedActive"] == first.json()["skippedActive"]

    # The same set of cells in another order, with duplicates, is the same request.
    shuffled = list(reversed(demo.domain[:4])) + demo.domain[:1]
    third = await _enrich(client, demo.table_id, shuffled, "retry-1")
    assert third.json()["job"]["id"] == job_id
    assert job_count(runtime) == 1

    final = await wait_until_final(client, runtime, job_id)
    after = await _enrich(client, demo.table_id, demo.domain[:4], "retry-1")
    assert after.json()["job"] == final  # a replay shows the job as it is now
    assert job_count(runtime) == 1


async def test_the_key_is_bound_to_its_job_before_the_job_is_dispatched(settings: Settings) -> None:
    """Found by the fault-matrix soak: the backend killed while dispatching (Trigger.dev being
    called) left the key claimed but unbound, so the client's retry got 409 "in progress" for
    two minutes. The key is now bound in the job's own transaction."""
    bound_at_dispatch: list[int | None] = []

    class RecordingRunner:
        async def dispatch(self, job_id: int) -> DispatchResult:
            with runtime.open_session() as session:  # what a crash right now would leave
                record = session.get(ApiIdempotencyKey, "dies-while-dispatching")
                bound_at_dispatch.append(None if record is None else record.job_id)
            return DispatchResult(backend=JobBackend.LOCAL)

        async def cancel(self, job_id: int) -> None:
            return None

    @dataclass
    class RecordingRuntime(Runtime):
        @property
        def dispatcher(self) -> RecordingRunner:  # type: ignore[override]
            return RecordingRunner()

    async with closing(RecordingRuntime(settings=keyed(settings))) as runtime:
        demo = _seed(runtime)
        async with _client(runtime) as client:
            first = await _enrich(client, demo.table_id, demo.domain[:2], "dies-while-dispatching")
            assert first.status_code == 202
            assert bound_at_dispatch == [first.json()["job"]["id"]]


async def test_a_key_reused_for_another_request_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    first = await _enrich(client, demo.table_id, demo.domain[:2], "reused")
    assert first.status_code == 202
    other = await _enrich(client, demo.table_id, demo.domain[:3], "reused")
    assert_error(other, 422, "idempotency_key_reused", "different request")
    assert job_count(runtime) == 1
    fresh = await _enrich(client, demo.table_id, demo.intro[:1], "another")
    assert fresh.status_code == 202
    assert fresh.json()["job"]["id"] != first.json()["job"]["id"]
    for job_id in (first.json()["job"]["id"], fresh.json()["job"]["id"]):
        await wait_until_final(client, runtime, job_id)


async def test_without_a_key_every_request_is_a_new_job(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    first = await _enrich(client, demo.table_id, demo.domain[:1], None)
    await wait_until_final(client, runtime, first.json()["job"]["id"])
    second = await _enrich(client, demo.table_id, demo.domain[:1], None)
    assert second.json()["job"]["id"] != first.json()["job"]["id"]
    await wait_until_final(client, runtime, second.json()["job"]["id"])


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "with space", "naïve", "tab\there"],
    ids=["empty", "long", "space", "non-ascii", "tab"],
)
async def test_malformed_keys_are_refused(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo, key: str
) -> None:
    response = await client.post(
        f"/api/tables/{demo.table_id}/enrich",
        json=body(demo.domain[:1]),
        headers=[("Idempotency-Key", key.encode("utf-8"))],
    )
    assert_error(response, 400, "invalid_idempotency_key", "visible ASCII")
    assert job_count(runtime) == 0


async def test_a_failed_request_frees_its_key(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    missing = await _enrich(client, 999, demo.domain[:1], "fix-and-retry")
    assert_error(missing, 404, "not_found")
    refused = await _enrich(client, demo.table_id, demo.company[:1], "fix-and-retry")
    assert_error(refused, 400, "invalid_input")
    ok = await _enrich(client, demo.table_id, demo.domain[:1], "fix-and-retry")
    assert ok.status_code == 202
    assert "idempotent-replayed" not in ok.headers
    await wait_until_final(client, runtime, ok.json()["job"]["id"])


async def test_concurrent_requests_with_one_key_make_one_job(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    responses = await asyncio.gather(
        *(_enrich(client, demo.table_id, demo.domain[:5], "racing") for _ in range(4))
    )
    statuses = sorted(r.status_code for r in responses)
    assert job_count(runtime) == 1
    created = [r for r in responses if r.status_code == 202]
    assert created
    assert len({r.json()["job"]["id"] for r in created}) == 1
    assert set(statuses) <= {202, 409}
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "idempotency_key_in_progress", "retry")
            assert response.headers["retry-after"] == "1"
    await wait_until_final(client, runtime, created[0].json()["job"]["id"])


async def test_a_claim_in_progress_answers_409_until_it_goes_stale(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    digest = fingerprint(table_id=demo.table_id, cells=demo.domain[:2])
    with runtime.open_session() as session:
        session.add(ApiIdempotencyKey(key="held", fingerprint=digest, created_at=utcnow()))
        session.commit()
    held = await _enrich(client, demo.table_id, demo.domain[:2], "held")
    assert_error(held, 409, "idempotency_key_in_progress")

    with runtime.open_session() as session:  # the request holding it died long ago
        record = session.get(ApiIdempotencyKey, "held")
        assert record is not None
        record.created_at = utcnow() - CLAIM_TTL - timedelta(seconds=1)
        session.add(record)
        session.commit()
    taken_over = await _enrich(client, demo.table_id, demo.domain[:2], "held")
    assert taken_over.status_code == 202, taken_over.text
    await wait_until_final(client, runtime, taken_over.json()["job"]["id"])


async def test_a_retry_soon_after_a_crash_before_the_job_existed_creates_the_job(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    """Found by the fault-matrix soak: the backend killed between claiming the key and
    creating the job left the claim behind, and the client's retries got 409 for two
    minutes. A dead claim is now taken over after seconds."""
    digest = fingerprint(table_id=demo.table_id, cells=demo.domain[:2])
    with runtime.open_session() as session:  # what the killed request left in the database
        died = utcnow() - timedelta(seconds=20)
        session.add(ApiIdempotencyKey(key="crashed", fingerprint=digest, created_at=died))
        session.commit()
    retried = await _enrich(client, demo.table_id, demo.domain[:2], "crashed")
    assert retried.status_code == 202, retried.text
    await wait_until_final(client, runtime, retried.json()["job"]["id"])


async def test_keys_expire(client: httpx.AsyncClient, runtime: Runtime, demo: Demo) -> None:
    first = await _enrich(client, demo.table_id, demo.domain[:1], "old")
    await wait_until_final(client, runtime, first.json()["job"]["id"])
    with runtime.open_session() as session:
        record = session.get(ApiIdempotencyKey, "old")
        assert record is not None
        assert record.job_id == first.json()["job"]["id"]
        record.created_at = utcnow() - KEY_TTL - timedelta(seconds=1)
        session.add(record)
        session.commit()
    second = await _enrich(client, demo.table_id, demo.domain[:1], "old")
    assert second.status_code == 202
    assert "idempotent-replayed" not in second.headers
    assert second.json()["job"]["id"] != first.json()["job"]["id"]
    await wait_until_final(client, runtime, second.json()["job"]["id"])


async def test_keys_survive_a_restart(settings: Settings) -> None:
    """The record is in the database: a new process (runtime and app) replays the same job."""
    async for runtime in _runtime(settings):
        demo = _seed(runtime)
        async with _client(runtime) as client:
            first = await _enrich(client, demo.table_id, demo.domain[:2], "durable")
            job_id = first.json()["job"]["id"]
            await wait_until_final(client, runtime, job_id)
    async for runtime in _runtime(settings):
        async with _client(runtime) as client:
            again = await _enrich(client, demo.table_id, demo.domain[:2], "durable")
            assert again.status_code == 202
            assert again.headers["idempotent-replayed"] == "true"
            assert again.json()["job"]["id"] == job_id
            assert again.json()["job"]["status"] == "completed"
            assert job_count(runtime) == 1


async def test_a_key_whose_job_was_deleted_is_free_again(
    client: httpx.AsyncClient, runtime: Runtime, demo: Demo
) -> None:
    first = await _enrich(client, demo.table_id, demo.domain[:1], "orphan")
    job_id = first.json()["job"]["id"]
    await wait_until_final(client, runtime, job_id)
    with runtime.open_session() as session:  # what deleting the table does to its jobs
        session.execute(delete(EnrichmentTask).where(col(EnrichmentTask.job_id) == job_id))
        session.execute(delete(EnrichmentJob).where(col(EnrichmentJob.id) == job_id))
        session.commit()
    again = await _enrich(client, demo.table_id, demo.domain[:1], "orphan")
    assert again.status_code == 202, again.text
    assert "idempotent-replayed" not in again.headers
    await wait_until_final(client, runtime, again.json()["job"]["id"])


# --- OpenAPI -------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    validate_openapi(DOCUMENT)


def _served_routes(app: Starlette) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                path = prefix + route.path.replace(":int", "")
                found.update((path, m.lower()) for m in route.methods or () if m != "HEAD")

    walk(app.routes, "")
    return found


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    """Every route under /api; the sign-in routes under /auth are for browsers, not clients."""
    app = build_api(lambda: pytest.fail("no request is made"))
    documented = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item}
    served = _served_routes(app)
    assert {r for r in served if r[0].startswith("/api/")} == documented
    assert {r[0] for r in served if not r[0].startswith("/api/")} == {
        "/auth/session",
        "/auth/signed-out",
        "/auth/oidc/start",
        "/auth/oidc/callback",
    }


def test_every_documented_operation_says_401_and_every_error_uses_the_error_schema() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert "401" in operation["responses"], (path, method)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
    assert DOCUMENT["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert DOCUMENT["security"] == [{"bearerAuth": []}]


async def test_the_document_is_served(
    keyed_client: httpx.AsyncClient, keyed_runtime: Runtime
) -> None:
    response = await keyed_client.get(
        "/api/openapi.json", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert response.status_code == 200
    assert response.json() == DOCUMENT
    assert API_KEY not in response.text


def test_the_document_cannot_be_changed_through_a_copy() -> None:
    changed = openapi_document()
    changed["paths"].clear()
    assert openapi_document()["paths"]


@pytest.mark.parametrize(
    "key", ["run-1", "x" * 255, "", "x" * 256, "with space", "naïve", "tab\there", "~!"]
)
def test_the_documented_idempotency_key_is_what_the_parser_accepts(key: str) -> None:
    """The document allowed any 1-255 characters while the parser wants visible ASCII, so a
    client generated from the document could send a key the API refuses."""
    [parameter] = [
        p
        for p in DOCUMENT["paths"]["/api/tables/{table_id}/enrich"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    ]
    documented = Draft202012Validator(parameter["schema"]).is_valid(key)
    scope = {"type": "http", "headers": [(b"idempotency-key", key.encode())]}
    try:
        idempotency_key(Request(scope))
    except ApiError:
        accepted = False
    else:
        accepted = True
    assert documented == accepted


def test_every_link_names_a_documented_operation_and_parameter() -> None:
    operations = {
        op["operationId"]: op for item in DOCUMENT["paths"].values() for op in item.values()
    }
    links = [
        link
        for op in operations.values()
        for response in op["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert len(links) == 3
    for link in links:
        target = operations[link["operationId"]]
        names = {p["name"] for p in target.get("parameters", [])}
        assert set(link["parameters"]) <= names


def test_the_documented_enums_match_the_domain() -> None:
    job = DOCUMENT["components"]["schemas"]["Job"]["properties"]
    assert set(job["status"]["enum"]) == {s.value for s in JobStatus}
    assert set(job["backend"]["enum"]) == {b.value for b in JobBackend}


def test_the_migration_matches_the_idempotency_model(engine: sa.Engine) -> None:
    """Migration 0002 creates exactly what ``ApiIdempotencyKey`` declares (no autogenerate drift)."""
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert drift == []
