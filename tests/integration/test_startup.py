"""Start-up on a shared database: several processes preparing it at once, as workers do.

In production every backend worker (and every task worker) migrates the database and seeds the
demo table as it starts, and several start at the same moment on a fresh database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from enrichment_app.services.demo import DEMO_TABLE_NAME
from tests.support.paths import ROOT

PROCESSES = 3
KEY_NOTICE = "APP_SECRET_KEY is not set, so a new secret key was generated in "

STARTUP = """
import sys
from enrichment_app.runtime import Runtime
from enrichment_app.settings import Settings
runtime = Runtime(settings=Settings(_env_file=None))
print("ready", flush=True)
sys.stdin.readline()
runtime.engine.dispose()
"""
"""What a backend worker does first: build its runtime, whose engine migrates and seeds."""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    url: str = request.getfixturevalue("postgres_database")
    return url


def test_workers_starting_together_migrate_and_seed_once(database_url: str, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "SEED_DEMO": "true",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", STARTUP],
            env=env,
            cwd=tmp_path,  # the data folder (.data/secret.key with PostgreSQL) is the test's
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:  # every one imported and waiting: then all start at once
        assert worker.stdout is not None and worker.stderr is not None
        assert worker.stdout.readline() == "ready\n", worker.stderr.read()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    errors = [(w.communicate(timeout=60)[1], w.returncode) for w in workers]
    # With no APP_SECRET_KEY, exactly one of them generates the key, and says so.
    notices = [err for err, _ in errors if err.startswith(KEY_NOTICE) and err.count("\n") == 1]
    assert len(notices) == 1, errors
    failures = [(err, code) for err, code in errors if (err and err not in notices) or code]
    assert failures == []
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            names = connection.execute(sa.text("SELECT name FROM data_table")).scalars().all()
            revisions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert len(revisions.all()) == 1
    finally:
        engine.dispose()
    assert names == [DEMO_TABLE_NAME]
