"""Browser end-to-end fixtures: the real app under Reflex's AppHarness, driven by Debian Chromium.

The app gets its own SQLite file, so the tests never touch a developer's data. Chromium comes
from Debian's packages (``scripts/bootstrap.sh --dev``); Playwright's own browser download is
never used.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.live_server import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@dataclass
class GatedApi:
    """A JSON API whose answers wait until the test lets them through, one permit per answer.

    It makes a job's progress observable step by step without timing assumptions.
    """

    url: str = ""
    loop: asyncio.AbstractEventLoop | None = None
    permits: asyncio.Semaphore | None = None
    idle: asyncio.Event | None = None
    """Set whenever no request is waiting for a permit."""
    waiting: int = 0
    answered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def drain(self) -> int:
        """Take back permits nobody used; returns how many there were."""
        assert self.loop is not None and self.permits is not None
        permits = self.permits

        async def take_all() -> int:
            taken = 0
            while not permits.locked():
                await permits.acquire()
                taken += 1
            return taken

        return asyncio.run_coroutine_threadsafe(take_all(), self.loop).result(timeout=10)

    def release_stranded(self) -> int:
        """Answer every request still waiting (its job was canceled); returns how many."""
        assert self.loop is not None and self.permits is not None
        permits = self.permits

        async def answer_all() -> int:
            with self.lock:
                stranded = self.waiting
            for _ in range(stranded):
                permits.release()
            assert self.idle is not None
            await self.idle.wait()
            return stranded

        return asyncio.run_coroutine_threadsafe(answer_all(), self.loop).result(timeout=10)

    def release(self, n: int = 1) -> None:
        assert self.loop is not None and self.permits is not None
        for _ in range(n):
            self.loop.call_soon_threadsafe(self.permits.release)


@pytest.fixture(scope="session")
def gated_api() -> Iterator[GatedApi]:
    api = GatedApi()

    async def lookup(request: Request) -> JSONResponse:
        assert api.permits is not None and api.idle is not None
        with api.lock:
            api.waiting += 1
            api.idle.clear()
        await api.permits.acquire()
        with api.lock:
            api.waiting -= 1
            api.answered += 1
            if api.waiting == 0:
                api.idle.set()
        company = request.query_params.get("company", "")
        return JSONResponse({"data": {"industry": f"{company} industry"}})

    async def warm(request: Request) -> JSONResponse:
        api.loop = asyncio.get_running_loop()
        api.permits = api.permits or asyncio.Semaphore(0)
        api.idle = api.idle or asyncio.Event()
        api.idle.set()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/lookup", lookup), Route("/warm", warm)])
    with serve_in_thread(app) as url:
        api.url = url
        httpx.get(f"{url}/warm")
        try:
            yield api
        finally:
            api.release(1000)  # let every held request finish so the server stops cleanly


@pytest.fixture(scope="session")
def app_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The app's own SQLite file, so the tests never touch a developer's data."""
    return f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.db'}"


@pytest.fixture(scope="session")
def app_env(app_database_url: str) -> dict[str, str]:
    """The environment the app starts with: local runner mode. tests/e2e/trigger/ overrides it."""
    return {"DATABASE_URL": app_database_url, "SEED_DEMO": "true"}


@pytest.fixture(scope="session")
def app_url(app_env: dict[str, str]) -> Iterator[str]:
    """The app's frontend URL, served by AppHarness (uvicorn backend + vite dev server)."""
    from reflex.testing import AppHarness

    from enrichment_app.settings import get_settings

    for key in (
        "TRIGGER_SECRET_KEY",
        "TRIGGER_API_URL",
        "LLM_API_KEY",
        "OPENAI_API_KEY",
        "ENRICHMENT_API_KEY",
    ):
        os.environ.pop(key, None)
    os.environ.update(app_env)
    get_settings.cache_clear()
    with AppHarness.create(root=ROOT, app_name="enrichment_app") as harness:
        assert harness.frontend_url is not None
        yield harness.frontend_url.rstrip("/")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            "Debian Chromium is missing: run scripts/bootstrap.sh --dev (apt-get install chromium)."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser tab; on failure its screenshot goes to test-artifacts/ for diagnosis."""
    context = browser.new_context(viewport={"width": 1400, "height": 1700})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    if request.node.stash.get(_CALL_FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)
    context.close()
