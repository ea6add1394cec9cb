"""Driving Reflex state handlers without a browser or a server.

Events go through Reflex's own event processor with an in-memory state manager; a fake
namespace records every delta the browser would have received. The app is configured through
the environment, as in production, on a throwaway SQLite file.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import reflex as rx
from reflex.event import Event
from reflex.istate.manager.memory import StateManagerMemory
from reflex_base.event.processor import BaseStateEventProcessor

from enrichment_app.runtime import get_runtime, reset_runtime
from enrichment_app.services.access import Role
from tests.support.accounts import OWNER_EMAIL, add_user, session_cookie


@dataclass
class RecordingNamespace:
    """Stands in for the websocket: keeps every state update sent to a tab."""

    updates: list[Any] = field(default_factory=list)

    async def emit_update(self, update: Any, token: str) -> None:
        self.updates.append(update)


@dataclass
class Tab:
    """One simulated browser tab: send events, then read its state."""

    processor: BaseStateEventProcessor
    manager: StateManagerMemory
    namespace: RecordingNamespace
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    cookie: str = ""
    """The ``Cookie`` header of the tab's websocket handshake: its session (empty: signed out)."""

    async def send(
        self, state: type[rx.State], handler: str, path: str = "/", **payload: Any
    ) -> None:
        router = {
            "pathname": path,
            "asPath": path,
            "query": {},
            "token": self.token,
            "headers": {
                "cookie": self.cookie,
                "origin": "http://localhost:3000",
                "host": "localhost:8000",
            },
        }
        event = Event(
            name=f"{state.get_full_name()}.{handler}", payload=payload, router_data=router
        )
        future = await self.processor.enqueue(self.token, event)
        await future.wait_all()

    async def state(self, cls: type[rx.State]) -> Any:
        root = await self.manager.get_state(rx.BaseStateToken(ident=self.token, cls=cls))
        return await root.get_state(cls)


@pytest.fixture
def app_environment(tmp_path: Any) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path}/state.db",
            "SEED_DEMO": "true",
            # The table's idle refresher runs as long as the tab; Tab.send waits for every
            # event a handler starts, so it would never return. The browser tests cover it.
            "TABLE_REFRESH_SECONDS": "0",
        }
    )
    for key in ("TRIGGER_SECRET_KEY", "ENRICHMENT_API_KEY", "LLM_API_KEY", "OPENAI_API_KEY"):
        os.environ.pop(key, None)
    reset_runtime()
    yield
    runtime = get_runtime()
    if "engine" in vars(runtime):
        runtime.engine.dispose()
    reset_runtime()
    os.environ.clear()
    os.environ.update(saved)


def owner_cookie() -> str:
    """A session of the owner of the default workspace (created on first use)."""
    runtime = get_runtime()
    with runtime.open_session() as session:
        user_id = add_user(session, email=OWNER_EMAIL, role=Role.OWNER, admin=True)
        return session_cookie(session, box=runtime.secret_box, user_id=user_id)


@pytest.fixture
async def signed_out_tab(app_environment: None) -> AsyncIterator[Tab]:
    """A tab connected to the app with no session: every guarded handler refuses."""
    async with _connected_tab() as tab:
        yield tab


@pytest.fixture
async def tab(signed_out_tab: Tab) -> Tab:
    """A tab connected to the app, signed in as the default workspace's owner: the page's
    watchers follow a job until it ends (they stop early for a tab that is gone)."""
    signed_out_tab.cookie = owner_cookie()
    return signed_out_tab


@contextlib.asynccontextmanager
async def _connected_tab() -> AsyncIterator[Tab]:
    from enrichment_app.enrichment_app import app  # registers the App whose on_load events run

    manager = StateManagerMemory()
    namespace = RecordingNamespace()
    processor = BaseStateEventProcessor(graceful_shutdown_timeout=5).configure(
        state_manager=manager, event_namespace=namespace
    )
    tab = Tab(processor=processor, manager=manager, namespace=namespace)
    sockets = app.event_namespace
    assert sockets is not None
    sid = f"sid-{tab.token}"
    await sockets.link_token_to_sid(sid, tab.token, update_state=False)
    try:
        async with processor:
            yield tab
    finally:
        gone = sockets.on_disconnect(sid)
        if gone is not None:
            await gone
        await get_runtime().stop()
