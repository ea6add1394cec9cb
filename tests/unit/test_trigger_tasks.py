"""The trigger request body."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from enrichment_app.trigger.tasks import build_trigger_body, make_idempotency_key, task_path


def test_body_matches_the_verified_sdk_body():
    body = build_trigger_body(
        {"jobId": "j1", "when": datetime(2025, 1, 1, tzinfo=UTC)},
        tags=["job:j1"],
        idempotency_key="job-j1",
        ttl="10m",
        metadata={"progress": 0},
        queue="enrich",
        concurrency_key="user-1",
        max_attempts=3,
    )
    assert body == {
        "payload": '{"json":{"jobId":"j1","when":"2025-01-01T00:00:00.000Z"},"meta":{"values":{"when":["Date"]}}}',
        "options": {
            "queue": {"name": "enrich"},
            "concurrencyKey": "user-1",
            "payloadType": "application/super+json",
            "payloadSize": 93,
            "idempotencyKey": "935185f6f23fc4360465b45ebad6a0630ddcdfe349d107dae131704f171f9315",
            "idempotencyKeyOptions": {"key": "job-j1", "scope": "run"},
            "ttl": "10m",
            "tags": ["job:j1"],
            "maxAttempts": 3,
            "metadata": {"progress": 0},
        },
    }
    assert list(body["options"]) == [
        "queue",
        "concurrencyKey",
        "payloadType",
        "payloadSize",
        "idempotencyKey",
        "idempotencyKeyOptions",
        "ttl",
        "tags",
        "maxAttempts",
        "metadata",
    ]


def test_minimal_body_has_only_payload_type_and_size():
    body = build_trigger_body({"a": 1})
    assert body == {
        "payload": '{"json":{"a":1}}',
        "options": {"payloadType": "application/super+json", "payloadSize": 16},
    }


def test_string_payload_is_text_plain_and_size_counts_utf8_bytes():
    body = build_trigger_body("héllo")
    assert body["payload"] == "héllo"
    assert body["options"]["payloadType"] == "text/plain"
    assert body["options"]["payloadSize"] == 6


def test_delay_datetime_is_iso():
    body = build_trigger_body({}, delay=datetime(2025, 1, 1, 12, tzinfo=UTC))
    assert body["options"]["delay"] == "2025-01-01T12:00:00.000Z"


def test_idempotency_keys():
    assert make_idempotency_key(None) == (None, None)
    ready = "a" * 64
    assert make_idempotency_key(ready) == (ready, None)
    hashed, options = make_idempotency_key(["job", "j1"])
    assert hashed == hashlib.sha256(b"job-j1").hexdigest()
    assert options == {"key": "job-j1", "scope": "run"}


def test_task_path_encodes_like_encode_uri_component():
    assert task_path("process-enrichment-job") == "/api/v1/tasks/process-enrichment-job/trigger"
    assert task_path("a/b c") == "/api/v1/tasks/a%2Fb%20c/trigger"
    assert json.dumps(task_path("x!*'()~")) == '"/api/v1/tasks/x!*\'()~/trigger"'
