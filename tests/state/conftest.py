"""Driving Reflex state handlers without a browser or a server.

Events go through Reflex's own event processor with an in-memory state manager; a fake
namespace records every delta the browser would have received. The app is configured through
the environment, as in production, on a throwaway SQLite file.
"""

from __future__ import annotations

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

    async def send(
        self, state: type[rx.State], handler: str, path: str = "/", **payload: Any
    ) -> None:
        router = {"pathname": path, "asPath": path, "query": {}, "token": self.token}
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


@pytest.fixture
async def tab(app_environment: None) -> AsyncIterator[Tab]:
    """A tab connected to the app, as a browser's websocket would be: the page's watchers
    follow a job until it ends (they stop early for a tab that is gone)."""
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
