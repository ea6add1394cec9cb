"""The add-column dialog's form, drawn from an enricher's ``config_fields`` (pure functions).

The form and the JSON view edit one config: each field reads its value from the config and
writes it back (``field_values``, ``set_field``), so the two never disagree. Validation stays
``Enricher.validate_config``'s, with its messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from enrichment_app.enrichers.base import ConfigField, Enricher, json_copy
from enrichment_app.errors import EnricherConfigError

MASK = "•••"
_FIELD = re.compile(r"\{([^{}]*)\}")


def _get(config: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = config
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def field_values(enricher: Enricher, config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The form's rows: each field's key, label, kind, help, choices and current text."""
    rows = []
    for field in enricher.config_fields:
        value = _get(config, field.path)
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float | str):
            text = str(value)
        else:
            text = MASK if field.kind == "secret" else ""
        rows.append(
            {
                "key": field.key,
                "label": field.label + (" *" if field.required else ""),
                "kind": field.kind,
                "help": field.help,
                "value": text,
                "choices": ",".join(field.choices),
                "placeholder": "" if field.default is None else str(field.default),
            }
        )
    return rows


def _field(enricher: Enricher, key: str) -> ConfigField:
    for field in enricher.config_fields:
        if field.key == key:
            return field
    raise EnricherConfigError(f"{enricher.name} has no field {key!r}.")


def set_field(enricher: Enricher, config: Mapping[str, Any], key: str, text: str) -> dict[str, Any]:
    """The config with the field ``key`` set from the form's ``text`` (blank removes it).

    A number field keeps text that is not a number as it is, so ``validate_config`` says
    what is wrong with it, in the same words as for the JSON view.
    """
    field = _field(enricher, key)
    updated = json_copy(config)
    parent: dict[str, Any] = updated
    for part in field.path[:-1]:
        child = parent.get(part)
        if not isinstance(child, dict):
            child = {}
            if field.path == ("auth", "token"):
                child["type"] = "bearer"
            parent[part] = child
        parent = child
    last = field.path[-1]
    if text.strip() == "":
        parent.pop(last, None)
        if len(field.path) > 1 and set(parent) <= {"type"}:
            _drop(updated, field.path[:-1])
        return updated
    value: Any = text
    if field.kind == "number":
        try:
            number = float(text)
            if math.isfinite(number):
                value = int(number) if number.is_integer() and "." not in text else number
        except ValueError:
            value = text
    parent[last] = value
    return updated


def _drop(config: dict[str, Any], path: Sequence[str]) -> None:
    parent: Any = config
    for part in path[:-1]:
        parent = parent.get(part)
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def example_for(enricher: Enricher, columns: Sequence[str]) -> dict[str, Any]:
    """The enricher's example config, naming the open table's columns instead of its own
    (``{name} ({website})`` becomes ``{Company} ({Website})`` on a table with those)."""
    example = json_copy(enricher.config_example)
    if not columns:
        return example
    for field in enricher.config_fields:
        value = _get(example, field.path)
        if not isinstance(value, str):
            continue
        parent: Any = _get(example, field.path[:-1]) if len(field.path) > 1 else example
        if field.kind == "column":
            parent[field.path[-1]] = _closest(value, columns, 0)
        elif field.kind == "template":
            seen: dict[str, str] = {}

            def swap(match: re.Match[str], seen: dict[str, str] = seen) -> str:
                name = match.group(1)
                if name not in seen:
                    seen[name] = _closest(name, columns, len(seen))
                return "{" + seen[name] + "}"

            parent[field.path[-1]] = _FIELD.sub(swap, value)
    return example


def _closest(name: str, columns: Sequence[str], nth: int) -> str:
    """The column called like ``name`` (any case), else the ``nth`` column."""
    for column in columns:
        if column.casefold() == name.casefold():
            return column
    return columns[nth % len(columns)]
