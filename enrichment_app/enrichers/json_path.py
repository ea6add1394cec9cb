"""A deliberately small JSON path: pick one value out of a JSON document.

Syntax: keys separated by dots, and ``[n]`` list indexes (negative ones count from the end)::

    data.company.name        {"data": {"company": {"name": "Acme"}}}  ->  "Acme"
    results[0].domain        {"results": [{"domain": "acme.com"}]}    ->  "acme.com"
    [0]                      ["a", "b"]                               ->  "a"
    matrix[1][0]             {"matrix": [[1, 2], [3, 4]]}              ->  3
    tags[-1]                 {"tags": ["x", "y"]}                     ->  "y"

A leading ``$`` or ``$.`` is accepted and ignored, so JSONPath habits work. An empty path means
the whole document. Keys may contain any character except ``.``, ``[`` and ``]``; there are no
wildcards, filters or quoting.
"""

from __future__ import annotations

import re
from typing import Any

from enrichment_app.errors import EnricherConfigError, EnrichError

PathStep = str | int
_INDEX = re.compile(r"\[\s*(-?\d{1,18})\s*\]")
"""An index fits in 18 digits; a longer one is malformed (and Python refuses to read one of
over 4300 digits at all)."""


def parse_json_path(path: str) -> tuple[PathStep, ...]:
    """Split a path into keys (str) and indexes (int); ``EnricherConfigError`` if malformed."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:].removeprefix(".")
    steps: list[PathStep] = []
    if not text:
        return ()
    position = 0
    expect_key = not text.startswith("[")
    while position < len(text):
        if expect_key:
            end = position
            while end < len(text) and text[end] not in ".[]":
                end += 1
            key = text[position:end]
            if not key:
                raise EnricherConfigError(
                    f"JSON path {path!r}: empty key at character {position + 1}"
                )
            steps.append(key)
            position = end
        while position < len(text) and text[position] == "[":
            match = _INDEX.match(text, position)
            if match is None:
                raise EnricherConfigError(
                    f"JSON path {path!r}: expected a list index like [0] at character {position + 1}"
                )
            steps.append(int(match.group(1)))
            position = match.end()
        if position == len(text):
            break
        if text[position] != ".":
            raise EnricherConfigError(
                f"JSON path {path!r}: unexpected {text[position]!r} at character {position + 1}"
            )
        position += 1
        if position == len(text):
            raise EnricherConfigError(f"JSON path {path!r}: ends with '.'")
        expect_key = True
    return tuple(steps)


def format_json_path(steps: tuple[PathStep, ...]) -> str:
    """The canonical text of a parsed path (``$`` for the whole document)."""
    text = ""
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else step
    return text or "$"


def resolve_json_path(document: Any, steps: tuple[PathStep, ...]) -> Any:
    """Follow ``steps`` into ``document``; ``EnrichError`` says where the path stopped matching."""
    current = document
    for depth, step in enumerate(steps):
        here = format_json_path(steps[:depth])
        if isinstance(step, int):
            if not isinstance(current, list):
                raise EnrichError(
                    f"Path {format_json_path(steps)!r} not found: {here} is "
                    f"{_json_kind(current)}, not a list"
                )
            if not -len(current) <= step < len(current):
                raise EnrichError(
                    f"Path {format_json_path(steps)!r} not found: {here} has "
                    f"{len(current)} item(s), no index {step}"
                )
            current = current[step]
        else:
            if not isinstance(current, dict):
                raise EnrichError(
                    f"Path {format_json_path(steps)!r} not found: {here} is "
                    f"{_json_kind(current)}, not an object"
                )
            if step not in current:
                raise EnrichError(
                    f"Path {format_json_path(steps)!r} not found: no key {step!r} in {here}"
                )
            current = current[step]
    return current


def _json_kind(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "a list"
        case _:
            return "an object"
