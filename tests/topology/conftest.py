"""The production topology: PostgreSQL, Redis as Reflex's state manager, 3 backend workers.

Started once for the session, as the current user, and stopped at the end:

* a throwaway PostgreSQL cluster and a throwaway Redis server from Debian's packages
  (tests/support/servers.py; Redis listens on a Unix socket only, PostgreSQL on a free loopback port);
* the fake Trigger.dev server, whose task runs the real worker (``python -m
  enrichment_app.worker``) against the same PostgreSQL database;
* the app as deployed: ``reflex run --env prod`` (frontend built once and served by the
  backend on one free loopback port) with ``GRANIAN_WORKERS=3`` backend worker processes and
  ``REFLEX_REDIS_URL`` (Redis state manager), in Trigger.dev mode. Its build folder is
  ``tests/topology/.web/`` (git-ignored); its log goes to ``test-artifacts/topology/app.log``.

Where a tab lives: each websocket connection is served by one worker process. For a socket
client of the test the server side of its TCP connection names the worker (psutil). For a
browser tab, its client token leads to Reflex's socket record in Redis, which names the
worker's instance id; ``Topology.probe_workers`` learns which pid each instance id is by
connecting socket clients until every worker has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import pickle
import secrets
import threading
import types
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest
import redis
import sqlalchemy as sa
from cryptography.fernet import Fernet

from tests.e2e.conftest import (  # noqa: F401 (browser and gated_api are fixtures used here)
    GatedApi,
    browser,
    gated_api,
)
from tests.fakes.trigger import FakeTrigger, RecordedRequest, WorkerTask
from tests.support.accounts import SignedIn, sign_in_over_http
from tests.support.live_server import allowance
from tests.support.paths import ARTIFACTS, ROOT
from tests.support.prod_app import ProdApp
from tests.support.reflex_socket import ReflexSocket
from tests.support.servers import ServerUnavailable, postgres_cluster, redis_server
from tests.support.waiting import await_until

WORKERS = 3
"""Backend worker processes (granian), each with its own RunHub."""
WORK = ROOT / "tests" / "topology" / ".web"
"""The app's build and state folders (git-ignored: ``.web/``)."""
OUT = ARTIFACTS / "topology"
"""The app's log and the screenshots, kept for CI."""
TABLE = 1
ROWS = 25
SOCKET_RECORD = "token_manager_socket_record_"
"""Reflex's Redis key prefix for ``SocketRecord(instance_id, sid)`` by client token."""
T = TypeVar("T")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database in a throwaway PostgreSQL cluster: the app's ``DATABASE_URL``."""
    try:
        with postgres_cluster() as admin_url:
            admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(sa.text('CREATE DATABASE "enrichment"'))
            admin.dispose()
            yield admin_url.rsplit("/", 1)[0] + "/enrichment"
    except ServerUnavailable as exc:
        pytest.fail(f"Could not start PostgreSQL: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway Redis server (Unix socket, no persistence): the app's ``REFLEX_REDIS_URL``."""
    try:
        with redis_server() as url:
            yield url
    except ServerUnavailable as exc:
        pytest.fail(f"Could not start Redis: {exc}", pytrace=False)


class ThreadGate:
    """Holds the fake's task in the queue until the test, in another thread, opens it.

    (An ``asyncio.Event`` set from another thread may not wake the fake's loop; a thread
    blocked on a ``threading.Event`` would keep the process from exiting if never opened.)
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open = False

    async def wait(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._open:  # set() after this line reaches the loop through call_soon
            await self._event.wait()

    def set(self) -> None:
        self._open = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._event.set)


@pytest.fixture(scope="session")
def shared_env(gated_api: GatedApi) -> dict[str, str]:  # noqa: F811
    """What the app and the Trigger.dev worker share, as a deployment sets both: the key that
    encrypts saved credentials, and the loopback API the enrichers may reach."""
    return {
        "APP_SECRET_KEY": Fernet.generate_key().decode(),
        "ENRICHER_ALLOWED_NETWORKS": allowance(gated_api.url),
    }


@pytest.fixture(scope="session")
def worker_task(database_url: str, shared_env: dict[str, str]) -> WorkerTask:
    return WorkerTask(database_url=database_url, queue_delay=0.5, env=shared_env)


@pytest.fixture(scope="session")
def fake_trigger(worker_task: WorkerTask) -> Iterator[FakeTrigger]:
    with FakeTrigger(live_poll_timeout=5.0, stream_timeout=5.0, executor=worker_task) as fake:
        yield fake


@dataclass
class PeerPids:
    """Which process owns each client port of the connections to a server: sampled as they live.

    A connection's ports exist only while it is open, so a thread samples the given processes'
    connections to ``server_port`` every ``interval`` seconds and remembers every client port
    it saw, with its pid (ports are not reused by another process within a test run).
    """

    pids: list[int]
    server_port: int
    interval: float = 0.1
    seen: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                for conn in psutil.Process(pid).net_connections(kind="tcp"):
                    if conn.raddr and conn.raddr.port == self.server_port:
                        self.seen[conn.laddr.port] = pid

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeerPids:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="peer-pids", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def pid_of(self, request: RecordedRequest) -> int | None:
        if request.peer is None:
            return None
        self.sample()
        return self.seen.get(int(request.peer.rpartition(":")[2]))


class _SocketRecordUnpickler(pickle.Unpickler):
    """Reads Reflex's pickled ``SocketRecord`` as a namespace, without importing Reflex."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("reflex.utils.token_manager", "SocketRecord"):
            return types.SimpleNamespace
        if module == "copyreg":
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected class in a socket record: {module}.{name}")


@dataclass
class Topology:
    app: ProdApp
    fake: FakeTrigger
    worker_task: WorkerTask
    database_url: str
    redis: redis.Redis
    secrets: dict[str, str]
    instance_pids: dict[str, int] = field(default_factory=dict)
    """Reflex's per-process instance id → the worker's pid (``probe_workers``)."""
    owner: SignedIn | None = None
    """The owner, set up through the real flow once the app is up: every tab signs in as them."""

    @property
    def cookie(self) -> str:
        assert self.owner is not None
        return self.owner.cookie

    @property
    def url(self) -> str:
        return self.app.url

    @property
    def pids(self) -> list[int]:
        return sorted(p.pid for p in self.app.backend_processes())

    def pid_of_client_port(self, port: int) -> int | None:
        """The worker serving the connection whose client side is ``port`` (None: not found)."""
        for pid in self.pids:
            for conn in psutil.Process(pid).net_connections(kind="tcp"):
                if conn.laddr.port == self.app.port and conn.raddr and conn.raddr.port == port:
                    return pid
        return None

    def instance_of_token(self, token: str) -> str | None:
        """The instance id of the worker holding the tab's websocket, from Reflex's record."""
        raw = self.redis.get(SOCKET_RECORD + token)
        if raw is None:
            return None
        record = _SocketRecordUnpickler(io.BytesIO(raw)).load()
        return str(record.instance_id)

    def pid_of_token(self, token: str) -> int | None:
        instance = self.instance_of_token(token)
        return None if instance is None else self.instance_pids.get(instance)

    def probe_workers(self, most: int = 40) -> None:
        """Learn every worker's instance id: connect socket clients until each pid has one."""
        pids = set(self.pids)

        async def probe() -> None:
            clients: list[ReflexSocket] = []
            try:
                while set(self.instance_pids.values()) != pids and len(clients) < most:
                    client = ReflexSocket("127.0.0.1", self.app.port, path="/tables")
                    clients.append(client)
                    await client.connect()
                    port = client.local_port
                    assert port is not None
                    instance = await await_until(
                        partial(self.instance_of_token, client.token),
                        timeout=20,
                        message=f"Reflex's socket record of token {client.token} in Redis",
                    )
                    pid = await await_until(
                        partial(self.pid_of_client_port, port),
                        timeout=20,
                        message=f"the backend worker holding client port {port}",
                    )
                    assert self.instance_pids.setdefault(instance, pid) == pid
            finally:
                for client in clients:
                    await client.close()

        run_async(probe())
        assert set(self.instance_pids.values()) == pids, (
            f"{most} connections did not reach every worker: {self.instance_pids} of {pids}"
        )
        assert len(self.instance_pids) == len(pids)

    def start_job(self, cells: list[dict[str, int]]) -> dict[str, Any]:
        """``POST /api/tables/1/enrich``, as an API client would."""
        response = httpx.post(
            f"{self.url}/api/tables/{TABLE}/enrich",
            json={"cells": cells},
            headers={"authorization": f"Bearer {self.secrets['ENRICHMENT_API_KEY']}"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def subscriptions(self, run_id: str, pids: PeerPids) -> dict[str, list[int | None]]:
        """The run's upstream subscriptions at the fake, each attributed to a worker pid.

        ``shapes``: new realtime shape subscriptions (``offset=-1``; later long-polls continue
        one); ``streams``: reads of the run's ``cells`` stream (each read is one SSE stream).
        """
        runs = [r for r in self.fake.requests_of("realtime_run") if r.run_id == run_id]
        streams = [r for r in self.fake.requests_of("stream_read") if r.run_id == run_id]
        return {
            "shapes": [pids.pid_of(r) for r in runs if "offset=-1" in r.query],
            "streams": [pids.pid_of(r) for r in streams],
        }


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion in a thread of its own.

    Playwright's sync API keeps an event loop running in the main thread once the browser
    has started, so neither ``asyncio.run`` nor an async test can run there after it.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="run-async") as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def topology(
    database_url: str,
    redis_url: str,
    fake_trigger: FakeTrigger,
    worker_task: WorkerTask,
    shared_env: dict[str, str],
) -> Iterator[Topology]:
    app_secrets = {
        "TRIGGER_SECRET_KEY": fake_trigger.secret_key,
        "ENRICHMENT_API_KEY": "enr-" + secrets.token_urlsafe(32),
        "LLM_API_KEY": "sk-topology-" + secrets.token_urlsafe(32),
        "APP_SECRET_KEY": shared_env["APP_SECRET_KEY"],
    }
    app = ProdApp(
        work=WORK,
        log_path=OUT / "app.log",
        env={
            "DATABASE_URL": database_url,
            "SEED_DEMO": "true",
            "TRIGGER_SECRET_KEY": app_secrets["TRIGGER_SECRET_KEY"],
            "TRIGGER_API_URL": fake_trigger.url,
            "ENRICHMENT_API_KEY": app_secrets["ENRICHMENT_API_KEY"],
            "LLM_API_KEY": app_secrets["LLM_API_KEY"],
            "REFLEX_REDIS_URL": redis_url,
            "GRANIAN_WORKERS": str(WORKERS),
            # Table changes are pushed between the workers (Redis): the idle table's
            # fallback poll is an hour, so nothing here can lean on it.
            "TABLE_REFRESH_SECONDS": "3600",
            **shared_env,
        },
        ready_path=f"/tables/{TABLE}",
    )
    client = redis.Redis.from_url(redis_url)
    for old in OUT.glob("*.png"):  # screenshots of an earlier session
        old.unlink()
    with app:
        topology = Topology(
            app=app,
            fake=fake_trigger,
            worker_task=worker_task,
            database_url=database_url,
            redis=client,
            secrets=app_secrets,
        )
        assert len(topology.pids) == WORKERS, [p.cmdline() for p in app.backend_processes()]
        topology.probe_workers()
        topology.owner = asyncio.run(sign_in_over_http(topology.url, set_up=True))
        yield topology
    client.close()


@pytest.fixture(scope="session")
def lookup_column(topology: Topology, gated_api: GatedApi) -> int:  # noqa: F811
    """An ``Industry`` column whose cells finish only when the test releases them."""
    return gated_api.add_lookup_column(topology.database_url, table_id=TABLE)


def read_table(database_url: str, column_id: int) -> dict[str, Any]:
    """What PostgreSQL holds for the Industry column and its latest job."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            cells = connection.execute(
                sa.text(
                    "SELECT company.value, cell.value, cell.status FROM cell"
                    " JOIN table_column c ON c.table_id = cell.table_id AND c.name = 'Company'"
                    " JOIN cell company ON company.row_id = cell.row_id"
                    "  AND company.column_id = c.id"
                    " WHERE cell.column_id = :column ORDER BY cell.row_id"
                ),
                {"column": column_id},
            ).all()
            job = connection.execute(
                sa.text(
                    "SELECT id, status, backend, run_id, total, done, failed FROM enrichment_job"
                    " WHERE table_id = :table ORDER BY id DESC LIMIT 1"
                ),
                {"table": TABLE},
            ).one()
            open_tasks = connection.execute(
                sa.text(
                    "SELECT count(*) FROM enrichment_task WHERE job_id = :job"
                    " AND status NOT IN ('done', 'error', 'canceled')"
                ),
                {"job": job.id},
            ).scalar_one()
    finally:
        engine.dispose()
    return {"cells": [tuple(c) for c in cells], "job": job._asdict(), "open_tasks": open_tasks}


def log_text(topology: Topology) -> str:
    return Path(topology.app.log_path).read_text(errors="replace")
