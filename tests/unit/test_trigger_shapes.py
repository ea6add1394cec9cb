"""Electric shape decoding and the request/row state machine."""

from __future__ import annotations

import json

import pytest

from enrichment_app.trigger import TriggerApiError
from enrichment_app.trigger.shapes import (
    ShapeProtocolError,
    ShapeStream,
    decode_messages,
    decode_value,
    parse_pg_array,
)

SCHEMA = {
    "id": {"type": "text"},
    "isTest": {"type": "bool"},
    "number": {"type": "int4"},
    "costInCents": {"type": "float8"},
    "createdAt": {"type": "timestamp"},
    "error": {"type": "jsonb"},
    "runTags": {"type": "text", "dims": 1},
    "status": {"type": "text"},
}
KEY = '"public"."TaskRun"/"cm123"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{}", []),
        ('{"job:j1","env:staging"}', ["job:j1", "env:staging"]),
        ("{a,b}", ["a", "b"]),
        ("{NULL,x}", [None, "x"]),
        ('{"NULL"}', ["NULL"]),
        ('{"with \\"quote\\"","back\\\\slash"}', ['with "quote"', "back\\slash"]),
        ('{"a,b","c}"}', ["a,b", "c}"]),
        ("{{1,2},{3}}", [["1", "2"], ["3"]]),
    ],
)
def test_parse_pg_array(text, expected):
    assert parse_pg_array(text) == expected


def test_parse_pg_array_applies_the_item_parser():
    assert parse_pg_array("{1,2,NULL}", int) == [1, 2, None]


@pytest.mark.parametrize("text", ["", "a,b", '{"open', "{a,b"])
def test_parse_pg_array_refuses_malformed_literals(text):
    with pytest.raises(ShapeProtocolError):
        parse_pg_array(text)


@pytest.mark.parametrize(
    ("value", "column", "expected"),
    [
        ("t", {"type": "bool"}, True),
        ("f", {"type": "bool"}, False),
        ("true", {"type": "bool"}, True),
        ("1234", {"type": "int4"}, 1234),
        ("0.5", {"type": "float8"}, 0.5),
        ("0", {"type": "float8"}, 0),
        ("9007199254740993", {"type": "int8"}, 9007199254740993),
        (
            '{"type":"STRING_ERROR","raw":"x"}',
            {"type": "jsonb"},
            {"type": "STRING_ERROR", "raw": "x"},
        ),
        ("2025-01-01 00:00:01.123", {"type": "timestamp"}, "2025-01-01 00:00:01.123"),
        ("EXECUTING", {"type": "TaskRunStatus"}, "EXECUTING"),
        ('{"a"}', {"type": "text", "dims": 1}, ["a"]),
        (None, {"type": "bool"}, None),
        ("raw", None, "raw"),
    ],
)
def test_decode_value(value, column, expected):
    assert decode_value(value, column) == expected


def test_decode_messages_decodes_values_and_keeps_controls():
    body = json.dumps(
        [
            {
                "key": KEY,
                "headers": {"operation": "insert"},
                "value": {
                    "id": "cm123",
                    "isTest": "f",
                    "number": "1",
                    "runTags": '{"job:j1"}',
                    "unknown": "x",
                },
            },
            {"headers": {"control": "up-to-date"}},
        ]
    )
    messages = decode_messages(body, SCHEMA)
    assert messages[0]["value"] == {
        "id": "cm123",
        "isTest": False,
        "number": 1,
        "runTags": ["job:j1"],
        "unknown": "x",
    }
    assert messages[1] == {"headers": {"control": "up-to-date"}}


@pytest.mark.parametrize("body", ['{"not": "a list"}', "[1]"])
def test_decode_messages_refuses_non_arrays(body):
    with pytest.raises(ShapeProtocolError):
        decode_messages(body, {})


def test_empty_body_is_no_messages():
    assert decode_messages("", {}) == []


def _snapshot_headers(handle="h1", offset="0_1"):
    return {
        "electric-handle": handle,
        "electric-offset": offset,
        "electric-schema": json.dumps(SCHEMA),
    }


def _live_headers(handle="h1", offset="0_2", cursor="c1"):
    return {"electric-handle": handle, "electric-offset": offset, "electric-cursor": cursor}


def _insert(**value):
    return {"key": KEY, "headers": {"operation": "insert"}, "value": value}


def _update(**value):
    return {"key": KEY, "headers": {"operation": "update"}, "value": value}


UP_TO_DATE = {"headers": {"control": "up-to-date"}}


def test_request_params_follow_the_electric_sequence():
    shape = ShapeStream()
    assert shape.request_params() == [("log", "full"), ("offset", "-1")]
    shape.accept_response(
        _snapshot_headers(), json.dumps([_insert(id="cm123", status="PENDING"), UP_TO_DATE])
    )
    assert shape.request_params() == [
        ("cursor", ""),
        ("handle", "h1"),
        ("live", "true"),
        ("log", "full"),
        ("offset", "0_1"),
    ]
    shape.accept_response(_live_headers(cursor="c9"), json.dumps([UP_TO_DATE]))
    assert shape.request_params({"skipColumns": "payload,output"}) == [
        ("cursor", "c9"),
        ("handle", "h1"),
        ("live", "true"),
        ("log", "full"),
        ("offset", "0_2"),
        ("skipColumns", "payload,output"),
    ]


def test_rows_are_emitted_only_when_a_batch_reaches_up_to_date():
    shape = ShapeStream()
    first = shape.accept_response(
        _snapshot_headers(), json.dumps([_insert(id="cm123", status="PENDING")])
    )
    assert first == []
    assert not shape.up_to_date
    assert shape.request_params() == [("handle", "h1"), ("log", "full"), ("offset", "0_1")]
    second = shape.accept_response(
        _snapshot_headers(offset="0_2"), json.dumps([_update(status="EXECUTING"), UP_TO_DATE])
    )
    assert second == [{"id": "cm123", "status": "EXECUTING"}]


def test_partial_updates_merge_into_the_row_and_emit_one_row_per_key():
    shape = ShapeStream()
    shape.accept_response(
        _snapshot_headers(),
        json.dumps([_insert(id="cm123", status="PENDING", number="1"), UP_TO_DATE]),
    )
    rows = shape.accept_response(
        _live_headers(), json.dumps([_update(status="EXECUTING"), _update(isTest="t"), UP_TO_DATE])
    )
    assert rows == [{"id": "cm123", "status": "EXECUTING", "number": 1, "isTest": True}]


def test_bare_up_to_date_emits_nothing_and_delete_is_ignored():
    shape = ShapeStream()
    shape.accept_response(_snapshot_headers(), json.dumps([_insert(id="cm123"), UP_TO_DATE]))
    assert shape.accept_response(_live_headers(), json.dumps([UP_TO_DATE])) == []
    delete = {"key": KEY, "headers": {"operation": "delete"}, "value": {"id": "cm123"}}
    assert shape.accept_response(_live_headers(), json.dumps([delete, UP_TO_DATE])) == []


@pytest.mark.parametrize(
    ("live", "headers"),
    [
        (False, {"electric-handle": "h", "electric-offset": "1"}),  # no schema
        (True, {"electric-handle": "h", "electric-offset": "1"}),  # no cursor
        (False, {"electric-offset": "1", "electric-schema": "{}"}),  # no handle
    ],
)
def test_missing_required_headers_are_refused_without_changing_state(live, headers):
    shape = ShapeStream(up_to_date=live, offset="0_5", handle="old")
    with pytest.raises(ShapeProtocolError, match="missing headers"):
        shape.accept_response(headers, "[]")
    assert (shape.offset, shape.handle) == ("0_5", "old")


def test_must_refetch_restarts_from_scratch_with_the_expired_handle():
    shape = ShapeStream()
    shape.accept_response(
        _snapshot_headers(), json.dumps([_insert(id="cm123", status="EXECUTING"), UP_TO_DATE])
    )
    shape.must_refetch("h2")
    assert shape.request_params() == [
        ("expired_handle", "h1"),
        ("handle", "h2"),
        ("log", "full"),
        ("offset", "-1"),
    ]
    # The fresh snapshot repeats the row unchanged: not handed out a second time.
    repeat = shape.accept_response(
        _snapshot_headers("h2", "5_0"),
        json.dumps([_insert(id="cm123", status="EXECUTING"), UP_TO_DATE]),
    )
    assert repeat == []
    # A changed row after the refetch is handed out.
    changed = shape.accept_response(
        _live_headers("h2", "5_1"),
        json.dumps([_update(status="COMPLETED_SUCCESSFULLY"), UP_TO_DATE]),
    )
    assert changed == [{"id": "cm123", "status": "COMPLETED_SUCCESSFULLY"}]


def test_must_refetch_without_a_new_handle_derives_one():
    shape = ShapeStream(handle="h1")
    shape.must_refetch(None)
    assert shape.handle == "h1-next"
    assert shape.expired_handle == "h1"


def test_refetched_snapshot_with_a_changed_row_is_emitted():
    shape = ShapeStream()
    shape.accept_response(
        _snapshot_headers(), json.dumps([_insert(id="cm123", status="EXECUTING"), UP_TO_DATE])
    )
    shape.must_refetch("h2")
    rows = shape.accept_response(
        _snapshot_headers("h2"),
        json.dumps([_insert(id="cm123", status="COMPLETED_SUCCESSFULLY"), UP_TO_DATE]),
    )
    assert rows == [{"id": "cm123", "status": "COMPLETED_SUCCESSFULLY"}]


# Found by tests/fuzz/test_shape_decoders.py: these raised JSONDecodeError, ValueError,
# AttributeError or RecursionError instead of the module's one error type.
@pytest.mark.parametrize(
    ("body", "schema"),
    [
        pytest.param("[{", {}, id="body cut short"),
        pytest.param("[" * 100_000 + "]" * 100_000, {}, id="body nested too deep"),
        pytest.param(
            json.dumps([{"key": KEY, "headers": ["insert"], "value": {}}]), {}, id="headers a list"
        ),
        pytest.param(
            json.dumps([{"key": KEY, "headers": {"operation": "insert"}, "value": [1]}]),
            {},
            id="value a list",
        ),
        pytest.param(
            json.dumps([{"key": KEY, "headers": {}, "value": {"number": "x"}}]),
            {"number": {"type": "int8"}},
            id="int8 not a number",
        ),
        pytest.param(
            json.dumps([{"key": KEY, "headers": {}, "value": {"error": "{"}}]),
            {"error": {"type": "jsonb"}},
            id="jsonb not JSON",
        ),
        pytest.param(
            json.dumps([{"key": KEY, "headers": {}, "value": {"runTags": "{" * 5000}}]),
            {"runTags": {"type": "text", "dims": 1}},
            id="array nested too deep",
        ),
    ],
)
def test_malformed_shape_messages_are_a_shape_protocol_error(body, schema):
    with pytest.raises(ShapeProtocolError):
        decode_messages(body, schema)


def test_a_malformed_schema_header_is_refused_and_changes_nothing():
    shape = ShapeStream()
    headers = {"electric-handle": "h1", "electric-offset": "0_1", "electric-schema": '{"a": 1}'}
    with pytest.raises(ShapeProtocolError, match="electric-schema"):
        shape.accept_response(headers, "[]")
    with pytest.raises(ShapeProtocolError, match="electric-schema"):
        shape.accept_response({**headers, "electric-schema": "{"}, "[]")
    assert (shape.handle, shape.offset, shape.schema) == (None, "-1", None)


def test_shape_protocol_errors_are_trigger_api_errors():
    """The client and the hub handle TriggerApiError; a decoding failure must be one."""
    with pytest.raises(TriggerApiError) as caught:
        parse_pg_array("{" * 5000)
    assert isinstance(caught.value, ShapeProtocolError)
    assert "nested too deeply" in caught.value.message


@pytest.mark.parametrize("name", ["electric-handle", "electric-offset", "electric-cursor"])
def test_a_position_header_too_long_to_send_back_is_refused(name):
    """Found by tests/fuzz: the client echoes these in the next URL, and a 64 KiB one made
    httpx raise InvalidURL out of subscribe_to_run."""
    shape = ShapeStream()
    headers = {
        "electric-handle": "h1",
        "electric-offset": "0_1",
        "electric-schema": "{}",
        "electric-cursor": "1",
        name: "x" * 70_000,
    }
    with pytest.raises(ShapeProtocolError, match=f"{name} is longer than 1024"):
        shape.accept_response(headers, "[]")
    assert (shape.handle, shape.offset, shape.cursor) == (None, "-1", "")
    with pytest.raises(ShapeProtocolError, match="electric-handle is longer"):
        shape.must_refetch("h" * 70_000)
