"""The process-wide objects the app shares: engine, sessions, HTTP clients and job runner.

Built lazily on first use and torn down by ``lifespan``. Kept out of Reflex state, because
state must be picklable and per-tab, and these are neither.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

import httpx
import sqlalchemy as sa

from enrichment_app.bus import TableChangeBus, bus_for, publishing
from enrichment_app.db.engine import SessionFactory, create_db_engine, session_factory
from enrichment_app.db.migrate import startup_lock, upgrade_database
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import JobBackend, utcnow
from enrichment_app.egress import guarded_client, provider_client
from enrichment_app.keyring import SecretBox
from enrichment_app.live.hub import RunHub
from enrichment_app.live.tables import TableHub
from enrichment_app.oidc import OidcClient
from enrichment_app.rate_limits import RateLimits
from enrichment_app.runner.local import LocalRunner
from enrichment_app.runner.trigger import TriggerRunner
from enrichment_app.services.credentials import seal_plaintext_credentials, secret_box
from enrichment_app.services.demo import seed_demo
from enrichment_app.services.enrichment import JobRunner
from enrichment_app.services.sessions import SessionPolicy
from enrichment_app.settings import Settings, get_settings
from enrichment_app.trigger import TriggerClient

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    _http: httpx.AsyncClient | None = field(default=None, init=False)
    _enricher_http: httpx.AsyncClient | None = field(default=None, init=False)
    _runner: LocalRunner | None = field(default=None, init=False)
    _trigger: TriggerRunner | None = field(default=None, init=False)
    _hub: RunHub | None = field(default=None, init=False)
    _oidc: OidcClient | None = field(default=None, init=False)
    _tables: TableHub | None = field(default=None, init=False)
    _settling: asyncio.Task[list[int]] | None = field(default=None, init=False)
    _sweeping: asyncio.Task[None] | None = field(default=None, init=False)

    @cached_property
    def engine(self) -> sa.Engine:
        engine = create_db_engine(self.settings.database_url)
        upgrade_database(engine)
        with startup_lock(engine), unit_of_work(session_factory(engine)) as session:
            if self.settings.seed_demo and seed_demo(
                session, max_cell_chars=self.settings.max_cell_chars
            ):
                logger.info("seeded the demo table")
            sealed = seal_plaintext_credentials(session=session, box=self.secret_box)
            if sealed:
                logger.info("encrypted the credentials of %d column(s) saved in plain text", sealed)
        return engine

    @cached_property
    def bus(self) -> TableChangeBus:
        """The table change bus (in-process, PostgreSQL or Redis; see ``enrichment_app.bus``)."""
        return bus_for(self.settings)

    @cached_property
    def secret_box(self) -> SecretBox:
        """Encrypts the credentials saved in column configs (``APP_SECRET_KEY``)."""
        return secret_box(self.settings)

    @cached_property
    def rate_limits(self) -> RateLimits:
        """API calls and job starts per client (``API_RATE_LIMIT``, ``JOB_START_RATE_LIMIT``)."""
        return RateLimits(
            api=self.settings.api_rate_limit, job_start=self.settings.job_start_rate_limit
        )

    @cached_property
    def open_session(self) -> SessionFactory:
        """Sessions whose committed writes are published on the table change bus."""
        return publishing(session_factory(self.engine), self.bus.publish)

    @cached_property
    def session_policy(self) -> SessionPolicy:
        """How long a signed-in browser stays signed in (idle, and at most)."""
        return SessionPolicy(
            idle=timedelta(hours=self.settings.session_idle_hours),
            max_age=timedelta(days=self.settings.session_max_days),
        )

    @property
    def oidc(self) -> OidcClient | None:
        """The single sign-on client, when ``OIDC_ISSUER`` and ``OIDC_CLIENT_ID`` are set."""
        settings = self.settings
        if not settings.oidc_enabled:
            return None
        if self._oidc is None or self._oidc.http is not self.http:
            assert settings.oidc_issuer is not None and settings.oidc_client_id is not None
            secret = settings.oidc_client_secret
            self._oidc = OidcClient(
                http=self.http,
                issuer=settings.oidc_issuer,
                client_id=settings.oidc_client_id,
                client_secret=secret.get_secret_value() if secret is not None else None,
                scopes=settings.oidc_scopes,
            )
        return self._oidc

    @property
    def http(self) -> httpx.AsyncClient:
        """The client for base URLs from settings (Trigger.dev, the LLM API): not guarded."""
        if self._http is None or self._http.is_closed:
            self._http = provider_client()
        return self._http

    @property
    def enricher_http(self) -> httpx.AsyncClient:
        """The enrichers' client, behind the egress guard; enrichers follow redirects themselves."""
        if self._enricher_http is None or self._enricher_http.is_closed:
            self._enricher_http = guarded_client(self.settings.enricher_allowed)
        return self._enricher_http

    @property
    def runner(self) -> LocalRunner:
        if self._runner is None:
            self._runner = LocalRunner(
                session_factory=self.open_session,
                http=self.enricher_http,
                provider_http=self.http,
                settings=self.settings,
            )
        return self._runner

    @property
    def backend(self) -> JobBackend:
        """Where new jobs run: Trigger.dev when a secret key is configured, else in-process."""
        return JobBackend.TRIGGER if self.settings.trigger_enabled else JobBackend.LOCAL

    @property
    def trigger(self) -> TriggerRunner | None:
        key = self.settings.trigger_secret_key
        if key is None:
            return None
        if self._trigger is None:
            client = TriggerClient(
                secret_key=key.get_secret_value(),
                base_url=self.settings.trigger_api_url,
                http=self.http,
                timeout=self.settings.trigger_timeout_seconds,
                realtime_timeout=self.settings.trigger_realtime_timeout_seconds,
            )
            self._trigger = TriggerRunner(
                client=client, local=self.runner, session_factory=self.open_session
            )
        return self._trigger

    @property
    def hub(self) -> RunHub | None:
        """Shared Realtime subscriptions, when Trigger.dev mode is on."""
        trigger = self.trigger
        if trigger is None:
            return None
        if self._hub is None:
            self._hub = RunHub(
                client=trigger.client,
                mint_token=trigger.public_token,
                on_final=trigger.settle_run,
                give_up_after=self.settings.trigger_realtime_give_up_seconds,
            )
        return self._hub

    @property
    def tables(self) -> TableHub:
        """Table-wide live views: the bus, and in Trigger.dev mode the tables' tag feeds."""
        if self._tables is None:
            trigger = self.trigger
            self._tables = TableHub(
                bus=self.bus,
                client=trigger.client if trigger is not None else None,
                mint_token=trigger.table_token if trigger is not None else None,
                give_up_after=self.settings.trigger_realtime_give_up_seconds,
            )
        return self._tables

    @property
    def dispatcher(self) -> JobRunner:
        """The runner new jobs are handed to."""
        return self.trigger or self.runner

    async def start(self) -> None:
        """Prepare the database and the bus; resume the jobs a previous process left unfinished."""
        started_at = utcnow()
        await asyncio.to_thread(lambda: self.engine)
        await self.bus.start()
        if self.settings.run_local_jobs:
            resumed = await self.runner.resume_unfinished()
            if resumed:
                logger.info("resumed %d unfinished job(s): %s", len(resumed), resumed)
        if self.trigger is not None:
            self._settling = asyncio.create_task(
                self.trigger.recover_unfinished(created_before=started_at)
            )
            self._sweeping = asyncio.create_task(
                self.trigger.keep_settling(every=self.settings.trigger_sweep_seconds)
            )

    async def stop(self) -> None:
        background = [t for t in (self._settling, self._sweeping) if t is not None]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        self._settling = self._sweeping = None
        if self._hub is not None:
            await self._hub.aclose()
            self._hub = None
        if self._tables is not None:
            await self._tables.aclose()
            self._tables = None
        self._trigger = None
        if self._runner is not None:
            await self._runner.aclose()
            self._runner = None
        for client in (self._http, self._enricher_http):
            if client is not None:
                await client.aclose()
        self._http = self._enricher_http = None
        if "bus" in vars(self):
            await self.bus.aclose()


_runtime: Runtime | None = None


def reset_runtime() -> None:
    """Forget the process-wide runtime and settings; the next use reads the environment again.

    For tests and tools that change the environment within one process.
    """
    global _runtime
    _runtime = None
    get_settings.cache_clear()


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(settings=get_settings())
    return _runtime


@asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    """Reflex lifespan task: start the runtime with the server, stop it on shutdown."""
    runtime = get_runtime()
    await runtime.start()
    try:
        yield
    finally:
        await runtime.stop()
