"""The app in Trigger.dev mode against the fake Trigger.dev server, for the live-status benchmarks.

``LiveApp`` starts the fake (in this process, on an ephemeral loopback port, with no executor:
the benchmark itself plays the task and changes the run at known instants) and the real app as
a production build on one port (``reflex run --env prod``), in its own process group, with its
own SQLite file and its own ``.web`` build folder under ``bench/.work/`` so it never touches a
developer's dev server or data. Everything it starts is stopped on exit (the whole group).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psutil

from tests.fakes.trigger_server import FakeTrigger

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
START_TIMEOUT = 240.0


def _env_with_tools() -> dict[str, str]:
    """scripts/env.sh, for a child process: the project's tools first on PATH, no phoning home."""
    env = dict(os.environ)
    path = [str(ROOT / ".venv" / "bin"), str(ROOT / ".tools" / "bun" / "node_modules" / ".bin")]
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    env.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    env.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")
    env.setdefault("BUN_INSTALL_CACHE_DIR", str(ROOT / ".tools" / "bun-cache"))
    if "NPM_CONFIG_REGISTRY" not in env:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            env["NPM_CONFIG_REGISTRY"] = subprocess.run(
                ["npm", "config", "get", "registry"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
    return env


@dataclass
class LiveApp:
    """The fake Trigger.dev server plus the app (prod build, one port) in Trigger.dev mode."""

    name: str
    port: int = 3200
    live_poll_timeout: float = 20.0
    fake: FakeTrigger = field(init=False)
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    log_path: Path = field(init=False)
    startup_seconds: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)
    """More environment for the app (e.g. ``REFLEX_STATE_MANAGER_MODE`` for an experiment)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        WORK.mkdir(parents=True, exist_ok=True)
        run_dir = WORK / self.name
        run_dir.mkdir(exist_ok=True)
        database = run_dir / "app.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(database) + suffix).unlink(missing_ok=True)
        self.fake = FakeTrigger(live_poll_timeout=self.live_poll_timeout).start()
        env = _env_with_tools()
        for key in ("LLM_API_KEY", "OPENAI_API_KEY"):
            env.pop(key, None)
        env.update(
            {
                "DATABASE_URL": f"sqlite:///{database}",
                "SEED_DEMO": "true",
                "TRIGGER_SECRET_KEY": self.fake.secret_key,
                "TRIGGER_API_URL": self.fake.url,
                "ENRICHMENT_API_KEY": self.api_key,
                "REFLEX_WEB_WORKDIR": str(WORK / "live_web"),
                "REFLEX_STATES_WORKDIR": str(WORK / "live_states"),
                "PYTHONUNBUFFERED": "1",
                **self.extra_env,
            }
        )
        self.log_path = run_dir / "reflex.log"
        log = self.log_path.open("wb")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex",
                "run",
                "--env",
                "prod",
                "--frontend-port",
                str(self.port),
                "--backend-port",
                str(self.port),
                "--backend-host",
                "127.0.0.1",
                "--loglevel",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"reflex exited with {self.process.returncode}; see {self.log_path}"
                )
            with contextlib.suppress(httpx.HTTPError):
                ping = httpx.get(self.url + "/ping", timeout=2)
                page = httpx.get(self.url + "/tables/1", timeout=5)
                if ping.status_code == 200 and page.status_code == 200:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"the app did not answer on {self.url} within {START_TIMEOUT:.0f} s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None
        self.fake.stop()

    # -- the app's side ------------------------------------------------------------------------

    def backend_processes(self) -> list[psutil.Process]:
        """The granian worker(s) serving the app: the processes holding Reflex state."""
        assert self.process is not None
        group = os.getpgid(self.process.pid)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(proc.pid) != group:
                    continue
                found.append(proc)
        # The worker is the leaf python process; the reflex CLI and granian's supervisor wrap it.
        leaves = [p for p in found if not p.children() and "python" in (p.name() or "")]
        return leaves or found

    def backend_rss_mib(self) -> float:
        return sum(p.memory_info().rss for p in self.backend_processes()) / 2**20

    def start_job(self, cells: list[dict[str, int]]) -> dict[str, Any]:
        """POST /api/tables/1/enrich: the app creates the job and triggers its run on the fake."""
        response = httpx.post(
            self.url + "/api/tables/1/enrich",
            json={"cells": cells},
            headers={"authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def enrichment_cells(self, count: int) -> list[dict[str, int]]:
        """``count`` cells of the demo table's enrichment columns, read from the app's database."""
        import sqlalchemy as sa

        engine = sa.create_engine(f"sqlite:///{WORK / self.name / 'app.db'}")
        try:
            with engine.connect() as conn:
                columns = [
                    r[0]
                    for r in conn.execute(
                        sa.text(
                            "select id from table_column where table_id = 1 and kind = 'enrichment'"
                            " order by id"
                        )
                    )
                ]
                rows = [
                    r[0]
                    for r in conn.execute(
                        sa.text("select id from table_row where table_id = 1 order by id")
                    )
                ]
        finally:
            engine.dispose()
        cells = [{"rowId": r, "columnId": c} for c in columns for r in rows]
        return cells[:count]


def code_state() -> dict[str, object]:
    """The commit measured, and which app files differed from it (others edit concurrently)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
        ).stdout.rstrip()

    changed = git("status", "--porcelain", "--", "enrichment_app", "tests/fakes", "rxconfig.py")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_app_files": [line[3:] for line in changed.splitlines()],
    }


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop a process started with ``start_new_session`` and everything in its group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers (bun, granian workers)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
