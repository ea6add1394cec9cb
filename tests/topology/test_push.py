"""Table-wide changes pushed between backend workers of the production topology.

Two socket clients (Reflex's own protocol, tests/support/reflex_socket.py) open one table,
served by two different backend workers. An edit sent through the first must reach the
second's page over the table change bus (Redis pub/sub here). The app's fallback poll
(``TABLE_REFRESH_SECONDS``) is an hour in this suite (conftest), so only a push arrives in time.
"""

from __future__ import annotations

import uuid
from functools import partial

import pytest

from enrichment_app.services.tables import ColumnSpec
from tests.support.database import add_table, database_session
from tests.support.reflex_socket import ReflexSocket, state_name
from tests.support.waiting import await_until
from tests.topology.conftest import Topology, run_async

pytestmark = pytest.mark.postgres

TABLE_STATE = state_name("enrichment_app.state.table", "TableState")
JOB_STATE = state_name("enrichment_app.state.table", "TableJobState", parent=TABLE_STATE)
WITHIN = 20.0
MOST_CLIENTS = 40


async def edit_through_one_worker_and_watch_another(topology: Topology, table_id: int) -> None:
    clients: list[ReflexSocket] = []
    by_worker: dict[int, ReflexSocket] = {}
    try:
        while len(by_worker) < 2:
            assert len(clients) < MOST_CLIENTS, f"all {len(clients)} clients on one worker"
            client = ReflexSocket(
                "127.0.0.1",
                topology.app.port,
                path=f"/tables/{table_id}",
                headers={"Cookie": topology.cookie},
            )
            clients.append(client)
            await client.connect()
            port = client.local_port
            assert port is not None
            pid = await await_until(
                partial(topology.pid_of_client_port, port),
                timeout=WITHIN,
                message=f"the worker holding client port {port}",
            )
            by_worker.setdefault(pid, client)
        (editor_pid, editor), (watcher_pid, watcher) = list(by_worker.items())[:2]
        for client in (editor, watcher):
            await client.until(
                lambda client=client: len(client.vars(TABLE_STATE).get("window_cells") or []) == 3,
                within=WITHIN,
                message="the table loaded",
            )
        assert watcher.vars(JOB_STATE)["mode_label"] == "Trigger.dev · live"
        value = f"Edited through worker {editor_pid} ({uuid.uuid4().hex[:6]})"
        editor.send_event(
            f"{TABLE_STATE}.edit_cell", {"pos": [0, 1], "new_cell": {"kind": "text", "data": value}}
        )
        await watcher.until(
            lambda: watcher.vars(TABLE_STATE)["window_cells"][1][0]["v"] == value,
            within=WITHIN,
            message=f"worker {watcher_pid}'s page to show the edit made through {editor_pid}",
        )
    finally:
        for client in clients:
            await client.close()


def test_an_edit_through_one_worker_shows_in_a_page_served_by_another(
    topology: Topology,
) -> None:
    with database_session(topology.database_url) as session:
        table_id = add_table(
            session,
            name="Pushed",
            columns=[ColumnSpec(name="Company")],
            rows=[["Acme"], ["Globex"], ["Initech"]],
        )
    run_async(edit_through_one_worker_and_watch_another(topology, table_id))
