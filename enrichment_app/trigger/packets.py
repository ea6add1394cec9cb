"""IO packets: how payloads, outputs and metadata travel (pure).

Mirrors ``@trigger.dev/core`` ``v3/utils/ioSerialization.js`` (``stringifyIO``, ``parsePacket``)
and the parts of superjson 2.2.1 that a JSON-minded Python app meets: Dates, BigInts,
``undefined``, NaN/±Infinity/-0, Sets, Maps, RegExps, URLs and Errors.

Parsing a packet that is not what its type says (bad JSON, superjson annotations that do not
fit the value) raises ``ProtocolError``, and nothing else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from enrichment_app.trigger.errors import ProtocolError

JSON = "application/json"
SUPER_JSON = "application/super+json"
TEXT = "text/plain"
STORE = "application/store"


@dataclass(frozen=True, slots=True)
class Packet:
    """A serialized value and its content type, as the API stores it."""

    data: str | None
    data_type: str


def to_js_iso(moment: datetime) -> str:
    """``Date.prototype.toISOString``: UTC, milliseconds, ``Z``. Naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def stringify_io(value: Any) -> Packet:
    """``stringifyIO``: a string is sent as text/plain, anything else as superjson."""
    if isinstance(value, str):
        return Packet(value, TEXT)
    return Packet(superjson_stringify(value), SUPER_JSON)


def superjson_stringify(value: Any) -> str:
    """``superjson.stringify``: ``{"json": …}`` plus ``meta.values`` when a value needs reviving."""
    plain, annotations = _walk(value)
    document: dict[str, Any] = {"json": plain}
    if annotations is not None:
        document["meta"] = {"values": annotations}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


Annotations = list[Any] | dict[str, Any] | None


def _escape_key(key: str) -> str:
    return key.replace(".", "\\.")


def _walk(value: Any) -> tuple[Any, Annotations]:
    """superjson's ``walker`` without class/symbol registries or referential equalities."""
    if isinstance(value, datetime):
        return to_js_iso(value), ["Date"]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return text, ["number"]
    if isinstance(value, float) and value == 0 and math.copysign(1.0, value) < 0:
        return "-0", ["number"]
    own_type: str | None = None
    items: list[tuple[str, Any]]
    if isinstance(value, set | frozenset):
        own_type = "set"
        items = [(str(index), item) for index, item in enumerate(value)]
        container: list[Any] | dict[str, Any] = []
    elif isinstance(value, list | tuple):
        items = [(str(index), item) for index, item in enumerate(value)]
        container = []
    elif isinstance(value, dict):
        items = [(str(key), item) for key, item in value.items()]
        container = {}
    else:
        return value, None
    inner: dict[str, Any] = {}
    for key, item in items:
        plain, annotations = _walk(item)
        if isinstance(container, list):
            container.append(plain)
        else:
            container[key] = plain
        if isinstance(annotations, list):
            # superjson 2.2.1 leaves this key unescaped, so a Date under a key holding a dot
            # points nowhere when parsed (later superjson escapes it); escaped, it parses right
            # in 2.2.1 too.
            inner[_escape_key(key)] = annotations
        elif isinstance(annotations, dict):
            for sub_key, tree in annotations.items():
                inner[_escape_key(key) + "." + sub_key] = tree
    if not inner:
        return container, [own_type] if own_type else None
    return container, [own_type, inner] if own_type else inner


def parse_packet(data: str | None, data_type: str | None) -> Any:
    """``parsePacket``: empty data is None; JSON, superjson and text by type; others stay raw.

    ``application/store`` (an offloaded packet, > 128 KiB) is returned as its storage path;
    downloading it is not implemented.
    """
    if not data:
        return None
    if data_type == JSON:
        return _loads(data)
    if data_type == SUPER_JSON:
        return superjson_parse(data)
    return data


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        preview = repr(text[:80]) + ("…" if len(text) > 80 else "")
        raise ProtocolError(f"packet is not valid JSON: {preview}") from exc


def superjson_parse(text: str) -> Any:
    """``superjson.parse``: take ``json`` and revive the values listed in ``meta.values``."""
    document = _loads(text)
    if not isinstance(document, dict):
        return document
    value = document.get("json")
    meta = document.get("meta")
    if isinstance(meta, dict) and meta.get("values"):
        try:
            value = _apply_annotations(value, meta["values"])
        except (LookupError, TypeError, ValueError, ArithmeticError, RecursionError) as exc:
            # superjson throws too when its annotations point nowhere or cannot revive a value.
            raise ProtocolError(
                f"superjson annotations do not fit the packet ({type(exc).__name__}: {exc})"
            ) from exc
    return value


def _parse_path(text: str) -> list[str]:
    """superjson ``parsePath``: dots separate segments, ``\\.`` is a literal dot."""
    segments: list[str] = []
    segment = ""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and text[index + 1 : index + 2] == ".":
            segment += "."
            index += 2
            continue
        if char == ".":
            segments.append(segment)
            segment = ""
        else:
            segment += char
        index += 1
    segments.append(segment)
    return segments


def _traverse(tree: Any, visit: Callable[[Any, list[str]], None], origin: list[str]) -> None:
    """superjson ``traverse``: children first, then the node itself."""
    if not tree:
        return
    if isinstance(tree, dict):
        for key, subtree in tree.items():
            _traverse(subtree, visit, [*origin, *_parse_path(key)])
        return
    node_type = tree[0]
    children = tree[1] if len(tree) > 1 else None
    if isinstance(children, dict):
        for key, child in children.items():
            _traverse(child, visit, [*origin, *_parse_path(key)])
    visit(node_type, origin)


def _apply_annotations(value: Any, annotations: Any) -> Any:
    root: list[Any] = [value]

    def visit(node_type: Any, path: list[str]) -> None:
        _set_deep(root, ["0", *path], lambda current: _untransform(current, node_type))

    _traverse(annotations, visit, [])
    return root[0]


def _set_deep(container: Any, path: list[str], mapper: Callable[[Any], Any]) -> None:
    parent = container
    for key in path[:-1]:
        parent = parent[int(key)] if isinstance(parent, list) else parent[key]
    last = path[-1]
    if isinstance(parent, list):
        parent[int(last)] = mapper(parent[int(last)])
    elif isinstance(parent, dict):
        parent[last] = mapper(parent[last])


def _untransform(value: Any, node_type: Any) -> Any:
    """Revive one value. Sets become lists and Maps dicts (lists of pairs if keys are unhashable)."""
    kind = node_type[0] if isinstance(node_type, list) else node_type
    if kind == "Date" and isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    if kind == "bigint":
        return int(value)
    if kind == "undefined":
        return None
    if kind == "number":
        return float("-0.0") if value == "-0" else float(value)
    if kind == "map" and isinstance(value, list):
        try:
            return dict(value)
        except TypeError:
            return value
    if kind == "Error" and isinstance(value, dict):
        return {"name": value.get("name"), "message": value.get("message")}
    # set → list, regexp and URL → their string form, classes and custom types → the plain value.
    return value
