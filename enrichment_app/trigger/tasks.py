"""The body of ``POST /api/v1/tasks/{task}/trigger``, built as ``tasks.trigger`` builds it (pure).

Sources: ``@trigger.dev/sdk`` ``v3/shared.js`` (``trigger_internal``) and ``@trigger.dev/core``
``v3/idempotencyKeys.js`` (``makeIdempotencyKey``). Outside a task the SDK hashes an idempotency
key as ``sha256(parts.join("-"))`` and sends the original in ``idempotencyKeyOptions``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from enrichment_app.trigger.packets import stringify_io, to_js_iso

IdempotencyKey = str | Sequence[str]


def task_path(task_id: str) -> str:
    """``encodeURIComponent(taskId)`` as one path segment."""
    return "/api/v1/tasks/" + quote(task_id, safe="-_.!~*'()") + "/trigger"


def make_idempotency_key(key: IdempotencyKey | None) -> tuple[str | None, dict[str, str] | None]:
    """The key to send and its ``idempotencyKeyOptions``, as ``makeIdempotencyKey`` outside a task.

    A 64-character string is taken to be an already-made key and sent as it is, without options.
    """
    if not key:
        return None, None
    if isinstance(key, str) and len(key) == 64:
        return key, None
    parts = [key] if isinstance(key, str) else list(key)
    user_key = "-".join(parts)
    hashed = hashlib.sha256(user_key.encode("utf-8")).hexdigest()
    return hashed, {"key": user_key, "scope": "run"}


def _json_value(value: Any) -> Any:
    """A datetime option becomes its ISO string, as ``JSON.stringify`` writes a Date."""
    return to_js_iso(value) if isinstance(value, datetime) else value


def build_trigger_body(
    payload: Any,
    *,
    idempotency_key: IdempotencyKey | None = None,
    idempotency_key_ttl: str | None = None,
    tags: str | Sequence[str] | None = None,
    ttl: str | int | None = None,
    queue: str | None = None,
    concurrency_key: str | None = None,
    max_attempts: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    delay: str | datetime | None = None,
    max_duration: int | None = None,
    machine: str | None = None,
) -> dict[str, Any]:
    """The JSON body; options left as None are absent, in the SDK's key order.

    The payload is sent as the SDK sends it: a string as ``text/plain``, anything else as a
    superjson string with ``payloadType: application/super+json``.
    """
    packet = stringify_io(payload)
    hashed_key, key_options = make_idempotency_key(idempotency_key)
    candidates: list[tuple[str, Any]] = [
        ("queue", {"name": queue} if queue else None),
        ("concurrencyKey", concurrency_key),
        ("payloadType", packet.data_type),
        ("payloadSize", len((packet.data or "").encode("utf-8"))),
        ("idempotencyKey", hashed_key),
        ("idempotencyKeyTTL", idempotency_key_ttl),
        ("idempotencyKeyOptions", key_options),
        ("delay", _json_value(delay)),
        ("ttl", ttl),
        ("tags", list(tags) if tags is not None and not isinstance(tags, str) else tags),
        ("maxAttempts", max_attempts),
        ("metadata", dict(metadata) if metadata is not None else None),
        ("maxDuration", max_duration),
        ("machine", machine),
    ]
    options = {key: value for key, value in candidates if value is not None}
    return {"payload": packet.data, "options": options}
