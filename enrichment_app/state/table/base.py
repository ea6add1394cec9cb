"""What every part of the table page's state shares: which table is open, and its message."""

from __future__ import annotations

from enrichment_app.errors import EnrichmentAppError, NotFoundError
from enrichment_app.services.access import Action, Grant
from enrichment_app.state.access import Guarded


class TableBase(Guarded, mixin=True):
    table_id: int = 0
    table_name: str = ""
    not_found: bool = False
    trigger_mode: bool = False
    message: str = ""
    """An error for the user (a refused edit, a failed read); empty when all is well."""
    can_edit: bool = False
    """What the user's role allows on this table: the page hides or disables the rest (and
    the handlers refuse it anyway, ``state/access.py``)."""
    can_run: bool = False
    can_edit_columns: bool = False
    can_save_credentials: bool = False

    def _apply_grant(self, grant: Grant) -> None:
        self.can_edit = grant.allows(Action.EDIT)
        self.can_run = grant.allows(Action.RUN)
        self.can_edit_columns = grant.allows(Action.EDIT_COLUMNS)
        self.can_save_credentials = grant.allows(Action.SAVE_CREDENTIALS)

    def _refused(self, exc: EnrichmentAppError) -> None:
        """The access rule refused an event: a table that is not the user's shows as not found."""
        if isinstance(exc, NotFoundError):
            self.not_found = True
            self.table_id = 0
            self.can_edit = self.can_run = self.can_edit_columns = False
            self.can_save_credentials = False
        else:
            self.message = exc.message
