"""The paths where a secret could leave the backend, driven in both modes for the secret scan.

* An ``llm`` column run from the page, first with the right key, then with the fake LLM API
  refusing it: the fake repeats the offered key in full in its 401 message (the real API masks
  it), so the app must scrub it on the way to the cell's error, the websocket and the page.
* The REST API with and without the key: refusals, errors and a job, every response recorded.

The scan itself happens once per session (``secret_scan`` in tests/e2e/conftest.py); these
flows also check that what they produced reached the captured sources, so the scan is not
passing over empty channels.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.sync_api import Page, expect
from sqlmodel import select

from enrichment_app.api.parsing import max_body_bytes
from enrichment_app.db.models import TableColumn, TableRow
from enrichment_app.domain import ColumnKind
from enrichment_app.services.tables import ColumnSpec, create_table
from enrichment_app.settings import Settings
from tests.e2e.grid import drag, open_grid
from tests.fakes.openai_server import FakeOpenAI
from tests.support.capture import Capture
from tests.support.database import add_table, database_session
from tests.support.waiting import wait_until

MAX_CELLS = Settings.model_fields["max_cells_per_job"].default
"""The app's job cap (the browser suites run it with the default)."""

TABLE_NAME = "Secrets: LLM pitches"
COMPANIES = ["Acme Robotics", "Blue Harbor", "Cobalt Mining", "Delta Grid", "Ember Foods", "Fjord"]
WIDTHS = [180, 220]
PAGE_ROWS = 3
"""Rows 0-1 run with the right key from the page, row 2 with a refused key; the rest are the
REST API's."""
FINAL = {"completed", "failed", "canceled"}


@dataclass(frozen=True)
class LlmTable:
    id: int
    column_id: int
    row_ids: list[int]

    def cells(self, rows: range) -> list[dict[str, int]]:
        return [{"rowId": self.row_ids[r], "columnId": self.column_id} for r in rows]


def create_llm_table(database_url: str) -> LlmTable:
    with database_session(database_url, migrate=True) as session:
        table_id = add_table(
            session,
            name=TABLE_NAME,
            columns=[
                ColumnSpec("Company"),
                ColumnSpec(
                    "Pitch",
                    kind=ColumnKind.ENRICHMENT,
                    enricher="llm",
                    config={"prompt": "Pitch {Company}"},
                ),
            ],
            rows=([c] for c in COMPANIES),
        )
        column = session.exec(
            select(TableColumn).where(TableColumn.table_id == table_id, TableColumn.name == "Pitch")
        ).one()
        rows = session.exec(
            select(TableRow.id).where(TableRow.table_id == table_id).order_by(TableRow.position)
        ).all()
        assert column.id is not None
        return LlmTable(id=table_id, column_id=column.id, row_ids=[r for r in rows if r])


def run_llm_column_with_a_refused_key(
    page: Page, app_url: str, table: LlmTable, llm_api: FakeOpenAI, capture: Capture, label: str
) -> None:
    """Two cells answered, then one whose key the provider refuses and echoes back."""
    page.goto(f"{app_url}/tables/{table.id}")
    grid = open_grid(page, WIDTHS, name="Secrets")
    page.mouse.click(*grid.cell(1, 0))
    drag(page, grid.cell(1, 0), grid.cell(1, 1))
    expect(page.locator("#run-button")).to_have_text("Run 2 cells")
    answered = len(llm_api.requests)
    page.locator("#run-button").click()
    expect(page.locator("#job-status")).to_have_text("Enriched!")
    page.mouse.click(*grid.cell(1, 1))
    expect(page.locator("#inspector-value")).to_have_text(f"Echo: Pitch {COMPANIES[1]}")
    assert len(llm_api.requests) == answered + 2, "the LLM key was not used"

    right_key = llm_api.api_key
    llm_api.api_key = "sk-rotated-" + secrets.token_urlsafe(24)  # the app's key is now wrong
    try:
        page.mouse.click(*grid.cell(1, 2))
        expect(page.locator("#run-button")).to_have_text("Run 1 cell")
        page.locator("#run-button").click()
        expect(page.locator("#job-status")).to_have_text("Enriched! (1 failed)")
    finally:
        llm_api.api_key = right_key
    page.mouse.click(*grid.cell(1, 2))
    expect(page.locator("#inspector-status")).to_have_text("error")
    error = page.locator("#inspector-error")
    expect(error).to_contain_text("The LLM API rejected the API key (HTTP 401)")
    expect(error).to_contain_text("Incorrect API key provided: [redacted]")
    # The error text travelled over the websocket: the frames are where a leak would have been.
    assert any("[redacted]" in frame for frame in capture.frames_of(label + " #"))


def _wait_final(http: httpx.Client, job_id: int, headers: dict[str, str]) -> dict[str, Any]:
    """Poll the job through the API, as a client without the live feed does, until it ends."""
    seen: list[dict[str, Any]] = []

    def final_job() -> dict[str, Any] | None:
        response = http.get(f"/api/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        seen.append(response.json()["job"])
        return seen[-1] if seen[-1]["status"] in FINAL else None

    return wait_until(
        final_job,
        timeout=60,
        interval=0.2,
        message=f"job {job_id} to finish",
        found=lambda: seen[-1],
    )


@dataclass(frozen=True)
class ApiRun:
    run_id: str | None
    public_access_token: str | None


def exercise_the_api(api_url: str, api_key: str, table: LlmTable, capture: Capture) -> ApiRun:
    """Refusals, errors and one job on rows 3+, through the REST API; every response recorded."""
    key = {"Authorization": f"Bearer {api_key}"}
    wrong = "enr-" + secrets.token_urlsafe(32)
    cells = table.cells(range(PAGE_ROWS, len(table.row_ids)))
    enrich = f"/api/tables/{table.id}/enrich"
    recorded = capture.counts().responses
    with httpx.Client(base_url=api_url, event_hooks=capture.httpx_hooks(), timeout=30) as http:
        refusals = [
            http.get("/api/openapi.json"),
            http.get("/api/openapi.json", headers={"Authorization": f"Bearer {wrong}"}),
            http.post(enrich, json={"cells": cells}, headers={"Authorization": api_key}),
        ]
        for response in refusals:
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "unauthorized"
            assert wrong not in response.text
        errors = {
            400: http.post(enrich, content=b"{not json", headers=key),
            404: http.post("/api/tables/987654/enrich", json={"cells": cells}, headers=key),
            413: http.post(enrich, content=b" " * (max_body_bytes(MAX_CELLS) + 1), headers=key),
            415: http.post(enrich, content=b"cells", headers={**key, "content-type": "text/plain"}),
            405: http.delete("/api/jobs/1", headers=key),
        }
        for status, response in errors.items():
            assert response.status_code == status, response.text
            assert response.json()["error"]["message"]
        assert http.get("/api/openapi.json", headers=key).status_code == 200

        idempotency = {**key, "Idempotency-Key": str(uuid.uuid4())}
        started = http.post(enrich, json={"cells": cells}, headers=idempotency)
        assert started.status_code == 202, started.text
        body = started.json()
        job = _wait_final(http, body["job"]["id"], key)
        assert job["status"] == "completed" and job["done"] == len(cells), job
        replay = http.post(enrich, json={"cells": cells}, headers=idempotency)
        assert replay.status_code == 202 and replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["job"]["id"] == body["job"]["id"]
        canceled = http.post(f"/api/jobs/{body['job']['id']}/cancel", headers=key)
        assert canceled.status_code == 200 and canceled.json()["job"]["status"] == "completed"
    # Every response was recorded: the ones above, the openapi document, the job's polls.
    assert capture.counts().responses - recorded >= len(refusals) + len(errors) + 5
    return ApiRun(run_id=body["runId"], public_access_token=body["publicAccessToken"])


def run_a_column_with_a_saved_credential(
    page: Page, app_url: str, database_url: str, json_api: str, token: str, capture: Capture
) -> None:
    """An ``http_json`` column saved with a bearer token runs from the page; the token is
    sealed in the database file, and the scan at session end looks for it everywhere else."""
    from enrichment_app.services.credentials import secret_box
    from enrichment_app.settings import Settings

    box = secret_box(Settings(_env_file=None, database_url=database_url))
    with database_session(database_url) as session:
        table = create_table(
            session=session,
            name="Secrets: saved credential",
            columns=[
                ColumnSpec("Path"),
                ColumnSpec(
                    "Answer",
                    kind=ColumnKind.ENRICHMENT,
                    enricher="http_json",
                    config={
                        "url": json_api + "/warm?row={Path}",
                        "path": "ok",
                        "auth": {"type": "bearer", "token": token},
                    },
                ),
            ],
            rows=[["1"]],
            max_cell_chars=1000,
            box=box,
        )
        session.commit()
        table_id = table.id
    page.goto(f"{app_url}/tables/{table_id}")
    grid = open_grid(page, WIDTHS, name="Secrets: saved")
    page.mouse.click(*grid.cell(1, 0))
    expect(page.locator("#run-button")).to_have_text("Run 1 cell")
    page.locator("#run-button").click()
    expect(page.locator("#job-status")).to_have_text("Enriched!")
    page.mouse.click(*grid.cell(1, 0))
    expect(page.locator("#inspector-value")).to_have_text("true")
    assert capture.counts().frames > 0
    path = database_url.removeprefix("sqlite:///")
    import sqlite3
    from pathlib import Path as _Path

    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    stored = b"".join(p.read_bytes() for p in _Path(path).parent.glob(_Path(path).name + "*"))
    assert token.encode() not in stored, "the column's token is in the database file"
