"""The tables page's state handlers, driven through Reflex's event processor."""

from __future__ import annotations

import json

from enrichment_app.state.add_column import AddColumnState
from enrichment_app.state.table import TableState
from enrichment_app.state.tables import TablesState
from tests.state.conftest import Tab


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


async def test_importing_without_a_file_asks_for_one(tab: Tab) -> None:
    await tab.send(TablesState, "load", path="/tables")
    await tab.send(TablesState, "import_csv", path="/tables", files=[])
    state = await tab.state(TablesState)
    assert state.message == "Choose a CSV file first."
    assert [t["name"] for t in state.tables] == ["Demo: companies"]


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
