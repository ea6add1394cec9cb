"""Realtime streams: decoding the server-sent events of ``GET /realtime/v1/streams/{run}/{key}`` (pure).

Mirrors ``SSEStreamSubscription`` in ``@trigger.dev/core`` ``v3/apiClient/runStream.js``:

- v1 (no ``X-Stream-Version`` header): each event is ``id: <redis id>`` + ``data: <JSON chunk>``;
  ``: ping`` comments carry nothing.
- v2 (``X-Stream-Version: v2``): ``event: batch`` events hold S2 records
  ``{"seq_num", "timestamp", "headers", "body": "{\\"data\\": <chunk>, \\"id\\": \\"<record id>\\"}"}``;
  ``seq_num`` is the resume id, records are deduplicated by body ``id``, S2 command records (first
  header name empty) are skipped; ``event: error`` is a failed read (the SDK reconnects).

Decoding never raises on malformed input: data that is not JSON stays text, and a record with
odd fields keeps what can be read (no id, timestamp 0). Only ``event: error`` raises
``StreamReadError``. ``tests/fuzz/test_stream_decoders.py`` holds it to that.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

SEEN_IDS_CAP = 5000


class StreamReadError(Exception):
    """The server reported ``event: error`` in a v2 stream; the read is retried from the last id."""


@dataclass(frozen=True, slots=True)
class StreamPart:
    """One decoded chunk: ``id`` is the resume position (the redis id or the S2 ``seq_num``)."""

    id: str
    chunk: Any
    timestamp: int
    record_id: str | None = None


def safe_parse_json(data: str) -> Any:
    """The SDK's ``safeParseJSON``: the parsed value, or the text itself if it is not JSON.

    JSON nested too deeply for the parser's stack counts as not JSON, like any other.
    """
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return data


def redis_id_timestamp(event_id: str | None, *, now_ms: int | None = None) -> int:
    """The millisecond timestamp at the front of a redis stream id (``<ms>-<seq>``)."""
    fallback = now_ms if now_ms is not None else int(time.time() * 1000)
    if not event_id:
        return fallback
    try:
        return int(event_id.split("-")[0])
    except ValueError:
        return fallback


class StreamDecoder:
    """Turns events into parts, and remembers the resume id and the v2 record ids already seen.

    One decoder lives across reconnections, so a record replayed after a reconnect is dropped
    (the SDK keeps its seen-ids window per connection; keeping it per read is stricter).
    """

    def __init__(self, last_event_id: str | None = None) -> None:
        self.last_event_id = last_event_id
        self._seen: OrderedDict[str, None] = OrderedDict()

    def decode(self, version: str, event: str, data: str, event_id: str | None) -> list[StreamPart]:
        """Decode one server-sent event of a stream in format ``version`` ("v1" or "v2")."""
        if version == "v1":
            return self._decode_v1(data, event_id)
        return self._decode_v2(event, data)

    def _decode_v1(self, data: str, event_id: str | None) -> list[StreamPart]:
        if event_id:
            self.last_event_id = event_id
        if not data:
            # Per the SSE spec an event with an empty data buffer is not dispatched; httpx-sse
            # still yields one for a ``: ping`` block once an id has been seen.
            return []
        return [
            StreamPart(
                id=event_id or "unknown",
                chunk=safe_parse_json(data),
                timestamp=redis_id_timestamp(event_id),
            )
        ]

    def _decode_v2(self, event: str, data: str) -> list[StreamPart]:
        if event == "error":
            raise StreamReadError(f"Stream read failed: {data}")
        if event != "batch":
            return []
        batch = safe_parse_json(data)
        records = batch.get("records") if isinstance(batch, dict) else None
        if not isinstance(records, list):
            return []
        parts: list[StreamPart] = []
        for record in records:
            if not isinstance(record, dict) or "seq_num" not in record:
                continue
            # Advance the resume id even for skipped records, so a reconnect lands past them.
            self.last_event_id = str(record["seq_num"])
            if _is_command_record(record.get("headers")):
                continue
            raw_body = record.get("body")
            body = safe_parse_json(raw_body) if isinstance(raw_body, str) and raw_body else None
            record_id = body.get("id") if isinstance(body, dict) else None
            if not isinstance(record_id, str):
                record_id = None  # the SDK's writer always sends a string (a nanoid)
            if record_id:
                if record_id in self._seen:
                    continue
                self._remember(record_id)
            parts.append(
                StreamPart(
                    id=str(record["seq_num"]),
                    chunk=body.get("data") if isinstance(body, dict) else None,
                    timestamp=_timestamp(record.get("timestamp")),
                    record_id=record_id or None,
                )
            )
        return parts

    def _remember(self, record_id: str) -> None:
        self._seen[record_id] = None
        if len(self._seen) > SEEN_IDS_CAP:
            self._seen.popitem(last=False)


def _is_command_record(headers: Any) -> bool:
    """An S2 command record: its first header's name is empty. Malformed headers are not one."""
    if not isinstance(headers, list) or not headers:
        return False
    first = headers[0]
    return isinstance(first, list) and bool(first) and first[0] == ""


def _timestamp(value: Any) -> int:
    """A record's millisecond timestamp; 0 when it is missing or not a whole number."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0
    return 0
