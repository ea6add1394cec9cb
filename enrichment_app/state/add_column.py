"""State of the dialog that adds an enrichment column to the open table."""

from __future__ import annotations

import json

import reflex as rx

from enrichment_app.db.sessions import in_transaction
from enrichment_app.domain import ColumnKind
from enrichment_app.enrichers import available_enrichers, get_enricher
from enrichment_app.enrichers.config import parse_config_text
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.runtime import get_runtime
from enrichment_app.services import tables as table_service
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
    """The dialog that adds an enrichment column to the open table."""

    open: bool = False
    name: str = ""
    enricher: str = ""
    config_text: str = ""
    error: str = ""

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
        self.open = value
        if value:
            self.error = ""
            if not self.enricher:
                self.choose_enricher("template")

    @rx.event
    def set_name(self, value: str):
        self.name = value

    @rx.event
    def set_config_text(self, value: str):
        self.config_text = value

    @rx.event
    def choose_enricher(self, value: str):
        self.enricher = value
        try:
            self.config_text = json.dumps(get_enricher(value).config_example, indent=2)
        except EnrichmentAppError as exc:
            self.error = str(exc)

    @rx.event
    async def submit(self):
        """Validate and add the column; the dialog stays open with a message on bad input."""
        try:
            config = parse_config_text(self.config_text)
        except EnrichmentAppError as exc:
            self.error = str(exc)
            return
        table = await self.get_state(TableState)
        spec = table_service.ColumnSpec(
            name=self.name, kind=ColumnKind.ENRICHMENT, enricher=self.enricher, config=config
        )
        try:
            await in_transaction(
                get_runtime().open_session,
                table_service.add_column,
                table_id=table.table_id,
                spec=spec,
            )
        except EnrichmentAppError as exc:
            self.error = str(exc)
            return
        self.open, self.name, self.error = False, "", ""
        return TableState.load
