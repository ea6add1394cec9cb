"""The ``template`` enricher, and the row templates that other enrichers reuse.

A template is a Python-style format string whose fields name columns: ``"Hello {name} at
{website}"``. Only plain ``{column}`` fields are allowed. Positional fields (``{}``, ``{0}``),
attribute or index access (``{name.upper}``, ``{name[0]}``), conversions (``{name!r}``) and format
specs (``{name:>10}``) are refused when the config is validated, so a template can never reach
into Python objects. Write ``{{`` and ``}}`` for literal braces. A column whose name contains
``.``, ``[``, ``!``, ``:`` or a brace cannot be referenced.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from enrichment_app.enrichers.base import ConfigField, EnrichContext, Enricher
from enrichment_app.enrichers.config import refuse_unknown_keys, require_mapping, require_str
from enrichment_app.errors import EnricherConfigError, EnrichError

_FORBIDDEN_IN_FIELD = frozenset(".[]")


@dataclass(frozen=True, slots=True)
class RowTemplate:
    """A parsed template: literal text alternating with column references."""

    source: str
    parts: tuple[tuple[str, str | None], ...]
    """``(literal, column)`` pairs in order; ``column`` is None for trailing literal text."""

    @property
    def columns(self) -> set[str]:
        """The column names the template reads."""
        return {column for _, column in self.parts if column is not None}

    def render(
        self, row: Mapping[str, str | None], *, escape: Callable[[str], str] | None = None
    ) -> str:
        """Fill the fields from ``row``; empty cells render as "". ``escape`` wraps each value.

        Raises ``EnrichError`` if the template names a column the row does not have.
        """
        pieces: list[str] = []
        for literal, column in self.parts:
            pieces.append(literal)
            if column is None:
                continue
            if column not in row:
                raise EnrichError(
                    f"The template uses column {{{column}}}, which this table does not have"
                )
            value = row[column] or ""
            pieces.append(escape(value) if escape is not None else value)
        return "".join(pieces)


def parse_template(source: str, *, where: str) -> RowTemplate:
    """Parse and check a template; ``where`` (say ``"llm: 'prompt'"``) prefixes error messages.

    Raises ``EnricherConfigError`` for malformed templates and for anything but ``{column}`` fields.
    """
    try:
        parsed = list(string.Formatter().parse(source))
    except ValueError as exc:
        raise EnricherConfigError(f"{where} is not a valid template: {exc}") from exc
    parts: list[tuple[str, str | None]] = []
    for literal, field, format_spec, conversion in parsed:
        if field is None:
            parts.append((literal, None))
            continue
        if field.strip() == "" or field.isdigit():
            raise EnricherConfigError(
                f"{where}: every {{}} field must name a column, like {{name}}"
            )
        if _FORBIDDEN_IN_FIELD & set(field):
            raise EnricherConfigError(
                f"{where}: field {{{field}}} is not allowed; use plain column names "
                "(no '.', '[' or ']')"
            )
        if conversion is not None or format_spec:
            raise EnricherConfigError(
                f"{where}: field {{{field}}} may not have a conversion or format spec "
                "('!' or ':'); use plain {column} fields"
            )
        parts.append((literal, field))
    return RowTemplate(source=source, parts=tuple(parts))


def rename_in_template(source: str, old: str, new: str) -> str:
    """``source`` with every ``{old}`` field written as ``{new}`` (literal braces kept)."""
    out: list[str] = []
    for literal, column in parse_template(source, where="template").parts:
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if column is not None:
            out.append("{" + (new if column == old else column) + "}")
    return "".join(out)


def rename_in_json(value: Any, old: str, new: str) -> Any:
    """A JSON value (a POST body, say) with ``{old}`` written as ``{new}`` in every string."""
    if isinstance(value, str):
        return rename_in_template(value, old, new)
    if isinstance(value, dict):
        return {k: rename_in_json(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [rename_in_json(v, old, new) for v in value]
    return value


class TemplateEnricher(Enricher):
    """Fills a format string from the row's other columns."""

    name = "template"
    label = "Template"
    description = (
        "Combine other columns into text with a format string, e.g. "
        '"Hello {name} at {website}". Use {{ and }} for literal braces.'
    )
    concurrency = 32
    timeout_seconds = 5.0
    config_example: ClassVar[dict[str, Any]] = {"template": "{name} ({website})"}
    config_fields = (
        ConfigField(
            ("template",),
            "Template",
            "template",
            help="Text with {column} fields, filled from each row.",
            required=True,
        ),
    )

    def validate_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        config = require_mapping(self.name, config)
        refuse_unknown_keys(self.name, config, {"template"})
        source = require_str(self.name, config, "template")
        parse_template(source, where=f"{self.name}: 'template'")
        return {"template": source}

    def referenced_columns(self, config: Mapping[str, Any]) -> set[str]:
        return parse_template(config["template"], where=f"{self.name}: 'template'").columns

    async def enrich(self, ctx: EnrichContext) -> str:
        template = parse_template(ctx.config["template"], where=f"{self.name}: 'template'")
        return template.render(ctx.row)
