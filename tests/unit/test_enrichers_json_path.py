"""The small JSON path used by http_json."""

from __future__ import annotations

from typing import Any

import pytest

from enrichment_app.enrichers.json_path import (
    format_json_path,
    parse_json_path,
    resolve_json_path,
)
from enrichment_app.errors import EnricherConfigError, EnrichError

DOCUMENT: dict[str, Any] = {
    "data": {"company": {"name": "Acme", "tags": ["b2b", "saas"], "parent": None}},
    "results": [{"domain": "acme.com"}, {"domain": "acme.io"}],
    "matrix": [[1, 2], [3, 4]],
    "key with spaces": {"ünïcode": True},
}


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("", ()),
        ("$", ()),
        ("$.data.company", ("data", "company")),
        ("data.company.name", ("data", "company", "name")),
        ("results[0].domain", ("results", 0, "domain")),
        ("[1]", (1,)),
        ("$[1]", (1,)),
        ("matrix[1][0]", ("matrix", 1, 0)),
        ("tags[-1]", ("tags", -1)),
        ("  data.name  ", ("data", "name")),
        ("key with spaces.ünïcode", ("key with spaces", "ünïcode")),
    ],
)
def test_parse(path: str, steps: tuple[str | int, ...]) -> None:
    assert parse_json_path(path) == steps


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("data..name", "empty key at character 6"),
        (".data", "empty key at character 1"),
        ("data.", "ends with '.'"),
        ("results[x]", r"expected a list index like \[0\]"),
        ("results[0", r"expected a list index like \[0\]"),
        ("results]", "unexpected ']'"),
        ("results[0]domain", "unexpected 'd'"),
        ("a.[0]", "empty key"),
        # Found by tests/fuzz: an index of over 4300 digits raised Python's ValueError.
        ("a[" + "9" * 5000 + "]", r"expected a list index like \[0\]"),
        ("a[" + "9" * 19 + "]", r"expected a list index like \[0\]"),
    ],
)
def test_parse_refuses_malformed_paths(path: str, message: str) -> None:
    with pytest.raises(EnricherConfigError, match=message):
        parse_json_path(path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("data.company.name", "Acme"),
        ("data.company.tags[1]", "saas"),
        ("data.company.tags[-2]", "b2b"),
        ("data.company.parent", None),
        ("results[1].domain", "acme.io"),
        ("matrix[1][0]", 3),
        ("key with spaces.ünïcode", True),
        ("", DOCUMENT),
    ],
)
def test_resolve(path: str, value: Any) -> None:
    assert resolve_json_path(DOCUMENT, parse_json_path(path)) == value


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("data.company.ceo", "no key 'ceo' in data.company"),
        ("data.company.tags[2]", r"data.company.tags has 2 item\(s\), no index 2"),
        ("data.company.tags[-3]", "no index -3"),
        ("data.company.name.first", "data.company.name is a string, not an object"),
        ("data[0]", "data is an object, not a list"),
        ("data.company.parent.name", "data.company.parent is null, not an object"),
        ("[0]", r"\$ is an object, not a list"),
    ],
)
def test_resolve_says_where_the_path_stopped_matching(path: str, message: str) -> None:
    with pytest.raises(EnrichError, match=message):
        resolve_json_path(DOCUMENT, parse_json_path(path))


def test_format_round_trips() -> None:
    for path in ["data.company.tags[1]", "[0].name", "matrix[1][0]"]:
        assert format_json_path(parse_json_path(path)) == path
    assert format_json_path(()) == "$"
