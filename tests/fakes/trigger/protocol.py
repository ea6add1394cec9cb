"""The pure rules of the fake Trigger.dev server: statuses, errors, tokens, scopes, metadata.

Nothing here does I/O. Every rule follows ../shared/reference/trigger-dev-protocol.md (the
verified wire protocol) and, where that is silent, the Trigger.dev webapp code it cites:

- tokens: `verify_public_token` is `validateJWT` (jose `jwtVerify`, HS256 keyed by the UTF-8 secret
  key, `iss`/`aud` required and equal, `exp` checked when present with no clock tolerance) plus the
  bearer rules (`pub === true` selects the JWT path); `scopes_allow` is `buildJwtAbility`.
- metadata: `apply_metadata_operations` is `applyMetadataOperations`.

How runs and stream chunks look on the wire is in `encoding.py`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt

JWT_ISSUER: Final = "https://id.trigger.dev"
JWT_AUDIENCE: Final = "https://api.trigger.dev"

# Error bodies exactly as the webapp answers them (protocol doc §1.4, §2.2, §2.3).
MISSING_API_KEY_BODY: Final = {"error": "Invalid or Missing API key"}
INVALID_API_KEY_BODY: Final = {"error": "Invalid API key"}
INVALID_PUBLIC_TOKEN_BODY: Final = {"error": "Public Access Token is invalid"}
UNAUTHORIZED_BODY: Final = {
    "error": "Unauthorized",
    "code": "unauthorized",
    "param": "access_token",
    "type": "authorization",
}
NOT_FOUND_BODY: Final = {"error": "Not found"}

# ---------------------------------------------------------------------------------------------
# Run statuses
# ---------------------------------------------------------------------------------------------

# Database status -> the SDK's status (`runStream.js` apiStatusFromRunStatus, protocol doc §4).
DB_TO_SDK_STATUS: Final[Mapping[str, str]] = {
    "DELAYED": "DELAYED",
    "PENDING": "QUEUED",
    "PENDING_VERSION": "PENDING_VERSION",
    "WAITING_FOR_DEPLOY": "PENDING_VERSION",
    "DEQUEUED": "DEQUEUED",
    "EXECUTING": "EXECUTING",
    "RETRYING_AFTER_FAILURE": "EXECUTING",
    "WAITING_TO_RESUME": "WAITING",
    "PAUSED": "WAITING",
    "CANCELED": "CANCELED",
    "COMPLETED_SUCCESSFULLY": "COMPLETED",
    "COMPLETED_WITH_ERRORS": "FAILED",
    "INTERRUPTED": "FAILED",
    "SYSTEM_FAILURE": "SYSTEM_FAILURE",
    "CRASHED": "CRASHED",
    "EXPIRED": "EXPIRED",
    "TIMED_OUT": "TIMED_OUT",
}

# The SDK's status -> the database status the fake stores for it.
SDK_TO_DB_STATUS: Final[Mapping[str, str]] = {
    "DELAYED": "DELAYED",
    "QUEUED": "PENDING",
    "PENDING_VERSION": "PENDING_VERSION",
    "DEQUEUED": "DEQUEUED",
    "EXECUTING": "EXECUTING",
    "WAITING": "WAITING_TO_RESUME",
    "CANCELED": "CANCELED",
    "COMPLETED": "COMPLETED_SUCCESSFULLY",
    "FAILED": "COMPLETED_WITH_ERRORS",
    "SYSTEM_FAILURE": "SYSTEM_FAILURE",
    "CRASHED": "CRASHED",
    "EXPIRED": "EXPIRED",
    "TIMED_OUT": "TIMED_OUT",
}

# `FINAL_RUN_STATUSES` (apps/webapp/app/v3/taskStatus.ts).
FINAL_DB_STATUSES: Final = frozenset(
    {
        "CANCELED",
        "INTERRUPTED",
        "COMPLETED_SUCCESSFULLY",
        "COMPLETED_WITH_ERRORS",
        "SYSTEM_FAILURE",
        "CRASHED",
        "EXPIRED",
        "TIMED_OUT",
    }
)

# An idempotency key pointing at a run in one of these statuses is cleared and a new run is made.
IDEMPOTENCY_RESET_DB_STATUSES: Final = frozenset(
    {"INTERRUPTED", "COMPLETED_WITH_ERRORS", "SYSTEM_FAILURE", "CRASHED", "TIMED_OUT", "EXPIRED"}
)


def to_db_status(status: str) -> str:
    """Accept an SDK status (QUEUED, COMPLETED, ...) or a database one and return the latter."""
    if status in SDK_TO_DB_STATUS:
        return SDK_TO_DB_STATUS[status]
    if status in DB_TO_SDK_STATUS:
        return status
    raise ValueError(f"unknown run status {status!r}")


# ---------------------------------------------------------------------------------------------
# Public access tokens
# ---------------------------------------------------------------------------------------------


class TokenRejected(Exception):
    """A bearer JWT failed verification; `reason` mirrors jose's error code, for test asserts."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT-shaped string without checking it (`decodeJWTPayload`), else None."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def is_public_jwt(token: str) -> bool:
    """`isPublicJWT`: a token takes the JWT path only when its payload has `pub === true`."""
    claims = unverified_claims(token)
    return claims is not None and claims.get("pub") is True


def verify_public_token(
    token: str, secret_key: str, *, now: float, issued_not_before: float | None = None
) -> dict[str, Any]:
    """Verify a public access token the way the webapp does and return its claims.

    `now` is injected so the fake can move its clock; `issued_not_before` lets the fake expire
    every token issued before a moment (a test hook), which the real server would see as expiry.
    Raises `TokenRejected` on any failure (the server answers each with the same 401 body).
    """
    try:
        with warnings.catch_warnings():
            # Real root keys are 31 bytes (`tr_dev_` + 24), one short of PyJWT's HS256 minimum:
            # the key format is Trigger.dev's, so only that warning is silenced here.
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            claims = jwt.decode(
                token,
                secret_key,
                algorithms=["HS256", "HS384", "HS512"],
                issuer=JWT_ISSUER,
                audience=JWT_AUDIENCE,
                # Time claims are checked below against the injected clock, as jose does them.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
    except jwt.InvalidSignatureError as exc:
        raise TokenRejected("ERR_JWS_SIGNATURE_VERIFICATION_FAILED") from exc
    except (jwt.InvalidIssuerError, jwt.InvalidAudienceError, jwt.MissingRequiredClaimError) as exc:
        raise TokenRejected("ERR_JWT_CLAIM_VALIDATION_FAILED") from exc
    except jwt.PyJWTError as exc:
        raise TokenRejected("ERR_JWT_INVALID") from exc
    epoch = int(now)
    exp = claims.get("exp")
    if exp is not None:
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise TokenRejected("ERR_JWT_CLAIM_VALIDATION_FAILED")
        if exp <= epoch:
            raise TokenRejected("ERR_JWT_EXPIRED")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int | float) or nbf > epoch):
        raise TokenRejected("ERR_JWT_CLAIM_VALIDATION_FAILED")
    iat = claims.get("iat")
    if iat is not None and (not isinstance(iat, int | float) or isinstance(iat, bool)):
        raise TokenRejected("ERR_JWT_CLAIM_VALIDATION_FAILED")
    if issued_not_before is not None and (iat is None or iat < issued_not_before):
        raise TokenRejected("ERR_JWT_EXPIRED")
    if claims.get("pub") is not True:
        raise TokenRejected("ERR_NOT_PUBLIC")
    return claims


def sign_token(claims: Mapping[str, Any], secret_key: str, *, now: float, expires_at: float) -> str:
    """Sign claims as `generateJWT` does: header `{"alg":"HS256"}`, `iss`, `aud`, `iat`, `exp`."""
    payload = {
        **claims,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "exp": int(expires_at),
        "iat": int(now),
    }
    with warnings.catch_warnings():
        # See verify_public_token: Trigger.dev's root keys are shorter than PyJWT's minimum.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        # jose writes no `typ`; PyJWT drops it when told `typ: None`.
        return jwt.encode(payload, secret_key, algorithm="HS256", headers={"typ": None})


_DURATION = re.compile(
    r"^(\+|-)? ?(\d+|\d+\.\d+) ?(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d"
    r"|weeks?|w|years?|yrs?|y)(?: (ago|from now))?$",
    re.IGNORECASE,
)
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31557600}


def expiration_to_epoch(value: str | float, *, now: float) -> float:
    """jose's `setExpirationTime` grammar: a number is an absolute Unix time in seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ValueError("Invalid expiration time")
    match = _DURATION.match(value)
    if match is None:
        raise ValueError("Invalid expiration time")
    sign, amount, unit, direction = match.groups()
    unit = unit.lower()
    key = "m" if unit.startswith("mi") or unit == "m" else unit[0]
    seconds = round(float(amount) * _UNIT_SECONDS[key])
    if sign == "-" or direction == "ago":
        seconds = -seconds
    return float(int(now) + seconds)


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource an endpoint checks the token against, e.g. `Resource("runs", "run_abc")`.

    Without an id (`Resource("tags")`) only a scope without an id (`read:tags`) grants it.
    """

    type: str
    id: str | None = None


# `UNSAFE_REALTIME_TAG_CHARS` (apps/webapp/app/v3/electricShape.server.ts): the tag feed refuses
# these (400) rather than put them in its SQL.
UNSAFE_TAG_CHARS: Final = re.compile(r'[\x00-\x1f\x7f\\"]')


def parse_scope(scope: str) -> tuple[str, str | None, str | None]:
    """Split `action:type:id` on the first two colons (the id may itself contain colons).

    As `parseScope` in `packages/plugins/src/rbac.ts`: an empty type or id counts as absent,
    so `read:runs:` (an empty id) means every run, and `admin:` is a bare `admin`.
    """
    action, _, rest = scope.partition(":")
    kind, sep, ident = rest.partition(":")
    return action, (kind or None), (ident if sep and ident else None)


def scopes_allow(scopes: Iterable[str], action: str, resources: Sequence[Resource]) -> bool:
    """`buildJwtAbility(...).can(action, anyResource(resources))` for the JWT scopes."""
    for scope in scopes:
        scope_action, kind, ident = parse_scope(scope)
        if not scope_action:
            continue
        if scope_action == "admin" and kind is None:
            return True
        if scope_action not in (action, "*") or kind is None:
            continue
        if kind == "all":
            return True
        for resource in resources:
            if kind == resource.type and (ident is None or ident == resource.id):
                return True
    return False


# ---------------------------------------------------------------------------------------------
# Run metadata operations (`applyMetadataOperations`)
# ---------------------------------------------------------------------------------------------

_UNSAFE_KEYS: Final = frozenset({"__proto__", "constructor", "prototype"})


def _path(key: str) -> list[str]:
    return key[2:].split(".") if key.startswith("$.") else [key]


def _get(obj: dict[str, Any], path: list[str]) -> Any:
    current: Any = obj
    for part in path:
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _set(obj: dict[str, Any], path: list[str], value: Any) -> None:
    current = obj
    for part in path[:-1]:
        nxt = current.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            current[part] = nxt
        current = nxt
    current[path[-1]] = value


def apply_metadata_operations(
    metadata: Mapping[str, Any], operations: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Apply `set/delete/append/remove/increment/update` operations; unknown ones are skipped."""
    result: dict[str, Any] = json.loads(json.dumps(dict(metadata)))
    for op in operations:
        kind = op.get("type")
        if kind == "update":
            value = op.get("value")
            result = dict(value) if isinstance(value, Mapping) else {}
            continue
        key = op.get("key")
        if not isinstance(key, str) or any(p in _UNSAFE_KEYS for p in _path(key)):
            continue
        path = _path(key)
        current = _get(result, path)
        if kind == "set":
            _set(result, path, op.get("value"))
        elif kind == "delete":
            if key in result:
                del result[key]
        elif kind == "append":
            if current is None:
                _set(result, path, [op.get("value")])
            elif isinstance(current, list):
                _set(result, path, [*current, op.get("value")])
            else:
                _set(result, path, [current, op.get("value")])
        elif kind == "remove":
            if isinstance(current, list):
                _set(result, path, [item for item in current if item != op.get("value")])
        elif kind == "increment":
            base = current if isinstance(current, int | float) else 0
            _set(result, path, base + op.get("value", 0))
    return result


# ---------------------------------------------------------------------------------------------
# The tag feed's `createdAt` (`parseNaturalLanguageDurationAgo`, core v3/isomorphic/duration.js)
# ---------------------------------------------------------------------------------------------

_DURATION_AGO: Final = re.compile(r"^(\d+(?:w|d|hr|h|m|s))+$")
_DURATION_PART: Final = re.compile(r"(\d+)(w|d|hr|h|m|s)")
_PART_SECONDS: Final = {"w": 604800, "d": 86400, "hr": 3600, "h": 3600, "m": 60, "s": 1}


def duration_ago_seconds(text: str) -> int | None:
    """How far back "24h", "1d", "2w3d" reaches, in seconds; None if the text is not one.

    (The SDK's parser counts each unit's first number; durations here never repeat a unit.)
    """
    if len(text) > 100 or not _DURATION_AGO.match(text):
        return None
    seen: dict[str, int] = {}
    for amount, unit in _DURATION_PART.findall(text):
        key = "h" if unit == "hr" else unit
        seen.setdefault(key, int(amount))
    return sum(_PART_SECONDS[unit] * amount for unit, amount in seen.items())
