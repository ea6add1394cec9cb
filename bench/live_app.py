"""The app in Trigger.dev mode against the fake Trigger.dev server, for the live-status benchmarks.

``LiveApp`` starts the fake (in this process, on an ephemeral loopback port, with no executor:
the benchmark itself plays the task and changes the run at known instants) and the real app as
a production build on one port (``reflex run --env prod``), in its own process group, with its
own SQLite file and its own ``.web`` build folder under ``bench/.work/`` so it never touches a
developer's dev server or data. Everything it starts is stopped on exit (the whole group).
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psutil

from tests.fakes.trigger import FakeTrigger
from tests.support.paths import ROOT
from tests.support.prod_app import ProdApp

WORK = ROOT / "bench" / ".work"


@dataclass
class LiveApp:
    """The fake Trigger.dev server plus the app (prod build, one port) in Trigger.dev mode."""

    name: str
    port: int = 3200
    live_poll_timeout: float = 20.0
    fake: FakeTrigger = field(init=False)
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    app: ProdApp | None = field(default=None, init=False)
    startup_seconds: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)
    """More environment for the app (e.g. ``REFLEX_STATE_MANAGER_MODE`` for an experiment)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return WORK / self.name / "reflex.log"

    def __enter__(self) -> Self:
        run_dir = WORK / self.name
        run_dir.mkdir(parents=True, exist_ok=True)
        database = run_dir / "app.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(database) + suffix).unlink(missing_ok=True)
        self.fake = FakeTrigger(live_poll_timeout=self.live_poll_timeout).start()
        self.app = ProdApp(
            work=WORK / "live",
            log_path=self.log_path,
            port=self.port,
            env={
                "DATABASE_URL": f"sqlite:///{database}",
                "SEED_DEMO": "true",
                "TRIGGER_SECRET_KEY": self.fake.secret_key,
                "TRIGGER_API_URL": self.fake.url,
                "ENRICHMENT_API_KEY": self.api_key,
                **self.extra_env,
            },
        )
        try:
            self.app.start()
        except BaseException:
            self.fake.stop()
            raise
        self.startup_seconds = self.app.startup_seconds
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.app is not None:
            self.app.stop()
            self.app = None
        self.fake.stop()

    # -- the app's side ------------------------------------------------------------------------

    def backend_processes(self) -> list[psutil.Process]:
        """The granian worker(s) serving the app: the processes holding Reflex state."""
        assert self.app is not None
        return self.app.backend_processes()

    def backend_rss_mib(self) -> float:
        assert self.app is not None
        return self.app.backend_rss_mib()

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


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
