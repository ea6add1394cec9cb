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
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.keyring import SecretBox
from enrichment_app.redact import scrub
from enrichment_app.runtime import get_runtime
from enrichment_app.services import audit, credentials, tables as table_service
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
    @guard(Action.EDIT_COLUMNS, target=_page_table)
    def open_changed(self, value: bool):
        self.open = value is True
        if self.open:
            self.error = ""
            if not self.enricher:
                self._choose("template")
        elif self.enricher:
            self._choose(self.enricher)  # forget what was typed, credentials included

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
        self.config_text = json.dumps(example, indent=2)

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
        self.open, self.name, self.error = False, "", ""
        self._choose(self.enricher)
        return TableState.load
