"""State of the dialog that adds an enrichment column to the open table."""

from __future__ import annotations

import json

import reflex as rx

from enrichment_app.db.sessions import in_transaction
from enrichment_app.domain import ColumnKind
from enrichment_app.enrichers import available_enrichers, get_enricher
from enrichment_app.enrichers.config import parse_config_text
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.redact import scrub
from enrichment_app.runtime import get_runtime
from enrichment_app.services import credentials, tables as table_service
from enrichment_app.services.tables import MAX_NAME_CHARS
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
        self.name = value[:MAX_NAME_CHARS] if isinstance(value, str) else ""

    @rx.event
    def set_config_text(self, value: str):
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
    def choose_enricher(self, value: str):
        try:
            example = get_enricher(value if isinstance(value, str) else "").config_example
        except EnrichmentAppError:
            self.error = "Choose one of the enrichers in the list."
            return
        self.enricher = value
        self._kept_secrets = {}
        self.config_text = json.dumps(example, indent=2)

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
        runtime = get_runtime()
        spec = table_service.ColumnSpec(
            name=self.name, kind=ColumnKind.ENRICHMENT, enricher=self.enricher, config=config
        )
        try:
            await in_transaction(
                runtime.open_session,
                table_service.add_column,
                table_id=table.table_id,
                spec=spec,
                box=runtime.secret_box,
                max_config_bytes=runtime.settings.max_config_bytes,
            )
        except EnrichmentAppError as exc:
            self.error = scrub(str(exc), kept.values())
            return
        self.open, self.name, self.error = False, "", ""
        self.choose_enricher(self.enricher)
        return TableState.load
