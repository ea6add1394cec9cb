"""The app's backend as production runs it, in a process group the soak can SIGKILL and restart.

``reflex run --env prod --backend-only`` serves the websocket, the REST API and the app's
lifespan (which resumes local jobs and settles Trigger.dev jobs on start) on one loopback
port; the soak's page clients speak Reflex's websocket protocol, so no frontend is built.
``kill()`` SIGKILLs the whole group (the reflex CLI and the granian worker: nothing runs its
shutdown), ``start()`` starts it again on the same port with the same environment, and every
start appends to one log file, which the soak scans for secrets.
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
from typing import IO

import httpx

from tests.prod_app import ROOT, env_with_tools, stop_group
from tests.servers import free_port

START_TIMEOUT = 120.0


@dataclass
class Backend:
    work: Path
    """Scratch folder for Reflex's state and web folders."""
    env: Mapping[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)
    kills: int = field(default=0, init=False)
    start_seconds: list[float] = field(default_factory=list, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not self.port:
            self.port = free_port()
        self.work.mkdir(parents=True, exist_ok=True)
        env = env_with_tools()
        env.update(
            {
                "REFLEX_WEB_WORKDIR": str(self.work / "web"),
                "REFLEX_STATES_WORKDIR": str(self.work / "states"),
                "PYTHONUNBUFFERED": "1",
                **self.env,
            }
        )
        if self._log is None:
            self._log = self.log_path.open("ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex",
                "run",
                "--env",
                "prod",
                "--backend-only",
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
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1
        self._wait_ready()
        self.start_seconds.append(time.monotonic() - started)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the backend exited with {self.process.returncode}; see {self.log_path}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/ping", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"the backend did not answer on {self.url} within {START_TIMEOUT:.0f} s")

    def kill(self) -> None:
        """SIGKILL every process of the backend's group at once, as a crash or OOM kill would."""
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
