"""The app as a production deployment: ``reflex run --env prod``, in its own process group.

``ProdApp`` builds the frontend and serves it, the websocket and the REST API on one loopback
port (a free one unless given) with granian, using the environment it is handed (database,
Trigger.dev, Redis, worker count). Its ``.web`` build folder and state folder live in a scratch
folder of the caller's choosing (git-ignored), so it never touches a developer's ``.web`` or
dev server. Everything it starts is stopped on exit (the whole process group). The browser
tests of tests/topology/ and the live-status benchmarks in bench/ start the app with it; the
soak (tests/soak/backend.py) starts its backend alone with it, and SIGKILLs and restarts it.
``DevApp`` starts the app the way the README's first command does, ``bash scripts/run.sh``
(the README's screenshot is taken with it, and tests/docs/ checks that it works).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

import httpx
import psutil

from tests.support.paths import ROOT
from tests.support.servers import Service, free_port
from tests.support.waiting import wait_until

START_TIMEOUT = 240.0
SCRUBBED_ENV = (
    "DATABASE_URL",
    "TRIGGER_SECRET_KEY",
    "TRIGGER_API_URL",
    "ENRICHMENT_API_KEY",
    "LLM_API_KEY",
    "OPENAI_API_KEY",
    "REFLEX_REDIS_URL",
    "REFLEX_STATE_MANAGER_MODE",
    "GRANIAN_WORKERS",
)
"""Settings a developer's shell may hold that must come from the caller, or not at all."""


def env_with_tools() -> dict[str, str]:
    """scripts/env.sh, for a child process: the project's tools first on PATH, no phoning home."""
    env = dict(os.environ)
    for key in SCRUBBED_ENV:
        env.pop(key, None)
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
class ProdApp(Service):
    """``reflex run --env prod`` on one loopback port, with ``env`` on top of the tools' env."""

    work: Path
    """Scratch folder (git-ignored): the ``web`` build folder and the ``states`` folder."""
    env: Mapping[str, str]
    log_path: Path
    port: int = 0
    """0: a free port, picked at start."""
    ready_path: str | None = "/tables/1"
    """A page that must answer 200 before the app counts as started (None: ``/ping`` alone)."""
    backend_only: bool = False
    """``--backend-only``: the websocket, the REST API and the lifespan, no frontend built."""
    loglevel: str = "warning"
    root: Path = ROOT
    """The checkout whose app runs (a benchmark may compare another one)."""
    start_timeout: float = START_TIMEOUT
    poll_seconds: float = 0.5
    """How often to ask whether the app is up while it starts."""
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)
    """Processes started so far (counted before each is ready)."""
    kills: int = field(default=0, init=False)
    start_seconds: list[float] = field(default_factory=list, init=False)
    """How long each start took until the app answered."""
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def startup_seconds(self) -> float:
        """How long the last start took."""
        return self.start_seconds[-1] if self.start_seconds else 0.0

    def start(self) -> Self:
        self.work.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        env = env_with_tools()
        env.update(
            {
                "REFLEX_WEB_WORKDIR": str(self.work / "web"),
                "REFLEX_STATES_WORKDIR": str(self.work / "states"),
                "PYTHONUNBUFFERED": "1",
                **self.env,
            }
        )
        if self._log is None:  # the first start writes a new log, a restart appends to it
            self._log = self.log_path.open("ab" if self.starts else "wb")
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.start_seconds.append(time.monotonic() - started)
        return self

    def command(self) -> list[str]:
        """How the app is started: ``reflex run --env prod`` on one port."""
        frontend = ["--backend-only"] if self.backend_only else ["--frontend-port", str(self.port)]
        return [sys.executable, "-m", "reflex", "run", "--env", "prod", *self._options(frontend)]

    def _options(self, frontend: list[str]) -> list[str]:
        """``reflex run``'s options: ``frontend``'s, then the backend on loopback, the log level."""
        backend = ["--backend-port", str(self.port), "--backend-host", "127.0.0.1"]
        return [*frontend, *backend, "--loglevel", self.loglevel]

    @property
    def page_url(self) -> str:
        """Where the pages are served (the same port as the backend in production)."""
        return self.url

    def _wait_ready(self) -> None:
        process = self.process
        assert process is not None
        wait_until(
            lambda: process.poll() is not None or self._answers(),
            timeout=self.start_timeout,
            interval=self.poll_seconds,
            message=f"the app to answer on {self.page_url}{self.ready_path or '/ping'}",
        )
        if process.poll() is not None:
            raise RuntimeError(
                f"reflex exited with {process.returncode}; see {self.log_path}:\n"
                + self.log_path.read_text(errors="replace")[-4000:]
            )

    def _answers(self) -> bool:
        """Whether ``/ping``, then the ready page, answer 200."""
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(self.url + "/ping", timeout=2).status_code == 200 and (
                self.ready_path is None
                or httpx.get(self.page_url + self.ready_path, timeout=5).status_code == 200
            )
        return False

    def kill(self) -> None:
        """SIGKILL every process of the app's group at once, as a crash or OOM kill would."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(15)
        self.process = None
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def backend_processes(self) -> list[psutil.Process]:
        """The granian worker(s) serving the app: the processes holding sockets and run feeds."""
        assert self.process is not None
        group = os.getpgid(self.process.pid)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(proc.pid) != group:
                    continue
                found.append(proc)
        # A worker is a leaf python process; the reflex CLI and granian's supervisor wrap it.
        leaves = [p for p in found if not p.children() and "python" in (p.name() or "")]
        return leaves or found

    def backend_rss_mib(self) -> float:
        return sum(p.memory_info().rss for p in self.backend_processes()) / 2**20


@dataclass
class DevApp(ProdApp):
    """``bash scripts/run.sh``, the README's first command: the dev server, as a developer runs it.

    Vite serves the pages on ``frontend_port`` and the backend listens on ``port`` (free ports
    unless given). The dev server reloads when files under the checkout change, so ``work``
    (its build and state folders) belongs outside it.
    """

    frontend_port: int = 0
    loglevel: str = "info"

    def start(self) -> Self:
        if not self.frontend_port:
            self.frontend_port = free_port()
        return super().start()

    def command(self) -> list[str]:
        run = str(self.root / "scripts" / "run.sh")
        return ["bash", run, *self._options(["--frontend-port", str(self.frontend_port)])]

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.frontend_port}"


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
