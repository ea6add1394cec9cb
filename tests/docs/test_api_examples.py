"""Every curl example in docs/api.md, replayed against the REST API, answers as the page shows.

The API is served on a loopback port by uvicorn with a real ``Runtime`` (a fresh SQLite file
with the demo table, the local runner, ``ENRICHMENT_API_KEY`` set), as the Reflex backend
mounts it. The examples run in the page's order, each once the jobs before it have finished.
Each answer must have the documented status, the documented keys with values of the same
types, and the same stable values: ids, counts, codes and messages. Timestamps only have to
be timestamps, and a 202's job may have got further than it had when the page was written.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from enrichment_app.api import build_api
from enrichment_app.runtime import Runtime
from enrichment_app.settings import Settings
from tests.support.docs import SHELL, Block, code_blocks, shell_commands
from tests.support.live_server import serve_in_thread
from tests.support.paths import ROOT
from tests.support.waiting import wait_until

PAGE = ROOT / "docs" / "api.md"
API_KEY = "docs-example-key-5e1f"
DOCUMENTED_HOST = "localhost:8000"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")
IN_FLIGHT = {"status", "done", "failed", "startedAt", "finishedAt"}
"""A new job's fields that move while the 202 is being written."""


@dataclass(frozen=True)
class Example:
    block: Block
    command: str
    status: int
    body: Any


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None


def examples() -> list[Example]:
    """Each curl command of the page, with the status and body printed after it."""
    blocks = code_blocks(PAGE)
    found = []
    for n, block in enumerate(blocks):
        if block.lang not in SHELL:
            continue
        commands = shell_commands(block)
        assert len(commands) == 1 and commands[0].startswith("curl "), block.where
        assert block.followed_by == "text", f"{block.where}: no output block after the command"
        *body, status = blocks[n + 1].text.strip().splitlines()
        found.append(Example(block, commands[0], int(status), json.loads("\n".join(body))))
    return found


def parse_curl(command: str, *, base_url: str, env: dict[str, str]) -> Request:
    """The request a curl command sends; only the options the page uses are understood."""
    for name, value in env.items():
        command = command.replace(f"${name}", value)
    words = shlex.split(command)
    assert words[0] == "curl"
    method, url, headers, body = "GET", "", {}, None
    i = 1
    while i < len(words):
        word = words[i]
        if word == "-s":
            i += 1
        elif word == "-w":
            assert words[i + 1] == r"\n%{http_code}\n", "the page prints the status after the body"
            i += 2
        elif word == "-X":
            method, i = words[i + 1], i + 2
        elif word == "-H":
            name, _, value = words[i + 1].partition(":")
            headers[name.strip()] = value.strip()
            i += 2
        elif word == "-d":
            body, i = words[i + 1], i + 2
            method = "POST" if method == "GET" else method
        elif not word.startswith("-") and not url:
            assert word.startswith(DOCUMENTED_HOST), word
            url, i = base_url + word.removeprefix(DOCUMENTED_HOST), i + 1
        else:
            raise AssertionError(f"curl option {word!r} is not replayed; teach parse_curl")
    return Request(method, url, headers, body)


def differences(expected: Any, actual: Any, *, where: str = "$", loose: bool = False) -> list[str]:
    """How ``actual`` differs from the documented ``expected``, as readable lines."""
    key = where.rsplit(".", 1)[-1]
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            return [f"{where}: {actual!r} has not the keys {sorted(expected)}"]
        return [
            d
            for k in expected
            for d in differences(expected[k], actual[k], where=f"{where}.{k}", loose=loose)
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: {actual!r} is not like {expected!r}"]
        return [
            d
            for n, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in differences(e, a, where=f"{where}[{n}]", loose=loose)
        ]
    if loose and key in IN_FLIGHT:
        return []
    if isinstance(expected, str) and TIMESTAMP.fullmatch(expected):
        ok = isinstance(actual, str) and TIMESTAMP.fullmatch(actual) is not None
        return [] if ok else [f"{where}: {actual!r} is not a timestamp"]
    return [] if actual == expected else [f"{where}: {actual!r}, documented {expected!r}"]


class RecordsLoop:
    """Passes requests through, and keeps the server's event loop (the runtime lives on it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[str, Runtime]]:
    runtime = Runtime(
        settings=settings.model_copy(
            update={"seed_demo": True, "enrichment_api_key": SecretStr(API_KEY)}
        )
    )
    app = RecordsLoop(build_api(lambda: runtime))
    with serve_in_thread(app) as url:
        yield url, runtime
        if app.loop is not None:
            asyncio.run_coroutine_threadsafe(runtime.stop(), app.loop).result(timeout=30)
    runtime.engine.dispose()


def _route(example: Example) -> str:
    """The example's path, ids as ``{id}``, without its query."""
    url = next(w for w in shlex.split(example.command) if w.startswith(DOCUMENTED_HOST))
    path = url.removeprefix(DOCUMENTED_HOST).split("?", 1)[0]
    return re.sub(r"/\d+", "/{id}", path)


def test_the_page_has_an_example_of_every_route() -> None:
    paths = {_route(e) for e in examples()}
    assert paths >= {
        "/api/tables/{id}/enrich",
        "/api/jobs/{id}",
        "/api/jobs/{id}/cancel",
        "/api/tables",
        "/api/tables/{id}/rows",
        "/api/tables/{id}/columns",
        "/api/tables/{id}/columns/{id}",
    }
    assert {e.status for e in examples()} >= {200, 201, 202, 400, 401, 404, 409}


def test_every_curl_example_of_docs_api_md_answers_as_shown(api: tuple[str, Runtime]) -> None:
    url, runtime = api
    with httpx.Client(timeout=30) as client:
        for example in examples():
            wait_until(lambda: not runtime.runner.active_jobs, timeout=30, message="jobs to end")
            request = parse_curl(example.command, base_url=url, env={"ENRICHMENT_API_KEY": API_KEY})
            response = client.request(
                request.method, request.url, headers=request.headers, content=request.body
            )
            assert response.status_code == example.status, (example.block.where, response.text)
            found = differences(example.body, response.json(), loose=example.status == 202)
            assert not found, (example.block.where, found)


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ({"job": {"id": 1}}, {"job": {"id": 2}}),
        ({"job": {"id": 1}}, {"job": {"id": 1, "extra": True}}),
        ({"taskIds": [1, 2]}, {"taskIds": [1]}),
        ({"createdAt": "2026-12-02T02:17:57.873846+00:00"}, {"createdAt": None}),
        ({"error": {"code": "not_found"}}, {"error": {"code": "invalid_input"}}),
    ],
)
def test_a_documented_answer_that_differs_is_reported(expected: Any, actual: Any) -> None:
    assert differences(expected, actual) != []


def test_an_option_the_replay_does_not_know_is_refused() -> None:
    with pytest.raises(AssertionError, match="not replayed"):
        parse_curl(f"curl -k {DOCUMENTED_HOST}/api/jobs/1", base_url="http://x", env={})
