"""Realtime runs, fuzzed: Postgres array literals, shape messages, run rows and IO packets.

Encoders exist for all of them, so the first property is always a round trip: the fake
server's serializer (``tests/fakes/trigger/encoding.py``, byte-faithful to Trigger.dev's) and
``stringify_io`` on one side, our decoders on the other. Then random and truncated input must
decode or raise ``ProtocolError`` (a ``TriggerApiError``), and ``subscribe_to_run`` over any
response body must yield runs or raise ``TriggerApiError``: never IndexError, KeyError,
TypeError or RecursionError, which would take the whole live feed down.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import assume, given, settings, strategies as st

from enrichment_app.trigger import TriggerApiError
from enrichment_app.trigger.errors import ProtocolError
from enrichment_app.trigger.packets import JSON, SUPER_JSON, parse_packet, stringify_io
from enrichment_app.trigger.runs import RealtimeRun, run_from_row, status_from_db
from enrichment_app.trigger.shapes import ShapeStream, parse_pg_array
from tests.fakes.trigger.encoding import (
    change_message,
    electric_schema_header,
    serialize_run_row,
    shape_body,
)
from tests.fuzz.client import drain
from tests.fuzz.strategies import DEEP_JSON, JSON_TEXT, JSON_VALUES, prefixes

FUZZ = settings.get_profile("fuzz")

# --- Postgres array literals -----------------------------------------------------------

PG_SPECIAL = frozenset('{}",\\')
PgValue = str | None | list[Any]
PG_VALUES: st.SearchStrategy[list[PgValue]] = st.lists(
    st.recursive(
        st.none() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3),
        max_leaves=10,
    ),
    max_size=4,
)


def pg_item(value: PgValue, *, quote_all: bool) -> str:
    """One element as Postgres's ``array_out`` writes it (quoted when it must be)."""
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return pg_literal(value, quote_all=quote_all)
    plain = (
        value
        and not (PG_SPECIAL & set(value))
        and not any(ch.isspace() for ch in value)
        and value.upper() != "NULL"
    )
    if plain and not quote_all:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pg_literal(values: list[PgValue], *, quote_all: bool = False) -> str:
    return "{" + ",".join(pg_item(v, quote_all=quote_all) for v in values) + "}"


@settings(FUZZ)
@given(PG_VALUES, st.booleans())
def test_pg_array_literals_round_trip(values: list[PgValue], quote_all: bool) -> None:
    assert parse_pg_array(pg_literal(values, quote_all=quote_all)) == values


PG_TEXT = st.text(alphabet=st.sampled_from(list('{}",\\NUL ab1\n')), max_size=40)


@settings(FUZZ)
@given(PG_TEXT | st.text(max_size=40) | PG_VALUES.map(pg_literal).flatmap(prefixes))
def test_any_text_is_an_array_or_a_protocol_error(text: str) -> None:
    try:
        parsed = parse_pg_array(text)
    except ProtocolError:
        return
    assert isinstance(parsed, list)


@settings(FUZZ)
@given(st.integers(min_value=1, max_value=20_000), st.sampled_from(["", "}", "a}"]))
def test_arrays_nested_too_deep_are_a_protocol_error(depth: int, tail: str) -> None:
    text = "{" * depth + tail * depth
    try:
        parsed = parse_pg_array(text)
    except ProtocolError:
        return
    assert isinstance(parsed, list)


# --- runs over the shape protocol: the round trip --------------------------------------

MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
"""Timestamps as Postgres and JavaScript hold them: UTC, whole milliseconds."""
DB_STATUSES = st.sampled_from(
    ["PENDING", "DEQUEUED", "EXECUTING", "COMPLETED_SUCCESSFULLY", "CANCELED", "CRASHED"]
)
PACKET_KEYS = st.text(
    alphabet=st.characters(blacklist_characters="\\", blacklist_categories=["Cs"]), max_size=6
) | st.sampled_from([".", "a.b", "..", "0", "$"])
"""Object keys, dots included. Not backslashes: superjson 2.2.1 (the SDK's) escapes a dot in a
path as a backslash and a dot, but not a backslash, so a key ending in one is ambiguous."""
PACKET_VALUES = st.recursive(
    JSON_VALUES | MOMENTS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(PACKET_KEYS, inner, max_size=3),
    max_leaves=8,
)
"""What a task puts in its payload, output or metadata: JSON plus Dates."""


@st.composite
def native_runs(draw: st.DrawFn) -> dict[str, Any]:
    created = draw(MOMENTS)
    return {
        "id": draw(st.text(min_size=1, max_size=12)),
        "friendlyId": "run_" + draw(st.text(max_size=12)),
        "taskIdentifier": draw(st.text(min_size=1, max_size=20)),
        "createdAt": created,
        "updatedAt": created + timedelta(milliseconds=draw(st.integers(0, 2 * 86_400_000))),
        "completedAt": draw(st.none() | MOMENTS),
        "status": draw(DB_STATUSES),
        "number": draw(st.integers(0, 2**31 - 1)),
        "isTest": draw(st.booleans()),
        "costInCents": draw(st.floats(0, 1e6)),
        "runTags": draw(st.lists(st.text(max_size=10), max_size=4)),
        "metadata": draw(PACKET_VALUES),
        "error": draw(
            st.none()
            | st.builds(dict, type=st.just("STRING_ERROR"), raw=st.text(max_size=20))
            | st.builds(dict, type=st.just("BUILT_IN_ERROR"), message=st.text(max_size=20))
        ),
    }


def wire_row(run: dict[str, Any]) -> dict[str, Any]:
    """The row as the server stores it: metadata as a packet, then every column serialized."""
    packet = stringify_io(run["metadata"])
    return serialize_run_row({**run, "metadata": packet.data, "metadataType": packet.data_type})


def shape_headers(offset: str = "0_1") -> dict[str, str]:
    return {
        "electric-handle": "h1",
        "electric-offset": offset,
        "electric-schema": electric_schema_header(),
        "electric-cursor": "1",
    }


@settings(FUZZ)
@given(native_runs())
def test_runs_round_trip_through_the_shape_protocol(run: dict[str, Any]) -> None:
    body = shape_body([change_message("cm1", wire_row(run), "insert")]).decode()
    [row] = ShapeStream().accept_response(shape_headers(), body)
    decoded = run_from_row(row)

    assert decoded.id == run["friendlyId"]
    assert decoded.task_identifier == run["taskIdentifier"]
    assert decoded.status == status_from_db(run["status"])
    assert decoded.created_at == run["createdAt"]
    assert decoded.updated_at == run["updatedAt"]
    assert decoded.finished_at == run["completedAt"]
    assert decoded.is_test == run["isTest"]
    assert decoded.cost_in_cents == run["costInCents"]
    assert decoded.tags == tuple(run["runTags"])
    # An empty text packet is "no value" by the SDK's rule, like an absent one.
    expected_metadata = None if run["metadata"] in (None, "") else run["metadata"]
    assert decoded.metadata == expected_metadata
    if run["error"] is not None:
        assert decoded.error is not None
        assert decoded.error.message == run["error"].get("raw", run["error"].get("message"))


@settings(FUZZ)
@given(PACKET_VALUES)
def test_packets_round_trip(value: Any) -> None:
    packet = stringify_io(value)
    assume(packet.data)  # an empty text packet is "no value", by the SDK's rule
    assert (
        parse_packet(packet.data, packet.data_type) == value
    )  # Dates come back as equal datetimes


# --- random and truncated shape responses ----------------------------------------------

COLUMN_TYPES = st.sampled_from(
    ["int2", "int4", "int8", "bool", "float4", "float8", "json", "jsonb", "text", "timestamp"]
)
SCHEMAS = st.dictionaries(
    st.sampled_from(["a", "b", "friendlyId", "createdAt"]),
    st.fixed_dictionaries({"type": COLUMN_TYPES}, optional={"dims": st.integers(0, 2)}),
    max_size=4,
)
CELL_VALUES = st.none() | st.text(max_size=12) | JSON_TEXT | DEEP_JSON | PG_VALUES.map(pg_literal)
CHANGE_MESSAGES = st.fixed_dictionaries(
    {},
    optional={
        "key": JSON_VALUES,
        "value": st.dictionaries(st.sampled_from(["a", "b", "friendlyId"]), CELL_VALUES)
        | JSON_VALUES,
        "old_value": JSON_VALUES,
        "headers": JSON_VALUES
        | st.fixed_dictionaries(
            {},
            optional={"operation": st.sampled_from(["insert", "update", "delete"]) | JSON_VALUES},
        )
        | st.just({"control": "up-to-date"}),
    },
)
BODIES = (
    st.text(max_size=60)
    | DEEP_JSON
    | JSON_TEXT
    | st.lists(CHANGE_MESSAGES | JSON_VALUES, max_size=4).map(json.dumps)
    | native_runs()
    .map(lambda run: shape_body([change_message("cm1", wire_row(run), "insert")]).decode())
    .flatmap(prefixes)
)
LONG_TOKENS = st.sampled_from([1025, 70_000]).map(lambda n: "h" * n)
"""Over the 64 KiB an URL may have once the client sends the token back."""
HEADER_SETS = (
    st.dictionaries(
        st.sampled_from(
            ["electric-handle", "electric-offset", "electric-schema", "electric-cursor"]
        ),
        st.text(max_size=12) | SCHEMAS.map(json.dumps) | JSON_TEXT | DEEP_JSON | LONG_TOKENS,
    )
    | st.just(shape_headers())
    | LONG_TOKENS.map(lambda token: {**shape_headers(), "electric-handle": token})
)


@settings(FUZZ)
@given(st.lists(st.tuples(HEADER_SETS, BODIES), min_size=1, max_size=3))
def test_any_shape_response_gives_rows_or_a_protocol_error_and_a_bad_one_changes_nothing(
    responses: list[tuple[dict[str, str], str]],
) -> None:
    shape = ShapeStream()
    for headers, body in responses:
        before = (shape.offset, shape.handle, shape.cursor, shape.up_to_date, shape.schema)
        try:
            rows = shape.accept_response(headers, body)
        except ProtocolError:
            after = (shape.offset, shape.handle, shape.cursor, shape.up_to_date, shape.schema)
            assert after == before
            continue
        for row in rows:
            try:
                run = run_from_row(row)
            except ProtocolError:
                continue
            assert isinstance(run, RealtimeRun)


ROWS = st.dictionaries(
    st.sampled_from(
        [
            "friendlyId",
            "taskIdentifier",
            "createdAt",
            "updatedAt",
            "completedAt",
            "status",
            "payload",
            "payloadType",
            "output",
            "outputType",
            "metadata",
            "metadataType",
            "error",
            "runTags",
            "realtimeStreams",
            "costInCents",
            "isTest",
        ]
    ),
    JSON_VALUES
    | MOMENTS.map(lambda moment: moment.isoformat())
    | st.sampled_from(["application/json", SUPER_JSON, "text/plain", "2025-13-45T99:00:00"]),
)


@settings(FUZZ)
@given(ROWS)
def test_any_row_is_a_run_or_a_protocol_error(row: dict[str, Any]) -> None:
    try:
        run = run_from_row(row)
    except ProtocolError:
        return
    assert isinstance(run, RealtimeRun)


SUPERJSON_META = st.dictionaries(
    st.text(alphabet="ab.0\\", max_size=5),
    st.lists(
        st.sampled_from(["Date", "bigint", "number", "undefined", "map", "set", "Error", "regexp"]),
        min_size=1,
        max_size=2,
    )
    | JSON_VALUES,
    max_size=3,
)
PACKET_DATA = (
    st.text(max_size=40)
    | JSON_TEXT
    | DEEP_JSON
    | st.builds(
        lambda value, meta: json.dumps({"json": value, "meta": {"values": meta}}),
        JSON_VALUES,
        SUPERJSON_META | JSON_VALUES,
    )
    | PACKET_VALUES.map(lambda value: stringify_io(value).data or "").flatmap(prefixes)
)


@settings(FUZZ)
@given(
    PACKET_DATA,
    st.sampled_from(["application/json", SUPER_JSON, "text/plain", "application/store"])
    | st.none(),
)
def test_any_packet_is_a_value_or_a_protocol_error(data: str, data_type: str | None) -> None:
    try:
        value = parse_packet(data, data_type)
    except ProtocolError:
        assert data_type in (JSON, SUPER_JSON)
        return
    if data_type not in (JSON, SUPER_JSON):
        assert value == (data or None)  # text and stored packets are handed on as they are


# --- the whole subscription ------------------------------------------------------------


def subscribe(
    headers: dict[str, str], body: str
) -> tuple[list[RealtimeRun], TriggerApiError | None]:
    """Answer the first poll with ``headers`` and ``body``, later ones with 404."""
    polls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal polls
        polls += 1
        if polls > 1:
            return httpx.Response(404, json={"error": "Run not found"})
        # Header values go out as UTF-8 bytes, as a server may send them; httpx decodes them.
        raw_headers = [(name.encode(), value.encode()) for name, value in headers.items()]
        return httpx.Response(200, headers=raw_headers, content=body.encode())

    return drain(handler, lambda client: client.subscribe_to_run("run_1", access_token="pat"))


@settings(FUZZ)
@given(HEADER_SETS, BODIES)
def test_a_subscription_over_any_response_yields_runs_or_a_trigger_api_error(
    headers: dict[str, str], body: str
) -> None:
    runs, error = subscribe(headers, body)
    assert all(isinstance(run, RealtimeRun) for run in runs)
    assert error is not None or runs  # it ends with the 404 unless a final run ended it first


@settings(FUZZ)
@given(native_runs())
def test_a_subscription_delivers_an_encoded_run(run: dict[str, Any]) -> None:
    body = shape_body([change_message("cm1", wire_row(run), "insert")]).decode()
    runs, _error = subscribe(shape_headers(), body)
    assert [r.id for r in runs] == [run["friendlyId"]]
