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
import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

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
from enrichment_app.enrichers.http_request import (
    basic_auth,
    body_templates,
    check_url_template,
    limit_key,
    render_body,
    render_url,
    request_headers,
    validate_auth,
    validate_headers,
)
from enrichment_app.enrichers.json_path import parse_json_path, resolve_json_path
from enrichment_app.enrichers.rate_limit import RateLimiter
from enrichment_app.enrichers.template import parse_template, rename_in_json
from enrichment_app.errors import EnricherConfigError, EnrichError
from enrichment_app.redact import display_url

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 15.0
MAX_REDIRECTS = 5
MAX_URL_CHARS = 8192
"""The longest URL a row may render: most servers refuse longer ones anyway (414)."""
MAX_BODY_BYTES = 1024 * 1024
"""The largest JSON body a row may render."""
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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
        check_url_template(url_template)
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
            body_templates(body)
        return {
            "method": method,
            "url": url,
            "path": path,
            "headers": validate_headers(config.get("headers")),
            "secret_headers": validate_headers(config.get("secret_headers"), "secret_headers"),
            "body": body,
            "auth": validate_auth(config.get("auth")),
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
        for template in body_templates(config.get("body")):
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
        body = render_body(config.get("body"), ctx.row)
        if body is not None:
            size = len(json.dumps(body).encode())
            if size > MAX_BODY_BYTES:
                raise EnrichError(
                    f"The body built from this row is {size:,} bytes; at most "
                    f"{MAX_BODY_BYTES:,} are allowed. Shorten the values it uses."
                )
        rate = config.get("rate_limit_per_second")
        if rate:
            await self._limiter.wait(limit_key(config), rate)
        timeout = config.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS
        method = config.get("method", "GET")
        request = ctx.http.build_request(
            method,
            url,
            headers=request_headers(config),
            json=body if method == "POST" and body is not None else None,
            timeout=timeout,
        )
        auth = basic_auth(config.get("auth"))
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
