"""The REST API as the real Reflex app serves it: ``api_transformer`` mounts Reflex under it.

``__REFLEX_SKIP_COMPILE`` keeps ``app()`` from compiling the frontend; the TestClient is not
entered, so no lifespan runs (no event processor, no runtime start). The app reads its
settings from the environment, as in production, so the test configures it that way.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from enrichment_app.api import openapi_document
from enrichment_app.runtime import get_runtime, reset_runtime
from enrichment_app.settings import Settings

API_KEY = "mount-test-key-0a1b2c"


def test_the_reflex_backend_serves_the_api_and_its_own_routes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("__REFLEX_SKIP_COMPILE", "true")
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ENRICHMENT_API_KEY", API_KEY)
    monkeypatch.setenv("SEED_DEMO", "false")
    monkeypatch.delenv("TRIGGER_SECRET_KEY", raising=False)
    reset_runtime()
    from enrichment_app.enrichment_app import app

    client = TestClient(app(), base_url="http://127.0.0.1:8000")
    try:
        _check(client)
    finally:
        get_runtime().engine.dispose()
        reset_runtime()


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

    # The front door (enrichment_app/edge) stands before both: a foreign Host is refused.
    for path in ("/api/openapi.json", "/ping", "/tables"):
        rebound = client.get(path, headers={"Host": "evil.example"})
        assert rebound.status_code == 400, path
        assert rebound.json()["error"]["code"] == "invalid_host"
        assert "ALLOWED_HOSTS" in rebound.json()["error"]["message"]
    assert client.get("/ping", headers={"Host": "localhost:8000"}).status_code == 200

    # A page on another site gets no CORS grant and no answer; the app's own page (the dev
    # frontend, port 3000 by default) gets both. Never "*", never an echo of any origin.
    key = {"Authorization": f"Bearer {API_KEY}"}
    for origin, allowed in (("https://evil.example", False), ("http://localhost:3000", True)):
        preflight = client.options(
            "/api/openapi.json",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET", **key},
        )
        granted = preflight.headers.get("access-control-allow-origin")
        assert granted == (origin if allowed else None), (origin, preflight.headers)
        answer = client.get("/api/openapi.json", headers={"Origin": origin, **key})
        assert answer.status_code == (200 if allowed else 403), origin
        assert answer.headers.get("access-control-allow-origin") in (
            origin if allowed else None,
            None,
        )
    refused = client.get("/api/openapi.json", headers={"Origin": "https://evil.example", **key})
    assert refused.json()["error"]["code"] == "cross_origin"
    assert "ALLOWED_ORIGINS" in refused.json()["error"]["message"]
