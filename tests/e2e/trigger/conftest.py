"""The app in Trigger.dev mode against the fake Trigger.dev server, whose task runs the worker.

These tests run in their own pytest process (scripts/test.sh): the app's settings are read
once per process, and this folder starts it with TRIGGER_SECRET_KEY and TRIGGER_API_URL set.
The fake's secret key (``tr_dev_`` and 24 random characters) is scanned for like the others,
and so are the public tokens the backend used upstream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.trigger import FakeTrigger, WorkerTask
from tests.fakes.trigger.protocol import is_public_jwt
from tests.support.capture import Capture


@pytest.fixture(scope="session")
def worker_task(
    app_database_url: str,
    app_secrets: dict[str, str],
    llm_api: FakeOpenAI,
    enricher_allowance: dict[str, str],
) -> WorkerTask:
    """The task runs the worker with what Trigger.dev's dashboard would hold: the LLM key and
    the enrichers' allow-list too (the secret key is the generated one beside the database)."""
    return WorkerTask(
        database_url=app_database_url,
        queue_delay=0.5,
        env={
            "LLM_API_KEY": app_secrets["LLM_API_KEY"],
            "LLM_BASE_URL": llm_api.base_url,
            **enricher_allowance,
        },
    )


@pytest.fixture(scope="session")
def fake_trigger(worker_task: WorkerTask) -> Iterator[FakeTrigger]:
    with FakeTrigger(live_poll_timeout=5.0, stream_timeout=5.0, executor=worker_task) as fake:
        yield fake


@pytest.fixture(scope="session")
def trigger_env(fake_trigger: FakeTrigger) -> dict[str, str]:
    return {
        "TRIGGER_SECRET_KEY": fake_trigger.secret_key,
        "TRIGGER_API_URL": fake_trigger.url,
        # A Realtime outage is given up on (the page polls) after 2 s, not a minute.
        "TRIGGER_REALTIME_GIVE_UP_SECONDS": "2",
    }


@pytest.fixture(scope="session")
def more_to_scan(fake_trigger: FakeTrigger, worker_task: WorkerTask) -> Callable[[Capture], None]:
    """The workers' output (their logs), and every public token the backend presented to the
    fake (its feeds' run-scoped tokens), which must appear nowhere."""

    def add(capture: Capture) -> None:
        capture.add("worker output", "".join(worker_task.output))
        for request in fake_trigger.requests:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and is_public_jwt(token):
                capture.add_public_tokens([token])

    return add
