"""The app in Trigger.dev mode against the fake Trigger.dev server, whose task runs the worker.

These tests run in their own pytest process (scripts/test.sh): the app's settings are read
once per process, and this folder starts it with TRIGGER_SECRET_KEY and TRIGGER_API_URL set.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.trigger_server import FakeTrigger
from tests.fakes.trigger_worker import WorkerTask


@pytest.fixture(scope="session")
def worker_task(app_database_url: str) -> WorkerTask:
    return WorkerTask(database_url=app_database_url, queue_delay=0.5)


@pytest.fixture(scope="session")
def fake_trigger(worker_task: WorkerTask) -> Iterator[FakeTrigger]:
    with FakeTrigger(live_poll_timeout=5.0, stream_timeout=5.0, executor=worker_task) as fake:
        yield fake


@pytest.fixture(scope="session")
def app_env(app_database_url: str, fake_trigger: FakeTrigger) -> dict[str, str]:
    return {
        "DATABASE_URL": app_database_url,
        "SEED_DEMO": "true",
        "TRIGGER_SECRET_KEY": fake_trigger.secret_key,
        "TRIGGER_API_URL": fake_trigger.url,
    }
