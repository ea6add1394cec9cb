"""The ``http_json`` enricher: call a JSON API with values from the row and pick one value.

Config (``url`` is required, the rest optional)::

    {
      "method": "GET",                                   # or "POST"
      "url": "https://api.example.com/lookup?domain={website}",
      "path": "data.company.name",                       # see json_path; "" = whole document
      "headers": {"Accept": "application/json"},
      "secret_headers": {"X-Partner-Id": "…"},           # headers to keep secret, whatever their name
      "body": {"domain": "{website}", "limit": 1},       # POST only; string values templated
      "auth": {"type": "bearer", "token": "…"},          # or {"type": "basic", "username", "password"}
      "rate_limit_per_second": 5,
      "timeout_seconds": 15
    }

The scheme, host and port must be written out in ``url``: row values may fill only the path and
the query, so a cell can never send the column's credentials to a host of its choosing. Values
put into the URL are percent-encoded (``/``, ``?``, ``#``, ``@`` and ``.`` included, so a value
stays one path segment); values put into the body are not.

Credentials are write-only: the ``auth`` token or password, every value in ``secret_headers``,
and the value of every header whose name is ``Authorization``, ``Proxy-Authorization`` or
``Cookie`` or contains ``key``, ``token``, ``secret``, ``auth``, ``password`` or ``session``
(``X-Api-Key``, ``X-Auth-Token``, …). They are encrypted at rest, shown as ``•••``, and
scrubbed from error messages. Redirects are followed by hand, at most 5; each hop goes through
the egress guard, and a hop to another origin is sent without the credentials.

A string result is returned as is, ``null`` as "", anything else as compact JSON. The rate limit
is shared by every cell of the column (more exactly: of every column with the same config) in
this process.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from enrichment_app.enrichers.base import ConfigField, EnrichContext, Enricher, json_copy
from enrichment_app.enrichers.config import (
    optional_number,
    optional_str,
    refuse_unknown_keys,
    require_mapping,
    require_str,
)
from enrichment_app.enrichers.http_exchange import (
    as_cell_text,
    error_detail,
    is_secret_header,
    next_hop,
    origin_of,
    read_capped,
)
from enrichment_app.enrichers.json_path import parse_json_path, resolve_json_path
from enrichment_app.enrichers.rate_limit import RateLimiter
from enrichment_app.enrichers.template import RowTemplate, parse_template, rename_in_json
from enrichment_app.errors import EnricherConfigError, EnrichError
from enrichment_app.redact import display_url

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 15.0
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
MAX_REDIRECTS = 5
MAX_URL_CHARS = 8192
"""The longest URL a row may render: most servers refuse longer ones anyway (414)."""
MAX_BODY_BYTES = 1024 * 1024
"""The largest JSON body a row may render."""
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
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


class HttpJsonEnricher(Enricher):
    """GET or POST a URL built from the row and return one value from the JSON response."""

    name = "http_json"
    label = "HTTP JSON API"
    description = (
        "Call a JSON API (GET or POST) with a URL template such as "
        "https://api.example.com/lookup?domain={website}, and pick a value from the response "
        "with a path such as data.company.name or results[0].id."
    )
    concurrency = 4
    timeout_seconds = 30.0
    config_example: ClassVar[dict[str, Any]] = {
        "method": "GET",
        "url": "https://api.example.com/lookup?domain={website}",
        "path": "data.company.name",
        "headers": {"Accept": "application/json"},
        "rate_limit_per_second": 5,
    }

    config_fields = (
        ConfigField(("method",), "Method", "choice", default="GET", choices=("GET", "POST")),
        ConfigField(
            ("url",),
            "URL",
            "template",
            required=True,
            help="https:// URL; {column} fields are filled from the row, URL-encoded.",
        ),
        ConfigField(
            ("path",),
            "Value path",
            help="Where the value is in the JSON answer, like data.company.name.",
        ),
        ConfigField(
            ("auth", "token"),
            "Bearer token",
            "secret",
            help="Sent as Authorization: Bearer …; stored encrypted, never shown again.",
        ),
        ConfigField(("rate_limit_per_second",), "Requests per second", "number"),
    )

    def __init__(self, *, limiter: RateLimiter | None = None) -> None:
        self._limiter = limiter if limiter is not None else RateLimiter()

    def validate_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        config = require_mapping(self.name, config)
        refuse_unknown_keys(
            self.name,
            config,
            {
                "method",
                "url",
                "path",
                "headers",
                "secret_headers",
                "body",
                "auth",
                "rate_limit_per_second",
                "timeout_seconds",
            },
        )
        method = str(config.get("method") or "GET").upper()
        if method not in ("GET", "POST"):
            raise EnricherConfigError(f"{self.name}: 'method' must be GET or POST")
        url = require_str(self.name, config, "url", max_length=4000)
        url_template = parse_template(url, where=f"{self.name}: 'url'")
        _check_url_template(url_template)
        path = optional_str(self.name, config, "path", max_length=500) or ""
        try:
            parse_json_path(path)
        except EnricherConfigError as exc:
            raise EnricherConfigError(f"{self.name}: 'path': {exc}") from exc
        body = config.get("body")
        if body is not None:
            if method != "POST":
                raise EnricherConfigError(f"{self.name}: 'body' is only allowed with POST")
            try:
                json.dumps(body)
            except (TypeError, ValueError) as exc:
                raise EnricherConfigError(f"{self.name}: 'body' must be plain JSON") from exc
            _body_templates(body)
        return {
            "method": method,
            "url": url,
            "path": path,
            "headers": _validate_headers(config.get("headers")),
            "secret_headers": _validate_headers(config.get("secret_headers"), "secret_headers"),
            "body": body,
            "auth": _validate_auth(config.get("auth")),
            "rate_limit_per_second": optional_number(
                self.name,
                config,
                "rate_limit_per_second",
                default=None,
                minimum=0,
                maximum=1000,
                exclusive_minimum=True,
            ),
            "timeout_seconds": optional_number(
                self.name,
                config,
                "timeout_seconds",
                default=DEFAULT_TIMEOUT_SECONDS,
                minimum=0,
                maximum=self.timeout_seconds - 5,
                exclusive_minimum=True,
            ),
        }

    def secret_paths(self, config: Mapping[str, Any]) -> list[tuple[str, ...]]:
        paths: list[tuple[str, ...]] = []
        auth = config.get("auth")
        if isinstance(auth, Mapping):
            paths += [("auth", key) for key in ("token", "password") if key in auth]
        headers = config.get("headers")
        if isinstance(headers, Mapping):
            paths += [("headers", name) for name in headers if is_secret_header(str(name))]
        secret_headers = config.get("secret_headers")
        if isinstance(secret_headers, Mapping):
            paths += [("secret_headers", str(name)) for name in secret_headers]
        return paths

    def _secret_values(self, config: Mapping[str, Any]) -> list[str]:
        values: list[str] = []
        for path in self.secret_paths(config):
            value: Any = config
            for key in path:
                value = value.get(key) if isinstance(value, Mapping) else None
            if isinstance(value, str):
                values.append(value)
        auth = config.get("auth")
        if isinstance(auth, Mapping) and auth.get("type") == "basic":
            pair = f"{auth.get('username', '')}:{auth.get('password', '')}".encode()
            values.append(base64.b64encode(pair).decode("ascii"))
        return values

    def referenced_columns(self, config: Mapping[str, Any]) -> set[str]:
        columns = parse_template(config["url"], where=f"{self.name}: 'url'").columns
        for template in _body_templates(config.get("body")):
            columns |= template.columns
        return columns

    def rename_column(self, config: Mapping[str, Any], old: str, new: str) -> dict[str, Any]:
        renamed = super().rename_column(config, old, new)
        renamed["body"] = rename_in_json(json_copy(config).get("body"), old, new)
        if renamed["body"] is None and "body" not in config:
            del renamed["body"]
        return renamed

    async def enrich(self, ctx: EnrichContext) -> str:
        config = ctx.config
        template = parse_template(config["url"], where=f"{self.name}: 'url'")
        url = render_url(template, ctx.row)
        origin = origin_of(httpx.URL(template.parts[0][0]))
        if origin_of(httpx.URL(url)) != origin:  # cannot happen with encoded values; never send
            raise EnrichError("The row's values changed the URL's host; nothing was sent")
        if len(url) > MAX_URL_CHARS:
            raise EnrichError(
                f"The URL built from this row is {len(url):,} characters; at most "
                f"{MAX_URL_CHARS:,} are allowed. Shorten the values it uses."
            )
        body = _render_body(config.get("body"), ctx.row)
        if body is not None:
            size = len(json.dumps(body).encode())
            if size > MAX_BODY_BYTES:
                raise EnrichError(
                    f"The body built from this row is {size:,} bytes; at most "
                    f"{MAX_BODY_BYTES:,} are allowed. Shorten the values it uses."
                )
        rate = config.get("rate_limit_per_second")
        if rate:
            await self._limiter.wait(_limit_key(config), rate)
        timeout = config.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS
        method = config.get("method", "GET")
        request = ctx.http.build_request(
            method,
            url,
            headers=_headers(config),
            json=body if method == "POST" and body is not None else None,
            timeout=timeout,
        )
        auth = _auth(config.get("auth"))
        if auth is not None:
            request = next(auth.auth_flow(request))
        current = display_url(url)
        try:
            async with asyncio.timeout(timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    current = display_url(str(request.url))
                    response = await ctx.http.send(request, stream=True, follow_redirects=False)
                    try:
                        location = response.headers.get("location")
                        if response.status_code in _REDIRECT_STATUSES and location:
                            request = next_hop(request, response, location, origin)
                            continue
                        content = await read_capped(response, current)
                        break
                    finally:
                        await response.aclose()
                else:
                    raise EnrichError(
                        f"Too many redirects (more than {MAX_REDIRECTS}) from {display_url(url)}"
                    )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise EnrichError(f"Timed out after {timeout:g} s calling {current}") from exc
        except httpx.ConnectError as exc:
            raise EnrichError(f"Could not connect to {current}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise EnrichError(f"Calling {current} failed: {type(exc).__name__}: {exc}") from exc
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("http_json %s %s -> %d", method, current, response.status_code)
        if not response.is_success:
            detail = error_detail(content, self._secret_values(config))
            suffix = f": {detail}" if detail else ""
            raise EnrichError(f"HTTP {response.status_code} from {current}{suffix}")
        try:
            document = json.loads(content)
        except ValueError as exc:
            raise EnrichError(f"Response from {current} is not valid JSON") from exc
        value = resolve_json_path(document, parse_json_path(config.get("path", "")))
        return as_cell_text(value)


def _check_url_template(template: RowTemplate) -> None:
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


def _validate_headers(headers: object, key: str = "headers") -> dict[str, str]:
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


def _validate_auth(auth: object) -> dict[str, str] | None:
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


def _auth(auth: Mapping[str, str] | None) -> httpx.Auth | None:
    if auth is None or auth["type"] != "basic":
        return None
    return httpx.BasicAuth(auth["username"], auth["password"])


def _headers(config: Mapping[str, Any]) -> dict[str, str]:
    headers = {
        "Accept": "application/json",
        **config.get("headers", {}),
        **(config.get("secret_headers") or {}),
    }
    auth = config.get("auth")
    if auth is not None and auth["type"] == "bearer":
        headers["Authorization"] = f"Bearer {auth['token']}"
    return headers


def _body_templates(body: Any) -> list[RowTemplate]:
    """Parse (and so check) every string value in a body; keys are not templated."""
    if isinstance(body, str):
        return [parse_template(body, where="http_json: 'body'")]
    if isinstance(body, Mapping):
        return [t for value in body.values() for t in _body_templates(value)]
    if isinstance(body, list):
        return [t for value in body for t in _body_templates(value)]
    return []


def _render_body(body: Any, row: Mapping[str, str | None]) -> Any:
    if isinstance(body, str):
        return parse_template(body, where="http_json: 'body'").render(row)
    if isinstance(body, Mapping):
        return {key: _render_body(value, row) for key, value in body.items()}
    if isinstance(body, list):
        return [_render_body(value, row) for value in body]
    return body


def _limit_key(config: Mapping[str, Any]) -> str:
    """One key per column config: a digest, so the limiter's memory holds no credential."""
    canonical = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(canonical).hexdigest()
