"""TriggerClient against scripted ``httpx.MockTransport`` servers, including the fault cases."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest

from enrichment_app.errors import ConfigError
from enrichment_app.trigger import (
    ApiConnectionError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    PermissionDeniedError,
    RealtimeRun,
    RealtimeUnavailableError,
    TriggerApiError,
    TriggerClient,
    TriggerNotFoundError,
    UnprocessableEntityError,
)

SECRET = "tr_dev_" + "k" * 24
ADDITIONAL_KEY = "tr_dev_sk_" + "A" * 24
BASE = "https://trigger.test"
NOW = 1_800_000_000.0

Responder = Callable[[httpx.Request], httpx.Response] | httpx.Response | Exception


class Script:
    """A MockTransport handler that answers requests from a list, in order, and records them."""

    def __init__(self, *responses: Responder) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.responses:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        if callable(response):
            return response(request)
        return response

    def params(self, index: int) -> dict[str, str]:
        return dict(parse_qsl(self.requests[index].url.query.decode(), keep_blank_values=True))


class Sleeps:
    """An injected sleep: records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class TickingSleeps(Sleeps):
    """Sleeps that move the client's clock on by each delay, so outages last that long."""

    def __init__(self) -> None:
        super().__init__()
        self.now = NOW

    async def __call__(self, delay: float) -> None:
        await super().__call__(delay)
        self.now += delay


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def ticking() -> TickingSleeps:
    return TickingSleeps()


def make_client(script: Script, sleeps: Sleeps, *, key: str = SECRET) -> TriggerClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(script))
    clock = (lambda: sleeps.now) if isinstance(sleeps, TickingSleeps) else (lambda: NOW)
    return TriggerClient(
        secret_key=key,
        base_url=BASE,
        http=http,
        sleep=sleeps,
        clock=clock,
        random=lambda: 0.0,
    )


def decode(token: str) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            audience="https://api.trigger.dev",
            issuer="https://id.trigger.dev",
            options={"verify_exp": False, "verify_iat": False},
        )


def ok_trigger(run_id: str = "run_abc", **headers: str) -> httpx.Response:
    return httpx.Response(200, json={"id": run_id, "isCached": False}, headers=headers)


# -- trigger ---------------------------------------------------------------------------------


async def test_trigger_sends_the_sdk_request_and_uses_the_server_token(sleeps):
    script = Script(ok_trigger(**{"x-trigger-jwt": "server.issued.jwt"}))
    async with make_client(script, sleeps) as client:
        handle = await client.trigger(
            "process-enrichment-job",
            {"jobId": "j1"},
            idempotency_key="job-j1",
            tags=["job:j1"],
            ttl="10m",
        )
    assert (handle.id, handle.is_cached, handle.public_access_token) == (
        "run_abc",
        False,
        "server.issued.jwt",
    )
    request = script.requests[0]
    assert request.method == "POST"
    assert request.url == f"{BASE}/api/v1/tasks/process-enrichment-job/trigger"
    headers = request.headers
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["content-type"] == "application/json"
    assert headers["trigger-version"] == "4.8.3"
    assert headers["x-trigger-api-version"] == "2025-07-16"
    assert headers["x-trigger-source"] == "sdk"
    assert headers["x-trigger-realtime-streams-version"] == "v2"
    assert len(headers["x-trigger-request-idempotency-key"]) == 36
    body = json.loads(request.content)
    assert body["payload"] == '{"json":{"jobId":"j1"}}'
    assert body["options"]["payloadType"] == "application/super+json"
    assert body["options"]["idempotencyKeyOptions"] == {"key": "job-j1", "scope": "run"}
    assert body["options"]["tags"] == ["job:j1"]
    assert "token" not in repr(handle)


async def test_trigger_self_signs_from_the_claims_header(sleeps):
    claims = {
        "sub": "env_1",
        "pub": True,
        "scopes": ["read:runs:run_abc", "write:inputStreams:run_abc"],
    }
    script = Script(ok_trigger(**{"x-trigger-jwt-claims": json.dumps(claims)}))
    async with make_client(script, sleeps) as client:
        handle = await client.trigger("t", {})
    assert decode(handle.public_access_token) == {
        "sub": "env_1",
        "pub": True,
        "scopes": ["read:runs:run_abc"],
        "iss": "https://id.trigger.dev",
        "aud": "https://api.trigger.dev",
        "exp": int(NOW) + 3600,
        "iat": int(NOW),
    }


@pytest.mark.parametrize("claims", ["{", "[1, 2]", "[" * 100_000])
async def test_trigger_with_malformed_claims_raises_a_trigger_api_error(sleeps, claims):
    """Found by tests/fuzz: the header was parsed with a bare json.loads, so a malformed one
    raised JSONDecodeError or RecursionError, which the runner does not catch: the API
    answered 500 instead of running the job locally and saying why."""
    script = Script(ok_trigger(**{"x-trigger-jwt-claims": claims}))
    async with make_client(script, sleeps) as client:
        with pytest.raises(TriggerApiError, match="x-trigger-jwt-claims"):
            await client.trigger("t", {})


async def test_trigger_with_an_additional_key_needs_the_server_token(sleeps):
    script = Script(ok_trigger())
    async with make_client(script, sleeps, key=ADDITIONAL_KEY) as client:
        with pytest.raises(ConfigError, match="cannot self-sign"):
            await client.trigger("t", {})


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503])
async def test_trigger_retries_on_the_sdk_schedule_with_one_idempotency_key(sleeps, status):
    script = Script(
        httpx.Response(status, json={"error": "busy"}),
        httpx.Response(status, json={"error": "busy"}),
        ok_trigger(**{"x-trigger-jwt": "t"}),
    )
    async with make_client(script, sleeps) as client:
        handle = await client.trigger("t", {"a": 1})
    assert handle.id == "run_abc"
    assert sleeps.delays == [1.0, 1.6]
    keys = {r.headers["x-trigger-request-idempotency-key"] for r in script.requests}
    assert len(script.requests) == 3 and len(keys) == 1
    assert len({r.content for r in script.requests}) == 1


async def test_trigger_gives_up_after_five_attempts(sleeps):
    script = Script(*[httpx.Response(500, json={"error": "Something went wrong"})] * 5)
    async with make_client(script, sleeps) as client:
        with pytest.raises(InternalServerError) as caught:
            await client.trigger("t", {})
    assert (caught.value.status, caught.value.message) == (500, "Something went wrong")
    assert sleeps.delays == [1.0, 1.6, 2.56, 4.096]


async def test_trigger_honours_x_ratelimit_reset(sleeps):
    reset_ms = int(NOW * 1000) + 3_500
    script = Script(
        httpx.Response(429, json={"error": "rate"}, headers={"x-ratelimit-reset": str(reset_ms)}),
        ok_trigger(**{"x-trigger-jwt": "t"}),
    )
    async with make_client(script, sleeps) as client:
        await client.trigger("t", {})
    assert sleeps.delays == [3.5]


async def test_network_errors_are_retried_then_raise_a_connection_error(sleeps):
    script = Script(*[httpx.ConnectError("refused")] * 5)
    async with make_client(script, sleeps) as client:
        with pytest.raises(ApiConnectionError) as caught:
            await client.trigger("t", {})
    assert caught.value.status is None
    assert len(script.requests) == 5
    assert sleeps.delays == [1.0, 1.6, 2.56, 4.096]


async def test_a_response_dropped_mid_body_is_retried(sleeps):
    async def broken() -> AsyncIterator[bytes]:
        yield b'{"id": "run_'
        raise httpx.ReadError("connection reset")

    script = Script(httpx.Response(200, content=broken()), ok_trigger(**{"x-trigger-jwt": "t"}))
    async with make_client(script, sleeps) as client:
        handle = await client.trigger("t", {})
    assert handle.id == "run_abc"
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "error_type", "message"),
    [
        (400, {"error": "Invalid JSON"}, BadRequestError, "Invalid JSON"),
        (401, {"error": "Invalid API key"}, AuthenticationError, "Invalid API key"),
        (
            403,
            {"error": "Unauthorized", "code": "unauthorized"},
            PermissionDeniedError,
            "Unauthorized",
        ),
        (404, {"error": "Task not found"}, TriggerNotFoundError, "Task not found"),
        (422, {"error": "Task not found"}, UnprocessableEntityError, "Task not found"),
        (418, None, TriggerApiError, "418 teapot"),
    ],
)
async def test_client_errors_are_not_retried(sleeps, status, body, error_type, message):
    response = httpx.Response(status, json=body) if body else httpx.Response(status, text="teapot")
    script = Script(response)
    async with make_client(script, sleeps) as client:
        with pytest.raises(error_type) as caught:
            await client.trigger("t", {})
    assert type(caught.value) is error_type
    assert (caught.value.status, caught.value.message) == (status, message)
    assert len(script.requests) == 1 and sleeps.delays == []


async def test_x_should_retry_is_obeyed(sleeps):
    script = Script(
        httpx.Response(404, json={"error": "Not found"}, headers={"x-should-retry": "true"}),
        httpx.Response(500, json={"error": "no"}, headers={"x-should-retry": "false"}),
    )
    async with make_client(script, sleeps) as client:
        with pytest.raises(InternalServerError):
            await client.retrieve_run("run_abc")
    assert len(script.requests) == 2 and sleeps.delays == [1.0]


# -- tokens ----------------------------------------------------------------------------------


async def test_public_tokens_fetch_the_claims_once(sleeps):
    script = Script(httpx.Response(200, json={"sub": "env_1", "pub": True}))
    async with make_client(script, sleeps) as client:
        first = await client.create_public_token(
            scopes={"read": {"runs": ["run_a"]}}, expiration_time="1h"
        )
        second = await client.create_public_token(scopes={"read": {"runs": True}})
    assert len(script.requests) == 1
    request = script.requests[0]
    assert (request.method, request.url.path) == ("POST", "/api/v1/auth/jwt/claims")
    assert decode(first)["scopes"] == ["read:runs:run_a"]
    assert decode(first)["exp"] == int(NOW) + 3600
    assert decode(second)["scopes"] == ["read:runs"]
    assert decode(second)["exp"] == int(NOW) + 900


async def test_public_token_with_an_absolute_expiration(sleeps):
    script = Script(httpx.Response(200, json={"sub": "env_1", "pub": True}))
    async with make_client(script, sleeps) as client:
        token = await client.create_public_token(
            scopes={"read": True}, expiration_time=1_900_000_000
        )
    assert decode(token)["exp"] == 1_900_000_000


async def test_additional_keys_have_the_server_mint_tokens(sleeps):
    script = Script(httpx.Response(200, json={"token": "minted"}))
    async with make_client(script, sleeps, key=ADDITIONAL_KEY) as client:
        token = await client.create_public_token(
            scopes={"read": {"runs": ["run_a"]}}, expiration_time="1h"
        )
        with pytest.raises(ConfigError):
            await client.create_public_token(scopes={})
    assert token == "minted"
    request = script.requests[0]
    assert request.url.path == "/api/v1/auth/public-tokens"
    assert json.loads(request.content) == {"scopes": ["read:runs:run_a"], "expirationTime": "1h"}


# -- retrieve and cancel ---------------------------------------------------------------------


async def test_retrieve_and_cancel(sleeps):
    retrieved = {
        "id": "run_abc",
        "taskIdentifier": "t",
        "status": "EXECUTING",
        "isTest": False,
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:01.000Z",
        "tags": [],
        "costInCents": 0,
        "baseCostInCents": 0,
        "durationMs": 0,
        "metadata": {"progress": 0.5},
    }
    script = Script(
        httpx.Response(200, json=retrieved), httpx.Response(200, json={"id": "run_abc"})
    )
    async with make_client(script, sleeps) as client:
        run = await client.retrieve_run("run_abc", access_token="pat")
        canceled = await client.cancel_run("run_abc")
    assert (
        isinstance(run, RealtimeRun)
        and run.status == "EXECUTING"
        and run.metadata == {"progress": 0.5}
    )
    assert canceled == "run_abc"
    assert (script.requests[0].method, script.requests[0].url.path) == (
        "GET",
        "/api/v3/runs/run_abc",
    )
    assert script.requests[0].headers["authorization"] == "Bearer pat"
    assert (script.requests[1].method, script.requests[1].url.path) == (
        "POST",
        "/api/v2/runs/run_abc/cancel",
    )


# -- subscribe_to_run ------------------------------------------------------------------------

SCHEMA = json.dumps(
    {
        "id": {"type": "text"},
        "friendlyId": {"type": "text"},
        "taskIdentifier": {"type": "text"},
        "status": {"type": "text"},
        "createdAt": {"type": "timestamp"},
        "updatedAt": {"type": "timestamp"},
        "completedAt": {"type": "timestamp"},
        "isTest": {"type": "bool"},
        "metadata": {"type": "text"},
        "metadataType": {"type": "text"},
        "runTags": {"type": "text", "dims": 1},
        "usageDurationMs": {"type": "int4"},
    }
)
KEY = '"public"."TaskRun"/"cm1"'
UP = {"headers": {"control": "up-to-date"}}


def row(status: str, progress: float, *, completed: bool = False) -> dict[str, object]:
    return {
        "id": "cm1",
        "friendlyId": "run_abc",
        "taskIdentifier": "process-enrichment-job",
        "status": status,
        "createdAt": "2025-01-01T00:00:00.000",
        "updatedAt": f"2025-01-01T00:00:0{int(progress * 9)}.000",
        "completedAt": "2025-01-01T00:00:09.000" if completed else None,
        "isTest": "f",
        "metadata": json.dumps({"progress": progress}, separators=(",", ":")),
        "metadataType": "application/json",
        "runTags": '{"job:j1"}',
        "usageDurationMs": "5",
    }


def snapshot(
    value: dict[str, object], *, handle: str = "h1", offset: str = "0_1"
) -> httpx.Response:
    return httpx.Response(
        200,
        json=[{"key": KEY, "headers": {"operation": "insert"}, "value": value}, UP],
        headers={
            "electric-handle": handle,
            "electric-offset": offset,
            "electric-schema": SCHEMA,
            "electric-up-to-date": "",
        },
    )


def live(
    value: dict[str, object] | None, *, handle: str = "h1", offset: str, cursor: str
) -> httpx.Response:
    messages = [{"key": KEY, "headers": {"operation": "update"}, "value": value}] if value else []
    return httpx.Response(
        200,
        json=[*messages, UP],
        headers={"electric-handle": handle, "electric-offset": offset, "electric-cursor": cursor},
    )


async def collect(client: TriggerClient, **kwargs: object) -> list[RealtimeRun]:
    return [run async for run in client.subscribe_to_run("run_abc", **kwargs)]  # type: ignore[arg-type]


async def test_subscription_follows_the_shape_protocol_to_completion(sleeps):
    script = Script(
        snapshot(row("PENDING", 0.0)),
        live(None, offset="0_1", cursor="c1"),
        live(
            {"id": "cm1", "status": "EXECUTING", "updatedAt": "2025-01-01T00:00:02.000"},
            offset="0_2",
            cursor="c2",
        ),
        live({"id": "cm1", "metadata": '{"progress":0.5}'}, offset="0_3", cursor="c3"),
        live(
            {
                "id": "cm1",
                "status": "COMPLETED_SUCCESSFULLY",
                "completedAt": "2025-01-01T00:00:09.000",
            },
            offset="0_4",
            cursor="c4",
        ),
    )
    async with make_client(script, sleeps) as client:
        runs = await collect(client)
    assert [(r.status, r.metadata) for r in runs] == [
        ("QUEUED", {"progress": 0.0}),
        ("EXECUTING", {"progress": 0.0}),
        ("EXECUTING", {"progress": 0.5}),
        ("COMPLETED", {"progress": 0.5}),
    ]
    assert runs[-1].finished_at == datetime(2025, 1, 1, 0, 0, 9, tzinfo=UTC)
    assert runs[0].tags == ("job:j1",) and runs[0].duration_ms == 5 and runs[0].is_test is False
    assert script.params(0) == {"log": "full", "offset": "-1"}
    assert script.params(1) == {
        "cursor": "",
        "handle": "h1",
        "live": "true",
        "log": "full",
        "offset": "0_1",
    }
    assert script.params(2)["cursor"] == "c1"
    assert script.requests[0].url.query.decode() == "log=full&offset=-1"
    headers = script.requests[0].headers
    assert headers["x-trigger-electric-version"] == "1.0.0-beta.1"
    assert headers["x-trigger-api-version"] == "2025-07-16"
    assert headers["trigger-version"] == "4.8.3"
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert "x-trigger-source" not in headers and "content-type" not in headers
    timeout = script.requests[1].extensions["timeout"]
    assert timeout["read"] > 20


async def test_subscription_survives_429_5xx_drops_and_409_without_losing_or_repeating(sleeps):
    async def dropped() -> AsyncIterator[bytes]:
        yield b'[{"key": '
        raise httpx.RemoteProtocolError("peer closed connection")

    script = Script(
        snapshot(row("EXECUTING", 0.1)),
        httpx.Response(
            429, json={"error": "Too many concurrent requests"}, headers={"x-ratelimit-reset": "1"}
        ),
        httpx.Response(503, text="unavailable"),
        httpx.ConnectError("refused"),
        httpx.Response(
            200,
            content=dropped(),
            headers={"electric-handle": "h1", "electric-offset": "0_9", "electric-cursor": "c9"},
        ),
        live(
            {"id": "cm1", "metadata": '{"progress":0.5}', "updatedAt": "2025-01-01T00:00:04.000"},
            offset="0_2",
            cursor="c2",
        ),
        httpx.Response(
            409, json=[{"headers": {"control": "must-refetch"}}], headers={"electric-handle": "h2"}
        ),
        snapshot(
            row("EXECUTING", 0.5), handle="h2", offset="5_0"
        ),  # same state again: not repeated
        live({"id": "cm1", "metadata": '{"progress":0.8}'}, handle="h2", offset="5_1", cursor="d1"),
        live(
            row("COMPLETED_SUCCESSFULLY", 1.0, completed=True),
            handle="h2",
            offset="5_2",
            cursor="d2",
        ),
    )
    async with make_client(script, sleeps) as client:
        runs = await collect(client)
    assert [r.metadata["progress"] for r in runs] == [0.1, 0.5, 0.8, 1.0]
    assert runs[-1].is_success
    assert sleeps.delays == pytest.approx([0.1, 0.13, 0.169, 0.2197])
    # The retries ask again for the same position.
    for index in (2, 3, 4, 5):
        assert script.params(index)["offset"] == "0_1"
    assert script.params(7) == {
        "expired_handle": "h1",
        "handle": "h2",
        "log": "full",
        "offset": "-1",
    }
    assert script.params(8)["expired_handle"] == "h1"
    assert script.params(8)["live"] == "true"


def unavailable(n: int) -> list[Responder]:
    return [httpx.Response(503, text="unavailable") for _ in range(n)]


async def test_subscription_gives_up_once_failures_outlast_the_limit(ticking):
    script = Script(snapshot(row("EXECUTING", 0.1)), *unavailable(30))
    async with make_client(script, ticking) as client:
        with pytest.raises(RealtimeUnavailableError) as caught:
            await collect(client, give_up_after=5.0)
    # Electric's backoff: 10 retries take 4.26 s; the 11th would wait until 5.64 s.
    assert len(ticking.delays) == 10 and sum(ticking.delays) == pytest.approx(4.2618, abs=1e-3)
    assert caught.value.status == 503
    assert caught.value.message == (
        "The live feed of run run_abc failed 11 times in a row over 4 s (last: HTTP 503)"
    )


async def test_a_success_starts_the_outage_count_again(ticking):
    script = Script(
        snapshot(row("EXECUTING", 0.1)),
        *unavailable(8),  # 2.39 s of retries
        live({"id": "cm1", "metadata": '{"progress":0.5}'}, offset="0_2", cursor="c2"),
        *unavailable(8),
        live(row("COMPLETED_SUCCESSFULLY", 1.0, completed=True), offset="0_3", cursor="c3"),
    )
    async with make_client(script, ticking) as client:
        runs = await collect(client, give_up_after=3.0)
    assert [r.metadata["progress"] for r in runs] == [0.1, 0.5, 1.0]
    assert sum(ticking.delays) > 3.0


async def test_without_a_limit_the_subscription_retries_as_long_as_it_takes(ticking):
    script = Script(
        snapshot(row("EXECUTING", 0.1)),
        httpx.ConnectError("refused"),
        *unavailable(40),
        live(row("COMPLETED_SUCCESSFULLY", 1.0, completed=True), offset="0_2", cursor="c2"),
    )
    async with make_client(script, ticking) as client:
        runs = await collect(client)
    assert runs[-1].is_success and len(ticking.delays) == 41 and sum(ticking.delays) > 240


async def test_subscription_raises_at_once_on_a_401(sleeps):
    script = Script(httpx.Response(401, json={"error": "Public Access Token is invalid"}))
    async with make_client(script, sleeps) as client:
        with pytest.raises(AuthenticationError, match="Public Access Token is invalid") as caught:
            await collect(client, access_token="expired.jwt")
    assert caught.value.status == 401
    assert script.requests[0].headers["authorization"] == "Bearer expired.jwt"
    assert len(script.requests) == 1 and sleeps.delays == []


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(403, PermissionDeniedError), (404, TriggerNotFoundError), (400, BadRequestError)],
)
async def test_subscription_raises_on_other_client_errors(sleeps, status, error_type):
    script = Script(httpx.Response(status, json={"error": "nope"}))
    async with make_client(script, sleeps) as client:
        with pytest.raises(error_type):
            await collect(client)


async def test_subscription_stops_on_a_final_status_without_completed_at(sleeps):
    script = Script(snapshot(row("CANCELED", 0.3)))
    async with make_client(script, sleeps) as client:
        runs = await collect(client)
    assert [r.status for r in runs] == ["CANCELED"]
    assert runs[0].finished_at is None


async def test_subscription_keeps_going_when_asked_not_to_stop(sleeps):
    script = Script(
        snapshot(row("COMPLETED_SUCCESSFULLY", 1.0, completed=True)),
        live(
            {"id": "cm1", "metadata": '{"progress":1.0,"note":"late"}'}, offset="0_2", cursor="c2"
        ),
    )
    seen: list[RealtimeRun] = []
    async with make_client(script, sleeps) as client:
        async for run in client.subscribe_to_run("run_abc", stop_on_completion=False):
            seen.append(run)
            if len(seen) == 2:
                break
    assert [r.metadata for r in seen] == [{"progress": 1.0}, {"progress": 1.0, "note": "late"}]


async def test_subscription_sends_skip_columns(sleeps):
    script = Script(snapshot(row("COMPLETED_SUCCESSFULLY", 1.0, completed=True)))
    async with make_client(script, sleeps) as client:
        await collect(client, skip_columns=["payload", "output"])
    assert (
        script.requests[0].url.query.decode() == "log=full&offset=-1&skipColumns=payload%2Coutput"
    )


async def test_subscription_refuses_responses_missing_electric_headers(sleeps):
    script = Script(httpx.Response(200, json=[UP], headers={"electric-handle": "h"}))
    async with make_client(script, sleeps) as client:
        with pytest.raises(TriggerApiError, match="missing headers"):
            await collect(client)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({**row("EXECUTING", 0.5), "friendlyId": None}, id="row without an id"),
        pytest.param({**row("EXECUTING", 0.5), "metadata": "{"}, id="metadata not JSON"),
        pytest.param({**row("EXECUTING", 0.5), "runTags": '{"job:j1'}, id="tags cut short"),
    ],
)
async def test_subscription_raises_a_trigger_api_error_for_a_row_it_cannot_read(sleeps, value):
    """Found by tests/fuzz: such rows raised KeyError or ValueError, which the hub does not
    expect, so the live feed crashed instead of retrying and then falling back to polling."""
    script = Script(snapshot(value))
    async with make_client(script, sleeps) as client:
        with pytest.raises(TriggerApiError, match="Invalid realtime response for run run_abc"):
            await collect(client)


async def test_subscription_refuses_a_handle_too_long_to_send_back(sleeps):
    """Found by tests/fuzz: the next poll's URL carried the 70 KB handle, and httpx raised
    InvalidURL (not a TriggerApiError) out of subscribe_to_run."""
    script = Script(snapshot(row("EXECUTING", 0.5), handle="h" * 70_000))
    async with make_client(script, sleeps) as client:
        with pytest.raises(TriggerApiError, match="electric-handle is longer than 1024"):
            await collect(client)


async def test_retrieve_run_raises_a_trigger_api_error_for_a_body_that_is_not_a_run(sleeps):
    script = Script(httpx.Response(200, json={"id": "run_abc"}))
    async with make_client(script, sleeps) as client:
        with pytest.raises(TriggerApiError, match="run has no taskIdentifier"):
            await client.retrieve_run("run_abc")


# -- read_stream -----------------------------------------------------------------------------


def sse(
    body: str | Callable[[], AsyncIterator[bytes]], *, version: str | None = None
) -> httpx.Response:
    headers = {"content-type": "text/event-stream"}
    if version:
        headers["x-stream-version"] = version
    content = body.encode() if isinstance(body, str) else body()
    return httpx.Response(200, headers=headers, content=content)


async def read_all(client: TriggerClient, **kwargs: object) -> list[object]:
    return [chunk async for chunk in client.read_stream("run_abc", "cells", **kwargs)]  # type: ignore[arg-type]


async def test_v1_stream_resumes_after_a_drop_with_last_event_id(sleeps):
    async def first() -> AsyncIterator[bytes]:
        yield b'id: 1-0\ndata: {"cell": 1}\n\n: ping\n\nid: 2-0\ndata: {"cell": 2}\n\n'
        yield b'id: 3-0\ndata: {"ce'  # cut mid-event: never delivered
        raise httpx.ReadError("connection reset")

    script = Script(
        sse(first),
        sse('id: 3-0\ndata: {"cell": 3}\n\nid: 4-0\ndata: {"cell": 4}\n\n'),
    )
    async with make_client(script, sleeps) as client:
        chunks = await read_all(client, timeout_seconds=30)
    assert chunks == [{"cell": 1}, {"cell": 2}, {"cell": 3}, {"cell": 4}]
    first_request, second_request = script.requests
    assert first_request.url.path == "/realtime/v1/streams/run_abc/cells"
    assert first_request.headers["accept"] == "text/event-stream"
    assert first_request.headers["timeout-seconds"] == "30"
    assert "last-event-id" not in first_request.headers
    assert second_request.headers["last-event-id"] == "2-0"
    assert sleeps.delays == [pytest.approx(0.1)]


def batch(*records: tuple[int, object, str]) -> str:
    payload = {
        "records": [
            {
                "seq_num": seq,
                "timestamp": 1,
                "headers": [],
                "body": json.dumps({"data": chunk, "id": rid}),
            }
            for seq, chunk, rid in records
        ]
    }
    return f"event: batch\ndata: {json.dumps(payload)}\n\n"


async def test_v2_stream_dedupes_and_resumes_from_seq_num(sleeps):
    async def first() -> AsyncIterator[bytes]:
        yield batch((0, "a", "r0"), (1, "b", "r1")).encode()
        yield b"event: ping\ndata: {}\n\n"
        raise httpx.RemoteProtocolError("peer closed connection")

    script = Script(
        sse(first, version="v2"),
        httpx.Response(502, text="bad gateway"),
        sse(
            batch((1, "b", "r1"), (2, "c", "r2")) + "event: error\ndata: s2 down\n\n", version="v2"
        ),
        sse(batch((3, "d", "r3")), version="v2"),
    )
    async with make_client(script, sleeps) as client:
        chunks = await read_all(client, last_event_id=None)
    assert chunks == ["a", "b", "c", "d"]
    assert [r.headers.get("last-event-id") for r in script.requests] == [None, "1", "1", "2"]
    assert len(sleeps.delays) == 3


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, TriggerNotFoundError),
    ],
)
async def test_stream_terminal_statuses_raise(sleeps, status, error_type):
    script = Script(httpx.Response(status, json={"error": "denied"}))
    async with make_client(script, sleeps) as client:
        with pytest.raises(error_type, match="denied"):
            await read_all(client)
    assert len(script.requests) == 1


async def test_stream_gives_up_once_failures_outlast_the_limit(ticking):
    script = Script(
        httpx.Response(502, text="bad gateway"),
        httpx.ConnectError("refused"),
        httpx.Response(431, text="headers too large"),  # not terminal: retried, as the SDK does
        *[httpx.ConnectError("refused") for _ in range(10)],
    )
    async with make_client(script, ticking) as client:
        with pytest.raises(RealtimeUnavailableError, match=r"Stream cells of run run_abc failed"):
            await read_all(client, give_up_after=3.0)
    assert sum(ticking.delays) <= 3.0 and len(script.requests) == len(ticking.delays) + 1
    assert script.requests[-1].headers.get("last-event-id") is None


async def test_a_stream_chunk_starts_the_outage_count_again(ticking):
    def cut(n: int) -> Callable[[], AsyncIterator[bytes]]:
        async def body() -> AsyncIterator[bytes]:
            yield f'id: {n}-0\ndata: {{"cell": {n}}}\n\n'.encode()
            raise httpx.ReadError("connection reset")

        return body

    script = Script(
        *[httpx.ConnectError("refused") for _ in range(5)],  # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s
        sse(cut(1)),
        *[httpx.ConnectError("refused") for _ in range(4)],
        sse('id: 2-0\ndata: {"cell": 2}\n\n'),
    )
    async with make_client(script, ticking) as client:
        chunks = await read_all(client, give_up_after=4.0)
    assert chunks == [{"cell": 1}, {"cell": 2}]
    assert sum(ticking.delays) > 4.0


async def test_stream_starts_from_the_given_last_event_id_and_ends_on_a_clean_close(sleeps):
    script = Script(sse(""))
    async with make_client(script, sleeps) as client:
        assert await read_all(client, last_event_id="41-0", access_token="pat") == []
    assert script.requests[0].headers["last-event-id"] == "41-0"
    assert script.requests[0].headers["authorization"] == "Bearer pat"


async def test_stream_with_a_wrong_content_type_raises(sleeps):
    script = Script(httpx.Response(200, json={"not": "sse"}))
    async with make_client(script, sleeps) as client:
        with pytest.raises(TriggerApiError):
            await read_all(client)


# -- secrets and lifecycle -------------------------------------------------------------------


async def test_repr_and_logs_never_show_the_secret(sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    script = Script(
        httpx.Response(500, json={"error": "x"}),
        ok_trigger(**{"x-trigger-jwt-claims": json.dumps({"sub": "env", "pub": True})}),
    )
    client = make_client(script, sleeps)
    async with client:
        handle = await client.trigger("t", {})
    assert SECRET not in repr(client)
    assert caplog.records, "expected the retry to be logged"
    assert SECRET not in caplog.text
    assert handle.public_access_token not in caplog.text


async def test_an_injected_http_client_is_left_open_and_an_own_one_is_closed():
    http = httpx.AsyncClient(transport=httpx.MockTransport(Script()))
    async with TriggerClient(secret_key=SECRET, http=http):
        pass
    assert not http.is_closed
    await http.aclose()
    own = TriggerClient(secret_key=SECRET)
    async with own:
        pass
    assert own._http.is_closed
