"""Small helpers that enrichers use to check and normalise their column config.

Each helper raises ``EnricherConfigError`` with a message that names the enricher and the key, so
the add-column form can show it as is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import Any

from enrichment_app.errors import EnricherConfigError


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_config_text(text: str) -> dict[str, Any]:
    """The add-column form's config text as a JSON object (blank text is ``{}``).

    Raises ``EnricherConfigError`` saying where the JSON is wrong, or that it is not an object.
    ``NaN`` and ``Infinity`` are refused (they are not JSON and could not be stored).
    """
    try:
        config = json.loads(text or "{}", parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise EnricherConfigError(
            f"The config is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except (ValueError, RecursionError) as exc:
        # NaN or Infinity, a number too long to read, or nesting too deep for the parser.
        raise EnricherConfigError(f"The config is not valid JSON: {exc}.") from exc
    if not isinstance(config, dict):
        raise EnricherConfigError('The config must be a JSON object, like {"column": "Website"}.')
    return config


def refuse_unknown_keys(enricher: str, config: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Refuse keys the enricher does not know, so that a typo does not pass silently."""
    unknown = sorted(str(key) for key in config if key not in allowed)
    if unknown:
        raise EnricherConfigError(
            f"{enricher}: unknown config key {', '.join(repr(k) for k in unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def require_mapping(enricher: str, config: object) -> Mapping[str, Any]:
    """The config itself must be a JSON object."""
    if not isinstance(config, Mapping):
        raise EnricherConfigError(
            f"{enricher}: config must be a JSON object, not {type(config).__name__}"
        )
    return config


def require_str(
    enricher: str, config: Mapping[str, Any], key: str, *, max_length: int = 10_000
) -> str:
    """A required, non-blank string."""
    if key not in config:
        raise EnricherConfigError(f"{enricher}: config needs {key!r}")
    value = config[key]
    if not isinstance(value, str):
        raise EnricherConfigError(f"{enricher}: {key!r} must be a string")
    if not value.strip():
        raise EnricherConfigError(f"{enricher}: {key!r} must not be empty")
    if len(value) > max_length:
        raise EnricherConfigError(f"{enricher}: {key!r} is longer than {max_length} characters")
    return value


def optional_str(
    enricher: str, config: Mapping[str, Any], key: str, *, max_length: int = 10_000
) -> str | None:
    """An optional string; absent, null and blank all mean "not set"."""
    value = config.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return require_str(enricher, config, key, max_length=max_length)


def optional_int(
    enricher: str, config: Mapping[str, Any], key: str, *, default: int, minimum: int, maximum: int
) -> int:
    """An optional whole number within ``[minimum, maximum]``."""
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise EnricherConfigError(f"{enricher}: {key!r} must be a whole number")
    if not minimum <= value <= maximum:
        raise EnricherConfigError(f"{enricher}: {key!r} must be between {minimum} and {maximum}")
    return value


def optional_number(
    enricher: str,
    config: Mapping[str, Any],
    key: str,
    *,
    default: float | None,
    minimum: float,
    maximum: float,
    exclusive_minimum: bool = False,
) -> float | None:
    """An optional number within bounds (``minimum`` excluded when ``exclusive_minimum``)."""
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EnricherConfigError(f"{enricher}: {key!r} must be a number")
    too_low = value <= minimum if exclusive_minimum else value < minimum
    if too_low or value > maximum:
        low = f"more than {minimum:g}" if exclusive_minimum else f"at least {minimum:g}"
        raise EnricherConfigError(f"{enricher}: {key!r} must be {low} and at most {maximum:g}")
    return float(value)
