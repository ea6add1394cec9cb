"""Run rows → RealtimeRun: status mapping, timestamps, packets, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from enrichment_app.trigger.errors import ProtocolError
from enrichment_app.trigger.runs import (
    RealtimeRun,
    RunError,
    parse_shape_timestamp,
    run_error_from_task_error,
    run_from_api,
    run_from_row,
    status_from_db,
)


@pytest.mark.parametrize(
    ("db", "sdk"),
    [
        ("DELAYED", "DELAYED"),
        ("PENDING", "QUEUED"),
        ("PENDING_VERSION", "PENDING_VERSION"),
        ("WAITING_FOR_DEPLOY", "PENDING_VERSION"),
        ("DEQUEUED", "DEQUEUED"),
        ("EXECUTING", "EXECUTING"),
        ("RETRYING_AFTER_FAILURE", "EXECUTING"),
        ("WAITING_TO_RESUME", "WAITING"),
        ("PAUSED", "WAITING"),
        ("CANCELED", "CANCELED"),
        ("COMPLETED_SUCCESSFULLY", "COMPLETED"),
        ("COMPLETED_WITH_ERRORS", "FAILED"),
        ("INTERRUPTED", "FAILED"),
        ("SYSTEM_FAILURE", "SYSTEM_FAILURE"),
        ("CRASHED", "CRASHED"),
        ("EXPIRED", "EXPIRED"),
        ("TIMED_OUT", "TIMED_OUT"),
        ("SOMETHING_NEW", "QUEUED"),
        (None, "QUEUED"),
    ],
)
def test_status_from_db(db, sdk):
    assert status_from_db(db) == sdk


def _run(status: str) -> RealtimeRun:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    return RealtimeRun(
        id="run_1", task_identifier="t", status=status, created_at=moment, updated_at=moment
    )


@pytest.mark.parametrize(
    ("status", "final", "success", "failed", "executing", "queued"),
    [
        ("QUEUED", False, False, False, False, True),
        ("DELAYED", False, False, False, False, True),
        ("PENDING_VERSION", False, False, False, False, True),
        ("DEQUEUED", False, False, False, True, False),
        ("EXECUTING", False, False, False, True, False),
        ("WAITING", False, False, False, False, False),
        ("COMPLETED", True, True, False, False, False),
        ("CANCELED", True, False, False, False, False),
        ("FAILED", True, False, True, False, False),
        ("CRASHED", True, False, True, False, False),
        ("SYSTEM_FAILURE", True, False, True, False, False),
        ("EXPIRED", True, False, True, False, False),
        ("TIMED_OUT", True, False, True, False, False),
    ],
)
def test_status_helpers(status, final, success, failed, executing, queued):
    run = _run(status)
    assert (run.is_final, run.is_success, run.is_failed, run.is_executing, run.is_queued) == (
        final,
        success,
        failed,
        executing,
        queued,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01 00:00:01.123", datetime(2025, 1, 1, 0, 0, 1, 123000, tzinfo=UTC)),
        ("2025-01-01T00:00:01.123456", datetime(2025, 1, 1, 0, 0, 1, 123000, tzinfo=UTC)),
        ("2025-01-01T00:00:01", datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC)),
        ("2025-01-01T00:00:01.000Z", datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC)),
        (None, None),
    ],
)
def test_parse_shape_timestamp_reads_zoneless_times_as_utc(text, expected):
    parsed = parse_shape_timestamp(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"type": "BUILT_IN_ERROR", "name": "Error", "message": "boom", "stackTrace": "at x"},
            RunError("boom", "Error", "at x"),
        ),
        ({"type": "STRING_ERROR", "raw": "bad"}, RunError("bad")),
        ({"type": "CUSTOM_ERROR", "raw": '{"a":1}'}, RunError('{"a":1}')),
        (
            {"type": "INTERNAL_ERROR", "code": "TASK_RUN_CRASHED"},
            RunError("trigger.dev internal error (TASK_RUN_CRASHED)"),
        ),
        (None, None),
    ],
)
def test_run_error_from_task_error(error, expected):
    assert run_error_from_task_error(error) == expected


ROW = {
    "id": "cm123",
    "friendlyId": "run_abc",
    "taskIdentifier": "process-enrichment-job",
    "status": "EXECUTING",
    "createdAt": "2025-01-01T00:00:00.000",
    "updatedAt": "2025-01-01T00:00:02.000",
    "startedAt": "2025-01-01T00:00:01.000",
    "delayUntil": None,
    "queuedAt": "2025-01-01T00:00:00.000",
    "expiredAt": None,
    "completedAt": None,
    "number": 1,
    "isTest": False,
    "usageDurationMs": 12,
    "costInCents": 0.5,
    "baseCostInCents": 0,
    "ttl": "10m",
    "payload": '{"json":{"jobId":"j1"}}',
    "payloadType": "application/super+json",
    "metadata": '{"progress":0.1}',
    "metadataType": "application/json",
    "output": None,
    "outputType": "application/json",
    "runTags": ["job:j1"],
    "error": None,
    "realtimeStreams": ["cells"],
}


def test_run_from_row_transforms_like_the_sdk():
    run = run_from_row(ROW)
    assert run.id == "run_abc"
    assert run.task_identifier == "process-enrichment-job"
    assert run.status == "EXECUTING"
    assert run.created_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert run.started_at == datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert run.finished_at is None
    assert run.payload == {"jobId": "j1"}
    assert run.metadata == {"progress": 0.1}
    assert run.output is None
    assert run.tags == ("job:j1",)
    assert run.realtime_streams == ("cells",)
    assert (run.duration_ms, run.cost_in_cents, run.base_cost_in_cents) == (12, 0.5, 0)
    assert run.is_executing and not run.is_final


@pytest.mark.parametrize(
    ("output", "output_type", "expected"),
    [
        ('{"ok":true}', "application/json", {"ok": True}),
        ('{"json":{"ok":true}}', "application/super+json", {"ok": True}),
        ("done", "text/plain", "done"),
        ("packets/run_abc/output.json", "application/store", "packets/run_abc/output.json"),
        (None, "application/json", None),
    ],
)
def test_run_from_row_parses_output_by_type(output, output_type, expected):
    row = {
        **ROW,
        "status": "COMPLETED_SUCCESSFULLY",
        "completedAt": "2025-01-01T00:00:09.000",
        "output": output,
        "outputType": output_type,
    }
    run = run_from_row(row)
    assert run.output == expected
    assert run.finished_at == datetime(2025, 1, 1, 0, 0, 9, tzinfo=UTC)
    assert run.is_success


def test_run_from_row_defaults_for_missing_columns():
    row = {k: ROW[k] for k in ("friendlyId", "taskIdentifier", "status", "createdAt", "updatedAt")}
    run = run_from_row(row)
    assert (run.tags, run.realtime_streams, run.is_test, run.duration_ms, run.metadata) == (
        (),
        (),
        False,
        0,
        None,
    )


def test_metadata_needs_both_value_and_type():
    assert run_from_row({**ROW, "metadataType": None}).metadata is None


def test_run_from_api():
    body = {
        "id": "run_abc",
        "taskIdentifier": "t",
        "status": "COMPLETED",
        "isTest": False,
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:09.000Z",
        "finishedAt": "2025-01-01T00:00:09.000Z",
        "tags": ["job:j1"],
        "costInCents": 0.5,
        "baseCostInCents": 0,
        "durationMs": 1234,
        "metadata": {"progress": 1},
        "output": {"ok": True},
        "error": {"message": "m", "name": "E"},
    }
    run = run_from_api(body)
    assert run.is_success and run.output == {"ok": True} and run.metadata == {"progress": 1}
    assert run.finished_at == datetime(2025, 1, 1, 0, 0, 9, tzinfo=UTC)
    assert run.error == RunError("m", "E")
    assert run.duration_ms == 1234


# Found by tests/fuzz/test_shape_decoders.py: a row the shape decoded but that is not a run
# raised KeyError, ValueError or TypeError out of subscribe_to_run and crashed the live feed.
GOOD_ROW = {
    "friendlyId": "run_1",
    "taskIdentifier": "t",
    "status": "EXECUTING",
    "createdAt": "2025-01-01T00:00:00.000",
    "updatedAt": "2025-01-01T00:00:01.000",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"friendlyId": None}, "run has no friendlyId", id="no id"),
        pytest.param({"taskIdentifier": None}, "run has no taskIdentifier", id="no task"),
        pytest.param({"createdAt": None}, "run has no createdAt", id="no createdAt"),
        pytest.param({"updatedAt": "[]"}, "is not a timestamp", id="updatedAt not a time"),
        pytest.param(
            {"startedAt": "0001-01-01T00:00:00+01:00"}, "is not a timestamp", id="out of range"
        ),
        pytest.param(
            {"metadata": "{", "metadataType": "application/json"}, "not valid JSON", id="packet"
        ),
    ],
)
def test_a_malformed_run_row_is_a_protocol_error(change, message):
    with pytest.raises(ProtocolError, match=message):
        run_from_row({**GOOD_ROW, **change})


def test_odd_but_harmless_row_fields_read_as_defaults():
    run = run_from_row(
        {**GOOD_ROW, "status": ["EXECUTING"], "runTags": 5, "realtimeStreams": "cells"}
    )
    assert (run.status, run.tags, run.realtime_streams) == ("QUEUED", (), ())


@pytest.mark.parametrize("body", [[], "run_1", {"taskIdentifier": "t"}])
def test_a_malformed_run_body_is_a_protocol_error(body):
    with pytest.raises(ProtocolError):
        run_from_api(body)
