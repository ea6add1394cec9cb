"""Views over REST: ``GET …/rows?f=&s=&q=`` and ``POST …/enrich-view`` (Run the view), against
a real Runtime; refusals leave the database as it was, successes match the OpenAPI document."""

from __future__ import annotations

import httpx

from enrichment_app.runtime import Runtime
from tests.integration.db_helpers import column_id, task_columns, task_row_values
from tests.integration.test_api import assert_schema
from tests.integration.test_api_tables import client, demo, refused, runtime

__all__ = ["client", "demo", "runtime"]  # the fixtures this module shares


def columns(runtime: Runtime, table_id: int) -> dict[str, int]:
    with runtime.open_session() as session:
        names = ["Company", "Contact email", "Email domain", "Intro line"]
        return {name: column_id(session, table_id, name) for name in names}


async def test_rows_of_a_view_are_filtered_sorted_and_counted(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    ids = columns(runtime, demo)
    params = {"f": f"{ids['Company']}.contains.an", "s": f"-{ids['Company']}", "limit": 2}
    response = await client.get(f"/api/tables/{demo}/rows", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_schema("RowPage", body)
    assert body["total"] == 5
    assert [r["cells"]["Company"]["value"] for r in body["rows"]] == [
        "Willow Insurance",
        "Vertex Manufacturing",
    ]
    searched = await client.get(f"/api/tables/{demo}/rows", params={"q": "NOT AN EMAIL"})
    assert [r["cells"]["Company"]["value"] for r in searched.json()["rows"]] == ["Redwood Legal"]

    bad = client.get(f"/api/tables/{demo}/rows", params={"f": f"{ids['Company']}.like.x"})
    assert "Unknown filter operator 'like'" in await refused(runtime, bad, 400, "invalid_input")
    other = client.get(f"/api/tables/{demo}/rows", params={"s": "99999"})
    assert "not in this table" in await refused(runtime, other, 400, "invalid_input")


def task_companies(runtime: Runtime, job_id: int, company: int) -> list[str]:
    with runtime.open_session() as session:
        return task_row_values(session, job_id, company)


async def test_enrich_view_runs_the_column_for_exactly_the_rows_the_view_shows(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    ids = columns(runtime, demo)
    body = {
        "columnId": ids["Intro line"],
        "view": {"conditions": [{"columnId": ids["Company"], "op": "contains", "value": "AN"}]},
    }
    response = await client.post(f"/api/tables/{demo}/enrich-view", json=body)
    assert response.status_code == 202, response.text
    started = response.json()
    assert_schema("EnrichTableResponse", started)
    job_id = started["job"]["id"]
    await runtime.runner.wait(job_id)
    assert task_companies(runtime, job_id, ids["Company"]) == [
        "Fjord Analytics",
        "Granite Security",
        "Meridian Bank",
        "Vertex Manufacturing",
        "Willow Insurance",
    ]
    with runtime.open_session() as session:
        assert task_columns(session, job_id) == {ids["Intro line"]}


async def test_enrich_view_refuses_clearly_and_changes_nothing_and_replays_a_key(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    ids = columns(runtime, demo)
    url = f"/api/tables/{demo}/enrich-view"
    everything = {"columnId": ids["Intro line"], "view": {"search": "example"}}
    cases = [
        ({"columnId": ids["Company"]}, 400, "invalid_input", "input column"),
        ({"columnId": 99999}, 404, "not_found", "Column 99999 is not in table"),
        ({"columnId": "4"}, 400, "invalid_input", "'columnId' must be the id"),
        ({"columnId": ids["Intro line"], "view": {"conditions": [{"columnId": 99999, "op": "empty"}]}},
         400, "invalid_input", "column 99999, which is not in this table"),
        ({"columnId": ids["Intro line"], "view": {"search": "no such text anywhere"}},
         400, "invalid_input", "shows no rows"),
        ({"columnId": ids["Intro line"], "view": {"sort": "up"}}, 400, "invalid_input", "view.sort"),
        ({"columnId": ids["Intro line"], "extra": 1}, 400, "invalid_input", "Unknown field(s): extra"),
    ]  # fmt: skip
    for payload, status, code, message in cases:
        await refused(runtime, client.post(url, json=payload), status, code, message)
    first = await client.post(url, json=everything, headers={"Idempotency-Key": "k1"})
    again = await client.post(url, json=everything, headers={"Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["job"]["id"] == first.json()["job"]["id"]
