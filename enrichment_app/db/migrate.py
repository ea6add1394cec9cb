"""Schema migrations, applied automatically at start-up (no manual step)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
STARTUP_LOCK_KEY = 0x656E7269
"""The PostgreSQL advisory lock that serializes start-up work (any fixed 64-bit number)."""


@contextlib.contextmanager
def startup_lock(engine: sa.Engine) -> Iterator[None]:
    """Let one process at a time prepare the database (migrate it, seed it).

    Every backend worker and every task worker prepares the database when it starts, and in
    production several start at once: without the lock they race to create the same tables
    (all but one die) or to seed the demo table. PostgreSQL takes an advisory lock, SQLite an
    exclusive lock on a file beside the database; both are released if the process dies.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK_KEY}
                )
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield  # another database (no lock to take) or an in-memory one (one process)
        return
    with Path(database + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def alembic_config(engine: sa.Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade_database(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there."""
    config = alembic_config(engine)
    head = ScriptDirectory.from_config(config).get_current_head()
    # Even the first look is taken under the lock: a process's first connection turns a new
    # SQLite file to WAL, which needs the file to itself, and a second process connecting at
    # that moment got "database is locked" at once, whatever the busy timeout.
    with startup_lock(engine):
        current = _current_revision(engine)
        if current == head:
            return
        logger.info("migrating database from %s to %s", current or "empty", head)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


def _current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
