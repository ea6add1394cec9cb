"""Hypothesis strategies shared by the fuzz tests: bounded JSON, text and truncations."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)

JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
"""Any JSON document, kept small."""

JSON_TEXT = st.builds(json.dumps, JSON_VALUES)

DEEP_JSON = st.integers(min_value=1, max_value=50_000).map(lambda depth: "[" * depth + "]" * depth)
"""Nesting deep enough to exhaust a recursive parser's stack."""


def prefixes(text: str) -> st.SearchStrategy[str]:
    """``text`` cut at any point, as a dropped connection or a truncated file leaves it."""
    return st.integers(min_value=0, max_value=len(text)).map(lambda end: text[:end])


def byte_prefixes(data: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(min_value=0, max_value=len(data)).map(lambda end: data[:end])
