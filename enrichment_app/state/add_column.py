"""State of the dialog that adds an enrichment column to the open table."""

from __future__ import annotations

import json
from typing import Any

import reflex as rx
from sqlmodel import Session

from enrichment_app.db.sessions import in_session, in_transaction
from enrichment_app.domain import ColumnKind
from enrichment_app.enrichers import available_enrichers, get_enricher
from enrichment_app.enrichers.config import parse_config_text
from enrichment_app.enrichers.forms import example_for, field_values, set_field
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.keyring import SecretBox
from enrichment_app.redact import scrub
from enrichment_app.runtime import get_runtime
from enrichment_app.services import (
    audit,
    columns as column_service,
    credentials,
    tables as table_service,
)
from enrichment_app.services.access import Action, Grant, authorize
from enrichment_app.services.audit import Audited
from enrichment_app.services.tables import MAX_NAME_CHARS, ColumnSpec
from enrichment_app.state.access import Guarded, current_grant, current_principal, guard
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


async def _page_table(state: Any, _arguments: Any) -> dict[str, int]:
    """The table open on the page (the dialog belongs to it)."""
    table = await state.get_state(TableState)
    return {"table_id": int(table.table_id)}


def _add_and_record(
    session: Session,
    *,
    grant: Grant,
    table_id: int,
    spec: ColumnSpec,
    box: SecretBox,
    max_config_bytes: int,
) -> None:
    column = table_service.add_column(
        session, table_id=table_id, spec=spec, box=box, max_config_bytes=max_config_bytes
    )
    audit.record_on_table(
        session,
        grant=grant,
        action=Audited.COLUMN_ADD,
        table_id=table_id,
        detail=f"'{column.name}' ({spec.enricher or 'input'})",
    )


def _edit_and_record(
    session: Session,
    *,
    grant: Grant,
    table_id: int,
    column_id: int,
    config: dict[str, Any],
    box: SecretBox,
    max_config_bytes: int,
) -> None:
    column = table_service.update_column_config(
        session,
        table_id=table_id,
        column_id=column_id,
        config=config,
        box=box,
        max_config_bytes=max_config_bytes,
    )
    audit.record_on_table(
        session,
        grant=grant,
        action=Audited.COLUMN_CHANGE,
        table_id=table_id,
        detail=f"'{column.name}' ({column.enricher})",
    )


class AddColumnState(Guarded, rx.State):
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
    table_columns: list[str] = []
    """The open table's column names, for the form's column pickers and template fields."""
    editing: int = 0
    """The id of the column being edited (0: a new column is being added)."""
    json_view: bool = False
    _kept_secrets: dict[str, str] = {}

    @rx.var
    def form_fields(self) -> list[dict[str, str]]:
        """The form's fields with the values the JSON holds (empty while it does not parse)."""
        try:
            enricher = get_enricher(self.enricher)
            config = parse_config_text(self.config_text)
        except EnrichmentAppError:
            try:
                return field_values(get_enricher(self.enricher), {})
            except EnrichmentAppError:
                return []
        return field_values(enricher, config)

    @rx.var
    def enrichers(self) -> list[dict[str, str]]:
        return _enricher_choices()

    @rx.var
    def description(self) -> str:
        for choice in _enricher_choices():
            if choice["name"] == self.enricher:
                return choice["description"]
        return ""

    async def _read_columns(self) -> None:
        table = await self.get_state(TableState)
        self.table_columns = [
            str(c.get("title", "")).removesuffix(" ✦") for c in table.grid_columns
        ]

    @rx.event
    @guard(Action.EDIT_COLUMNS, target=_page_table)
    async def open_changed(self, value: bool):
        self.open = value is True
        if self.open:
            self.error = ""
            self.editing = 0
            await self._read_columns()
            self._choose(self.enricher or "template")
        else:
            self.editing, self.name = 0, ""
            if self.enricher:
                self._choose(self.enricher)  # forget what was typed, credentials included

    @rx.event
    @guard(Action.EDIT_COLUMNS, target=_page_table)
    async def open_edit(self):
        """Edit the config of the column whose menu is open on the page (saved credentials
        show as ``•••`` and are kept unless replaced)."""
        table = await self.get_state(TableState)
        index = table.column_menu
        if not 0 <= index < len(table.grid_columns):
            return
        column_id = int(table.grid_columns[index]["column_id"])
        try:
            column = await in_session(
                get_runtime().open_session,
                column_service.get_column,
                table_id=table.table_id,
                column_id=column_id,
            )
        except EnrichmentAppError as exc:
            table.column_error = str(exc)
            return
        if not column.enricher:
            table.column_error = f"'{column.name}' is an input column; it has no config."
            return
        await self._read_columns()
        self.enricher, self.name, self.editing = column.enricher, column.name, column_id
        self._kept_secrets, self.error = {}, ""
        self.config_text = json.dumps(
            credentials.masked_config(column.config), indent=2, ensure_ascii=False
        )
        self.open = True
        table.column_menu = -1

    @rx.event
    @guard(Action.EDIT_COLUMNS, target=_page_table)
    def field_changed(self, key: str, value: str):
        """A form field changed: write it into the config (the JSON view shows it at once)."""
        if isinstance(key, str) and isinstance(value, str):
            self._set_field(key, value)

    def _set_field(self, key: str, value: str) -> None:
        limit = get_runtime().settings.max_config_bytes
        if len(value) > limit:
            self.error = (
                f"The config is longer than {limit:,} characters (MAX_CONFIG_BYTES); shorten it."
            )
            return
        try:
            enricher = get_enricher(self.enricher)
            config = parse_config_text(self.config_text)
            config = set_field(enricher, config, key[:200], value)
        except EnrichmentAppError as exc:
            self.error = f"{exc} Fix the JSON view first."
            return
        self.config_text = json.dumps(config, indent=2, ensure_ascii=False)
        self.error = ""

    @rx.event
    @guard(Action.EDIT_COLUMNS, target=_page_table)
    def insert_column(self, key: str, column: str):
        """Add ``{column}`` at the end of a template field (the form's column chips)."""
        if not isinstance(column, str) or column not in self.table_columns:
            return
        for field in self.form_fields:
            if field["key"] == key and field["kind"] == "template":
                self._set_field(key, field["value"] + "{" + column + "}")
                return

    @rx.event
    @guard(Action.EDIT_COLUMNS, target=_page_table)
    def toggle_json(self):
        self.json_view = not self.json_view

    @rx.event
    @guard(Action.EDIT_COLUMNS, target=_page_table)
    def name_changed(self, value: str):
        self.name = value[:MAX_NAME_CHARS] if isinstance(value, str) else ""

    @rx.event
    @guard(Action.EDIT_COLUMNS, target=_page_table)
    def config_changed(self, value: str):
        if not isinstance(value, str):
            return
        limit = get_runtime().settings.max_config_bytes
        if len(value) > limit:
            self.error = (
                f"The config is longer than {limit:,} characters (MAX_CONFIG_BYTES); shorten it."
            )
            return
        self.config_text = value

    @rx.event
    @guard(Action.EDIT_COLUMNS, target=_page_table)
    def choose_enricher(self, value: str):
        self._choose(value)

    def _choose(self, value: str) -> None:
        try:
            example = get_enricher(value if isinstance(value, str) else "").config_example
        except EnrichmentAppError:
            self.error = "Choose one of the enrichers in the list."
            return
        self.enricher = value
        self._kept_secrets = {}
        if self.table_columns:
            example = example_for(get_enricher(value), self.table_columns)
        self.config_text = json.dumps(example, indent=2, ensure_ascii=False)

    @rx.event
    @guard(Action.EDIT_COLUMNS, target=_page_table)
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
        runtime = get_runtime()
        spec = ColumnSpec(
            name=self.name, kind=ColumnKind.ENRICHMENT, enricher=self.enricher, config=config
        )
        try:
            grant = current_grant()
            if paths:  # credentials: an admin's to save (the same rule, another action)
                grant = await in_session(
                    runtime.open_session,
                    authorize,
                    current_principal(),
                    Action.SAVE_CREDENTIALS,
                    table_id=table.table_id,
                )
            if self.editing:
                await in_transaction(
                    runtime.open_session,
                    _edit_and_record,
                    grant=grant,
                    table_id=table.table_id,
                    column_id=self.editing,
                    config=config,
                    box=runtime.secret_box,
                    max_config_bytes=runtime.settings.max_config_bytes,
                )
            else:
                await in_transaction(
                    runtime.open_session,
                    _add_and_record,
                    grant=grant,
                    table_id=table.table_id,
                    spec=spec,
                    box=runtime.secret_box,
                    max_config_bytes=runtime.settings.max_config_bytes,
                )
        except EnrichmentAppError as exc:  # AccessDenied included: the dialog says why
            self.error = scrub(str(exc), kept.values())
            return
        self.open, self.name, self.error, self.editing = False, "", "", 0
        self._choose(self.enricher)
        return TableState.load
