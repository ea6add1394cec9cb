"""The other pure decoders of user and wire input, fuzzed.

* column config (the add-column form's JSON, checked by each enricher);
* JSON paths and row templates inside that config;
* website values the ``website_title`` enricher turns into URLs;
* the data grid's selection events, sent by the browser;
* ``cells`` stream chunks turned into cell updates;
* token durations.

Each either decodes or raises the module's documented error, an ``EnrichmentAppError``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from enrichment_app.enrichers import available_enrichers, get_enricher
from enrichment_app.enrichers.config import parse_config_text
from enrichment_app.enrichers.json_path import (
    PathStep,
    format_json_path,
    parse_json_path,
    resolve_json_path,
)
from enrichment_app.enrichers.template import parse_template
from enrichment_app.enrichers.website_title import normalise_website_url
from enrichment_app.errors import EnricherConfigError, EnrichError
from enrichment_app.live.events import CellUpdate, cell_from_chunk, cells_from_chunk
from enrichment_app.selection import focused_point, selected_spans, span_count
from enrichment_app.trigger import tokens
from tests.fuzz.strategies import DEEP_JSON, JSON_SCALARS, JSON_TEXT, JSON_VALUES

FUZZ = settings.get_profile("fuzz")

# --- column config ---------------------------------------------------------------------

FORM_NUMBERS = (
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 1e308]) | st.floats() | st.integers()
)
"""Numbers as the form's JSON can hold them: Python's json reads NaN and Infinity too."""
ENRICHER_KEYS = {
    "email_domain": ["column"],
    "template": ["template"],
    "website_title": ["column", "max_bytes", "timeout_seconds", "max_redirects"],
    "http_json": [
        "method",
        "url",
        "path",
        "headers",
        "body",
        "auth",
        "rate_limit_per_second",
        "timeout_seconds",
    ],
    "llm": ["prompt", "system", "model", "max_tokens", "temperature"],
}
TEMPLATE_TEXT = st.text(alphabet=st.sampled_from(list("{}ab .[]!:0 ")), max_size=16)
CONFIG_VALUES = (
    JSON_VALUES
    | FORM_NUMBERS
    | TEMPLATE_TEXT
    | st.sampled_from(["GET", "POST", "http://x.test/{a}", "a.b[0]", "", " "])
    | st.dictionaries(
        st.sampled_from(["type", "token", "username", "password", "X-A", "bad name"]),
        JSON_SCALARS | st.sampled_from(["bearer", "basic", "line\nbreak"]),
    )
)


@st.composite
def column_configs(draw: st.DrawFn) -> tuple[str, Any]:
    """An enricher and a config: its example with some keys (its own, or unknown) changed."""
    name = draw(st.sampled_from(sorted(ENRICHER_KEYS)))
    if draw(st.integers(0, 9)) == 0:
        return name, draw(JSON_VALUES)
    keys = st.sampled_from([*ENRICHER_KEYS[name], "unknown"])
    changes = draw(st.dictionaries(keys, CONFIG_VALUES, max_size=3))
    dropped = draw(st.sets(st.sampled_from(ENRICHER_KEYS[name]), max_size=1))
    config = {**get_enricher(name).config_example, **changes}
    return name, {k: v for k, v in config.items() if k not in dropped}


def test_the_fuzzed_enrichers_are_all_of_them() -> None:
    assert sorted(ENRICHER_KEYS) == sorted(e.name for e in available_enrichers())


@settings(FUZZ)
@given(column_configs())
def test_any_column_config_is_accepted_or_refused_with_a_message(case: tuple[str, Any]) -> None:
    name, config = case
    enricher = get_enricher(name)
    try:
        checked = enricher.validate_config(config)
    except EnricherConfigError as exc:
        assert exc.message.startswith(f"{name}:")
        return
    # An accepted config is plain JSON (it is stored in the database) and names its columns.
    assert json.loads(json.dumps(checked, allow_nan=False)) == checked
    assert all(isinstance(column, str) for column in enricher.referenced_columns(checked))
    assert enricher.validate_config(checked) == checked


NUMBER_KEYS = [
    ("llm", "temperature"),
    ("llm", "max_tokens"),
    ("website_title", "max_bytes"),
    ("website_title", "timeout_seconds"),
    ("website_title", "max_redirects"),
    ("http_json", "rate_limit_per_second"),
    ("http_json", "timeout_seconds"),
]


@settings(FUZZ)
@given(st.sampled_from(NUMBER_KEYS), FORM_NUMBERS)
def test_any_number_in_a_column_config_is_accepted_only_if_it_can_be_stored(
    key: tuple[str, str], number: float
) -> None:
    name, field = key
    enricher = get_enricher(name)
    try:
        checked = enricher.validate_config({**enricher.config_example, field: number})
    except EnricherConfigError as exc:
        assert field in exc.message
        return
    assert math.isfinite(checked[field])
    assert json.loads(json.dumps(checked, allow_nan=False)) == checked


@settings(FUZZ)
@given(
    st.text(max_size=60)
    | JSON_TEXT
    | DEEP_JSON
    | column_configs().map(lambda case: json.dumps(case[1]))
    | st.integers(4000, 5000).map(lambda n: '{"max_bytes": ' + "9" * n + "}")
)
def test_any_config_text_is_an_object_or_a_config_error(text: str) -> None:
    try:
        config = parse_config_text(text)
    except EnricherConfigError as exc:
        assert exc.message
        return
    assert isinstance(config, dict)


# --- JSON paths and templates ----------------------------------------------------------

KEYS = st.text(
    alphabet=st.characters(blacklist_characters=".[]", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=8,
).filter(lambda key: key == key.strip() and not key.startswith("$"))
STEPS: st.SearchStrategy[tuple[PathStep, ...]] = st.lists(
    KEYS | st.integers(min_value=-(2**31), max_value=2**31), max_size=5
).map(tuple)


@settings(FUZZ)
@given(STEPS)
def test_json_paths_round_trip(steps: tuple[PathStep, ...]) -> None:
    text = format_json_path(steps)
    assert parse_json_path(text) == steps
    assert (
        parse_json_path("$." + text if text != "$" and not text.startswith("[") else text) == steps
    )


@settings(FUZZ)
@given(
    st.text(alphabet=st.sampled_from(list("ab.[]$-0129 ")), max_size=30)
    | st.text(max_size=30)
    | st.integers(min_value=0, max_value=6000).map(lambda n: "a[" + "9" * n + "]"),
    JSON_VALUES,
)
def test_any_path_parses_and_resolves_or_says_why(path: str, document: Any) -> None:
    try:
        steps = parse_json_path(path)
    except EnricherConfigError:
        return
    try:
        resolve_json_path(document, steps)
    except EnrichError as exc:
        assert "not found" in exc.message


@settings(FUZZ)
@given(TEMPLATE_TEXT | st.text(max_size=30))
def test_any_template_parses_or_is_a_config_error(source: str) -> None:
    try:
        template = parse_template(source, where="template")
    except EnricherConfigError:
        return
    row = {column: f"<{column}>" for column in template.columns}
    rendered = template.render(row)
    assert all(f"<{column}>" in rendered for column in template.columns)


# --- website values ----------------------------------------------------------------------


@settings(FUZZ)
@given(
    st.text(max_size=40)
    | st.builds(
        lambda scheme, host, rest: scheme + host + rest,
        st.sampled_from(["", "http://", "https://", "//", "ftp://", "mailto:", "javascript:"]),
        st.text(alphabet=st.sampled_from(list("ab.-:[]@%1 é")), max_size=15),
        st.text(max_size=10),
    )
)
def test_any_cell_value_is_a_website_url_or_an_enrich_error(value: str) -> None:
    try:
        url = normalise_website_url(value)
    except EnrichError as exc:
        assert exc.message
        return
    assert url.startswith(("http://", "https://"))


# --- browser selection events ----------------------------------------------------------

SPANS = st.fixed_dictionaries(
    {},
    optional={
        "items": st.lists(st.lists(FORM_NUMBERS, max_size=3) | JSON_SCALARS, max_size=3)
        | JSON_VALUES
    },
)
RECTS = st.fixed_dictionaries(
    {}, optional=dict.fromkeys(("x", "y", "width", "height"), FORM_NUMBERS | JSON_SCALARS)
)
SELECTIONS = (
    st.none()
    | JSON_VALUES
    | st.fixed_dictionaries(
        {},
        optional={
            "current": st.fixed_dictionaries(
                {},
                optional={
                    "cell": st.lists(FORM_NUMBERS | JSON_SCALARS, max_size=3),
                    "range": RECTS | JSON_SCALARS,
                    "rangeStack": st.lists(RECTS | JSON_SCALARS, max_size=3) | JSON_SCALARS,
                },
            )
            | JSON_SCALARS,
            "columns": SPANS | JSON_SCALARS,
            "rows": SPANS | JSON_SCALARS,
        },
    )
)


@settings(FUZZ)
@given(SELECTIONS, st.integers(0, 12), st.integers(0, 30))
def test_any_selection_event_covers_cells_inside_the_grid(
    selection: Any, n_cols: int, n_rows: int
) -> None:
    spans = selected_spans(selection, n_cols=n_cols, n_rows=n_rows)
    points = {(col, row) for col, s in spans.items() for a, b in s for row in range(a, b)}
    assert all(0 <= col < n_cols and 0 <= row < n_rows for col, row in points)
    assert sum(span_count(s) for s in spans.values()) == len(points)  # merged: no cell twice
    focus = focused_point(selection)
    assert focus is None or all(isinstance(n, int) for n in focus)


# --- cells stream chunks and token durations -------------------------------------------


@settings(FUZZ)
@given(
    JSON_VALUES
    | st.fixed_dictionaries(
        {},
        optional={
            k: JSON_SCALARS | st.sampled_from(["done", "error"])
            for k in ("taskId", "rowId", "columnId", "status", "value", "error")
        },
    )
)
def test_any_cells_chunk_is_an_update_or_skipped(chunk: Any) -> None:
    update = cell_from_chunk(chunk)
    assert update is None or isinstance(update, CellUpdate)
    batch = cells_from_chunk({"cells": [chunk, chunk]})
    assert batch == ([update, update] if update is not None else [])
    assert cells_from_chunk(chunk) == ([update] if update is not None else [])


@settings(FUZZ)
@given(
    st.text(max_size=20)
    | st.builds(
        lambda sign, number, unit, tail: f"{sign}{number}{unit}{tail}",
        st.sampled_from(["", "+", "-", "- "]),
        st.integers(0, 10**400).map(str) | st.floats(0, 1e308).map(str),
        st.sampled_from(["s", "m", "h", "d", "w", "y", " hours", "mins", "x"]),
        st.sampled_from(["", " ago", " from now"]),
    )
)
def test_any_duration_is_seconds_or_a_value_error(text: str) -> None:
    try:
        seconds = tokens.duration_seconds(text)
    except ValueError:
        return
    assert isinstance(seconds, int)


@pytest.mark.parametrize("name", sorted(ENRICHER_KEYS))
def test_every_enricher_example_config_is_valid(name: str) -> None:
    """The add-column form starts from this example, so the fuzzing above starts from valid."""
    enricher = get_enricher(name)
    assert enricher.validate_config(parse_config_text(json.dumps(enricher.config_example)))
