"""Throwaway PostgreSQL and Redis servers from Debian's packages, for tests and benchmarks.

Each lives in its own temporary directory, listens on loopback only (PostgreSQL on a free port
plus a Unix socket, Redis on a Unix socket alone, so no port can collide with a developer's
servers or another test run), keeps nothing on disk that outlives it, and is stopped and
removed when its ``with`` block ends. ``scripts/bootstrap.sh --dev`` installs both packages.
``serve_asgi`` runs one of our own ASGI apps (the soak's oracle, the benchmarks' slow API) the
same way, in its own uvicorn process on a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Self

import httpx

from tests.support.paths import ROOT
from tests.support.waiting import WaitTimeout, wait_until

PG_USER = "postgres"
REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT = 60.0


class ServerUnavailable(RuntimeError):
    """The server's binaries are missing, or it did not start (the message says why)."""


class Service:
    """Something a test starts and stops: ``start()`` returns it, ``with service:`` does both."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, and SIGKILL if the process has not exited within ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ServerUnavailable(
            f"{command[-1]!r} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )


# -- PostgreSQL ------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL server's bin directory (initdb, pg_ctl)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found or not found[-1].with_name("pg_ctl").exists():
        raise ServerUnavailable(
            "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb and pg_ctl) are "
            "missing; run `scripts/bootstrap.sh --dev` to install them."
        )
    return found[-1].parent


def _as_postgres(*command: str | Path) -> list[str]:
    """Run as the postgres OS user when we are root: the server refuses to run as root."""
    args = [str(c) for c in command]
    return ["runuser", "-u", PG_USER, "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def postgres_cluster(*, durable: bool = False) -> Iterator[str]:
    """Start a PostgreSQL cluster; yields the URL of its ``postgres`` database (trust auth).

    ``durable=False`` turns fsync and friends off, which is what tests want; benchmarks that
    measure write throughput pass ``durable=True`` for the default settings.
    """
    bindir = postgres_bindir()
    # Not under pytest's tmp dir: its parents are private to root and postgres must reach it.
    root = Path(tempfile.mkdtemp(prefix="enrichment-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, user=PG_USER, group=PG_USER)
    port = free_port()
    started = False
    try:
        initdb = [bindir / "initdb", "-D", data, "-U", PG_USER, "-A", "trust", "-E", "UTF8"]
        initdb += ["--locale=C", "--no-instructions", *([] if durable else ["--no-sync"])]
        _run(_as_postgres(*initdb))
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root}"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        try:
            _run(
                _as_postgres(
                    bindir / "pg_ctl",
                    "-D",
                    data,
                    "-l",
                    log,
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
            )
        except ServerUnavailable as exc:
            raise ServerUnavailable(f"{exc}\n{_read_log(log)}") from None
        started = True
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(
                _as_postgres(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"),
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


# -- Redis -----------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Start a Redis server on a Unix socket, with no persistence; yields its ``unix://`` URL."""
    if not Path(REDIS_SERVER).exists():
        raise ServerUnavailable(
            f"{REDIS_SERVER} is missing; run `scripts/bootstrap.sh --dev` to install redis-server."
        )
    root = Path(tempfile.mkdtemp(prefix="enrichment-redis-"))
    sock, log = root / "redis.sock", root / "server.log"
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            "0",  # no TCP listener at all: nothing to collide with
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(root),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(log),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        try:
            wait_until(
                lambda: process.poll() is not None or _answers_ping(sock),
                timeout=START_TIMEOUT,
                message=f"redis-server to answer PING on {sock}",
            )
        except WaitTimeout as exc:
            raise ServerUnavailable(f"{exc}:\n{_read_log(log)}") from None
        if process.poll() is not None:
            raise ServerUnavailable(
                f"redis-server exited with {process.returncode}:\n{_read_log(log)}"
            )
        yield f"unix://{sock}"
    finally:
        stop_process(process, 15)
        shutil.rmtree(root, ignore_errors=True)


def _answers_ping(path: Path) -> bool:
    """Whether a Redis server answers PING on the Unix socket (RESP, no client library)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


# -- our own ASGI apps -----------------------------------------------------------------------


@contextlib.contextmanager
def serve_asgi(
    app: str, *, log: Path | None = None, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Run ``python -m uvicorn app`` (``module:attribute``, an app that answers ``GET /ping``)
    in its own process on a free loopback port; yields its base URL once ``/ping`` answers.

    Its output goes to ``log`` (else to ours); ``env`` is added to our environment.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("wb")) if log is not None else None
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", app),
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--log-level", "warning", "--no-access-log"),
            ],
            cwd=ROOT,
            env={**os.environ, **env} if env else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
        )
        stack.callback(stop_process, process)
        see = f"; see {log}" if log is not None else ""
        wait_until(
            lambda: process.poll() is not None or _answers_http(url + "/ping"),
            timeout=30,
            interval=0.1,
            message=f"{app} to answer GET {url}/ping{see}",
        )
        if process.poll() is not None:
            raise RuntimeError(f"{app} exited with {process.returncode} as it started{see}")
        yield url


def _answers_http(url: str) -> bool:
    """Whether ``GET url`` answers 200 (any HTTP error, a refused connection included: no)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _read_log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else "(no server log)"
