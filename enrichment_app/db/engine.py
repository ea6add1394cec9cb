"""Engine and sessions. SQLite by default, any SQLAlchemy URL (PostgreSQL in production)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

SessionFactory = Callable[[], Session]


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the web process read while a worker writes; the busy timeout rides out locks."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_db_engine(url: str) -> sa.Engine:
    """Build an engine for ``url`` with settings that suit this app's mix of reads and writes."""
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        in_memory = database in (None, "", ":memory:")
        if not in_memory and database:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if in_memory else None,
        )
        sa.event.listen(engine, "connect", _tune_sqlite)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def session_factory(engine: sa.Engine) -> SessionFactory:
    """A zero-argument callable that opens a new session on ``engine``."""

    def open_session() -> Session:
        return Session(engine, expire_on_commit=False)

    return open_session
