"""The REST API as the real Reflex app serves it: ``api_transformer`` mounts Reflex under it.

``__REFLEX_SKIP_COMPILE`` keeps ``app()`` from compiling the frontend; the TestClient is not
entered, so no lifespan runs (no event processor, no runtime start). The app module reads the
process-wide runtime, so the test puts its own in ``enrichment_app.runtime._runtime``.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from enrichment_app import runtime as runtime_module
from enrichment_app.api import openapi_document
from enrichment_app.runtime import Runtime
from enrichment_app.settings import Settings

API_KEY = "mount-test-key-0a1b2c"


def test_the_reflex_backend_serves_the_api_and_its_own_routes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("__REFLEX_SKIP_COMPILE", "true")
    keyed = settings.model_copy(update={"enrichment_api_key": SecretStr(API_KEY)})
    runtime = Runtime(settings=keyed)
    monkeypatch.setattr(runtime_module, "_runtime", runtime)
    from enrichment_app.enrichment_app import app

    client = TestClient(app())
    try:
        _check(client)
    finally:
        runtime.engine.dispose()


def _check(client: TestClient) -> None:

    refused = client.get("/api/openapi.json")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    served = client.get("/api/openapi.json", headers={"Authorization": f"Bearer {API_KEY}"})
    assert served.status_code == 200
    assert served.json() == openapi_document()
    missing = client.get("/api/jobs/1", headers={"Authorization": f"Bearer {API_KEY}"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    # Everything outside /api still reaches Reflex.
    assert client.get("/ping").json() == "pong"
    assert client.get("/_health").status_code == 200
    assert client.post("/_upload").status_code == 400  # Reflex's own refusal, not ours
