"""State of the tables page (list, import, export, delete) and the add-column dialog."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import reflex as rx

from enrichment_app import routes
from enrichment_app.domain import ColumnKind
from enrichment_app.enrichers import available_enrichers, get_enricher
from enrichment_app.enrichers.config import parse_config_text
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.redact import scrub
from enrichment_app.runtime import get_runtime
from enrichment_app.services import credentials, tables as table_service
from enrichment_app.state.table import TableState


def _enricher_choices() -> list[dict[str, str]]:
    return [
        {
            "name": e.name,
            "label": e.label,
            "description": e.description,
            "example": json.dumps(e.config_example, indent=2),
        }
        for e in available_enrichers()
    ]


class TablesState(rx.State):
    """The list of tables, CSV import and export, and deleting."""

    tables: list[dict[str, Any]] = []
    new_table_name: str = ""
    message: str = ""
    notice: str = ""
    importing: bool = False

    @rx.event
    async def load(self):
        runtime = get_runtime()

        def read() -> list[dict[str, Any]]:
            with runtime.open_session() as session:
                return [
                    {"id": t.id, "name": t.name, "columns": t.columns, "rows": t.rows}
                    for t in table_service.list_tables(session=session)
                ]

        self.tables = await asyncio.to_thread(read)

    @rx.event
    def set_new_table_name(self, value: str):
        self.new_table_name = value

    @rx.event
    async def import_csv(self, files: list[rx.UploadFile]):
        """Create a table from the uploaded CSV; all or nothing."""
        self.message, self.notice = "", ""
        if not files:
            self.message = "Choose a CSV file first."
            return
        upload = files[0]
        runtime = get_runtime()
        limit = runtime.settings.max_csv_bytes
        data = await upload.read(limit + 1)
        name = self.new_table_name.strip() or Path(upload.filename or "Imported table").stem

        def store() -> int:
            with runtime.open_session() as session:
                table = table_service.import_csv(
                    session=session,
                    name=name,
                    data=data,
                    max_bytes=limit,
                    max_cell_chars=runtime.settings.max_cell_chars,
                )
                session.commit()
                assert table.id is not None
                return table.id

        self.importing = True
        yield
        try:
            table_id = await asyncio.to_thread(store)
        except EnrichmentAppError as exc:
            self.message = f"Could not import {upload.filename}: {exc}"
            return
        finally:
            self.importing = False
        self.new_table_name = ""
        self.notice = f"Imported '{name}'."
        yield rx.clear_selected_files("csv_upload")
        yield rx.redirect(f"/tables/{table_id}")

    @rx.event
    async def export_csv(self, table_id: int, name: str, raw: bool = False):
        """Download the table; formulas neutralised unless ``raw`` (then "(raw)" in the name)."""
        runtime = get_runtime()
        raw = raw is True

        def read() -> str:
            with runtime.open_session() as session:
                return table_service.export_csv(session=session, table_id=int(table_id), raw=raw)

        try:
            text = await asyncio.to_thread(read)
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        safe = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in str(name)[:200])
        filename = f"{safe.strip() or 'table'}{' (raw)' if raw else ''}.csv"
        return rx.download(data=text.encode("utf-8"), filename=filename, mime_type="text/csv")

    @rx.event
    async def delete_table(self, table_id: int):
        runtime = get_runtime()

        def delete() -> None:
            with runtime.open_session() as session:
                table_service.delete_table(session=session, table_id=table_id)
                session.commit()

        try:
            await asyncio.to_thread(delete)
        except EnrichmentAppError as exc:
            self.message = str(exc)
            return
        self.notice = "Table deleted."
        return TablesState.load


class AddColumnState(rx.State):
    """The dialog that adds an enrichment column to the open table.

    Credentials typed into the config leave the public ``config_text`` when the form is
    submitted: it then shows them as ``•••``, and the values wait in the backend-only
    ``_kept_secrets`` until the column is saved or the dialog is closed.
    """

    open: bool = False
    name: str = ""
    enricher: str = ""
    config_text: str = ""
    error: str = ""
    _kept_secrets: dict[str, str] = {}

    @rx.var
    def enrichers(self) -> list[dict[str, str]]:
        return _enricher_choices()

    @rx.var
    def description(self) -> str:
        for choice in _enricher_choices():
            if choice["name"] == self.enricher:
                return choice["description"]
        return ""

    @rx.event
    def set_open(self, value: bool):
        self.open = value is True
        if self.open:
            self.error = ""
            if not self.enricher:
                self.choose_enricher("template")
        elif self.enricher:
            self.choose_enricher(self.enricher)  # forget what was typed, credentials included

    @rx.event
    def set_name(self, value: str):
        self.name = value

    @rx.event
    def set_config_text(self, value: str):
        self.config_text = value

    @rx.event
    def choose_enricher(self, value: str):
        self.enricher = value
        self._kept_secrets = {}
        try:
            self.config_text = json.dumps(get_enricher(value).config_example, indent=2)
        except EnrichmentAppError as exc:
            self.error = str(exc)

    @rx.event
    async def submit(self):
        """Validate and add the column; the dialog stays open with a message on bad input."""
        kept = {tuple(json.loads(k)): v for k, v in self._kept_secrets.items()}
        try:
            typed = parse_config_text(self.config_text)
            paths = credentials.secret_paths(self.enricher, typed)
        except EnrichmentAppError as exc:
            self.error = scrub(str(exc), kept.values())
            return
        config, shown, kept = credentials.hide_typed_secrets(typed, paths, kept)
        if kept:
            self.config_text = json.dumps(shown, indent=2, ensure_ascii=False)
        self._kept_secrets = {json.dumps(list(k)): v for k, v in kept.items()}
        table = await self.get_state(TableState)
        table_id = table.table_id
        runtime = get_runtime()
        spec = table_service.ColumnSpec(
            name=self.name, kind=ColumnKind.ENRICHMENT, enricher=self.enricher, config=config
        )

        def add() -> None:
            with runtime.open_session() as session:
                table_service.add_column(
                    session=session, table_id=table_id, spec=spec, box=runtime.secret_box
                )
                session.commit()

        try:
            await asyncio.to_thread(add)
        except EnrichmentAppError as exc:
            self.error = scrub(str(exc), kept.values())
            return
        self.open, self.name, self.error = False, "", ""
        self.choose_enricher(self.enricher)
        return TableState.load


class IndexState(rx.State):
    """The start page opens the first table (the demo on a fresh install)."""

    @rx.event
    async def open_first_table(self):
        runtime = get_runtime()

        def first() -> int | None:
            with runtime.open_session() as session:
                tables = table_service.list_tables(session=session)
                return tables[0].id if tables else None

        table_id = await asyncio.to_thread(first)
        return rx.redirect(routes.table_url(table_id) if table_id else routes.TABLES, replace=True)
