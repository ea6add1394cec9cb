"""Run objects as the SDK exposes them (pure).

``run_from_row`` is the SDK's ``transformRunShape`` (``v3/apiClient/runStream.js``) applied to a
decoded shape row; ``run_from_api`` reads the ``GET /api/v3/runs/{id}`` body into the same type.
Both raise ``ProtocolError`` for a row or body they cannot read (no id, a bad timestamp, a bad
packet), and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from enrichment_app.trigger.errors import ProtocolError
from enrichment_app.trigger.packets import parse_packet

# The SDK's RunStatus values.
QUEUED_STATUSES = frozenset({"PENDING_VERSION", "QUEUED", "PENDING", "DELAYED"})
WAITING_STATUSES = frozenset({"WAITING"})
EXECUTING_STATUSES = frozenset({"DEQUEUED", "EXECUTING"})
FAILED_STATUSES = frozenset({"FAILED", "CRASHED", "SYSTEM_FAILURE", "EXPIRED", "TIMED_OUT"})
SUCCESS_STATUSES = frozenset({"COMPLETED"})
FINAL_STATUSES = FAILED_STATUSES | SUCCESS_STATUSES | {"CANCELED"}

# Database TaskRunStatus → SDK status (``apiStatusFromRunStatus``); anything else is QUEUED.
_STATUS_FROM_DB = {
    "DELAYED": "DELAYED",
    "WAITING_FOR_DEPLOY": "PENDING_VERSION",
    "PENDING_VERSION": "PENDING_VERSION",
    "PENDING": "QUEUED",
    "PAUSED": "WAITING",
    "WAITING_TO_RESUME": "WAITING",
    "DEQUEUED": "DEQUEUED",
    "RETRYING_AFTER_FAILURE": "EXECUTING",
    "EXECUTING": "EXECUTING",
    "CANCELED": "CANCELED",
    "COMPLETED_SUCCESSFULLY": "COMPLETED",
    "SYSTEM_FAILURE": "SYSTEM_FAILURE",
    "CRASHED": "CRASHED",
    "INTERRUPTED": "FAILED",
    "COMPLETED_WITH_ERRORS": "FAILED",
    "EXPIRED": "EXPIRED",
    "TIMED_OUT": "TIMED_OUT",
}


def status_from_db(status: Any) -> str:
    """Map a database run status to the SDK's status string (anything unknown is QUEUED)."""
    return _STATUS_FROM_DB.get(status, "QUEUED") if isinstance(status, str) else "QUEUED"


@dataclass(frozen=True, slots=True)
class RunError:
    """A run's error, as the SDK's ``createJsonErrorObject`` presents it."""

    message: str
    name: str | None = None
    stack_trace: str | None = None


@dataclass(frozen=True, slots=True)
class RealtimeRun:
    """One state of a run. Datetimes are timezone-aware UTC.

    The ``is_*`` properties are the SDK run's ``isQueued``, ``isWaiting``, ``isExecuting``,
    ``isCompleted``, ``isFailed``, ``isSuccess`` and ``isCancelled``: part of this client's
    public surface, whether or not the app reads them all.
    """

    id: str
    task_identifier: str
    status: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    delayed_until: datetime | None = None
    queued_at: datetime | None = None
    expired_at: datetime | None = None
    payload: Any = None
    output: Any = None
    metadata: Any = None
    error: RunError | None = None
    tags: tuple[str, ...] = ()
    is_test: bool = False
    cost_in_cents: float = 0
    base_cost_in_cents: float = 0
    duration_ms: int = 0
    realtime_streams: tuple[str, ...] = field(default=())

    @property
    def is_final(self) -> bool:
        """The run will not change status again (COMPLETED, CANCELED or a failure)."""
        return self.status in FINAL_STATUSES

    @property
    def is_success(self) -> bool:
        return self.status in SUCCESS_STATUSES

    @property
    def is_failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def is_executing(self) -> bool:
        return self.status in EXECUTING_STATUSES

    @property
    def is_queued(self) -> bool:
        return self.status in QUEUED_STATUSES

    @property
    def is_waiting(self) -> bool:
        return self.status in WAITING_STATUSES

    @property
    def is_cancelled(self) -> bool:
        return self.status == "CANCELED"

    @property
    def is_completed(self) -> bool:
        """The SDK's realtime ``isCompleted``: success or failure, but not CANCELED."""
        return self.is_success or self.is_failed


def parse_shape_timestamp(value: Any) -> datetime | None:
    """A zone-less Postgres timestamp from the shape, read as UTC (the SDK appends ``Z``).

    Truncated to milliseconds, as a JavaScript ``Date`` holds it. Anything that is not a
    timestamp is a ``ProtocolError``.
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, datetime):
            moment = value
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        preview = repr(str(value)[:40])
        raise ProtocolError(f"{preview} is not a timestamp") from exc
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def run_error_from_task_error(error: Any) -> RunError | None:
    """``createJsonErrorObject`` for a ``TaskRunError`` (without the SDK's pretty rewrites)."""
    if not isinstance(error, Mapping):
        return None
    kind = error.get("type")
    if kind == "BUILT_IN_ERROR":
        return RunError(
            message=str(error.get("message", "")),
            name=_optional_str(error.get("name")),
            stack_trace=_optional_str(error.get("stackTrace")),
        )
    if kind in ("STRING_ERROR", "CUSTOM_ERROR"):
        return RunError(message=str(error.get("raw", "")))
    if kind == "INTERNAL_ERROR":
        return RunError(message=f"trigger.dev internal error ({error.get('code')})")
    return RunError(message=str(error.get("message", "")))


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any, default: float = 0) -> Any:
    return default if value is None else value


def _required_timestamp(row: Mapping[str, Any], key: str) -> datetime:
    moment = parse_shape_timestamp(row.get(key))
    if moment is None:
        raise ProtocolError(f"run has no {key}")
    return moment


def _required_text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        raise ProtocolError(f"run has no {key}")
    return str(value)


def _strings(value: Any) -> tuple[str, ...]:
    """A list of names (tags, stream keys); anything else reads as none."""
    return tuple(str(item) for item in value) if isinstance(value, list | tuple) else ()


def run_from_row(row: Mapping[str, Any]) -> RealtimeRun:
    """Build a RealtimeRun from a decoded shape row (``transformRunShape``)."""
    payload_type = row.get("payloadType")
    output_type = row.get("outputType")
    metadata, metadata_type = row.get("metadata"), row.get("metadataType")
    return RealtimeRun(
        id=_required_text(row, "friendlyId"),
        task_identifier=_required_text(row, "taskIdentifier"),
        status=status_from_db(row.get("status")),
        created_at=_required_timestamp(row, "createdAt"),
        updated_at=_required_timestamp(row, "updatedAt"),
        started_at=parse_shape_timestamp(row.get("startedAt")),
        finished_at=parse_shape_timestamp(row.get("completedAt")),
        delayed_until=parse_shape_timestamp(row.get("delayUntil")),
        queued_at=parse_shape_timestamp(row.get("queuedAt")),
        expired_at=parse_shape_timestamp(row.get("expiredAt")),
        payload=parse_packet(row.get("payload"), payload_type) if payload_type else None,
        output=parse_packet(row.get("output"), output_type) if output_type else None,
        metadata=parse_packet(metadata, metadata_type) if metadata and metadata_type else None,
        error=run_error_from_task_error(row.get("error")),
        tags=_strings(row.get("runTags")),
        is_test=bool(row.get("isTest") or False),
        cost_in_cents=_number(row.get("costInCents")),
        base_cost_in_cents=_number(row.get("baseCostInCents")),
        duration_ms=_number(row.get("usageDurationMs")),
        realtime_streams=_strings(row.get("realtimeStreams")),
    )


def run_from_api(body: Any) -> RealtimeRun:
    """Build a RealtimeRun from a ``GET /api/v3/runs/{id}`` body (statuses already SDK names)."""
    if not isinstance(body, Mapping):
        raise ProtocolError("run body is not a JSON object")
    error = body.get("error")
    return RealtimeRun(
        id=_required_text(body, "id"),
        task_identifier=_required_text(body, "taskIdentifier"),
        status=_required_text(body, "status"),
        created_at=_required_timestamp(body, "createdAt"),
        updated_at=_required_timestamp(body, "updatedAt"),
        started_at=parse_shape_timestamp(body.get("startedAt")),
        finished_at=parse_shape_timestamp(body.get("finishedAt")),
        delayed_until=parse_shape_timestamp(body.get("delayedUntil")),
        expired_at=parse_shape_timestamp(body.get("expiredAt")),
        payload=body.get("payload"),
        output=body.get("output"),
        metadata=body.get("metadata"),
        error=(
            RunError(
                message=str(error.get("message", "")),
                name=_optional_str(error.get("name")),
                stack_trace=_optional_str(error.get("stackTrace")),
            )
            if isinstance(error, Mapping)
            else None
        ),
        tags=_strings(body.get("tags")),
        is_test=bool(body.get("isTest") or False),
        cost_in_cents=_number(body.get("costInCents")),
        base_cost_in_cents=_number(body.get("baseCostInCents")),
        duration_ms=_number(body.get("durationMs")),
    )
