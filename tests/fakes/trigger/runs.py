"""A run as the fake keeps it, the copy tests read, its retrieve answer, an executor's handle."""

from __future__ import annotations

import asyncio
import json
import secrets
import string
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tests.fakes.trigger import encoding, protocol

if TYPE_CHECKING:
    from tests.fakes.trigger.store import RunStore

_ALNUM = string.ascii_lowercase + string.digits


def random_id(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def cuid() -> str:
    return "c" + random_id(24)


@dataclass(slots=True)
class Chunk:
    seq: int
    redis_id: str
    record_id: str
    timestamp_ms: int
    data: Any


@dataclass(slots=True)
class Stream:
    chunks: list[Chunk] = field(default_factory=list)
    last_ms: int = 0
    last_n: int = -1
    client_chunk_index: dict[str, int] = field(default_factory=dict)
    readers: int = 0


@dataclass(slots=True)
class Run:
    internal_id: str
    friendly_id: str
    task_identifier: str
    number: int
    status: str
    created_at: datetime
    updated_at: datetime
    payload: str
    payload_type: str
    metadata: dict[str, Any] | None
    metadata_type: str
    tags: list[str]
    streams_version: str
    handle: str
    queued_at: datetime | None = None
    started_at: datetime | None = None
    delay_until: datetime | None = None
    expired_at: datetime | None = None
    completed_at: datetime | None = None
    is_test: bool = False
    usage_duration_ms: int = 0
    cost_in_cents: float = 0.0
    base_cost_in_cents: float = 0.0
    ttl: str | None = None
    output: str | None = None
    output_type: str = "application/json"
    error: dict[str, Any] | None = None
    realtime_streams: list[str] = field(default_factory=list)
    idempotency_key: str | None = None
    idempotency_key_user: str | None = None
    idempotency_expires_at: float | None = None
    streams: dict[str, Stream] = field(default_factory=dict)
    history: dict[int, dict[str, str | None]] = field(default_factory=dict)
    parked_polls: list[int] = field(default_factory=list)  # the row version each held poll saw
    created_seq: int = 0
    """The store's change sequence when the run was made (the tag feed's insert or update)."""
    change_seq: int = 0
    """The store's change sequence at the run's last change: the tag feed's offset."""
    executor_task: asyncio.Task[None] | None = None

    @property
    def version(self) -> int:
        """`updatedAt` in epoch ms: strictly increasing, it is the shape offset's first part."""
        return int(self.updated_at.timestamp() * 1000)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.internal_id,
            "taskIdentifier": self.task_identifier,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "startedAt": self.started_at,
            "delayUntil": self.delay_until,
            "queuedAt": self.queued_at,
            "expiredAt": self.expired_at,
            "completedAt": self.completed_at,
            "friendlyId": self.friendly_id,
            "number": self.number,
            "isTest": self.is_test,
            "status": self.status,
            "usageDurationMs": self.usage_duration_ms,
            "costInCents": self.cost_in_cents,
            "baseCostInCents": self.base_cost_in_cents,
            "ttl": self.ttl,
            "payload": self.payload,
            "payloadType": self.payload_type,
            "metadata": None if self.metadata is None else encoding.dumps_chunk(self.metadata),
            "metadataType": self.metadata_type,
            "output": self.output,
            "outputType": self.output_type,
            "runTags": list(self.tags),
            "error": self.error,
            "realtimeStreams": list(self.realtime_streams),
        }

    def parsed_payload(self) -> Any:
        return parse_packet(self.payload, self.payload_type)

    def view(self) -> RunView:
        return RunView(
            id=self.friendly_id,
            internal_id=self.internal_id,
            task_identifier=self.task_identifier,
            status=protocol.DB_TO_SDK_STATUS.get(self.status, "QUEUED"),
            db_status=self.status,
            payload=self.parsed_payload(),
            metadata=None if self.metadata is None else json.loads(json.dumps(self.metadata)),
            output=parse_packet(self.output, self.output_type),
            error=None if self.error is None else dict(self.error),
            tags=tuple(self.tags),
            idempotency_key=self.idempotency_key,
            realtime_streams=tuple(self.realtime_streams),
            completed_at=self.completed_at,
            handle=self.handle,
        )


def parse_packet(data: str | None, data_type: str) -> Any:
    if data is None or data == "":
        return None
    if data_type == "application/json":
        return json.loads(data)
    if data_type == "application/super+json":
        return json.loads(data).get("json")
    return data


@dataclass(frozen=True, slots=True)
class RunView:
    """A copy of a run's state for assertions (statuses are the SDK's names)."""

    id: str
    internal_id: str
    task_identifier: str
    status: str
    db_status: str
    payload: Any
    metadata: dict[str, Any] | None
    output: Any
    error: dict[str, Any] | None
    tags: tuple[str, ...]
    idempotency_key: str | None
    realtime_streams: tuple[str, ...]
    completed_at: datetime | None
    handle: str


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return encoding.format_timestamp(value) + "Z"


def retrieve_body(run: Run) -> dict[str, Any]:
    """`GET /api/v3/runs/{id}` (`RetrieveRunResponse`), optional fields omitted when absent."""
    status = protocol.DB_TO_SDK_STATUS.get(run.status, "QUEUED")
    completed = status in {"COMPLETED", "CANCELED", "FAILED", "CRASHED", "SYSTEM_FAILURE"}
    body: dict[str, Any] = {
        "id": run.friendly_id,
        "taskIdentifier": run.task_identifier,
        "status": status,
        "idempotencyKey": run.idempotency_key_user or run.idempotency_key,
        "isQueued": status in {"QUEUED", "DELAYED", "PENDING_VERSION"},
        "isExecuting": status in {"EXECUTING", "DEQUEUED"},
        "isWaiting": status == "WAITING",
        "isCompleted": completed,
        "isSuccess": completed and status == "COMPLETED",
        "isFailed": completed and status != "COMPLETED",
        "isCancelled": status == "CANCELED",
        "isTest": run.is_test,
        "createdAt": iso(run.created_at),
        "updatedAt": iso(run.updated_at),
        "startedAt": iso(run.started_at),
        "finishedAt": iso(run.completed_at),
        "delayedUntil": iso(run.delay_until),
        "expiredAt": iso(run.expired_at),
        "ttl": run.ttl,
        "tags": list(run.tags),
        "costInCents": run.cost_in_cents,
        "baseCostInCents": run.base_cost_in_cents,
        "durationMs": run.usage_duration_ms,
        "metadata": run.metadata,
        "depth": 0,
        "triggerFunction": "trigger",
        "payload": run.parsed_payload(),
        "relatedRuns": {"children": []},
        "attemptCount": 1 if run.started_at else 0,
        "attempts": [],
    }
    if status == "COMPLETED":
        body["output"] = parse_packet(run.output, run.output_type)
    if run.error is not None:
        body["error"] = {
            k: v for k, v in run.error.items() if k in {"message", "name", "stackTrace"} and v
        }
    return {k: v for k, v in body.items() if v is not None}


class RunControl:
    """What an executor gets: the run's data and the run hooks bound to it."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self._store = store
        self.id = run_id
        view = store.run(run_id)
        self.task_identifier = view.task_identifier
        self.payload = view.payload
        self.tags = view.tags

    @property
    def metadata(self) -> dict[str, Any] | None:
        return self._store.run(self.id).metadata

    def set_status(self, status: str) -> None:
        self._store.set_status(self.id, status)

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        self._store.set_metadata(self.id, metadata)

    def update_metadata(self, operations: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        return self._store.update_metadata(self.id, operations)

    def append_chunk(self, key: str, chunk: Any) -> None:
        self._store.append_chunk(self.id, key, chunk)

    def complete(self, output: Any = None) -> None:
        self._store.complete_run(self.id, output)

    def fail(self, message: str, *, status: str = "FAILED", name: str = "Error") -> None:
        self._store.fail_run(self.id, message, status=status, name=name)


Executor = Callable[[RunControl], Awaitable[None]]
