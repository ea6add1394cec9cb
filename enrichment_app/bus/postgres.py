"""The table change bus over PostgreSQL ``LISTEN/NOTIFY``, for deployments on PostgreSQL.

Every backend process listens on one channel on its own connection and sends with
``pg_notify`` on another, both outside SQLAlchemy's pool (psycopg 3, autocommit). Messages are
small (``changes.encode``), under the 8000-byte payload limit.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import sqlalchemy as sa

from enrichment_app.bus.base import TableChangeBus

CHANNEL = "enrichment_table_changes"


def conninfo_of(database_url: str) -> str:
    """The libpq URL of an SQLAlchemy one (``postgresql+psycopg://…`` → ``postgresql://…``)."""
    url = sa.make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PostgresBus(TableChangeBus):
    name = "PostgreSQL"
    transport = True

    def __init__(self, database_url: str, **options: float) -> None:
        super().__init__(**options)
        self._conninfo = conninfo_of(database_url)
        self._listener: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._sender: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def _connect_and_listen(self, connected: Callable[[], None]) -> None:
        self._listener = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        await self._listener.execute(f"LISTEN {CHANNEL}")
        connected()
        async for notify in self._listener.notifies():
            self._received(notify.payload)

    async def _send(self, messages: list[str]) -> None:
        if self._sender is None or self._sender.closed:
            self._sender = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        await self._sender.execute(
            "SELECT pg_notify(%s, message) FROM unnest(%s::text[]) AS message",
            (CHANNEL, messages),
        )

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and not listener.closed:
            await listener.close()

    async def _close_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None and not sender.closed:
            await sender.close()
