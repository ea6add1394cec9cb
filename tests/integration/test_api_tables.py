"""The table, row and column routes against a real Runtime on a throwaway SQLite database.

Each refusal is checked for its status, code and message, and for leaving the database as it
was (``row_counts``); each success for its shape against the OpenAPI document.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from enrichment_app.api import build_api
from enrichment_app.db.models import AuditEvent, TableColumn
from enrichment_app.domain import CellRef
from enrichment_app.runtime import Runtime
from enrichment_app.services.audit import Audited
from enrichment_app.services.credentials import is_sealed
from enrichment_app.services.jobs import create_job
from enrichment_app.settings import Settings
from tests.integration.db_helpers import column_refs, row_counts, seed_demo_table
from tests.integration.runtimes import closing
from tests.integration.test_api import assert_error, assert_schema

TOKEN = "tok-" + "9" * 30
SERVICE_KEY = "tables-service-key-" + "4" * 20


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime whose API takes the service key (owner rights in every workspace)."""
    keyed = settings.model_copy(update={"enrichment_api_key": SecretStr(SERVICE_KEY)})
    async with closing(Runtime(settings=keyed)) as runtime:
        yield runtime


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(lambda: runtime))
    headers = {"Authorization": f"Bearer {SERVICE_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield client


@pytest.fixture
def demo(runtime: Runtime) -> int:
    with runtime.open_session() as session:
        return seed_demo_table(session, max_cell_chars=runtime.settings.max_cell_chars)


def counts(runtime: Runtime) -> dict[str, int]:
    with runtime.open_session() as session:
        return row_counts(session)


async def refused(runtime: Runtime, request: Any, status: int, code: str, message: str = "") -> str:
    """The request is refused as stated and leaves every table as it was; its message."""
    before = counts(runtime)
    response = await request
    text = assert_error(response, status, code, message)
    assert counts(runtime) == before
    return text


async def test_a_table_is_created_listed_filled_read_and_deleted(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    created = await client.post(
        "/api/tables", json={"name": "Leads", "columns": ["Company", "Website"]}
    )
    assert created.status_code == 201, created.text
    assert_schema("TableEnvelope", created.json())
    table = created.json()["table"]
    assert table["name"] == "Leads" and table["rowCount"] == 0
    assert [(c["name"], c["kind"]) for c in table["columns"]] == [
        ("Company", "input"),
        ("Website", "input"),
    ]
    tid = table["id"]

    rows = await client.post(
        f"/api/tables/{tid}/rows",
        json={"rows": [{"Company": "Acme", "website": "acme.com"}, {"Company": 42}, {}]},
    )
    assert rows.status_code == 201, rows.text
    assert_schema("RowIds", rows.json())
    ids = rows.json()["rowIds"]
    assert len(ids) == 3

    page = await client.get(f"/api/tables/{tid}/rows", params={"offset": 0, "limit": 2})
    assert page.status_code == 200
    assert_schema("RowPage", page.json())
    assert page.json()["total"] == 3
    first, second = page.json()["rows"]
    assert first["id"] == ids[0]
    assert first["cells"]["Company"] == {"value": "Acme", "status": "empty", "error": None}
    assert first["cells"]["Website"]["value"] == "acme.com"  # the name matched in any case
    assert second["cells"]["Company"]["value"] == "42"
    rest = await client.get(f"/api/tables/{tid}/rows", params={"offset": 2})
    assert [r["id"] for r in rest.json()["rows"]] == [ids[2]]

    edited = await client.patch(f"/api/tables/{tid}/rows/{ids[2]}", json={"Company": "Globex"})
    assert edited.status_code == 200, edited.text
    assert_schema("RowEnvelope", edited.json())
    assert edited.json()["row"]["cells"]["Company"]["value"] == "Globex"

    listed = (await client.get("/api/tables")).json()
    assert_schema("TableList", listed)
    assert [(t["name"], t["rowCount"]) for t in listed["tables"]] == [("Leads", 3)]

    deleted = await client.delete(f"/api/tables/{tid}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await client.get("/api/tables")).json() == {"tables": []}
    assert counts(runtime)["cell"] == 0
    await refused(runtime, client.delete(f"/api/tables/{tid}"), 404, "not_found", "does not exist")


async def test_rows_naming_an_unknown_or_enrichment_column_add_nothing(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    rows = [{"Company": "Ok"}, {"Company": "Bad", "Revenue": "1"}]
    message = await refused(
        runtime,
        client.post(f"/api/tables/{demo}/rows", json={"rows": rows}),
        400,
        "invalid_input",
        "Row 2: this table has no column named 'Revenue'",
    )
    assert "'Company'" in message  # it lists the columns there are
    await refused(
        runtime,
        client.post(f"/api/tables/{demo}/rows", json={"rows": [{"Intro line": "typed"}]}),
        400,
        "invalid_input",
        "'Intro line' is an enrichment column",
    )
    await refused(
        runtime,
        client.post(f"/api/tables/{demo}/rows", json={"rows": [{"Company": ["a"]}]}),
        400,
        "invalid_body",
        'rows[0]["Company"] must be text, a number, a boolean or null, not an array.',
    )
    await refused(
        runtime,
        client.post(f"/api/tables/{demo}/rows", json={"rows": [{"Company": "x"}] * 1001}),
        400,
        "invalid_body",
        "send at most 1000 per request",
    )
    await refused(
        runtime,
        client.post(f"/api/tables/{demo}/rows", json={"rows": [{"Company": "a\x00b"}]}),
        400,
        "invalid_input",
        "NUL character",
    )
    await refused(
        runtime, client.post("/api/tables/99/rows", json={"rows": [{}]}), 404, "not_found"
    )


async def test_editing_a_row_is_all_or_nothing(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    with runtime.open_session() as session:
        row_id = column_refs(session, demo, "Company")[0].row_id
    before = (await client.get(f"/api/tables/{demo}/rows", params={"limit": 1})).json()
    await refused(
        runtime,
        client.patch(f"/api/tables/{demo}/rows/{row_id}", json={"Company": "New", "Nope": "x"}),
        400,
        "invalid_input",
        "no column named 'Nope'",
    )
    after = (await client.get(f"/api/tables/{demo}/rows", params={"limit": 1})).json()
    assert after == before
    await refused(
        runtime,
        client.patch(f"/api/tables/{demo}/rows/999999", json={"Company": "x"}),
        404,
        "not_found",
        "Row 999999 is not in table",
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 1001}, "limit must be a whole number from 1 to 1000, not '1001'."),
        ({"limit": 0}, "limit must be a whole number from 1 to 1000"),
        ({"offset": -1}, "offset must be a whole number from 0"),
        ({"offset": "ten"}, "not 'ten'"),
    ],
)
async def test_a_page_of_rows_out_of_bounds_is_refused_clearly(
    client: httpx.AsyncClient, runtime: Runtime, demo: int, params: dict[str, Any], message: str
) -> None:
    response = client.get(f"/api/tables/{demo}/rows", params=params)
    await refused(runtime, response, 400, "invalid_query", message)


async def test_a_column_is_added_with_its_credentials_sealed_and_shown_as_dots(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    config = {
        "method": "GET",
        "url": "https://api.example.com/lookup?q={Company}",
        "path": "data.name",
        "auth": {"type": "bearer", "token": TOKEN},
    }
    added = await client.post(
        f"/api/tables/{demo}/columns",
        json={"name": "Lookup", "enricher": "http_json", "config": config},
    )
    assert added.status_code == 201, added.text
    assert_schema("ColumnEnvelope", added.json())
    column = added.json()["column"]
    assert column["kind"] == "enrichment" and column["config"]["auth"]["token"] == "•••"
    assert TOKEN not in added.text
    listed = await client.get("/api/tables")
    assert TOKEN not in listed.text and "•••" in listed.text
    with runtime.open_session() as session:
        stored = session.get(TableColumn, column["id"])
        assert stored is not None and is_sealed(stored.config["auth"]["token"])

    plain = await client.post(f"/api/tables/{demo}/columns", json={"name": "Notes"})
    assert plain.status_code == 201
    assert plain.json()["column"]["kind"] == "input"
    page = (await client.get(f"/api/tables/{demo}/rows", params={"limit": 1})).json()
    assert page["rows"][0]["cells"]["Notes"] == {"value": None, "status": "empty", "error": None}


async def test_a_column_the_page_would_refuse_is_refused_with_the_same_message(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    await refused(
        runtime,
        client.post(
            f"/api/tables/{demo}/columns",
            json={"name": "Hi", "enricher": "template", "config": {"template": "Hi {Nope}"}},
        ),
        400,
        "invalid_input",
        "The config refers to 'Nope', which is not a column of this table.",
    )
    await refused(
        runtime,
        client.post(
            f"/api/tables/{demo}/columns",
            json={
                "name": "Steal",
                "enricher": "http_json",
                "config": {"url": "https://{Website}/x", "path": "a"},
            },
        ),
        400,
        "invalid_input",
        "host",
    )
    await refused(
        runtime,
        client.post(f"/api/tables/{demo}/columns", json={"name": "company"}),
        400,
        "invalid_input",
        "A column named 'company' already exists.",
    )
    big = {"template": "Hi {Company} " + "x" * 17_000}
    await refused(
        runtime,
        client.post(
            f"/api/tables/{demo}/columns",
            json={"name": "Big", "enricher": "template", "config": big},
        ),
        400,
        "invalid_input",
        "at most 16,384 are allowed (MAX_CONFIG_BYTES)",
    )


async def test_a_column_another_column_reads_is_not_deleted(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    with runtime.open_session() as session:
        ids = {
            c.name: c.id
            for c in session.exec(select(TableColumn).where(TableColumn.table_id == demo)).all()
        }
    await refused(
        runtime,
        client.delete(f"/api/tables/{demo}/columns/{ids['Contact email']}"),
        409,
        "in_use",
        "'Contact email' is used by 'Email domain'; change or delete that column first.",
    )
    before = counts(runtime)
    gone = await client.delete(f"/api/tables/{demo}/columns/{ids['Email domain']}")
    assert gone.status_code == 204
    after = counts(runtime)
    assert after["table_column"] == before["table_column"] - 1
    assert after["cell"] == before["cell"] - 25
    # Positions stay dense: a column added now goes to the right edge, after all the others.
    added = await client.post(f"/api/tables/{demo}/columns", json={"name": "Last"})
    assert added.status_code == 201
    with runtime.open_session() as session:
        order = session.exec(
            select(TableColumn.name, TableColumn.position)
            .where(TableColumn.table_id == demo)
            .order_by(TableColumn.position)  # type: ignore[arg-type]
        ).all()
    assert [p for _, p in order] == list(range(len(order)))
    assert order[-1][0] == "Last"
    await refused(runtime, client.delete(f"/api/tables/{demo}/columns/9999"), 404, "not_found")


async def test_a_table_with_a_running_job_is_not_deleted(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    from enrichment_app.db.sessions import unit_of_work
    from enrichment_app.services.jobs import create_job

    with runtime.open_session() as session:
        cells = column_refs(session, demo, "Email domain")[:2]
    with unit_of_work(runtime.open_session) as session:
        create_job(session=session, table_id=demo, cells=cells, max_cells=10)
    await refused(
        runtime,
        client.delete(f"/api/tables/{demo}"),
        409,
        "in_use",
        "cancel it before deleting the table",
    )


def _csv(response: httpx.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.text)))


async def test_export_names_the_file_and_neutralises_formulas_unless_raw(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    made = await client.post("/api/tables", json={"name": "Q3: leads", "columns": ["Note"]})
    tid = made.json()["table"]["id"]
    await client.post(f"/api/tables/{tid}/rows", json={"rows": [{"Note": '=HYPERLINK("x")'}]})
    safe = await client.get(f"/api/tables/{tid}/export.csv")
    assert safe.status_code == 200
    assert safe.headers["content-type"].startswith("text/csv")
    assert safe.headers["content-disposition"] == (
        "attachment; filename=\"Q3_ leads.csv\"; filename*=UTF-8''Q3_%20leads.csv"
    )
    assert _csv(safe) == [["Note"], ['\'=HYPERLINK("x")']]
    raw = await client.get(f"/api/tables/{tid}/export.csv", params={"raw": "1"})
    assert 'filename="Q3_ leads (raw).csv"' in raw.headers["content-disposition"]
    assert _csv(raw) == [["Note"], ['=HYPERLINK("x")']]
    with runtime.open_session() as session:
        logged = session.exec(
            select(AuditEvent).where(AuditEvent.action == Audited.TABLE_EXPORT.value)
        ).all()
    assert [(e.target_id, e.detail) for e in logged] == [
        (tid, "formulas neutralised"),
        (tid, "raw"),
    ]
    await refused(
        runtime,
        client.get(f"/api/tables/{tid}/export.csv", params={"raw": "maybe"}),
        400,
        "invalid_query",
        "raw must be 1 or 0",
    )


async def test_import_takes_a_csv_body_with_the_page_s_checks(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    made = await client.post(
        "/api/tables/import",
        params={"name": "From CSV"},
        content=b"Company;Website\nAcme;acme.com\n",
        headers={"Content-Type": "text/csv"},
    )
    assert made.status_code == 201, made.text
    assert_schema("TableEnvelope", made.json())
    table = made.json()["table"]
    assert (table["name"], table["rowCount"]) == ("From CSV", 1)
    assert [c["name"] for c in table["columns"]] == ["Company", "Website"]

    def send(data: bytes, kind: str = "text/csv") -> Any:
        return client.post("/api/tables/import", content=data, headers={"Content-Type": kind})

    await refused(runtime, send(b"a,a\n1,2\n"), 400, "invalid_csv", "names the column 'a' twice")
    await refused(runtime, send("é,b\n".encode("latin-1")), 400, "invalid_csv", "not UTF-8")
    limit = runtime.settings.max_csv_bytes
    await refused(
        runtime,
        send(b"a\n" + b"x\n" * limit),
        413,
        "body_too_large",
        "The file is larger than 1 MB.",
    )
    await refused(runtime, send(b"a\n1\n", "application/json"), 415, "unsupported_media_type")


async def test_a_column_is_renamed_moved_and_resized_as_on_the_page(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    with runtime.open_session() as session:
        ids = {
            c.name: c.id
            for c in session.exec(select(TableColumn).where(TableColumn.table_id == demo)).all()
        }
    url = f"/api/tables/{demo}/columns/{ids['Contact email']}"
    renamed = await client.patch(url, json={"name": "Email", "width": 260})
    assert renamed.status_code == 200, renamed.text
    body = renamed.json()
    assert body["rewritten"] == ["Email domain"]
    assert (body["column"]["name"], body["column"]["width"]) == ("Email", 260)
    with runtime.open_session() as session:
        domain = session.get(TableColumn, ids["Email domain"])
        assert domain is not None and domain.config == {"column": "Email"}
    await refused(
        runtime,
        client.patch(url, json={"name": "website"}),
        400,
        "invalid_input",
        "A column named 'website' already exists.",
    )
    await refused(
        runtime,
        client.patch(url, json={"position": 4}),
        400,
        "invalid_input",
        "must stay to the right",
    )
    for bad in ({}, {"colour": "red"}, {"width": -1}, {"position": True}, {"name": 5}, [1]):
        await refused(runtime, client.patch(url, json=bad), 400, "invalid_body")
    moved = await client.patch(url, json={"position": 0})
    assert moved.status_code == 200 and moved.json()["column"]["position"] == 0


async def test_a_row_is_deleted_unless_a_cell_of_it_is_running(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    page = (await client.get(f"/api/tables/{demo}/rows?limit=2")).json()
    first, second = (r["id"] for r in page["rows"])
    before = counts(runtime)
    gone = await client.delete(f"/api/tables/{demo}/rows/{first}")
    assert gone.status_code == 204
    assert counts(runtime)["table_row"] == before["table_row"] - 1
    await refused(runtime, client.delete(f"/api/tables/{demo}/rows/{first}"), 404, "not_found")
    with runtime.open_session() as session:
        domain = session.exec(
            select(TableColumn).where(
                TableColumn.table_id == demo, TableColumn.name == "Email domain"
            )
        ).one()
        assert domain.id is not None
        create_job(
            session,
            table_id=demo,
            cells=[CellRef(row_id=second, column_id=domain.id)],
            max_cells=10,
        )
        session.commit()
    await refused(
        runtime,
        client.delete(f"/api/tables/{demo}/rows/{second}"),
        409,
        "in_use",
        "queued or running",
    )


def stored_column(runtime: Runtime, column_id: int) -> tuple[str, str | None, dict[str, Any]]:
    with runtime.open_session() as session:
        column = session.get(TableColumn, column_id)
        assert column is not None
        return column.name, column.enricher, dict(column.config or {})


def column_ids(runtime: Runtime, table_id: int) -> dict[str, int]:
    with runtime.open_session() as session:
        columns = session.exec(select(TableColumn).where(TableColumn.table_id == table_id)).all()
        return {c.name: c.id or 0 for c in columns}


LOOKUP = {
    "method": "GET",
    "url": "https://api.example.com/lookup?q={Company}",
    "path": "data.name",
    "auth": {"type": "bearer", "token": TOKEN},
}


async def test_a_column_s_config_and_enricher_change_as_in_the_page_s_dialog(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    url = f"/api/tables/{demo}/columns/{column_ids(runtime, demo)['Intro line']}"
    changed = await client.patch(url, json={"config": {"template": "Dear {Company}"}})
    assert changed.status_code == 200, changed.text
    assert_schema("ColumnChanged", changed.json())
    assert changed.json()["column"]["config"] == {"template": "Dear {Company}"}
    assert stored_column(runtime, changed.json()["column"]["id"])[1:] == (
        "template",
        {"template": "Dear {Company}"},
    )
    with runtime.open_session() as session:
        (event,) = session.exec(
            select(AuditEvent).where(AuditEvent.action == "column.change")
        ).all()
        assert event.detail == "'Intro line' (template): config"

    # Another enricher, with a credential: sealed, and shown as dots.
    switched = await client.patch(url, json={"enricher": "http_json", "config": LOOKUP})
    assert switched.status_code == 200, switched.text
    column = switched.json()["column"]
    assert column["enricher"] == "http_json" and column["config"]["auth"]["token"] == "•••"
    assert TOKEN not in switched.text
    _name, _enricher, config = stored_column(runtime, column["id"])
    sealed = config["auth"]["token"]
    assert is_sealed(sealed)

    # Sent back as it reads (•••), the credential is kept; the rest changes.
    kept = {**column["config"], "path": "data.title"}
    again = await client.patch(url, json={"config": kept})
    assert again.status_code == 200, again.text
    _name, _enricher, config = stored_column(runtime, column["id"])
    assert config["auth"]["token"] == sealed and config["path"] == "data.title"


async def test_a_bad_config_is_refused_with_the_enricher_s_message_and_nothing_changes(
    client: httpx.AsyncClient, runtime: Runtime, demo: int
) -> None:
    ids = column_ids(runtime, demo)
    intro = f"/api/tables/{demo}/columns/{ids['Intro line']}"
    before = stored_column(runtime, ids["Intro line"])
    cases: list[tuple[str, dict[str, Any], str]] = [
        (intro, {"config": {"template": "Hi {Nope}"}}, "refers to 'Nope'"),
        (intro, {"name": "Intro", "config": {"template": "Hi {Nope}"}}, "refers to 'Nope'"),
        (intro, {"config": {"text": "Hi"}}, "template"),
        (intro, {"enricher": "nope", "config": {}}, "Unknown enricher 'nope'"),
        # ••• stands for a saved credential: the template column has none to keep.
        (
            intro,
            {
                "enricher": "http_json",
                "config": {**LOOKUP, "auth": {"type": "bearer", "token": "•••"}},
            },
            "Enter the value for auth → token",
        ),
        (
            f"/api/tables/{demo}/columns/{ids['Company']}",
            {"config": {"template": "x"}},
            "'Company' is an input column; it has no config.",
        ),
    ]
    for target, body, message in cases:
        await refused(runtime, client.patch(target, json=body), 422, "invalid_config", message)
        assert stored_column(runtime, ids["Intro line"]) == before, body
    assert stored_column(runtime, ids["Company"])[1:] == (None, {})
    for bad in (
        {"config": "Hi"},
        {"config": [1]},
        {"enricher": "template"},
        {"enricher": 3, "config": {}},
    ):
        await refused(runtime, client.patch(intro, json=bad), 400, "invalid_body")
    assert stored_column(runtime, ids["Intro line"]) == before
