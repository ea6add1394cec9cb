"""The fake Trigger.dev server's own behaviour that the SDK conformance suite does not reach."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.trigger import FakeTrigger, RunControl, encoding, protocol as proto

REALTIME_HEADERS = {
    "x-trigger-electric-version": "1.0.0-beta.1",
    "x-trigger-api-version": "2025-07-16",
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeTrigger]:
    server = FakeTrigger(live_poll_timeout=2.0, stream_timeout=1.0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client(fake: FakeTrigger, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=fake.url, headers={"Authorization": f"Bearer {token}", **REALTIME_HEADERS}
    )


async def test_binds_loopback_and_answers_cors_like_trigger_dev(fake: FakeTrigger) -> None:
    assert fake.url.startswith("http://127.0.0.1:")
    run_id = fake.create_run("enrich")
    async with httpx.AsyncClient(base_url=fake.url) as http:
        preflight = await http.options(
            f"/realtime/v1/runs/{run_id}",
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization,x-trigger-electric-version",
            },
        )
        snapshot = await http.get(
            f"/realtime/v1/runs/{run_id}?offset=-1&log=full",
            headers={
                "Authorization": f"Bearer {fake.secret_key}",
                "Origin": "http://localhost:3000",
            },
        )
        denied = await http.get(
            f"/api/v3/runs/{run_id}", headers={"Origin": "http://localhost:3000"}
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert (
        preflight.headers["access-control-allow-headers"]
        == "authorization,x-trigger-electric-version"
    )
    assert preflight.headers["access-control-max-age"] == "300"
    assert snapshot.headers["access-control-allow-origin"] == "*"
    assert snapshot.headers["access-control-expose-headers"] == "*"
    assert denied.status_code == 401
    assert denied.json() == proto.MISSING_API_KEY_BODY
    assert denied.headers["access-control-allow-origin"] == "http://localhost:3000"


async def test_expired_tokens_get_401_and_fresh_ones_pass(fake: FakeTrigger) -> None:
    run_id = fake.create_run("enrich")
    old = fake.mint_token([f"read:runs:{run_id}"])
    async with _client(fake, old) as http:
        assert (await http.get(f"/api/v3/runs/{run_id}")).status_code == 200
        fake.expire_tokens()
        expired = await http.get(f"/api/v3/runs/{run_id}")
    assert expired.status_code == 401
    assert expired.json() == proto.INVALID_PUBLIC_TOKEN_BODY
    fake.advance_clock(2)  # a token minted in a later second is not caught by the cutoff
    fresh = fake.mint_token([f"read:runs:{run_id}"])
    async with _client(fake, fresh) as http:
        assert (await http.get(f"/api/v3/runs/{run_id}")).status_code == 200


async def test_unknown_run_is_404_before_scope_403(fake: FakeTrigger) -> None:
    run_id = fake.create_run("enrich")
    token = fake.mint_token(["read:runs:run_other"])
    async with _client(fake, token) as http:
        missing = await http.get("/realtime/v1/runs/run_missing?offset=-1")
        forbidden = await http.get(f"/realtime/v1/runs/{run_id}?offset=-1")
    assert missing.status_code == 404
    assert missing.headers["x-should-retry"] == "false"
    assert forbidden.status_code == 403
    assert forbidden.json() == proto.UNAUTHORIZED_BODY


async def test_live_poll_times_out_with_a_bare_up_to_date(fake: FakeTrigger) -> None:
    run_id = fake.create_run("enrich")
    async with _client(fake, fake.secret_key) as http:
        snapshot = await http.get(f"/realtime/v1/runs/{run_id}?offset=-1&log=full")
        handle, offset = snapshot.headers["electric-handle"], snapshot.headers["electric-offset"]
        idle = await http.get(
            f"/realtime/v1/runs/{run_id}",
            params={"offset": offset, "handle": handle, "live": "true", "cursor": ""},
        )
    assert idle.json() == [encoding.UP_TO_DATE]
    assert idle.headers["electric-offset"] == offset
    assert "electric-cursor" in idle.headers


async def test_executor_plays_the_task_and_a_crash_is_recorded(fake: FakeTrigger) -> None:
    async def executor(run: RunControl) -> None:
        run.set_status("EXECUTING")
        run.update_metadata([{"type": "set", "key": "progress", "value": {"done": 1}}])
        run.append_chunk("cells", {"rowId": 1})
        raise RuntimeError("worker exited 2")

    fake.executor = executor
    async with _client(fake, fake.secret_key) as http:
        triggered = await http.post(
            "/api/v1/tasks/enrich/trigger", json={"payload": {"jobId": "j"}}
        )
        run_id = triggered.json()["id"]
        await fake.await_status(run_id, "CRASHED")
        retrieved = await http.get(f"/api/v3/runs/{run_id}")
    body = retrieved.json()
    assert body["status"] == "CRASHED"
    assert body["payload"] == {"jobId": "j"}
    assert body["metadata"] == {"progress": {"done": 1}}
    assert body["error"]["message"] == "worker exited 2"
    assert fake.stream_chunks(run_id, "cells") == [{"rowId": 1}]
    assert [type(e) for e in fake.executor_errors] == [RuntimeError]


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_stream_drop_mid_event_cuts_inside_the_next_record(version: str) -> None:
    with FakeTrigger(stream_version=version, stream_timeout=5.0, ping_interval=5.0) as fake:
        run_id = fake.create_run("enrich")
        fake.append_chunks(run_id, "cells", [{"n": 0}, {"n": 1}])
        fake.drop_next("stream_read", after=2, mid_event=True, run_id=run_id)
        received = b""
        async with _client(fake, fake.secret_key) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                async with http.stream("GET", f"/realtime/v1/streams/{run_id}/cells") as response:
                    async for part in response.aiter_bytes():
                        received += part
                        if b'\\"n\\":1' in received or b'"n":1' in received:
                            fake.append_chunk(run_id, "cells", {"n": 2})
    events = received.split(b"\n\n")
    complete, partial = events[:-1], events[-1]
    assert sum(b'"n' in e or b'\\"n' in e for e in complete) == (2 if version == "v1" else 1)
    assert partial and not received.endswith(b"\n\n")  # cut inside the record for {"n": 2}


async def test_refused_request_is_a_reset_connection_and_handles_nothing(
    fake: FakeTrigger,
) -> None:
    fake.refuse_next("trigger")
    headers = {"Authorization": f"Bearer {fake.secret_key}"}
    async with httpx.AsyncClient(base_url=fake.url, headers=headers) as http:
        with pytest.raises(httpx.TransportError):
            await http.post("/api/v1/tasks/enrich/trigger", json={"payload": {}})
        assert fake.run_ids() == []
        answered = await http.post("/api/v1/tasks/enrich/trigger", json={"payload": {}})
    assert answered.status_code == 200 and fake.run_ids() == [answered.json()["id"]]


async def test_an_injected_fault_counts_its_uses_and_can_be_withdrawn(fake: FakeTrigger) -> None:
    run_id = fake.create_run("enrich")
    first = fake.fail_next("retrieve", 503, times=2, run_id=run_id)
    second = fake.fail_next("retrieve", 503, times=2, run_id=run_id)  # same fault, queued after
    headers = {"Authorization": f"Bearer {fake.secret_key}"}
    async with httpx.AsyncClient(base_url=fake.url, headers=headers) as http:
        assert (await http.get(f"/api/v3/runs/{run_id}")).status_code == 503
        assert first.fired == 1 and second.fired == 0
        assert fake.withdraw(first) == 1
        assert (await http.get(f"/api/v3/runs/{run_id}")).status_code == 503  # the second one
        assert fake.withdraw(second) == 1
        assert (await http.get(f"/api/v3/runs/{run_id}")).status_code == 200


async def test_a_tagged_fault_hits_only_the_runs_with_that_tag(fake: FakeTrigger) -> None:
    trigger_fault = fake.fail_next("trigger", 503, tag="table:2")
    read_fault = fake.fail_next("retrieve", 503, tag="table:2")
    headers = {"Authorization": f"Bearer {fake.secret_key}"}
    url = "/api/v1/tasks/enrich/trigger"
    async with httpx.AsyncClient(base_url=fake.url, headers=headers) as http:
        other = await http.post(url, json={"payload": {}, "options": {"tags": ["table:1"]}})
        assert other.status_code == 200 and trigger_fault.fired == 0
        mine = await http.post(url, json={"payload": {}, "options": {"tags": ["table:2"]}})
        assert mine.status_code == 503 and trigger_fault.fired == 1
        other_id = other.json()["id"]
        assert (await http.get(f"/api/v3/runs/{other_id}")).status_code == 200
        mine = await http.post(url, json={"payload": {}, "options": {"tags": ["table:2"]}})
        assert (await http.get(f"/api/v3/runs/{mine.json()['id']}")).status_code == 503
    assert read_fault.fired == 1
