"""website_title and http_json against a real website served on loopback (tests/fakes/http_site.py).

The ``http`` client is the app's own, behind the egress guard, with the site allowed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import AsyncIterator, Hashable, Iterator
from typing import Any

import httpx
import pytest

from enrichment_app.egress import guarded_client, parse_allowed
from enrichment_app.enrichers import EnrichContext, Enricher, get_enricher
from enrichment_app.enrichers.http_json import HttpJsonEnricher
from enrichment_app.enrichers.rate_limit import RateLimiter
from enrichment_app.errors import EnrichError
from enrichment_app.settings import Settings
from tests.fakes.http_site import HUGE_BODY_BYTES, HttpSite, http_site_fixture  # noqa: F401
from tests.support.live_server import allowance

SETTINGS = Settings(_env_file=None)


@pytest.fixture
async def http(http_site: HttpSite, closed_port: int) -> AsyncIterator[httpx.AsyncClient]:
    """The app's guarded client, allowed to reach the test site (and the closed port) only."""
    allowed = parse_allowed(f"{allowance(http_site.base_url)},127.0.0.1:{closed_port}")
    async with guarded_client(allowed) as client:
        yield client


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound but not listening, so connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def _run(
    enricher: Enricher,
    http: httpx.AsyncClient,
    config: dict[str, Any],
    row: dict[str, str | None],
) -> str:
    checked = enricher.validate_config(config)
    return await enricher.enrich(
        EnrichContext(row=row, config=checked, http=http, settings=SETTINGS)
    )


async def _title(http: httpx.AsyncClient, website: str, **config: Any) -> str:
    return await _run(
        get_enricher("website_title"), http, {"column": "website", **config}, {"website": website}
    )


# --- website_title ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/titled", "Acme & Co Widgets"),
        ("/described", 'We make "anvils" daily'),
        ("/og-described", "Open Graph words"),
        ("/blank-title", "The fallback"),
        ("/latin1", "Café Müller"),
    ],
)
async def test_title_or_description(
    http_site: HttpSite, http: httpx.AsyncClient, path: str, expected: str
) -> None:
    assert await _title(http, http_site.url(path)) == expected


async def test_a_page_without_title_or_description_is_an_error(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    with pytest.raises(EnrichError, match=r"No <title> or meta description found on http://"):
        await _title(http, http_site.url("/bare"))


async def test_redirects_are_followed_up_to_the_limit(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    assert await _title(http, http_site.url("/redirect/3"), max_redirects=3) == "Acme & Co Widgets"
    with pytest.raises(EnrichError, match=r"Too many redirects \(more than 2\) from http://"):
        await _title(http, http_site.url("/redirect/3"), max_redirects=2)
    with pytest.raises(EnrichError, match=r"Too many redirects \(more than 0\)"):
        await _title(http, http_site.url("/redirect/1"), max_redirects=0)


async def test_a_redirect_loop_is_reported_as_such(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    with pytest.raises(EnrichError, match=r"Redirect loop: .*/loop/b redirected back to .*/loop/a"):
        await _title(http, http_site.url("/loop/a"), max_redirects=20)


async def test_a_redirect_to_another_scheme_is_refused(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    with pytest.raises(EnrichError, match="redirected to an unsupported URL: 'ftp://"):
        await _title(http, http_site.url("/to-ftp"))


async def test_a_huge_page_is_read_only_until_the_title(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    assert await _title(http, http_site.url("/huge-titled")) == "Big page"
    assert http_site.bytes_sent["/huge-titled"] < HUGE_BODY_BYTES / 4


async def test_a_huge_page_without_a_title_stops_at_the_size_cap(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    with pytest.raises(EnrichError, match=r"No <title> .* in the first 65,536 bytes of http://"):
        await _title(http, http_site.url("/huge"), max_bytes=65_536)
    assert http_site.bytes_sent["/huge"] < HUGE_BODY_BYTES / 4


async def test_a_server_that_never_answers_times_out(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    with pytest.raises(EnrichError, match=r"Timed out after 0.3 s fetching http://.*/slow"):
        await _title(http, http_site.url("/slow"), timeout_seconds=0.3)
    assert time.monotonic() - started < 5


async def test_a_dripping_body_hits_the_total_deadline(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    # A byte every 50 ms never trips a read timeout; only the total deadline ends this.
    started = time.monotonic()
    with pytest.raises(EnrichError, match=r"Timed out after 0.5 s fetching http://.*/drip"):
        await _title(http, http_site.url("/drip"), timeout_seconds=0.5)
    assert time.monotonic() - started < 5


async def test_non_html_content_is_refused(http_site: HttpSite, http: httpx.AsyncClient) -> None:
    with pytest.raises(EnrichError, match=r"Not an HTML page \(application/pdf\) at http://"):
        await _title(http, http_site.url("/doc.pdf"))


@pytest.mark.parametrize("code", [404, 500])
async def test_error_statuses_are_reported(
    http_site: HttpSite, http: httpx.AsyncClient, code: int
) -> None:
    url = http_site.url(f"/status/{code}")
    with pytest.raises(EnrichError) as caught:
        await _title(http, url)
    assert str(caught.value) == f"HTTP {code} from {url}"


async def test_a_refused_connection_is_reported(http: httpx.AsyncClient, closed_port: int) -> None:
    with pytest.raises(EnrichError, match=rf"Could not connect to http://127.0.0.1:{closed_port}/"):
        await _title(http, f"http://127.0.0.1:{closed_port}/")


async def test_a_bare_host_gets_https(http_site: HttpSite, http: httpx.AsyncClient) -> None:
    # The test site speaks plain HTTP, so the https:// that was added makes the TLS handshake fail.
    bare = http_site.url("/titled").removeprefix("http://")
    with pytest.raises(EnrichError, match=rf"Could not connect to https://{bare}"):
        await _title(http, bare)


@pytest.mark.parametrize(
    ("value", "message"), [("", "No URL in column 'website'"), (None, "No URL")]
)
async def test_an_empty_cell_is_an_error(
    http: httpx.AsyncClient, value: str | None, message: str
) -> None:
    with pytest.raises(EnrichError, match=message):
        await _title(http, value)  # type: ignore[arg-type]


# --- http_json -------------------------------------------------------------------------------

ROW: dict[str, str | None] = {"name": "Acme", "website": "acme.com & co/x?y=1#z", "empty": None}


async def _json(
    http: httpx.AsyncClient, config: dict[str, Any], row: dict[str, str | None] = ROW
) -> str:
    return await _run(HttpJsonEnricher(), http, config, row)


async def test_get_picks_a_value_by_path_with_url_encoded_values(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    url = http_site.url("/api/lookup?domain={website}")
    assert await _json(http, {"url": url, "path": "data.company.name"}) == (
        "Company at acme.com & co/x?y=1#z"
    )
    raw_query = await _json(http, {"url": url, "path": "raw_query"})
    assert raw_query == "domain=acme.com%20%26%20co%2Fx%3Fy%3D1%23z"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.company.employees", "42"),
        ("data.company.public", "false"),
        ("data.company.parent", ""),
        ("data.company.tags", '["b2b","saas"]'),
        ("data.company.tags[-1]", "saas"),
        ("data.company.address", '{"city":"Zürich","zip":"8001"}'),
    ],
)
async def test_non_string_values_are_json_encoded(
    http_site: HttpSite, http: httpx.AsyncClient, path: str, expected: str
) -> None:
    url = http_site.url("/api/lookup?domain={name}")
    assert await _json(http, {"url": url, "path": path}) == expected


async def test_an_empty_path_returns_the_whole_document(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    document = json.loads(await _json(http, {"url": http_site.url("/api/lookup?domain={name}")}))
    assert document["data"]["company"]["name"] == "Company at Acme"


async def test_bearer_auth_is_sent(http_site: HttpSite, http: httpx.AsyncClient) -> None:
    config = {
        "url": http_site.url("/api/lookup"),
        "path": "authorization",
        "auth": {"type": "bearer", "token": "tok-123"},
    }
    assert await _json(http, config) == "Bearer tok-123"


async def test_post_sends_a_templated_body_headers_and_basic_auth(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    config = {
        "method": "POST",
        "url": http_site.url("/api/echo"),
        "headers": {"X-Custom": "yes"},
        "auth": {"type": "basic", "username": "ada", "password": "s3cret"},
        "body": {"q": "{name}", "n": 1, "sites": ["{website}", "{empty}"], "{name}": True},
    }
    echoed = json.loads(await _json(http, config))
    assert echoed["method"] == "POST"
    assert echoed["content_type"] == "application/json"
    assert echoed["x_custom"] == "yes"
    assert echoed["authorization"] == "Basic " + base64.b64encode(b"ada:s3cret").decode()
    assert echoed["json"] == {
        "q": "Acme",
        "n": 1,
        "sites": ["acme.com & co/x?y=1#z", ""],
        "{name}": True,  # keys are not templated
    }


async def test_an_http_error_shows_status_url_and_api_message_but_not_the_query(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    with pytest.raises(EnrichError) as caught:
        await _json(http, {"url": http_site.url("/api/error?api_key=hunter2&d={name}")})
    assert str(caught.value) == f"HTTP 500 from {http_site.url('/api/error')}: database on fire"
    with pytest.raises(EnrichError) as caught:
        await _json(http, {"url": http_site.url("/api/missing")})
    assert str(caught.value) == f"HTTP 404 from {http_site.url('/api/missing')}"


async def test_invalid_json_is_reported(http_site: HttpSite, http: httpx.AsyncClient) -> None:
    with pytest.raises(
        EnrichError, match=r"Response from http://.*/api/not-json is not valid JSON"
    ):
        await _json(http, {"url": http_site.url("/api/not-json")})


async def test_a_missing_path_is_reported(http_site: HttpSite, http: httpx.AsyncClient) -> None:
    config = {"url": http_site.url("/api/lookup"), "path": "data.company.ceo.name"}
    with pytest.raises(
        EnrichError, match=r"Path 'data\.company\.ceo\.name' not found: no key 'ceo'"
    ):
        await _json(http, config)


async def test_a_slow_api_times_out(http_site: HttpSite, http: httpx.AsyncClient) -> None:
    with pytest.raises(EnrichError, match=r"Timed out after 0.3 s calling http://.*/slow"):
        await _json(http, {"url": http_site.url("/slow"), "timeout_seconds": 0.3})


async def test_a_refused_connection_is_reported_for_apis(
    http: httpx.AsyncClient, closed_port: int
) -> None:
    with pytest.raises(
        EnrichError, match=rf"Could not connect to http://127.0.0.1:{closed_port}/x"
    ):
        await _json(http, {"url": f"http://127.0.0.1:{closed_port}/x?q={{name}}"})


async def test_a_missing_column_is_a_cell_error(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    with pytest.raises(EnrichError, match=r"uses column \{domain\}"):
        await _json(http, {"url": http_site.url("/api/lookup?domain={domain}")})


class FakeClock:
    """A monotonic clock that only moves when asked; ``sleep`` records and returns at once."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))


async def test_the_rate_limit_spaces_out_a_column_s_calls(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    enricher = HttpJsonEnricher(limiter=RateLimiter(clock=clock, sleep=clock.sleep))
    limited = {
        "url": http_site.url("/api/lookup?domain={name}"),
        "path": "data.company.name",
        "rate_limit_per_second": 2,
    }
    other_column = {**limited, "path": "data.company.employees"}
    hits_before = http_site.hits["/api/lookup"]
    rows: list[dict[str, str | None]] = [{"name": f"c{i}"} for i in range(3)]
    results = await asyncio.gather(
        *(_run(enricher, http, limited, row) for row in rows),
        _run(enricher, http, other_column, rows[0]),
    )
    assert results == ["Company at c0", "Company at c1", "Company at c2", "42"]
    # Three calls at 2/s: the second waits 0.5 s, the third 1 s; the other column waits for none.
    assert clock.sleeps == [0.5, 1.0]
    assert http_site.hits["/api/lookup"] - hits_before == 4


class RecordingLimiter(RateLimiter):
    """A rate limiter that remembers the keys it is asked to space out."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[object] = []

    async def wait(self, key: Hashable, rate_per_second: float) -> None:
        self.keys.append(key)
        await super().wait(key, rate_per_second)


async def test_the_rate_limit_key_holds_no_credential(
    http_site: HttpSite, http: httpx.AsyncClient
) -> None:
    """The limiter keeps its keys in memory for the life of the process; a key built from
    the column's config must not carry the column's token in clear."""
    limiter = RecordingLimiter()
    enricher = HttpJsonEnricher(limiter=limiter)
    token = "sk-live-rate-limit-secret-1234"
    config = {
        "url": http_site.url("/api/lookup?domain={name}"),
        "path": "data.company.name",
        "auth": {"type": "bearer", "token": token},
        "rate_limit_per_second": 1000,
    }
    await _run(enricher, http, config, {"name": "c0"})
    await _run(enricher, http, config, {"name": "c1"})
    other = await _run(enricher, http, {**config, "path": "data.company.employees"}, {"name": "c0"})
    assert other == "42"
    assert len(limiter.keys) == 3
    assert limiter.keys[0] == limiter.keys[1] != limiter.keys[2], "one key per column config"
    assert not any(token in str(key) for key in limiter.keys), limiter.keys
