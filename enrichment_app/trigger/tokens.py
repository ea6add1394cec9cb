"""Public access tokens, built exactly as the SDK builds them (pure; the clock is passed in).

Sources: ``@trigger.dev/sdk`` ``v3/auth.js`` (``flattenScopes``, ``createPublicToken``),
``@trigger.dev/core`` ``v3/jwt.js`` (``generateJWT``), jose 5 ``lib/secs.js`` (durations).
"""

from __future__ import annotations

import base64
import json
import math
import re
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt

from enrichment_app.trigger.errors import ProtocolError

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "https://id.trigger.dev"
JWT_AUDIENCE = "https://api.trigger.dev"
DEFAULT_PUBLIC_TOKEN_EXPIRATION = "15m"
TRIGGER_HANDLE_TOKEN_EXPIRATION = "1h"

# Scopes as the SDK accepts them: {"read": {"runs": ["run_1"], "tasks": "t"}, "write": True}.
Scopes = Mapping[str, Any]
ExpirationTime = str | int | float | datetime

_ADDITIONAL_API_KEY = re.compile(r"^tr_(dev|stg|prod|preview)_sk_[0-9a-zA-Z]{24}$")
_JWT_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
# jose 5 lib/secs.js, verbatim.
_DURATION = re.compile(
    r"^(\+|\-)? ?(\d+|\d+\.\d+) ?(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)(?: (ago|from now))?$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 86400.0 * 365.25,
}


def is_additional_api_key(key: str) -> bool:
    """An "additional" key (``tr_<env>_sk_…``) cannot sign tokens; the server mints them instead."""
    return _ADDITIONAL_API_KEY.match(key) is not None


def is_run_token(token: str) -> bool:
    """A run token (JWT with header ``typ: run+jwt``), which cannot sign tokens either."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_JWT_SEGMENT.match(part) for part in parts):
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, RecursionError):
        return False
    return isinstance(header, dict) and header.get("typ") == "run+jwt"


def claims_from_header(value: str | None) -> dict[str, Any]:
    """The claims a trigger response sends in ``x-trigger-jwt-claims`` ({} when absent).

    Raises ``ProtocolError`` when the header is not a JSON object.
    """
    if not value:
        return {}
    try:
        claims = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("x-trigger-jwt-claims is not valid JSON") from exc
    if not isinstance(claims, dict):
        raise ProtocolError("x-trigger-jwt-claims is not a JSON object")
    return claims


def can_self_sign(key: str) -> bool:
    """Only a root secret key is the environment's signing material."""
    return not (is_additional_api_key(key) or is_run_token(key))


def flatten_scopes(scopes: Scopes) -> list[str]:
    """``{"read": {"runs": ["run_a"]}}`` → ``["read:runs:run_a"]``, in the SDK's order and rules.

    ``True`` values give ``action`` or ``action:resource``; strings and lists give
    ``action:resource:id``; falsy values are skipped; blank ids are refused.
    """
    flattened: list[str] = []
    for action, properties in scopes.items():
        if not properties:
            continue
        if properties is True:
            flattened.append(action)
        elif isinstance(properties, Mapping):
            for resource, value in properties.items():
                if isinstance(value, list | tuple):
                    flattened.extend(_scope_with_id(action, resource, item) for item in value)
                elif isinstance(value, str):
                    flattened.append(_scope_with_id(action, resource, value))
                elif value is True:
                    flattened.append(f"{action}:{resource}")
    return flattened


def _scope_with_id(action: str, resource: str, resource_id: Any) -> str:
    if not isinstance(resource_id, str) or not resource_id.strip():
        raise ValueError("Public token scope resource IDs must not be empty")
    return f"{action}:{resource}:{resource_id}"


def duration_seconds(text: str) -> int:
    """jose's duration grammar ("15m", "1hr", "2 hours", "1d"…) → whole seconds."""
    matched = _DURATION.match(text)
    if matched is None or (matched.group(4) and matched.group(1)):
        raise ValueError(f"Invalid time period format: {text!r}")
    value = float(matched.group(2))
    unit = matched.group(3).lower()
    key = "m" if unit.startswith("mi") or unit == "m" else unit[0]
    if not math.isfinite(value * _UNIT_SECONDS[key]):
        raise ValueError(f"Time period too long: {text[:40]!r}")
    seconds = _js_round(value * _UNIT_SECONDS[key])
    if matched.group(1) == "-" or matched.group(4) == "ago":
        return -seconds
    return seconds


def _js_round(value: float) -> int:
    """``Math.round``: halves round up, unlike Python's banker's rounding."""
    return math.floor(value + 0.5)


def expiration_timestamp(expiration_time: ExpirationTime, *, now: float) -> int:
    """The ``exp`` claim jose's ``setExpirationTime`` produces.

    A string is a duration from now; a number is an absolute Unix time in seconds (not a
    duration); a datetime is that instant.
    """
    if isinstance(expiration_time, bool):
        raise TypeError("expiration_time must be a duration string, a Unix time or a datetime")
    if isinstance(expiration_time, datetime):
        return math.floor(expiration_time.timestamp())
    if isinstance(expiration_time, int | float):
        if not math.isfinite(expiration_time):
            raise ValueError("expiration_time must be finite")
        return int(expiration_time)
    return math.floor(now) + duration_seconds(expiration_time)


def build_claims(
    base_claims: Mapping[str, Any],
    *,
    scopes: list[str] | None,
    realtime: Mapping[str, Any] | None = None,
    expiration_time: ExpirationTime = DEFAULT_PUBLIC_TOKEN_EXPIRATION,
    now: float,
) -> dict[str, Any]:
    """The payload ``generateJWT`` signs: claims, scopes, realtime, then iss, aud, exp, iat.

    ``scopes=None`` leaves the key out, as the SDK does when no scopes were given.
    """
    payload: dict[str, Any] = dict(base_claims)
    payload.pop("scopes", None)
    if scopes is not None:
        payload["scopes"] = scopes
    if realtime is not None:
        payload["realtime"] = dict(realtime)
    payload["iss"] = JWT_ISSUER
    payload["aud"] = JWT_AUDIENCE
    payload["exp"] = expiration_timestamp(expiration_time, now=now)
    payload["iat"] = math.floor(now)
    return payload


def sign(payload: Mapping[str, Any], secret_key: str) -> str:
    """HS256 over the payload with the raw secret key bytes, header ``{"alg":"HS256"}`` like jose."""
    with warnings.catch_warnings():
        # Root keys are "tr_dev_" + 24 characters: 31 bytes, one short of what PyJWT wants for
        # HS256. The key format is Trigger.dev's and the server verifies with the same key, so
        # we must sign with it as it is; silence exactly this warning and nothing else.
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(dict(payload), secret_key, algorithm=JWT_ALGORITHM, headers={"typ": None})


def create_public_token(
    secret_key: str,
    base_claims: Mapping[str, Any],
    *,
    scopes: Scopes | None,
    expiration_time: ExpirationTime = DEFAULT_PUBLIC_TOKEN_EXPIRATION,
    realtime: Mapping[str, Any] | None = None,
    now: float,
) -> str:
    """``auth.createPublicToken`` for a root key, given the claims from ``/api/v1/auth/jwt/claims``."""
    flat = flatten_scopes(scopes) if scopes is not None else None
    # The SDK spreads ``realtime: options.realtime`` over the claims, so an absent option
    # removes any ``realtime`` claim rather than keeping it.
    claims = {key: value for key, value in base_claims.items() if key != "realtime"}
    payload = build_claims(
        claims, scopes=flat, realtime=realtime, expiration_time=expiration_time, now=now
    )
    return sign(payload, secret_key)


def create_run_token(
    secret_key: str,
    base_claims: Mapping[str, Any],
    run_id: str,
    *,
    expiration_time: ExpirationTime = TRIGGER_HANDLE_TOKEN_EXPIRATION,
    now: float,
) -> str:
    """The trigger handle's fallback token: claims from ``x-trigger-jwt-claims``, scopes replaced."""
    payload = build_claims(
        base_claims, scopes=[f"read:runs:{run_id}"], expiration_time=expiration_time, now=now
    )
    return sign(payload, secret_key)
