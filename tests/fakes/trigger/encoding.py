"""How the fake Trigger.dev server encodes runs and stream chunks: pure, no I/O.

- realtime runs: the "native" backend's byte-faithful Electric serializer
  (`electricStreamProtocol.server.ts`): every column value is a string or null, decoded by the
  client through the `electric-schema` header.
- realtime streams: v1 is the Redis responder (`id: <ms>-<n>` / `data: <json line>`, `: ping`),
  v2 is S2's SSE (`event: batch` with `id: <seq>,<count>,<bytes>`, `event: ping`, `data: [DONE]`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

# ---------------------------------------------------------------------------------------------
# Electric shape protocol for `GET /realtime/v1/runs/{id}`
# ---------------------------------------------------------------------------------------------

ColumnType = Literal["text", "timestamp", "int4", "float8", "bool", "jsonb"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    dims: int = 0
    empty_array_as_null: bool = False


# `RUN_ELECTRIC_COLUMNS`, in the served order.
RUN_COLUMNS: Final[tuple[Column, ...]] = (
    Column("id", "text"),
    Column("taskIdentifier", "text"),
    Column("createdAt", "timestamp"),
    Column("updatedAt", "timestamp"),
    Column("startedAt", "timestamp"),
    Column("delayUntil", "timestamp"),
    Column("queuedAt", "timestamp"),
    Column("expiredAt", "timestamp"),
    Column("completedAt", "timestamp"),
    Column("friendlyId", "text"),
    Column("number", "int4"),
    Column("isTest", "bool"),
    Column("status", "text"),
    Column("usageDurationMs", "int4"),
    Column("costInCents", "float8"),
    Column("baseCostInCents", "float8"),
    Column("ttl", "text"),
    Column("payload", "text"),
    Column("payloadType", "text"),
    Column("metadata", "text"),
    Column("metadataType", "text"),
    Column("output", "text"),
    Column("outputType", "text"),
    Column("runTags", "text", dims=1, empty_array_as_null=True),
    Column("error", "jsonb"),
    Column("realtimeStreams", "text", dims=1),
)

# Columns `skipColumns` cannot remove.
RESERVED_COLUMNS: Final = frozenset({"id", "taskIdentifier", "friendlyId", "status", "createdAt"})

UP_TO_DATE: Final = {"headers": {"control": "up-to-date"}}
MUST_REFETCH: Final = {"headers": {"control": "must-refetch"}}
INITIAL_OFFSET: Final = "-1"


def effective_skip_columns(skip: Iterable[str]) -> frozenset[str]:
    return frozenset(c.strip() for c in skip if c.strip() and c.strip() not in RESERVED_COLUMNS)


def format_timestamp(value: datetime) -> str:
    """Postgres-style text without a zone (`toISOString().slice(0, -1)`): the SDK appends `Z`."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}"


def _pg_array_literal(values: Sequence[Any]) -> str:
    if not values:
        return "{}"
    quoted = ('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def _serialize_value(value: Any, column: Column) -> str | None:
    if value is None:
        return None
    if column.dims:
        if not isinstance(value, list | tuple):
            return None
        if not value and column.empty_array_as_null:
            return None
        return _pg_array_literal(value)
    if column.type == "bool":
        return "t" if value else "f"
    if column.type == "timestamp":
        return format_timestamp(value) if isinstance(value, datetime) else str(value)
    if column.type == "jsonb":
        return json.dumps(value, separators=(",", ":"))
    if column.type == "float8" and isinstance(value, float) and value.is_integer():
        return str(int(value))  # JS String(0.0) is "0"
    return str(value)


def serialize_run_row(row: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, str | None]:
    """Encode a run row (native Python values) into the wire `value` object."""
    skipped = effective_skip_columns(skip)
    return {
        column.name: _serialize_value(row.get(column.name), column)
        for column in RUN_COLUMNS
        if column.name not in skipped
    }


def electric_schema_header(skip: Iterable[str] = ()) -> str:
    """The `electric-schema` header value (no `not_null`, so nulls never make the client throw)."""
    skipped = effective_skip_columns(skip)
    schema: dict[str, dict[str, Any]] = {}
    for column in RUN_COLUMNS:
        if column.name in skipped:
            continue
        schema[column.name] = (
            {"type": column.type, "dims": column.dims} if column.dims else {"type": column.type}
        )
    return json.dumps(schema, separators=(",", ":"))


def shape_key(internal_id: str) -> str:
    return f'"public"."TaskRun"/"{internal_id}"'


def change_message(
    internal_id: str, value: Mapping[str, str | None], operation: Literal["insert", "update"]
) -> dict[str, Any]:
    return {
        "key": shape_key(internal_id),
        "value": dict(value),
        "headers": {"operation": operation},
    }


def shape_body(messages: Sequence[Mapping[str, Any]]) -> bytes:
    """A shape response body: the messages then `up-to-date` (the only control that emits)."""
    return json.dumps([*messages, UP_TO_DATE], separators=(",", ":")).encode()


def must_refetch_body() -> bytes:
    return json.dumps([MUST_REFETCH], separators=(",", ":")).encode()


def encode_offset(version: int, seq: int) -> str:
    """Opaque `<updatedAtMs>_<seq>` offset; the first part tells a live poll what the client saw."""
    return f"{int(version)}_{int(seq)}"


def parse_offset_version(offset: str | None) -> int:
    if not offset:
        return 0
    first = offset.split("_", 1)[0]
    try:
        value = int(first)
    except ValueError:
        return 0
    return max(value, 0)


def diff_values(
    previous: Mapping[str, str | None], current: Mapping[str, str | None]
) -> dict[str, str | None]:
    """The columns that changed plus `id`: what real Electric sends in a partial `update`."""
    changed = {k: v for k, v in current.items() if previous.get(k, object()) != v}
    if "id" in current:
        changed["id"] = current["id"]
    return changed


# ---------------------------------------------------------------------------------------------
# Realtime streams (SSE)
# ---------------------------------------------------------------------------------------------

StreamVersion = Literal["v1", "v2"]


def dumps_chunk(chunk: Any) -> str:
    """`JSON.stringify(chunk)`: compact separators, as the SDK writes NDJSON lines."""
    return json.dumps(chunk, separators=(",", ":"), ensure_ascii=False)


def sse_v1_data(event_id: str, line: str) -> bytes:
    """One v1 record: the Redis stream id and one JSON line."""
    return f"id: {event_id}\ndata: {line}\n\n".encode()


def sse_v1_ping() -> bytes:
    return b": ping\n\n"


def v2_record_body(chunk: Any, record_id: str) -> str:
    """The body of an S2 record written by the SDK's v2 writer: `{"data": chunk, "id": nanoid}`."""
    return json.dumps({"data": chunk, "id": record_id}, separators=(",", ":"), ensure_ascii=False)


def sse_v2_batch(records: Sequence[Mapping[str, Any]], *, count: int, size: int) -> bytes:
    """An S2 `batch` event; its id is `<last seq_num>,<records so far>,<bytes so far>`."""
    last = records[-1]["seq_num"]
    data = json.dumps({"records": list(records)}, separators=(",", ":"), ensure_ascii=False)
    return f"event: batch\nid: {last},{count},{size}\ndata: {data}\n\n".encode()


def sse_v2_ping(now_ms: int) -> bytes:
    return f'event: ping\ndata: {{"timestamp":{now_ms}}}\n\n'.encode()


def sse_v2_error(message: str) -> bytes:
    return f"event: error\ndata: {message}\n\n".encode()


def sse_v2_done() -> bytes:
    return b"data: [DONE]\n\n"


def parse_v2_last_event_id(value: str | None) -> int | None:
    """The webapp takes the leading digits (before `-`) and resumes at the next seq_num."""
    if not value:
        return None
    head = value.split("-", 1)[0].split(",", 1)[0]
    try:
        seq = int(head)
    except ValueError:
        return None
    return seq + 1 if seq >= 0 else None


def parse_v1_last_event_id(value: str | None) -> tuple[int, int] | None:
    """A Redis stream id `<ms>-<n>` as a sortable pair, else None."""
    if not value:
        return None
    ms, _, n = value.partition("-")
    try:
        return int(ms), int(n or 0)
    except ValueError:
        return None
