"""Fixtures shared by every test: settings, a migrated SQLite database, sessions, an HTTP client.

Nothing here reads the real environment or imports Reflex. Tests that need other settings
derive them with ``settings.model_copy(update={...})``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from enrichment_app.db.engine import SessionFactory, create_db_engine, session_factory
from enrichment_app.db.migrate import upgrade_database
from enrichment_app.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a throwaway SQLite file, with every value the tests rely on spelled out."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path}/test.db",
        max_cells_per_job=5000,
        max_cell_chars=10_000,
        max_csv_bytes=1024 * 1024,
        seed_demo=False,
        run_local_jobs=True,
        llm_base_url="http://127.0.0.1:9/v1",
        llm_model="test-model",
        llm_api_key=None,
        trigger_secret_key=None,
        trigger_api_url="http://127.0.0.1:9",
        enrichment_api_key=None,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[sa.Engine]:
    """An engine on the settings' database, migrated to the newest schema."""
    engine = create_db_engine(settings.database_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def open_session(engine: sa.Engine) -> SessionFactory:
    """Opens a new session on the test database: ``with open_session() as session: ...``."""
    return session_factory(engine)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client for enrichers (loopback servers only in tests)."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=10.0) as client:
        yield client
