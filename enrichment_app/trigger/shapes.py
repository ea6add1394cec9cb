"""The ElectricSQL shape protocol that carries realtime run updates (pure; no I/O).

Mirrors ``@electric-sql/client`` 1.0.14 (the version ``@trigger.dev/core`` 4.8.3 pins):
value parsing by ``electric-schema`` (``parser.ts``), the request state machine of
``ShapeStream`` (offset, handle, cursor, live, expired_handle) and the row merging of the
SDK's ``ReadableShapeStream`` (``v3/apiClient/stream.js``): rows are handed out only when a
batch reaches ``up-to-date``, one merged row per changed key.

Whatever a response holds, decoding it raises ``ShapeProtocolError`` (a ``TriggerApiError``)
or nothing: never IndexError, TypeError or RecursionError (``tests/fuzz`` holds it to that).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from enrichment_app.trigger.errors import ProtocolError

HANDLE_HEADER = "electric-handle"
OFFSET_HEADER = "electric-offset"
SCHEMA_HEADER = "electric-schema"
CURSOR_HEADER = "electric-cursor"
MAX_POSITION_CHARS = 1024
"""Handles, offsets and cursors are short tokens (``0_1``, ``12345-1700000000000``); the
client sends them back in the next URL, so a longer one is refused rather than echoed."""

Row = dict[str, Any]
Schema = dict[str, dict[str, Any]]
ValueParser = Callable[[str], Any]


class ShapeProtocolError(ProtocolError):
    """A response that breaks the shape protocol (missing headers, a body that is not a list)."""


def _preview(text: str, limit: int = 80) -> str:
    """``text`` for an error message: its repr, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def _parse_number(value: str) -> int | float:
    """``Number(value)`` for the numeric column types: integers stay ints."""
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return float("nan")


def _parse_bool(value: str) -> bool:
    return value in ("true", "t")


_PARSERS: dict[str, ValueParser] = {
    "int2": _parse_number,
    "int4": _parse_number,
    "int8": int,
    "bool": _parse_bool,
    "float4": _parse_number,
    "float8": _parse_number,
    "json": json.loads,
    "jsonb": json.loads,
}


def parse_pg_array(text: str, parse_item: ValueParser | None = None) -> list[Any]:
    """Parse a Postgres array literal: ``{"a","b"}``, ``{1,NULL}``, ``{{1,2},{3}}``, ``{}``.

    Quoted items may contain ``\\"`` and ``\\\\`` escapes; an unquoted ``NULL`` is None.
    """
    parse = parse_item or (lambda item: item)
    text = text.strip()
    if not text.startswith("{"):
        raise ShapeProtocolError(f"not a Postgres array literal: {_preview(text)}")
    try:
        items, end = _parse_array(text, 0, parse)
    except RecursionError as exc:
        raise ShapeProtocolError(f"array literal nested too deeply: {_preview(text)}") from exc
    if text[end:].strip():
        raise ShapeProtocolError(f"trailing characters after array literal: {_preview(text)}")
    return items


def _parse_array(text: str, index: int, parse: ValueParser) -> tuple[list[Any], int]:
    """Parse the array opening at ``text[index] == "{"``; return it and the index after ``}``."""
    items: list[Any] = []
    index += 1
    try:
        if text[index] == "}":
            return items, index + 1
        while True:
            char = text[index]
            if char == "{":
                nested, index = _parse_array(text, index, parse)
                items.append(nested)
            elif char == '"':
                index += 1
                chars: list[str] = []
                while text[index] != '"':
                    if text[index] == "\\":
                        index += 1
                    chars.append(text[index])
                    index += 1
                index += 1
                items.append(parse("".join(chars)))
            else:
                start = index
                while text[index] not in ",}":
                    index += 1
                raw = text[start:index]
                items.append(None if raw == "NULL" else parse(raw))
            if text[index] == ",":
                index += 1
            elif text[index] == "}":
                return items, index + 1
            else:
                raise ShapeProtocolError(
                    f"unexpected {text[index]!r} in array literal {_preview(text)}"
                )
    except IndexError as exc:
        raise ShapeProtocolError(f"unterminated array literal: {_preview(text)}") from exc


def decode_value(value: Any, column: Mapping[str, Any] | None) -> Any:
    """Decode one column value (a string or None) by its schema entry, as Electric's parser does.

    Types without a parser (text, timestamp, the Postgres enum of ``status``…) stay strings.
    A value its type cannot parse (``"x"`` as int8, bad JSON) is a ``ShapeProtocolError``.
    """
    if column is None or value is None or not isinstance(value, str):
        return value
    type_ = str(column.get("type"))
    parser = _PARSERS.get(type_)
    dims = column.get("dims")
    try:
        if isinstance(dims, int) and dims > 0:
            return parse_pg_array(value, parser)
        return parser(value) if parser else value
    except ShapeProtocolError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ShapeProtocolError(f"{_preview(value)} is not a valid {type_}") from exc


def decode_row(values: Mapping[str, Any], schema: Schema) -> Row:
    return {key: decode_value(value, schema.get(key)) for key, value in values.items()}


def _check_position(name: str, value: str | None) -> None:
    if value is not None and len(value) > MAX_POSITION_CHARS:
        raise ShapeProtocolError(f"{name} is longer than {MAX_POSITION_CHARS} characters")


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ShapeProtocolError(f"{what} is not valid JSON: {_preview(text)}") from exc


def decode_messages(body: str, schema: Schema) -> list[dict[str, Any]]:
    """A response body (a JSON array of change and control messages) with values decoded."""
    messages = _parse_json(body or "[]", "shape response body")
    if not isinstance(messages, list):
        raise ShapeProtocolError("shape response body is not a JSON array")
    decoded: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise ShapeProtocolError("shape message is not a JSON object")
        if is_change(message) and not (
            isinstance(message.get("headers"), dict)
            and isinstance(message.get("value") or {}, dict)
        ):
            raise ShapeProtocolError("shape change message needs a headers and a value object")
        message = dict(message)
        for key in ("value", "old_value"):
            if isinstance(message.get(key), dict):
                message[key] = decode_row(message[key], schema)
        decoded.append(message)
    return decoded


def is_change(message: Mapping[str, Any]) -> bool:
    return "key" in message


def control_of(message: Mapping[str, Any]) -> str | None:
    headers = message.get("headers")
    if is_change(message) or not isinstance(headers, dict):
        return None
    control = headers.get("control")
    return control if isinstance(control, str) else None


@dataclass
class ShapeStream:
    """The client state of one shape subscription: what to ask for next, and which rows to emit.

    Drive it with :meth:`request_params`, then :meth:`accept_response` (2xx) or
    :meth:`must_refetch` (409). :meth:`accept_response` returns the rows to hand out.
    """

    offset: str = "-1"
    handle: str | None = None
    cursor: str = ""
    up_to_date: bool = False
    schema: Schema | None = None
    expired_handle: str | None = None
    rows: dict[str, Row] = field(default_factory=dict)
    _updated_keys: dict[str, None] = field(default_factory=dict)
    # Last rows handed out, to drop the identical copy a refetched snapshot would repeat.
    _emitted: dict[str, Row] = field(default_factory=dict)
    _refetching: bool = False

    @property
    def live(self) -> bool:
        return self.up_to_date

    def request_params(self, extra: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        """Query parameters for the next request, sorted by name as ``URLSearchParams.sort()``."""
        params: dict[str, str] = dict(extra or {})
        params["offset"] = self.offset
        params["log"] = "full"
        if self.up_to_date:
            params["live"] = "true"
            params["cursor"] = self.cursor
        if self.handle:
            params["handle"] = self.handle
        if self.expired_handle:
            params["expired_handle"] = self.expired_handle
        return sorted(params.items(), key=lambda item: item[0])

    def accept_response(self, headers: Mapping[str, str], body: str) -> list[Row]:
        """Take a 2xx response: check headers, advance offset/handle/cursor, and return rows to emit."""
        live = self.up_to_date
        required = [OFFSET_HEADER, HANDLE_HEADER, CURSOR_HEADER if live else SCHEMA_HEADER]
        missing = [name for name in required if name not in headers]
        if missing:
            raise ShapeProtocolError(f"shape response is missing headers: {', '.join(missing)}")
        for name in (HANDLE_HEADER, OFFSET_HEADER, CURSOR_HEADER):
            _check_position(name, headers.get(name))
        if self.schema is None:
            schema = (
                _parse_json(headers[SCHEMA_HEADER], SCHEMA_HEADER)
                if SCHEMA_HEADER in headers
                else {}
            )
            if not isinstance(schema, dict) or not all(
                isinstance(column, dict) for column in schema.values()
            ):
                raise ShapeProtocolError("electric-schema is not a JSON object of columns")
        else:
            schema = self.schema
        messages = decode_messages(body, schema)
        # Commit state only once the whole body decoded, so a bad body changes nothing.
        self.schema = schema
        if headers[HANDLE_HEADER]:
            self.handle = headers[HANDLE_HEADER]
        if headers[OFFSET_HEADER]:
            self.offset = headers[OFFSET_HEADER]
        if headers.get(CURSOR_HEADER):
            self.cursor = headers[CURSOR_HEADER]
        if messages and control_of(messages[-1]) == "up-to-date":
            self.up_to_date = True
        return self._apply(messages)

    def must_refetch(self, new_handle: str | None) -> None:
        """A 409: remember the expired handle and start again from a fresh snapshot."""
        _check_position(HANDLE_HEADER, new_handle)
        if self.handle:
            self.expired_handle = self.handle
        self.handle = new_handle or f"{self.handle}-next"
        self.offset = "-1"
        self.cursor = ""
        self.up_to_date = False
        self.schema = None
        self.rows.clear()
        self._refetching = True

    def _apply(self, messages: list[dict[str, Any]]) -> list[Row]:
        is_up_to_date = False
        for message in messages:
            if is_change(message):
                key = str(message["key"])
                operation = (message.get("headers") or {}).get("operation")
                value = message.get("value") or {}
                if operation == "insert":
                    self.rows[key] = dict(value)
                    self._updated_keys[key] = None
                elif operation == "update":
                    self.rows[key] = {**self.rows.get(key, {}), **value}
                    self._updated_keys[key] = None
                # "delete" is ignored, as the SDK does.
            else:
                control = control_of(message)
                if control == "must-refetch":
                    self.rows.clear()
                    self._refetching = True
                elif control == "up-to-date":
                    is_up_to_date = True
        if not is_up_to_date:
            return []
        emitted: list[Row] = []
        for key in self._updated_keys:
            row = self.rows.get(key)
            if row is None:
                continue
            if self._refetching and self._emitted.get(key) == row:
                continue
            self._emitted[key] = dict(row)
            emitted.append(dict(row))
        self._updated_keys.clear()
        self._refetching = False
        return emitted
