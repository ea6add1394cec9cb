"""Browser end-to-end fixtures: the real app under Reflex's AppHarness, driven by Debian Chromium.

The app gets its own SQLite file, so the tests never touch a developer's data. Chromium comes
from Debian's packages (``scripts/bootstrap.sh --dev``); Playwright's own browser download is
never used.

The app runs with strong random secrets (the API key, the LLM key and, in tests/e2e/trigger/,
the fake Trigger.dev server's secret key), and the whole session is scanned for them
(``secret_scan`` below, ``tests/support/capture.py``): every websocket frame of every page, the DOM of
every page at the end of its test, every log record of this process (the backend runs in it,
in a thread), everything printed (pytest's captured output of every test phase), and every
response the tests got from the REST API.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from enrichment_app.db.models import TableColumn
from enrichment_app.domain import ColumnKind
from enrichment_app.services.sessions import COOKIE_NAME
from enrichment_app.services.tables import ColumnSpec, add_column
from tests.e2e.secret_flows import LlmTable, create_llm_table
from tests.fakes.openai_server import FakeOpenAI, build_app
from tests.support.accounts import OWNER_EMAIL, OWNER_PASSWORD
from tests.support.capture import Capture
from tests.support.database import database_session
from tests.support.live_server import allowance, serve_in_thread
from tests.support.paths import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT

if TYPE_CHECKING:
    from reflex.testing import AppHarness

SECRET_ENV = ("TRIGGER_SECRET_KEY", "ENRICHMENT_API_KEY", "LLM_API_KEY")
"""The settings that hold secrets (enrichment_app/settings.py); none may leave the backend."""
DEBUG_LOGGERS = ("enrichment_app", "httpx")
"""Turned up to DEBUG for the session, so the scan sees everything they could log."""


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

    def lookup_config(self) -> dict[str, str]:
        """An ``http_json`` config that looks each row's company up here."""
        return {
            "method": "GET",
            "url": self.url + "/lookup?company={Company}",
            "path": "data.industry",
        }

    def add_lookup_column(self, database_url: str, table_id: int) -> int:
        """The table's ``Industry`` column, calling this API, added unless it is there; its id."""
        with database_session(database_url) as session:
            column = session.exec(
                select(TableColumn).where(
                    TableColumn.table_id == table_id, TableColumn.name == "Industry"
                )
            ).first()
            if column is None:
                spec = ColumnSpec(
                    name="Industry",
                    kind=ColumnKind.ENRICHMENT,
                    enricher="http_json",
                    config=self.lookup_config(),
                )
                column = add_column(session=session, table_id=table_id, spec=spec)
                session.commit()
            assert column.id is not None
            return column.id


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
def app_secrets() -> dict[str, str]:
    """Strong random values for the app's secrets, new for every session."""
    return {
        "ENRICHMENT_API_KEY": "enr-" + secrets.token_urlsafe(32),
        "LLM_API_KEY": "sk-e2e-" + secrets.token_urlsafe(32),
    }


@pytest.fixture(scope="session")
def column_token() -> str:
    """The bearer token of an ``http_json`` column the secret flows save (a credential a user
    types into the app, as opposed to one in the environment)."""
    return "col-" + secrets.token_urlsafe(32)


@pytest.fixture(scope="session")
def llm_api(app_secrets: dict[str, str]) -> Iterator[FakeOpenAI]:
    """The fake OpenAI API, accepting the app's LLM key (a test may change ``api_key``)."""
    fake = FakeOpenAI(api_key=app_secrets["LLM_API_KEY"])
    with serve_in_thread(build_app(fake)) as url:
        fake.base_url = url + "/v1"
        yield fake


@pytest.fixture(scope="module")
def llm_table(app_url: str, app_database_url: str) -> LlmTable:
    """The secret flows' table (tests/e2e/secret_flows.py), new for each module that asks."""
    return create_llm_table(app_database_url)


@pytest.fixture(scope="session")
def trigger_env() -> dict[str, str]:
    """Trigger.dev settings: none here (local runner mode); tests/e2e/trigger/ overrides it."""
    return {}


@pytest.fixture(scope="session")
def enricher_allowance(gated_api: GatedApi) -> dict[str, str]:
    """The loopback servers enrichers may reach, for the app and the Trigger.dev worker alike:
    the egress guard refuses loopback otherwise (the LLM API is not behind the guard)."""
    return {"ENRICHER_ALLOWED_NETWORKS": allowance(gated_api.url)}


@pytest.fixture(scope="session")
def app_env(
    app_database_url: str,
    app_secrets: dict[str, str],
    llm_api: FakeOpenAI,
    trigger_env: dict[str, str],
    enricher_allowance: dict[str, str],
) -> dict[str, str]:
    """The environment the app starts with."""
    return {
        "DATABASE_URL": app_database_url,
        "SEED_DEMO": "true",
        # Changes made elsewhere are pushed: a test that relied on the idle table's fallback
        # poll would wait an hour for it.
        "TABLE_REFRESH_SECONDS": "3600",
        "LLM_BASE_URL": llm_api.base_url,
        **enricher_allowance,
        **app_secrets,
        **trigger_env,
    }


@pytest.fixture(scope="session")
def app_harness(app_env: dict[str, str]) -> Iterator[AppHarness]:
    """The app under AppHarness: the uvicorn backend in a thread of this process, vite dev."""
    from reflex.testing import AppHarness

    from enrichment_app.settings import get_settings

    for key in (*SECRET_ENV, "TRIGGER_API_URL", "OPENAI_API_KEY", "LLM_BASE_URL", "APP_SECRET_KEY"):
        os.environ.pop(key, None)
    os.environ.update(app_env)
    get_settings.cache_clear()
    with AppHarness.create(root=ROOT, app_name="enrichment_app") as harness:
        yield harness


@pytest.fixture(scope="session")
def app_url(app_harness: AppHarness) -> str:
    """The app's frontend URL, on the backend's host name: the session cookie is SameSite=Lax,
    and ``localhost`` and ``127.0.0.1`` are different sites to a browser (the harness's vite
    says ``localhost``, its backend listens on ``127.0.0.1``)."""
    assert app_harness.frontend_url is not None
    return app_harness.frontend_url.rstrip("/").replace("//localhost:", "//127.0.0.1:")


@pytest.fixture(scope="session")
def api_url(app_harness: AppHarness) -> str:
    """The backend's URL, where the REST API is (``/api/...``)."""
    assert app_harness.backend is not None
    host, port = app_harness.backend.servers[0].sockets[0].getsockname()[:2]
    return f"http://{host}:{port}"


# --- the secret scan -------------------------------------------------------------------


@pytest.fixture(scope="session")
def capture() -> Iterator[Capture]:
    """What the app let out during the session; log records are recorded from the start."""
    capture = Capture()
    with capture.logging(DEBUG_LOGGERS):
        yield capture


@pytest.fixture(scope="session")
def more_to_scan() -> Callable[[Capture], None]:
    """Adds what else the suite captured, at scan time; tests/e2e/trigger/ overrides it."""
    return lambda capture: None


_PRINTED: list[tuple[str, str]] = []
"""(test phase, text) for everything pytest captured on stdout and stderr."""
_SCAN_SUMMARY: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def secret_scan(
    capture: Capture,
    app_env: dict[str, str],
    more_to_scan: Callable[[Capture], None],
    column_token: str,
    first_run: FirstRun,
) -> Iterator[None]:
    """After every test (and after the app has stopped): no secret left the backend.

    Set up before the app and torn down after it, so the app's start and stop are logged into
    the capture. Printed output comes from pytest's reports, so the last test's teardown (the
    app's shutdown) is the one phase whose printed output is not scanned; its log records are.
    """
    yield
    for phase, text in _PRINTED:
        capture.add(f"printed in {phase}", text)
    more_to_scan(capture)
    scanned = {name: app_env[name] for name in SECRET_ENV if name in app_env}
    assert {"ENRICHMENT_API_KEY", "LLM_API_KEY"} <= scanned.keys()
    scanned["http_json column token"] = column_token
    scanned["the owner's session token"] = str(first_run.cookie["value"])
    counts = capture.counts()
    app_records = sum(
        n for name, n in capture.log.by_logger.items() if name.startswith("enrichment_app")
    )
    summary = {
        "secrets": sorted(scanned),
        "websocket_frames": counts.frames,
        "pages": counts.pages,
        "log_records": counts.log_records,
        "app_log_records": app_records,
        "printed_sections": len(_PRINTED),
        "printed_chars": sum(len(text) for _, text in _PRINTED),
        "api_responses": counts.responses,
        "other_texts": counts.other,
        "public_tokens": counts.public_tokens,
        "scanned_chars": sum(len(text) for text in capture.sources().values()),
    }
    _SCAN_SUMMARY.append(json.dumps(summary))
    ARTIFACTS.mkdir(exist_ok=True)
    mode = "trigger" if "TRIGGER_SECRET_KEY" in scanned else "local"
    (ARTIFACTS / f"secret-scan-{mode}.json").write_text(json.dumps(summary, indent=2) + "\n")
    # Not a scan of nothing: every page was watched, and the app's own loggers were heard.
    assert counts.frames > 0 and counts.pages > 0, summary
    assert app_records > 0, summary
    capture.assert_clean(scanned)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _SCAN_SUMMARY:
        terminalreporter.write_line(f"secret scan (clean): {line}")


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
    for stream, text in (("stdout", report.capstdout), ("stderr", report.capstderr)):
        if text:
            _PRINTED.append((f"{item.nodeid} {report.when} ({stream})", text))
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@dataclass
class FirstRun:
    """What the browser saw while the owner account was set up (tests/e2e/test_accounts.py)."""

    first_url: str = ""
    weak_password_message: str = ""
    landed_on: str = ""
    cookie: dict[str, object] = field(default_factory=dict)


@pytest.fixture(scope="session")
def first_run(browser: Browser, app_url: str, capture: Capture) -> FirstRun:
    """The owner set up through the set-up page, in a real browser, once per session: the
    first visitor is sent to it, a weak password is refused, then the account is made. Its
    session cookie signs every other test's browser in (``page``)."""
    seen = FirstRun()
    context = browser.new_context(viewport={"width": 1400, "height": 1700})
    capture.watch_context(context, "first run")
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(app_url + "/tables")
        page.wait_for_url("**/setup")
        seen.first_url = page.url
        page.locator("#email").fill(OWNER_EMAIL)
        page.locator("#name").fill("Olive Owner")
        page.locator("#password").fill("short")
        page.locator("#password-again").fill("short")
        page.locator("#setup-submit").click()
        page.locator("#auth-error").wait_for()
        seen.weak_password_message = page.locator("#auth-error").inner_text()
        page.locator("#password").fill(OWNER_PASSWORD)
        page.locator("#password-again").fill(OWNER_PASSWORD)
        page.locator("#setup-submit").click()
        page.wait_for_url("**/tables")
        page.locator("#account-name").wait_for()
        seen.landed_on = page.url
        seen.cookie = next(c for c in context.cookies() if c["name"] == COOKIE_NAME)  # type: ignore[assignment]
        capture.snapshot_context(context, "first run")
    finally:
        context.close()
    return seen


def signed_in_context(browser: Browser, first_run: FirstRun) -> BrowserContext:
    """A new browser context carrying the owner's session cookie."""
    context = browser.new_context(viewport={"width": 1400, "height": 1700})
    context.add_cookies([first_run.cookie])  # type: ignore[list-item]
    return context


@pytest.fixture
def page(
    browser: Browser, request: pytest.FixtureRequest, capture: Capture, first_run: FirstRun
) -> Iterator[Page]:
    """A fresh browser tab, signed in as the owner; on failure its screenshot goes to
    test-artifacts/ for diagnosis.

    Its websocket frames (and those of any page it opens) go to the secret scan, and so does
    the DOM of each of its pages when the test ends.
    """
    context = signed_in_context(browser, first_run)
    label = request.node.nodeid
    capture.watch_context(context, label)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    failed = request.node.stash.get(_CALL_FAILED, False)
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)
    capture.snapshot_context(context, label)
    context.close()
    if not failed:
        frames = capture.frames_of(label + " #")
        assert frames, f"no websocket frame was captured for {label}"
