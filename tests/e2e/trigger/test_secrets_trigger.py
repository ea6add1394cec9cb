"""Where a secret could leave the backend, in Trigger.dev mode (the scan runs at session end).

Here the LLM key lives in the worker's environment (as in Trigger.dev's dashboard), and cell
errors reach the page through the fake's ``cells`` stream and the backend's feed.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.secret_flows import (
    LlmTable,
    exercise_the_api,
    run_llm_column_with_a_refused_key,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.trigger import FakeTrigger, WorkerTask
from tests.fakes.trigger.protocol import unverified_claims
from tests.support.capture import Capture

pytestmark = pytest.mark.e2e
expect.set_options(timeout=20_000)


def test_an_llm_key_the_provider_echoes_back_stays_off_the_page(
    page: Page,
    app_url: str,
    llm_table: LlmTable,
    llm_api: FakeOpenAI,
    fake_trigger: FakeTrigger,
    worker_task: WorkerTask,
    capture: Capture,
    request: pytest.FixtureRequest,
) -> None:
    runs_before = len(fake_trigger.run_ids())
    run_llm_column_with_a_refused_key(
        page, app_url, llm_table, llm_api, capture, request.node.nodeid
    )
    assert len(fake_trigger.run_ids()) == runs_before + 2, "the jobs did not run on Trigger.dev"
    expect(page.locator("#mode")).to_have_text("Trigger.dev · live")
    # The worker's output (scanned too) holds the scrubbed error, where the key would have been.
    assert any("Incorrect API key provided: [redacted]" in line for line in worker_task.output)


def test_the_rest_api_answers_without_echoing_a_key(
    api_url: str,
    app_secrets: dict[str, str],
    llm_table: LlmTable,
    fake_trigger: FakeTrigger,
    capture: Capture,
) -> None:
    run = exercise_the_api(api_url, app_secrets["ENRICHMENT_API_KEY"], llm_table, capture)
    # The client that started the job gets a token for that run: it is the one public token
    # a response may carry, and the scan checks it appears nowhere else.
    assert run.run_id is not None and run.public_access_token is not None
    assert run.public_access_token in capture.public_tokens
    claims = unverified_claims(run.public_access_token)
    assert claims is not None and claims["scopes"] == [f"read:runs:{run.run_id}"]
    with httpx.Client(base_url=fake_trigger.url) as http:
        own = http.get(
            f"/api/v3/runs/{run.run_id}",
            headers={"Authorization": f"Bearer {run.public_access_token}"},
        )
    assert own.status_code == 200, own.text
