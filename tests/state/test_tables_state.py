"""The tables page's state handlers, driven through Reflex's event processor."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from pathlib import Path

import pytest
import reflex as rx
from reflex_components_core.core._upload import UploadChunk

from enrichment_app.state.add_column import AddColumnState
from enrichment_app.state.csv_files import next_chunk
from enrichment_app.state.table import TableState
from enrichment_app.state.tables import TablesState
from tests.state.conftest import Tab
from tests.support.waiting import await_until


async def test_load_lists_the_seeded_demo_table(tab: Tab) -> None:
    await tab.send(TablesState, "load", path="/tables")
    state = await tab.state(TablesState)
    assert [t["name"] for t in state.tables] == ["Demo: companies"]
    assert state.tables[0]["rows"] == 25 and state.tables[0]["columns"] == 5


async def test_deleting_a_table_removes_it_and_says_so(tab: Tab) -> None:
    await tab.send(TablesState, "load", path="/tables")
    table_id = (await tab.state(TablesState)).tables[0]["id"]
    await tab.send(TablesState, "delete_table", path="/tables", table_id=table_id)
    state = await tab.state(TablesState)
    assert state.tables == [] and state.notice == "Table deleted." and state.message == ""


async def test_add_column_refuses_bad_json_then_adds_a_valid_column(tab: Tab) -> None:
    await tab.send(TableState, "load", path="/tables/1")
    await tab.send(AddColumnState, "open_changed", path="/tables/1", value=True)
    opened = await tab.state(AddColumnState)
    assert opened.enricher == "template" and json.loads(opened.config_text)  # a valid example

    await tab.send(AddColumnState, "name_changed", path="/tables/1", value="Greeting")
    await tab.send(
        AddColumnState, "config_changed", path="/tables/1", value='{"template": "Hi {Nope}"'
    )
    await tab.send(AddColumnState, "submit", path="/tables/1")
    assert "not valid JSON" in (await tab.state(AddColumnState)).error

    await tab.send(
        AddColumnState, "config_changed", path="/tables/1", value='{"template": "Hi {Nope}"}'
    )
    await tab.send(AddColumnState, "submit", path="/tables/1")
    refused = await tab.state(AddColumnState)
    assert "'Nope'" in refused.error and refused.open

    await tab.send(
        AddColumnState, "config_changed", path="/tables/1", value='{"template": "Hi {Company}"}'
    )
    await tab.send(AddColumnState, "submit", path="/tables/1")
    added = await tab.state(AddColumnState)
    assert added.error == "" and not added.open
    table = await tab.state(TableState)
    assert [c["title"] for c in table.grid_columns][-1] == "Greeting ✦"
    assert table.table_meta == "25 rows · 6 columns"


async def test_add_column_refuses_config_json_it_cannot_read(tab: Tab) -> None:
    """Found by tests/fuzz: deep nesting and over-long numbers raised out of the handler."""
    await tab.send(TableState, "load", path="/tables/1")
    await tab.send(AddColumnState, "open_changed", path="/tables/1", value=True)
    await tab.send(AddColumnState, "name_changed", path="/tables/1", value="Odd")
    for text in ["[" * 10_000, '{"template": ' + "9" * 5000 + "}", '{"template": NaN}']:
        await tab.send(AddColumnState, "config_changed", path="/tables/1", value=text)
        await tab.send(AddColumnState, "submit", path="/tables/1")
        refused = await tab.state(AddColumnState)
        assert "not valid JSON" in refused.error and refused.open
    table = await tab.state(TableState)
    assert table.table_meta == "25 rows · 5 columns"


async def test_add_column_refuses_a_config_over_max_config_bytes(tab: Tab) -> None:
    await tab.send(TableState, "load", path="/tables/1")
    await tab.send(AddColumnState, "open_changed", path="/tables/1", value=True)
    shown = (await tab.state(AddColumnState)).config_text
    text = '{"template": "' + "x" * 20_000 + '"}'
    await tab.send(AddColumnState, "config_changed", path="/tables/1", value=text)
    refused = await tab.state(AddColumnState)
    assert "longer than 16,384 characters (MAX_CONFIG_BYTES)" in refused.error
    assert refused.config_text == shown  # the form keeps what it had


async def upload(chunks: rx.UploadChunkIterator, parts: list[bytes]) -> None:
    """What Reflex's upload route does with a file's parts: push them, then finish."""
    offset = 0
    for part in parts:
        chunk = UploadChunk(
            filename="people.csv", offset=offset, content_type="text/csv", data=part
        )
        await chunks.push(chunk)
        offset += len(part)
    await chunks.finish()


async def table_names(tab: Tab) -> list[str]:
    await tab.send(TablesState, "load", path="/tables")
    return [t["name"] for t in (await tab.state(TablesState)).tables]


async def test_importing_without_a_file_asks_for_one(tab: Tab) -> None:
    chunks = rx.UploadChunkIterator()
    await chunks.finish()
    await tab.send(TablesState, "import_csv", path="/tables", chunks=chunks)
    state = await tab.state(TablesState)
    assert state.message == "Choose a CSV file first." and not state.importing
    assert await table_names(tab) == ["Demo: companies"]


async def test_an_upload_is_imported_as_it_arrives(tab: Tab) -> None:
    data = b"Name,City\n" + b"".join(f"n{i},c{i}\n".encode() for i in range(3000))
    chunks = rx.UploadChunkIterator(maxsize=2)
    parts = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    sending = asyncio.create_task(upload(chunks, parts))
    await tab.send(TablesState, "import_csv", path="/tables", chunks=chunks)
    await sending
    state = await tab.state(TablesState)
    assert (state.message, state.notice) == ("", "Imported 'people'.")
    assert not state.importing
    assert await table_names(tab) == ["Demo: companies", "people"]
    assert (await tab.state(TablesState)).tables[1]["rows"] == 3000


async def test_a_refused_upload_says_why_and_stores_nothing(tab: Tab) -> None:
    chunks = rx.UploadChunkIterator()
    sending = asyncio.create_task(upload(chunks, [b"a,b\n1,2\n", b"3,4,5\n"]))
    await tab.send(TablesState, "import_csv", path="/tables", chunks=chunks)
    await sending
    state = await tab.state(TablesState)
    assert state.message == (
        "Could not import people.csv: Row 3 has 3 values but the header has 2 columns."
    )
    assert await table_names(tab) == ["Demo: companies"]


async def test_two_files_in_one_upload_are_refused(tab: Tab) -> None:
    chunks = rx.UploadChunkIterator()

    async def two_files() -> None:
        for name in ("a.csv", "b.csv"):
            await chunks.push(UploadChunk(filename=name, offset=0, content_type="", data=b"x\n1\n"))
        await chunks.finish()

    sending = asyncio.create_task(two_files())
    importing = asyncio.create_task(
        tab.send(TablesState, "import_csv", path="/tables", chunks=chunks)
    )
    chunks.set_consumer_task(importing)
    await importing
    with contextlib.suppress(RuntimeError):  # the route's push after the handler ended
        await sending
    state = await tab.state(TablesState)
    assert state.message == "Could not import a.csv: Choose one CSV file at a time."
    assert await table_names(tab) == ["Demo: companies"]


async def test_cancel_stops_an_import_half_way_and_stores_nothing(tab: Tab) -> None:
    row = b"someone,somewhere\n"
    chunks = rx.UploadChunkIterator(maxsize=2)
    canceled = asyncio.Event()

    async def slow_upload() -> None:
        await chunks.push(UploadChunk(filename="big.csv", offset=0, content_type="", data=b"a,b\n"))
        for n in range(1, 10_000):
            if n == 100:
                await canceled.wait()  # the user pressed Cancel with the file half sent
            try:
                await chunks.push(
                    UploadChunk(filename="big.csv", offset=n, content_type="", data=row * 50)
                )
            except RuntimeError:  # the import stopped reading, as Reflex's route sees it
                return
        await chunks.finish()

    sending = asyncio.create_task(slow_upload())
    importing = asyncio.create_task(
        tab.send(TablesState, "import_csv", path="/tables", chunks=chunks)
    )
    chunks.set_consumer_task(importing)  # as the upload route does: a push after it ends fails

    async def receiving() -> bool:
        state = await tab.state(TablesState)
        return bool(state.importing and state.import_bytes > 0)

    await await_until(receiving, timeout=30, message="the import to show the bytes received")
    shown = await tab.state(TablesState)
    assert shown.import_file == "big.csv"
    assert shown.import_text.startswith("Receiving big.csv: 0.")
    await tab.send(TablesState, "cancel_import", path="/tables")
    canceled.set()
    await importing
    await sending
    state = await tab.state(TablesState)
    assert (state.notice, state.message) == ("Import canceled; nothing was stored.", "")
    assert not state.importing
    assert await table_names(tab) == ["Demo: companies"]


async def test_a_credential_leaves_the_form_s_public_state_once_submitted(tab: Tab) -> None:
    """Refused first (templated host): the form shows ••• and the error does not carry the
    token; fixed with ••• still in place: the saved column holds the typed token, sealed."""
    from sqlmodel import select

    from enrichment_app.db.models import TableColumn
    from enrichment_app.runtime import get_runtime
    from enrichment_app.services import credentials

    token = "tok-" + "s3cr3t" * 5
    config = {
        "url": "https://{Website}/v1",
        "path": "",
        "auth": {"type": "bearer", "token": token},
    }
    path = "/tables/1"
    await tab.send(TableState, "load", path=path)
    await tab.send(AddColumnState, "open_changed", path=path, value=True)
    await tab.send(AddColumnState, "choose_enricher", path=path, value="http_json")
    await tab.send(AddColumnState, "name_changed", path=path, value="Lookup")
    await tab.send(AddColumnState, "config_changed", path=path, value=json.dumps(config))
    sent_before = len(tab.namespace.updates)
    await tab.send(AddColumnState, "submit", path=path)
    refused = await tab.state(AddColumnState)
    assert "must spell out its scheme, host and port" in refused.error
    shown = json.loads(refused.config_text)
    assert shown["auth"]["token"] == "•••"
    assert token not in repr(tab.namespace.updates[sent_before:])

    shown["url"] = "https://api.example.com/v1?site={Website}"
    await tab.send(AddColumnState, "config_changed", path=path, value=json.dumps(shown))
    await tab.send(AddColumnState, "submit", path=path)
    added = await tab.state(AddColumnState)
    assert added.error == "" and not added.open and token not in added.config_text
    assert token not in repr(tab.namespace.updates[sent_before:])
    runtime = get_runtime()
    with runtime.open_session() as session:
        column = session.exec(select(TableColumn).where(TableColumn.name == "Lookup")).one()
    assert token not in json.dumps(column.config)
    assert credentials.open_config(column.config, runtime.secret_box)["auth"]["token"] == token


async def test_an_export_writes_the_file_and_the_browser_downloads_it(
    tab: Tab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLEX_UPLOADED_FILES_DIR", str(tmp_path / "uploads"))
    await tab.send(TablesState, "load", path="/tables")
    sent_before = len(tab.namespace.updates)
    await tab.send(
        TablesState, "export_csv", path="/tables", table_id=1, name="Demo: companies", raw=False
    )
    state = await tab.state(TablesState)
    assert (state.exporting, state.message) == (0, "")
    assert state.export_rows == 25
    downloads = [
        event
        for update in tab.namespace.updates[sent_before:]
        for event in update.events
        if event.name == "_download"
    ]
    assert len(downloads) == 1
    assert downloads[0].payload["filename"] == "Demo_ companies.csv"
    (written,) = (tmp_path / "uploads" / "exports").glob("*/Demo_ companies.csv")
    assert written.parent.name in str(downloads[0].payload["url"])
    rows = list(csv.reader(io.StringIO(written.read_text(encoding="utf-8"), newline="")))
    assert rows[0][0] == "Company" and len(rows) == 26


async def test_exporting_a_missing_table_says_so(
    tab: Tab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLEX_UPLOADED_FILES_DIR", str(tmp_path / "uploads"))
    await tab.send(TablesState, "load", path="/tables")  # the page's own load comes first
    await tab.send(TablesState, "export_csv", path="/tables", table_id=99, name="Gone", raw=True)
    state = await tab.state(TablesState)
    assert (state.exporting, state.access_message) == (0, "Table 99 does not exist.")
    assert not list((tmp_path / "uploads" / "exports").glob("*/*"))


async def test_an_upload_that_stops_arriving_is_given_up() -> None:
    """The import waits ``UPLOAD_STALL_SECONDS`` for each part of an upload (here 0.2 s):
    a silent upload raises, an ended one ends."""
    silent = rx.UploadChunkIterator()
    with pytest.raises(TimeoutError):
        await next_chunk(silent, 0.2)
    ended = rx.UploadChunkIterator()
    await ended.finish()
    assert await next_chunk(ended, 0.2) is None
