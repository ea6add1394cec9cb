"""website_title's pure parts: URL normalisation and the HTML title/description parser."""

from __future__ import annotations

import pytest

from enrichment_app.enrichers.website_title import PageSummaryParser, normalise_website_url
from enrichment_app.errors import EnrichError


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("example.com", "https://example.com"),
        ("  example.com/about  ", "https://example.com/about"),
        ("www.example.com:8443/x", "https://www.example.com:8443/x"),
        ("http://example.com", "http://example.com"),
        ("HTTPS://Example.com/Path", "https://example.com/Path"),
        ("//cdn.example.com/a", "https://cdn.example.com/a"),
    ],
)
def test_normalise_adds_https_and_keeps_http(value: str, url: str) -> None:
    assert normalise_website_url(value) == url


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "No URL"),
        ("ftp://example.com", r"not ftp://"),
        ("file:///etc/passwd", r"not file://"),
        ("javascript:alert(1)", "not javascript:"),
        ("mailto:ada@example.com", "not mailto:"),
        ("exa mple.com", "Not a valid URL"),
        ("https://", "no host"),
    ],
)
def test_normalise_refuses_other_schemes_and_junk(value: str, message: str) -> None:
    with pytest.raises(EnrichError, match=message):
        normalise_website_url(value)


def _parse(html: str, chunk: int = 7) -> PageSummaryParser:
    parser = PageSummaryParser()
    for start in range(0, len(html), chunk):  # fed in small pieces, as from the network
        parser.feed(html[start : start + chunk])
    parser.close()
    return parser


@pytest.mark.parametrize(
    ("html", "summary"),
    [
        ("<title>\n  Acme &amp; Co\n\t Widgets </title>", "Acme & Co Widgets"),
        ("<TITLE>Caf&eacute; &#8212; &lt;home&gt;</TITLE>", "Café — <home>"),
        ('<meta name="description" content="Desc &quot;q&quot;">', 'Desc "q"'),
        ('<meta property="og:description" content="OG">', "OG"),
        ('<meta property="og:description" content="OG"><meta name="description" content="D">', "D"),
        ('<title> </title><meta name="description" content=" Fallback ">', "Fallback"),
        ("<script>document.title = '<title>no</title>'</script><title>Yes</title>", "Yes"),
        ("<title>First</title><title>Second</title>", "First"),
        ("<p>nothing</p>", ""),
    ],
)
def test_parser_prefers_title_then_descriptions(html: str, summary: str) -> None:
    assert _parse(html).summary == summary


def test_parser_is_done_once_the_title_closes() -> None:
    parser = PageSummaryParser()
    parser.feed("<html><head><title>Acme")
    assert not parser.done
    parser.feed("</title>")
    assert parser.done


def test_parser_with_only_a_description_is_done_after_the_head() -> None:
    parser = PageSummaryParser()
    parser.feed('<head><meta name="description" content="D">')
    assert not parser.done  # a title may still follow
    parser.feed("</head>")
    assert parser.done
