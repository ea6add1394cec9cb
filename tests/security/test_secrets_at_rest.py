"""Column credentials: encrypted in the database file, masked for people, scrubbed from errors.

A real ``http_json`` column with every kind of credential (bearer token, Basic password, an
``X-Api-Key`` header, a ``secret_headers`` entry) runs against a loopback API that checks them
and, on one path, echoes them back in its error message, as careless APIs do.
"""

from __future__ import annotations

import base64
import logging
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from pydantic import ValidationError
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, TableColumn
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellRef, ColumnKind
from enrichment_app.egress import guarded_client
from enrichment_app.errors import EnricherConfigError
from enrichment_app.keyring import forget_cached_boxes, load_secret_box
from enrichment_app.redact import quiet_request_logs
from enrichment_app.runner.processing import process_job
from enrichment_app.runtime import Runtime
from enrichment_app.services import credentials
from enrichment_app.services.jobs import create_job
from enrichment_app.services.tables import (
    ColumnSpec,
    create_table,
    export_csv,
    list_columns,
    list_rows,
    update_column_config,
)
from enrichment_app.settings import Settings
from tests.support.live_server import allowance, serve_in_thread
from tests.support.secret_scan import find_leaks

TOKEN = "tok-" + secrets.token_urlsafe(24)
PASSWORD = "pw-" + secrets.token_urlsafe(24)
API_KEY = "key-" + secrets.token_urlsafe(24)
PARTNER = "partner-" + secrets.token_urlsafe(24)
SECRETS = {"token": TOKEN, "password": PASSWORD, "api key": API_KEY, "partner": PARTNER}


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    """Answers ``/ok`` only with every credential; ``/leaky`` repeats them in its error."""

    async def ok(request: Request) -> Response:
        h = request.headers
        seen = {
            "bearer": h.get("authorization") == f"Bearer {TOKEN}",
            "key": h.get("x-api-key") == API_KEY,
            "partner": h.get("x-partner-id") == PARTNER,
        }
        return JSONResponse({"seen": seen}, status_code=200 if all(seen.values()) else 401)

    async def basic(request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"me:{PASSWORD}".encode()).decode()
        return JSONResponse({"ok": request.headers.get("authorization") == expected})

    async def leaky(request: Request) -> Response:
        h = request.headers
        echoed = " ".join(h.get(k, "") for k in ("authorization", "x-api-key", "x-partner-id"))
        return JSONResponse({"error": {"message": f"bad request, you sent {echoed}"}}, 400)

    app = Starlette(routes=[Route("/ok", ok), Route("/basic", basic), Route("/leaky", leaky)])
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def keyed(settings: Settings) -> Iterator[Settings]:
    forget_cached_boxes()
    yield settings.model_copy(update={"app_secret_key": _key()})
    forget_cached_boxes()


def _key() -> Any:
    from pydantic import SecretStr

    return SecretStr(Fernet.generate_key().decode())


def _config(api: str, path: str = "/ok") -> dict[str, Any]:
    return {
        "url": api + path,
        "path": "",
        "auth": {"type": "bearer", "token": TOKEN},
        "headers": {"X-Api-Key": API_KEY, "Accept": "application/json"},
        "secret_headers": {"X-Partner-Id": PARTNER},
    }


def _make_table(open_session: SessionFactory, settings: Settings, config: dict[str, Any]) -> int:
    box = credentials.secret_box(settings)
    with open_session() as session:
        table = create_table(
            session=session,
            name="Secrets",
            columns=[
                ColumnSpec("Name"),
                ColumnSpec("Lookup", ColumnKind.ENRICHMENT, "http_json", config),
            ],
            rows=[["a"], ["b"]],
            max_cell_chars=1000,
            box=box,
        )
        session.commit()
        assert table.id is not None
        return table.id


async def _run_all(open_session: SessionFactory, settings: Settings, table_id: int) -> list[Cell]:
    with unit_of_work(open_session) as session:
        column = list_columns(session=session, table_id=table_id)[1]
        refs = [
            CellRef(row_id=r.id or 0, column_id=column.id or 0)
            for r in list_rows(session=session, table_id=table_id)
        ]
        job = create_job(session=session, table_id=table_id, cells=refs, max_cells=10).job
        assert job.id is not None
    async with guarded_client(settings.enricher_allowed) as http:
        await process_job(job.id, session_factory=open_session, http=http, settings=settings)
    with open_session() as session:
        return list(session.exec(select(Cell).where(Cell.column_id == column.id)).all())


def _database_bytes(settings: Settings) -> bytes:
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


async def test_credentials_are_encrypted_in_the_database_file_and_still_work(
    keyed: Settings, open_session: SessionFactory, api: str
) -> None:
    settings = keyed.model_copy(update={"enricher_allowed_networks": allowance(api)})
    table_id = _make_table(open_session, settings, _config(api))
    cells = await _run_all(open_session, settings, table_id)
    assert [c.error for c in cells] == [None, None]
    assert all('"bearer":true' in (c.value or "") for c in cells)
    assert find_leaks(SECRETS, {"database file": _database_bytes(settings)}) == []


async def test_the_page_and_the_api_see_only_dots(
    keyed: Settings, open_session: SessionFactory, api: str
) -> None:
    table_id = _make_table(open_session, keyed, _config(api))
    with open_session() as session:
        column = list_columns(session=session, table_id=table_id)[1]
        shown = credentials.masked_config(column.config)
    assert shown["auth"] == {"type": "bearer", "token": "•••"}
    assert shown["headers"] == {"X-Api-Key": "•••", "Accept": "application/json"}
    assert shown["secret_headers"] == {"X-Partner-Id": "•••"}
    assert find_leaks(SECRETS, {"masked": repr(shown)}) == []


async def test_an_error_that_echoes_the_credentials_is_scrubbed(
    keyed: Settings, open_session: SessionFactory, api: str
) -> None:
    settings = keyed.model_copy(update={"enricher_allowed_networks": allowance(api)})
    table_id = _make_table(open_session, settings, _config(api, "/leaky"))
    cells = await _run_all(open_session, settings, table_id)
    assert all(c.error and c.error.startswith("HTTP 400 from") for c in cells)
    assert all("[redacted]" in (c.error or "") for c in cells)
    with open_session() as session:
        exported = export_csv(session=session, table_id=table_id, raw=True)
    sources = {f"cell error {i}": c.error or "" for i, c in enumerate(cells)}
    assert find_leaks(SECRETS, {**sources, "export": exported}) == []


async def test_basic_auth_passwords_are_sealed_too(
    keyed: Settings, open_session: SessionFactory, api: str
) -> None:
    settings = keyed.model_copy(update={"enricher_allowed_networks": allowance(api)})
    config = {
        "url": api + "/basic",
        "path": "ok",
        "auth": {"type": "basic", "username": "me", "password": PASSWORD},
    }
    table_id = _make_table(open_session, settings, config)
    assert [c.value for c in await _run_all(open_session, settings, table_id)] == ["true"] * 2
    assert find_leaks({"password": PASSWORD}, {"db": _database_bytes(settings)}) == []


async def test_a_changed_key_is_a_clear_cell_error_not_a_crash(
    keyed: Settings, open_session: SessionFactory, api: str
) -> None:
    settings = keyed.model_copy(update={"enricher_allowed_networks": allowance(api)})
    table_id = _make_table(open_session, settings, _config(api))
    other = settings.model_copy(update={"app_secret_key": _key()})
    cells = await _run_all(open_session, other, table_id)
    assert all(c.value is None for c in cells)
    assert all(
        "A saved credential cannot be decrypted: APP_SECRET_KEY changed" in (c.error or "")
        for c in cells
    )


def test_editing_without_retyping_keeps_the_saved_secret(
    keyed: Settings, open_session: SessionFactory, api: str
) -> None:
    table_id = _make_table(open_session, keyed, _config(api))
    box = credentials.secret_box(keyed)
    with open_session() as session:
        column = list_columns(session=session, table_id=table_id)[1]
        assert column.id is not None
        edited = credentials.masked_config(column.config) | {"path": "seen"}
        update_column_config(
            session=session, table_id=table_id, column_id=column.id, config=edited, box=box
        )
        session.commit()
        opened = credentials.open_config(column.config, box)
    assert opened["path"] == "seen"
    assert opened["auth"]["token"] == TOKEN
    assert opened["headers"]["X-Api-Key"] == API_KEY


def test_dots_for_a_credential_never_saved_are_refused(
    keyed: Settings, open_session: SessionFactory, api: str
) -> None:
    config = _config(api) | {"auth": {"type": "bearer", "token": "•••"}}
    with pytest.raises(EnricherConfigError, match="Enter the value for auth → token"):
        _make_table(open_session, keyed, config)


def test_plain_text_credentials_from_before_are_encrypted_at_start_up(
    keyed: Settings, open_session: SessionFactory, engine: sa.Engine, api: str
) -> None:
    _make_table(open_session, keyed, {"url": api + "/ok", "path": ""})
    with engine.begin() as connection:  # as an older version stored them
        connection.execute(
            sa.update(TableColumn)
            .where(TableColumn.enricher == "http_json")  # type: ignore[arg-type]
            .values(config=_config(api))
        )
    assert find_leaks({"token": TOKEN}, {"db": _database_bytes(keyed)}) != []
    for _ in range(2):  # idempotent
        runtime = Runtime(settings=keyed)
        runtime.engine.dispose()
    assert find_leaks(SECRETS, {"db": _database_bytes(keyed)}) == []
    with open_session() as session:
        column = session.exec(select(TableColumn).where(TableColumn.enricher == "http_json")).one()
        opened = credentials.open_config(column.config, credentials.secret_box(keyed))
    assert opened["auth"]["token"] == TOKEN


def test_rotation_re_encrypts_with_the_new_key(
    keyed: Settings, open_session: SessionFactory, api: str
) -> None:
    table_id = _make_table(open_session, keyed, _config(api))
    old = keyed.app_secret_key
    assert old is not None
    new = Fernet.generate_key().decode()
    both = load_secret_box(f"{new},{old.get_secret_value()}", Path("/nonexistent"))
    with open_session() as session:
        assert credentials.reseal_credentials(session=session, box=both) == 1
        session.commit()
    only_new = load_secret_box(new, Path("/nonexistent"))
    with open_session() as session:
        column = list_columns(session=session, table_id=table_id)[1]
        assert credentials.open_config(column.config, only_new)["auth"]["token"] == TOKEN


def test_a_bad_app_secret_key_stops_start_up_without_printing_it() -> None:
    bad = "not-a-key-" + secrets.token_urlsafe(20)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, app_secret_key=f"{Fernet.generate_key().decode()},{bad}")
    assert "APP_SECRET_KEY: key 2 of 2 is not a Fernet key" in str(caught.value)
    assert bad not in str(caught.value)


def test_without_a_key_one_is_generated_once_beside_the_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    forget_cached_boxes()
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/data/app.db")
    with caplog.at_level(logging.WARNING, logger="enrichment_app.keyring"):
        first = credentials.secret_box(settings)
        forget_cached_boxes()
        second = credentials.secret_box(settings)
    key_file = tmp_path / "data" / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert second.decrypt(first.encrypt("x")) == "x"
    notices = [r for r in caplog.records if "a new secret key was generated" in r.getMessage()]
    assert len(notices) == 1 and str(key_file) in notices[0].getMessage()
    forget_cached_boxes()


def test_httpx_does_not_log_request_urls(caplog: pytest.LogCaptureFixture) -> None:
    quiet_request_logs()
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)


def test_the_rotate_command_re_encrypts_and_the_old_key_can_go(
    keyed: Settings, open_session: SessionFactory, api: str, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    table_id = _make_table(open_session, keyed, _config(api))
    old = keyed.app_secret_key
    assert old is not None
    root = Path(__file__).resolve().parents[2]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root)}
    env["DATABASE_URL"] = keyed.database_url
    new = subprocess.run(
        [sys.executable, "-m", "enrichment_app.keys", "generate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env["APP_SECRET_KEY"] = f"{new},{old.get_secret_value()}"
    done = subprocess.run(
        [sys.executable, "-m", "enrichment_app.keys", "rotate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Re-encrypted the credentials of 1 column(s)" in done.stdout
    with open_session() as session:
        column = list_columns(session=session, table_id=table_id)[1]
        box = load_secret_box(new, Path("/nonexistent"))
        assert credentials.open_config(column.config, box)["auth"]["token"] == TOKEN
