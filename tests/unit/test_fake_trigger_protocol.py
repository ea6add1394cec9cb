"""The fake Trigger.dev server's pure pieces: token rules, scopes, shape and SSE encoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.fakes.trigger import encoding, protocol as proto

SECRET = "tr_dev_" + "a" * 24
NOW = 1_800_000_000.0


def _token(**overrides: object) -> str:
    claims = {"sub": "env_1", "pub": True, "scopes": ["read:runs:run_a"], **overrides}
    return proto.sign_token(claims, SECRET, now=NOW, expires_at=NOW + 60)


def test_signed_token_has_the_sdk_header_and_verifies() -> None:
    token = _token()
    header = json.loads(proto.jwt.utils.base64url_decode(token.split(".")[0]))
    assert header == {"alg": "HS256"}
    claims = proto.verify_public_token(token, SECRET, now=NOW)
    assert claims["iss"] == "https://id.trigger.dev"
    assert claims["aud"] == "https://api.trigger.dev"
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(
    ("token", "secret", "now", "reason"),
    [
        (_token(), "tr_dev_" + "b" * 24, NOW, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"),
        (_token(), SECRET, NOW + 60, "ERR_JWT_EXPIRED"),  # exp <= now, no tolerance
        (_token(pub=False), SECRET, NOW, "ERR_NOT_PUBLIC"),
        ("not.a.jwt", SECRET, NOW, "ERR_JWT_INVALID"),
    ],
    ids=["wrong-key", "expired", "not-public", "garbage"],
)
def test_bad_tokens_are_rejected(token: str, secret: str, now: float, reason: str) -> None:
    with pytest.raises(proto.TokenRejected) as caught:
        proto.verify_public_token(token, secret, now=now)
    assert caught.value.reason == reason


def test_tokens_issued_before_a_cutoff_count_as_expired() -> None:
    with pytest.raises(proto.TokenRejected, match="ERR_JWT_EXPIRED"):
        proto.verify_public_token(_token(), SECRET, now=NOW, issued_not_before=NOW + 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("15m", NOW + 900), ("1hr", NOW + 3600), ("2 days", NOW + 172800), (NOW + 5, NOW + 5)],
)
def test_expiration_grammar_matches_jose(value: str | float, expected: float) -> None:
    assert proto.expiration_to_epoch(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("scopes", "action", "allowed"),
    [
        (["read:runs:run_a"], "read", True),
        (["read:runs"], "read", True),
        (["read:all"], "read", True),
        (["read:tasks:enrich"], "read", True),
        (["read:tags:job:1"], "read", True),  # the id may contain colons
        (["admin"], "write", True),
        (["read:runs:run_b"], "read", False),
        (["write:runs:run_a"], "read", False),
        (["read:runs:run_a"], "write", False),
        # Empty parts count as absent, as in `parseScope`: an empty id is every run, `admin:`
        # is a bare admin, and an empty type or action grants nothing.
        (["read:runs:"], "read", True),
        (["admin:"], "write", True),
        (["admin:runs"], "read", False),
        (["read::run_a"], "read", False),
        ([":runs:run_a"], "read", False),
        (["*:runs:run_a"], "write", True),
        (["read:runs:run_a:x"], "read", False),
    ],
)
def test_scopes_follow_build_jwt_ability(scopes: list[str], action: str, allowed: bool) -> None:
    resources = [
        proto.Resource("runs", "run_a"),
        proto.Resource("tasks", "enrich"),
        proto.Resource("tags", "job:1"),
    ]
    assert proto.scopes_allow(scopes, action, resources) is allowed


def test_run_row_values_are_electric_strings() -> None:
    row = {
        "id": "c1",
        "createdAt": datetime(2025, 1, 1, 0, 0, 1, 123456, tzinfo=UTC),
        "isTest": False,
        "number": 3,
        "costInCents": 0.0,
        "runTags": ['job:"1"'],
        "realtimeStreams": [],
        "error": {"type": "STRING_ERROR", "raw": "x"},
    }
    value = encoding.serialize_run_row(row, skip=["payload", "status"])
    assert value["createdAt"] == "2025-01-01T00:00:01.123"
    assert value["isTest"] == "f"
    assert value["number"] == "3"
    assert value["costInCents"] == "0"
    assert value["runTags"] == '{"job:\\"1\\""}'
    assert value["realtimeStreams"] == "{}"
    assert value["error"] == '{"type":"STRING_ERROR","raw":"x"}'
    assert value["startedAt"] is None
    assert "payload" not in value
    assert "status" in value  # reserved columns cannot be skipped
    schema = json.loads(encoding.electric_schema_header(["payload"]))
    assert "payload" not in schema
    assert schema["runTags"] == {"type": "text", "dims": 1}


def test_empty_tags_are_null_and_partial_updates_keep_the_key() -> None:
    assert encoding.serialize_run_row({"runTags": []})["runTags"] is None
    changed = encoding.diff_values(
        {"id": "c1", "status": "PENDING"}, {"id": "c1", "status": "EXECUTING"}
    )
    assert changed == {"id": "c1", "status": "EXECUTING"}


def test_shape_bodies_end_up_to_date() -> None:
    message = encoding.change_message("c1", {"id": "c1"}, "insert")
    body = json.loads(encoding.shape_body([message]))
    assert body[0]["key"] == '"public"."TaskRun"/"c1"'
    assert body[-1] == {"headers": {"control": "up-to-date"}}
    assert json.loads(encoding.must_refetch_body()) == [{"headers": {"control": "must-refetch"}}]
    assert encoding.parse_offset_version(encoding.encode_offset(1735689600000, 7)) == 1735689600000
    assert encoding.parse_offset_version("-1") == 0


def test_sse_records_in_both_formats() -> None:
    assert encoding.sse_v1_data("17-0", '{"a":1}') == b'id: 17-0\ndata: {"a":1}\n\n'
    record = {
        "seq_num": 4,
        "timestamp": 1,
        "headers": [],
        "body": encoding.v2_record_body({"a": 1}, "abc"),
    }
    event = encoding.sse_v2_batch([record], count=5, size=20).decode()
    assert event.startswith("event: batch\nid: 4,5,20\ndata: ")
    data = json.loads(event.split("data: ", 1)[1])
    assert json.loads(data["records"][0]["body"]) == {"data": {"a": 1}, "id": "abc"}
    assert encoding.parse_v2_last_event_id("4") == 5
    assert encoding.parse_v2_last_event_id("4,5,20") == 5
    assert encoding.parse_v1_last_event_id("17-2") == (17, 2)


def test_metadata_operations_match_the_sdk() -> None:
    metadata = proto.apply_metadata_operations(
        {"done": 1, "items": [1, 2]},
        [
            {"type": "increment", "key": "done", "value": 2},
            {"type": "set", "key": "$.progress.total", "value": 5},
            {"type": "append", "key": "items", "value": 3},
            {"type": "remove", "key": "items", "value": 1},
            {"type": "append", "key": "log", "value": "x"},
            {"type": "delete", "key": "missing"},
            {"type": "set", "key": "__proto__", "value": 1},
        ],
    )
    assert metadata == {"done": 3, "items": [2, 3], "progress": {"total": 5}, "log": ["x"]}
    assert proto.apply_metadata_operations({"a": 1}, [{"type": "update", "value": {"b": 2}}]) == {
        "b": 2
    }


def test_status_names() -> None:
    assert proto.to_db_status("QUEUED") == "PENDING"
    assert proto.to_db_status("COMPLETED") == "COMPLETED_SUCCESSFULLY"
    assert proto.to_db_status("COMPLETED_WITH_ERRORS") == "COMPLETED_WITH_ERRORS"
    with pytest.raises(ValueError, match="unknown run status"):
        proto.to_db_status("DONE")
