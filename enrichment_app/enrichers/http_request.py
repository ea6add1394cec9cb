"""The request an ``http_json`` column sends: its URL, headers, auth and body, checked when the
column is saved and rendered for each row."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from enrichment_app.enrichers.config import refuse_unknown_keys, require_str
from enrichment_app.enrichers.template import RowTemplate, parse_template
from enrichment_app.errors import EnricherConfigError

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_LITERAL_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#{}]*[/?#]")


def render_url(template: RowTemplate, row: Mapping[str, str | None]) -> str:
    """The URL for a row: every value percent-encoded (``/``, ``?``, ``#``, ``@`` included), so
    it stays within its path segment or query value; in the path, ``.`` too, so that ``..``
    cannot climb out of the path the template names."""
    in_query = False

    def escape(value: str) -> str:
        encoded = quote(value, safe="")
        return encoded if in_query else encoded.replace(".", "%2E")

    pieces: list[str] = []
    for literal, column in template.parts:
        pieces.append(literal)
        in_query = in_query or "?" in literal or "#" in literal
        if column is not None:
            pieces.append(RowTemplate(template.source, (("", column),)).render(row, escape=escape))
    return "".join(pieces)


def check_url_template(template: RowTemplate) -> None:
    if template.columns and not _LITERAL_ORIGIN.match(template.parts[0][0]):
        first = next(column for _, column in template.parts if column is not None)
        raise EnricherConfigError(
            "http_json: 'url' must spell out its scheme, host and port, with row values only in"
            f" the path or the query (found {{{first}}} before the path starts). A host taken"
            " from a cell would send this column's credentials wherever the cell points. Write"
            " the host literally, e.g. https://api.example.com/lookup?domain={website}."
        )
    sample = template.render(dict.fromkeys(template.columns, "x"))
    try:
        url = httpx.URL(sample)
    except httpx.InvalidURL as exc:
        raise EnricherConfigError(f"http_json: 'url' is not a valid URL ({exc})") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise EnricherConfigError(
            "http_json: 'url' must start with http:// or https:// and a host name"
        )


def validate_headers(headers: object, key: str = "headers") -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise EnricherConfigError(f"http_json: '{key}' must be an object of name: value")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise EnricherConfigError(f"http_json: {name!r} is not a valid header name")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise EnricherConfigError(
                f"http_json: header {name!r} must be a single-line string value"
            )
        checked[name] = value
    return checked


def validate_auth(auth: object) -> dict[str, str] | None:
    if auth is None:
        return None
    if not isinstance(auth, Mapping):
        raise EnricherConfigError("http_json: 'auth' must be an object with a 'type'")
    kind = auth.get("type")
    if kind == "bearer":
        refuse_unknown_keys("http_json: 'auth'", auth, {"type", "token"})
        return {"type": "bearer", "token": require_str("http_json: 'auth'", auth, "token")}
    if kind == "basic":
        refuse_unknown_keys("http_json: 'auth'", auth, {"type", "username", "password"})
        password = auth.get("password", "")
        if not isinstance(password, str):
            raise EnricherConfigError("http_json: 'auth': 'password' must be a string")
        return {
            "type": "basic",
            "username": require_str("http_json: 'auth'", auth, "username"),
            "password": password,
        }
    raise EnricherConfigError("http_json: 'auth' type must be 'bearer' or 'basic'")


def basic_auth(auth: Mapping[str, str] | None) -> httpx.Auth | None:
    if auth is None or auth["type"] != "basic":
        return None
    return httpx.BasicAuth(auth["username"], auth["password"])


def request_headers(config: Mapping[str, Any]) -> dict[str, str]:
    headers = {
        "Accept": "application/json",
        **config.get("headers", {}),
        **(config.get("secret_headers") or {}),
    }
    auth = config.get("auth")
    if auth is not None and auth["type"] == "bearer":
        headers["Authorization"] = f"Bearer {auth['token']}"
    return headers


def body_templates(body: Any) -> list[RowTemplate]:
    """Parse (and so check) every string value in a body; keys are not templated."""
    if isinstance(body, str):
        return [parse_template(body, where="http_json: 'body'")]
    if isinstance(body, Mapping):
        return [t for value in body.values() for t in body_templates(value)]
    if isinstance(body, list):
        return [t for value in body for t in body_templates(value)]
    return []


def render_body(body: Any, row: Mapping[str, str | None]) -> Any:
    if isinstance(body, str):
        return parse_template(body, where="http_json: 'body'").render(row)
    if isinstance(body, Mapping):
        return {key: render_body(value, row) for key, value in body.items()}
    if isinstance(body, list):
        return [render_body(value, row) for value in body]
    return body


def limit_key(config: Mapping[str, Any]) -> str:
    """One key per column config: a digest, so the limiter's memory holds no credential."""
    canonical = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(canonical).hexdigest()
