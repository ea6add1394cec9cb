"""The secret scanner itself: it must find what it is for, in every form, and nothing else."""

from __future__ import annotations

import pytest

from tests.support.secret_scan import assert_no_leaks, find_leaks

SECRETS = {"trigger key": "tr_dev_Abc123+/=secretvalue", "api key": 'k3y-with-"quote"-and-more'}


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("nothing here", []),
        ("Authorization: Bearer tr_dev_Abc123+/=secretvalue", ["trigger key in src"]),
        ("?token=tr_dev_Abc123%2B%2F%3Dsecretvalue", ["trigger key in src"]),
        ('{"k": "k3y-with-\\"quote\\"-and-more"}', ["api key in src"]),
        ("tr_dev_Abc123", []),
    ],
)
def test_finds_secrets_verbatim_and_escaped(text: str, found: list[str]) -> None:
    assert find_leaks(SECRETS, {"src": text}) == found


def test_bytes_sources_are_scanned() -> None:
    assert find_leaks(SECRETS, {"frame": b'42["event", "tr_dev_Abc123+/=secretvalue"]'}) == [
        "trigger key in frame"
    ]


def test_refuses_short_secrets_and_empty_captures() -> None:
    with pytest.raises(ValueError, match="too short"):
        find_leaks({"short": "abc"}, {"src": "abc"})
    with pytest.raises(AssertionError, match="nothing was captured"):
        assert_no_leaks(SECRETS, {"empty": ""})
    with pytest.raises(AssertionError, match="api key in log"):
        assert_no_leaks(SECRETS, {"log": 'key=k3y-with-"quote"-and-more'})
