"""Realtime streams (SSE, v1 and v2), fuzzed: the pure ``StreamDecoder`` and the whole read path.

The whole path is ``TriggerClient.read_stream`` over an injected ``httpx.MockTransport``: the
body's bytes go through httpx-sse's frame parser and then our decoder, exactly as in production.
Properties:

* chunks encoded the way the fake server (and Trigger.dev) encodes them come back unchanged;
* a body cut anywhere yields a prefix of those chunks, never an invented or mangled one;
* any bytes at all end in chunks or a ``TriggerApiError``, never another exception or a hang;
* the decoder alone raises nothing but ``StreamReadError`` (a v2 ``event: error``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from hypothesis import given, settings, strategies as st

from enrichment_app.trigger import TriggerApiError, TriggerNotFoundError
from enrichment_app.trigger.streams import StreamDecoder, StreamReadError
from tests.fakes.trigger.encoding import (
    dumps_chunk,
    sse_v1_data,
    sse_v1_ping,
    sse_v2_batch,
    sse_v2_done,
    sse_v2_ping,
    v2_record_body,
)
from tests.fuzz.client import drain
from tests.fuzz.strategies import DEEP_JSON, JSON_TEXT, JSON_VALUES, byte_prefixes

FUZZ = settings.get_profile("fuzz")
RUN = "run_fuzz"
CHUNKS = st.lists(JSON_VALUES, max_size=6)
"""What the worker writes into the ``cells`` stream: any JSON values."""


# --- the decoder alone -----------------------------------------------------------------

RECORD_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "seq_num": JSON_VALUES,
        "timestamp": JSON_VALUES,
        "headers": JSON_VALUES | st.lists(st.lists(st.text(max_size=3), max_size=2), max_size=2),
        "body": JSON_VALUES
        | JSON_TEXT
        | st.builds(v2_record_body, JSON_VALUES, st.text(max_size=6))
        | st.builds(
            lambda data, rid: dumps_chunk({"data": data, "id": rid}), JSON_VALUES, JSON_VALUES
        ),
    },
)
BATCH_DATA = (
    st.text(max_size=40)
    | JSON_TEXT
    | DEEP_JSON
    | st.builds(
        lambda records: dumps_chunk({"records": records}),
        st.lists(RECORD_FIELDS | JSON_VALUES, max_size=4),
    )
)
EVENTS = st.tuples(
    st.sampled_from(["v1", "v2"]),
    st.sampled_from(["", "message", "batch", "error", "ping"]) | st.text(max_size=6),
    BATCH_DATA,
    st.none() | st.text(max_size=24),
)


@settings(FUZZ)
@given(st.lists(EVENTS, min_size=1, max_size=5))
def test_any_event_decodes_to_parts_or_a_stream_error(
    events: list[tuple[str, str, str, str | None]],
) -> None:
    decoder = StreamDecoder()
    for version, event, data, event_id in events:
        try:
            parts = decoder.decode(version, event, data, event_id)
        except StreamReadError:
            assert (version, event) == ("v2", "error")
            continue
        assert (version, event) != ("v2", "error")
        for part in parts:
            assert isinstance(part.id, str)
            assert isinstance(part.timestamp, int)
        assert decoder.last_event_id is None or isinstance(decoder.last_event_id, str)


# --- the whole read path ---------------------------------------------------------------


def v1_body(chunks: list[Any]) -> bytes:
    frames = [sse_v1_ping()]
    for n, chunk in enumerate(chunks):
        frames.append(sse_v1_data(f"1735689600000-{n}", dumps_chunk(chunk)))
    return b"".join(frames)


def v2_body(chunks: list[Any]) -> bytes:
    records = [
        {
            "seq_num": n,
            "timestamp": 1735689600000 + n,
            "headers": [],
            "body": v2_record_body(c, f"r{n}"),
        }
        for n, c in enumerate(chunks)
    ]
    frames = [sse_v2_ping(1735689600000)]
    # Two records per batch, so a cut can fall between batches as well as inside one.
    for start in range(0, len(records), 2):
        batch = records[start : start + 2]
        frames.append(sse_v2_batch(batch, count=start + len(batch), size=100))
    frames.append(sse_v2_done())
    return b"".join(frames)


ENCODERS: dict[str, Callable[[list[Any]], bytes]] = {"v1": v1_body, "v2": v2_body}


def read(body: bytes, version: str) -> tuple[list[Any], TriggerApiError | None]:
    """Serve ``body`` once as the stream, then 404; return the chunks read and the error, if any."""
    served = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal served
        served += 1
        if served > 1:
            # A reconnect (after an ``event: error``): the stream is gone.
            return httpx.Response(404, json={"error": "Stream not found"})
        headers = {"content-type": "text/event-stream"}
        if version == "v2":
            headers["x-stream-version"] = "v2"
        return httpx.Response(200, headers=headers, content=body)

    return drain(handler, lambda client: client.read_stream(RUN, "cells", access_token="pat"))


@settings(FUZZ)
@given(st.sampled_from(["v1", "v2"]), CHUNKS)
def test_encoded_chunks_come_back_unchanged(version: str, chunks: list[Any]) -> None:
    read_chunks, error = read(ENCODERS[version](chunks), version)
    assert error is None
    assert read_chunks == chunks


@settings(FUZZ)
@given(st.sampled_from(["v1", "v2"]), st.data())
def test_a_body_cut_anywhere_yields_a_prefix_of_the_chunks(
    version: str, data: st.DataObject
) -> None:
    chunks = data.draw(CHUNKS)
    body = data.draw(byte_prefixes(ENCODERS[version](chunks)))
    read_chunks, error = read(body, version)
    assert error is None
    assert read_chunks == chunks[: len(read_chunks)]


SSE_LINES = st.lists(
    st.sampled_from(["data: ", "event: ", "id: ", "retry: ", ": ", ""]).flatmap(
        lambda field: st.builds(lambda value: field + value, BATCH_DATA)
    ),
    max_size=8,
).map(lambda lines: ("\n".join(lines) + "\n\n").encode())


@settings(FUZZ)
@given(st.sampled_from(["v1", "v2"]), st.binary(max_size=300) | SSE_LINES)
def test_any_bytes_end_in_chunks_or_a_trigger_api_error(version: str, body: bytes) -> None:
    _chunks, error = read(body, version)
    # The only way to fail is the v2 ``event: error`` path: reconnect, then the fake's 404.
    assert error is None or isinstance(error, TriggerNotFoundError), error
