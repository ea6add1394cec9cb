"""The enricher plugin interface: what one cell's work looks like.

An enricher gets the row's values (by column name) and its column's config, and returns the
cell's new value or raises ``EnrichError`` with a message fit to show in the cell. Each enricher
declares how many cells it may work on at once and how long one cell may take; the runner
enforces both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx

from enrichment_app.errors import EnrichError
from enrichment_app.settings import Settings


@dataclass(frozen=True, slots=True)
class EnrichContext:
    """Everything an enricher may use for one cell."""

    row: Mapping[str, str | None]
    """The row's current values, keyed by column name."""
    config: Mapping[str, Any]
    """The column's config, as returned by ``Enricher.validate_config``."""
    http: httpx.AsyncClient
    """The shared HTTP client, behind the egress guard (enrichment_app/egress); enrichers never
    build their own."""
    settings: Settings
    provider_http: httpx.AsyncClient | None = None
    """A client without the guard, only for base URLs from settings (the LLM API's), never for
    a URL from a cell or a column config; None means ``http``."""

    def column_text(self, what: str) -> str:
        """The text in the column the config names (``config["column"]``), or ``EnrichError``
        saying the column is missing or holds no ``what`` (e.g. "email address")."""
        column: str = self.config["column"]
        if column not in self.row:
            raise EnrichError(f"This table has no column {column!r}")
        value = self.row[column]
        if value is None or not value.strip():
            raise EnrichError(f"No {what} in column {column!r}")
        return value


FieldKind = Literal["text", "number", "choice", "column", "template", "secret"]


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One field of an enricher's config, as the add-column form shows it.

    ``path`` is where the value sits in the config (``("auth", "token")`` for a nested one).
    The form is only a way of typing the config: ``Enricher.validate_config`` stays the one
    validator, and its messages are the ones the form shows.
    """

    path: tuple[str, ...]
    label: str
    kind: FieldKind = "text"
    """``column``: the name of one of the table's columns (the form shows a picker);
    ``template``: text with ``{column}`` fields (the form offers the column names);
    ``secret``: a credential, write-only (shown as ``•••`` once saved)."""
    help: str = ""
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return ".".join(self.path)


class Enricher:
    """Base class for enrichers. Subclasses set the class attributes and implement ``enrich``."""

    name: ClassVar[str]
    label: ClassVar[str]
    """A short human name for pickers."""
    description: ClassVar[str] = ""
    concurrency: ClassVar[int] = 4
    """How many cells of this enricher may run at once, per process."""
    timeout_seconds: ClassVar[float] = 30.0
    """How long one cell may take before it fails with a timeout error."""
    config_example: ClassVar[dict[str, Any]] = {}
    """A valid config, shown to users as the starting point in the add-column form."""
    config_fields: ClassVar[tuple[ConfigField, ...]] = ()
    """The config's fields, from which the add-column dialog draws its form (a plugin gets a
    form by declaring them); with none, the dialog offers the JSON view only."""

    def validate_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Return the normalised config, or raise ``EnricherConfigError`` saying what is wrong."""
        return dict(config)

    async def enrich(self, ctx: EnrichContext) -> str:
        """Compute one cell's value. Raise ``EnrichError`` with a user-facing message on failure."""
        raise NotImplementedError

    def secret_paths(self, config: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """Where the (validated) config holds credentials: key paths such as
        ``("auth", "token")``. Those values are encrypted at rest, shown as ``•••`` and scrubbed
        from error text (enrichment_app/services/credentials.py)."""
        del config
        return []

    def referenced_columns(self, config: Mapping[str, Any]) -> set[str]:
        """Names of the table columns the config reads (so a table can check they exist)."""
        del config
        return set()

    def rename_column(self, config: Mapping[str, Any], old: str, new: str) -> dict[str, Any]:
        """The config with the column ``old`` called ``new``, as a spreadsheet rewrites its
        formulas when a column is renamed. The default rewrites the declared ``column`` and
        ``template`` fields; an enricher with references elsewhere overrides it."""
        renamed = json_copy(config)
        for field in self.config_fields:
            if field.kind not in ("column", "template"):
                continue
            parent: Any = renamed
            for key in field.path[:-1]:
                parent = parent.get(key) if isinstance(parent, dict) else None
            last = field.path[-1]
            if not isinstance(parent, dict) or not isinstance(parent.get(last), str):
                continue
            if field.kind == "column":
                parent[last] = new if parent[last] == old else parent[last]
            else:
                from enrichment_app.enrichers.template import rename_in_template

                parent[last] = rename_in_template(parent[last], old, new)
        return renamed


def json_copy(config: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON-like config."""

    def copy(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [copy(v) for v in value]
        return value

    return copy(config)  # type: ignore[no-any-return]
