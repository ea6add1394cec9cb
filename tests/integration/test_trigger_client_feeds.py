"""TriggerClient's shape feeds against scripted ``httpx.MockTransport`` servers: what it keeps
between subscriptions (expired handles)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import httpx

from enrichment_app.trigger import TriggerClient

SECRET = "tr_dev_" + "k" * 24
BASE = "https://trigger.test"
UP = {"headers": {"control": "up-to-date"}}
ELECTRIC_KEEPS = 250
"""Expired handles ``@electric-sql/client`` 1.0.14 keeps (``ExpiredShapesCache.max``)."""
SCHEMA = json.dumps({"status": {"type": "text"}, "completedAt": {"type": "timestamp"}})


def run_row(run_id: str, *, finished: bool) -> dict[str, object]:
    return {
        "id": f"cm_{run_id}",
        "friendlyId": run_id,
        "taskIdentifier": "process-enrichment-job",
        "status": "COMPLETED_SUCCESSFULLY" if finished else "EXECUTING",
        "createdAt": "2025-01-01T00:00:00.000",
        "updatedAt": "2025-01-01T00:00:09.000",
        "completedAt": "2025-01-01T00:00:09.000" if finished else None,
    }


class RotatingShapes:
    """Each run's shape: a snapshot of the running run under handle ``<run>-1``; the live poll
    after it gets a 409 (the handle rotated to ``<run>-2``); then the finished run."""

    def __init__(self) -> None:
        self.rotated: set[str] = set()
        self.first_requests: dict[str, list[dict[str, str]]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        run_id = request.url.path.rsplit("/", 1)[1]
        params = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        if params.get("offset") == "-1" and "handle" not in params:
            self.first_requests.setdefault(run_id, []).append(params)
        if params.get("live") == "true" and run_id not in self.rotated:
            self.rotated.add(run_id)
            return httpx.Response(
                409,
                json=[{"headers": {"control": "must-refetch"}}],
                headers={"electric-handle": f"{run_id}-2"},
            )
        finished = run_id in self.rotated
        message = {
            "key": f'"public"."TaskRun"/"cm_{run_id}"',
            "headers": {"operation": "insert"},
            "value": run_row(run_id, finished=finished),
        }
        return httpx.Response(
            200,
            json=[message, UP],
            headers={
                "electric-handle": f"{run_id}-{2 if finished else 1}",
                "electric-offset": "0_1",
                "electric-schema": SCHEMA,
                "electric-up-to-date": "",
            },
        )


async def test_expired_handles_are_kept_for_the_most_recent_shapes_only() -> None:
    """Electric remembers the handle a 409 expired, per shape, and sends it when the shape is
    subscribed again; it keeps the 250 most recently used (``ExpiredShapesCache``). A client
    that kept one per run forever grew with every run the process ever followed."""
    server = RotatingShapes()
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    runs = [f"run_{i}" for i in range(ELECTRIC_KEEPS + 50)]
    async with TriggerClient(secret_key=SECRET, base_url=BASE, http=http) as client:
        for run_id in runs:
            assert [r.status async for r in client.subscribe_to_run(run_id)] == [
                "EXECUTING",
                "COMPLETED",
            ]
        for run_id in (runs[0], runs[-1]):  # the oldest shape, and the newest
            assert [r.status async for r in client.subscribe_to_run(run_id)] == ["COMPLETED"]
    await http.aclose()
    oldest, newest = server.first_requests[runs[0]], server.first_requests[runs[-1]]
    assert "expired_handle" not in oldest[-1], "the oldest expired handle was forgotten"
    assert newest[-1]["expired_handle"] == f"{runs[-1]}-1", "a recent one is still sent"
