"""Where a secret could leave the backend, in local runner mode (the scan runs at session end)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import GatedApi
from tests.e2e.secret_flows import (
    LlmTable,
    exercise_the_api,
    run_a_column_with_a_saved_credential,
    run_llm_column_with_a_refused_key,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.support.capture import Capture

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)


def test_an_llm_key_the_provider_echoes_back_stays_off_the_page(
    page: Page,
    app_url: str,
    llm_table: LlmTable,
    llm_api: FakeOpenAI,
    capture: Capture,
    request: pytest.FixtureRequest,
) -> None:
    run_llm_column_with_a_refused_key(
        page, app_url, llm_table, llm_api, capture, request.node.nodeid
    )


def test_the_rest_api_answers_without_echoing_a_key(
    api_url: str, app_secrets: dict[str, str], llm_table: LlmTable, capture: Capture
) -> None:
    run = exercise_the_api(api_url, app_secrets["ENRICHMENT_API_KEY"], llm_table, capture)
    assert run.run_id is None and run.public_access_token is None  # the local runner


def test_a_credential_saved_in_a_column_stays_sealed_and_off_the_page(
    page: Page,
    app_url: str,
    app_database_url: str,
    gated_api: GatedApi,
    column_token: str,
    capture: Capture,
) -> None:
    run_a_column_with_a_saved_credential(
        page, app_url, app_database_url, gated_api.url, column_token, capture
    )
