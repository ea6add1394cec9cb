"""Realtime stream SSE decoding, v1 and v2."""

from __future__ import annotations

import json

import pytest

from enrichment_app.trigger.streams import StreamDecoder, StreamReadError, redis_id_timestamp


def _batch(*records: dict[str, object]) -> str:
    return json.dumps({"records": list(records)})


def _record(seq: int, chunk: object, record_id: str | None, headers: list[list[str]] | None = None):
    body = json.dumps({"data": chunk, "id": record_id}) if record_id is not None else ""
    return {
        "seq_num": seq,
        "timestamp": 1735689600000 + seq,
        "headers": headers or [],
        "body": body,
    }


def test_v1_events_parse_json_and_track_the_id():
    decoder = StreamDecoder()
    parts = decoder.decode("v1", "", '{"cell":"a1"}', "1735689600000-0")
    assert [(p.id, p.chunk, p.timestamp) for p in parts] == [
        ("1735689600000-0", {"cell": "a1"}, 1735689600000)
    ]
    assert decoder.last_event_id == "1735689600000-0"


def test_v1_non_json_data_stays_text():
    assert StreamDecoder().decode("v1", "", "plain words", "1-0")[0].chunk == "plain words"


def test_v1_event_without_data_yields_nothing():
    decoder = StreamDecoder("1-0")
    assert decoder.decode("v1", "message", "", "1-0") == []
    assert decoder.last_event_id == "1-0"


def test_v2_batch_records_use_seq_num_and_unwrap_data():
    decoder = StreamDecoder()
    parts = decoder.decode(
        "v2", "batch", _batch(_record(0, {"n": 1}, "abc1234"), _record(1, "two", "def5678")), None
    )
    assert [(p.id, p.chunk, p.record_id) for p in parts] == [
        ("0", {"n": 1}, "abc1234"),
        ("1", "two", "def5678"),
    ]
    assert decoder.last_event_id == "1"


def test_v2_deduplicates_by_record_id_across_batches():
    decoder = StreamDecoder()
    decoder.decode("v2", "batch", _batch(_record(0, "a", "id-a")), None)
    parts = decoder.decode(
        "v2", "batch", _batch(_record(0, "a", "id-a"), _record(1, "b", "id-b")), None
    )
    assert [p.chunk for p in parts] == ["b"]


def test_v2_skips_command_records_but_advances_the_resume_id():
    decoder = StreamDecoder()
    parts = decoder.decode(
        "v2", "batch", _batch(_record(7, None, None, headers=[["", "trim"]])), None
    )
    assert parts == []
    assert decoder.last_event_id == "7"


def test_v2_ping_and_unknown_events_yield_nothing():
    decoder = StreamDecoder("3")
    assert decoder.decode("v2", "ping", "{}", None) == []
    assert decoder.decode("v2", "batch", "not json", None) == []
    assert decoder.last_event_id == "3"


def test_v2_error_event_raises():
    with pytest.raises(StreamReadError, match="Stream read failed: boom"):
        StreamDecoder().decode("v2", "error", "boom", None)


@pytest.mark.parametrize(
    ("event_id", "expected"), [("1735689600000-3", 1735689600000), ("x-1", 42), (None, 42)]
)
def test_redis_id_timestamp(event_id, expected):
    assert redis_id_timestamp(event_id, now_ms=42) == expected


@pytest.mark.parametrize(
    "malformed",
    [
        pytest.param({"seq_num": 1, "headers": {"a": "b"}}, id="headers an object"),
        pytest.param({"seq_num": 1, "headers": [{"name": ""}]}, id="a header not a pair"),
        pytest.param({"seq_num": 1, "timestamp": {"ms": 1}}, id="timestamp an object"),
        pytest.param({"seq_num": 1, "timestamp": "soon"}, id="timestamp not a number"),
        pytest.param({"seq_num": 1, "body": json.dumps({"data": 1, "id": ["x"]})}, id="id a list"),
        pytest.param({"seq_num": 1, "body": {"data": 1}}, id="body not a string"),
        pytest.param({"seq_num": 1, "body": "[" * 100_000}, id="body nested too deep"),
    ],
)
def test_v2_malformed_records_never_raise_and_the_good_ones_still_arrive(malformed):
    """Found by tests/fuzz: a malformed record raised KeyError or TypeError out of read_stream,
    which stopped the run's live feed (status included) instead of skipping the record."""
    decoder = StreamDecoder()
    parts = decoder.decode("v2", "batch", _batch(malformed, _record(2, {"n": 2}, "good-id")), None)
    assert [p.chunk for p in parts][-1] == {"n": 2}
    assert all(isinstance(p.timestamp, int) for p in parts)
    assert decoder.last_event_id == "2"


def test_data_nested_too_deep_stays_text():
    deep = "[" * 100_000
    assert StreamDecoder().decode("v1", "", deep, "1-0")[0].chunk == deep
