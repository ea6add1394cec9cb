"""Token building: scope flattening, jose durations, claims and the HS256 signature."""

from __future__ import annotations

import base64
import json
import warnings
from datetime import UTC, datetime

import jwt
import pytest

from enrichment_app.trigger import tokens
from enrichment_app.trigger.errors import ProtocolError

ROOT_KEY = "tr_dev_" + "a" * 24  # 31 bytes, like a real root key
NOW = 1_795_865_748.9


def _decode(token: str) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.decode(
            token,
            ROOT_KEY,
            algorithms=["HS256"],
            audience=tokens.JWT_AUDIENCE,
            issuer=tokens.JWT_ISSUER,
            options={"verify_exp": False},
        )


def _header(token: str) -> dict[str, object]:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ({"read": {"runs": ["run_abc"]}}, ["read:runs:run_abc"]),
        ({"read": {"runs": True}}, ["read:runs"]),
        ({"read": {"tags": "t"}}, ["read:tags:t"]),
        ({"read": True}, ["read"]),
        (
            {"read": {"runs": ["a", "b"], "tasks": "x"}, "write": {"runs": ["a"]}},
            ["read:runs:a", "read:runs:b", "read:tasks:x", "write:runs:a"],
        ),
        ({"read": {"runs": False}, "write": None, "admin": False}, []),
        ({"read": {"runs": "run:with:colons"}}, ["read:runs:run:with:colons"]),
    ],
)
def test_flatten_scopes_matches_the_sdk(scopes, expected):
    assert tokens.flatten_scopes(scopes) == expected


@pytest.mark.parametrize("scopes", [{"read": {"runs": [" "]}}, {"read": {"runs": ""}}])
def test_flatten_scopes_refuses_blank_ids(scopes):
    with pytest.raises(ValueError, match="must not be empty"):
        tokens.flatten_scopes(scopes)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900),
        ("1h", 3600),
        ("1hr", 3600),
        ("2h", 7200),
        ("1d", 86400),
        ("30s", 30),
        ("2 hours", 7200),
        ("1.5h", 5400),
        ("1w", 604800),
        ("10 mins", 600),
        ("1y", 31557600),
        ("-1h", -3600),
        ("1h ago", -3600),
        ("1H", 3600),
    ],
)
def test_duration_seconds_follows_jose(text, seconds):
    assert tokens.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "1 fortnight", "-1h ago", "h"])
def test_duration_seconds_refuses_what_jose_refuses(text):
    with pytest.raises(ValueError, match="Invalid time period"):
        tokens.duration_seconds(text)


def test_duration_seconds_refuses_a_period_too_long_for_a_float():
    """Found by tests/fuzz: ~1e400 seconds raised OverflowError, not the documented ValueError."""
    with pytest.raises(ValueError, match="too long"):
        tokens.duration_seconds("1" + "0" * 400 + "s")


@pytest.mark.parametrize(
    ("expiration", "expected"),
    [
        ("1h", 1_795_865_748 + 3600),
        (1_800_000_000, 1_800_000_000),  # a number is an absolute Unix time, not a duration
        (datetime(2027, 1, 1, tzinfo=UTC), 1_798_761_600),
    ],
)
def test_expiration_timestamp(expiration, expected):
    assert tokens.expiration_timestamp(expiration, now=NOW) == expected


def test_public_token_claims_header_and_signature():
    token = tokens.create_public_token(
        ROOT_KEY, {"sub": "env_123", "pub": True}, scopes={"read": {"runs": ["run_abc"]}}, now=NOW
    )
    assert _header(token) == {"alg": "HS256"}
    claims = _decode(token)
    assert claims == {
        "sub": "env_123",
        "pub": True,
        "scopes": ["read:runs:run_abc"],
        "iss": "https://id.trigger.dev",
        "aud": "https://api.trigger.dev",
        "exp": 1_795_865_748 + 900,
        "iat": 1_795_865_748,
    }
    assert list(claims) == ["sub", "pub", "scopes", "iss", "aud", "exp", "iat"]


def test_public_token_without_scopes_omits_the_claim_and_drops_realtime_from_claims():
    token = tokens.create_public_token(
        ROOT_KEY, {"sub": "env", "pub": True, "realtime": {"x": 1}}, scopes=None, now=NOW
    )
    claims = _decode(token)
    assert "scopes" not in claims
    assert "realtime" not in claims


def test_public_token_carries_realtime_option():
    token = tokens.create_public_token(
        ROOT_KEY,
        {"sub": "env", "pub": True},
        scopes={"read": True},
        realtime={"skipColumns": ["payload"]},
        now=NOW,
    )
    assert _decode(token)["realtime"] == {"skipColumns": ["payload"]}


def test_signing_with_a_short_root_key_raises_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tokens.sign({"sub": "env"}, ROOT_KEY)


def test_run_token_replaces_scopes_and_keeps_other_claims():
    token = tokens.create_run_token(
        ROOT_KEY,
        {"sub": "env", "pub": True, "scopes": ["write:inputStreams:run_1"], "realtime": {"a": 1}},
        "run_1",
        now=NOW,
    )
    claims = _decode(token)
    assert claims["scopes"] == ["read:runs:run_1"]
    assert claims["realtime"] == {"a": 1}
    assert claims["exp"] == 1_795_865_748 + 3600


@pytest.mark.parametrize(
    ("key", "can_sign"),
    [
        ("tr_dev_" + "a" * 24, True),
        ("tr_prod_sk_" + "A1" * 12, False),
        ("tr_stg_sk_short", True),
        (jwt.encode({"a": 1}, "k" * 32, headers={"typ": "run+jwt"}), False),
        (jwt.encode({"a": 1}, "k" * 32), True),
    ],
)
def test_can_self_sign(key, can_sign):
    assert tokens.can_self_sign(key) is can_sign


def test_claims_from_header():
    assert tokens.claims_from_header(None) == {}
    assert tokens.claims_from_header("") == {}
    assert tokens.claims_from_header('{"sub": "env_1"}') == {"sub": "env_1"}


@pytest.mark.parametrize("value", ["{", "[1]", '"text"', "[" * 100_000])
def test_malformed_claims_are_a_protocol_error(value):
    with pytest.raises(ProtocolError, match="x-trigger-jwt-claims"):
        tokens.claims_from_header(value)


def test_a_key_shaped_like_a_deeply_nested_jwt_is_not_a_run_token():
    header = base64.urlsafe_b64encode(b"[" * 5000).decode().rstrip("=")
    assert tokens.is_run_token(f"{header}.e30.sig") is False
