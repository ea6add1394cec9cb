"""The view as data: URL and JSON forms, both ways, and every refusal says what to fix."""

from __future__ import annotations

import pytest

from enrichment_app.errors import InvalidInputError
from enrichment_app.views import (
    EVERYTHING,
    MAX_CONDITIONS,
    Condition,
    Op,
    Sort,
    View,
    check_columns,
    describe,
    make_view,
    parse_view,
    view_from_json,
    view_json,
    view_params,
)

ROUND_TRIPS = [
    EVERYTHING,
    View((Condition(3, Op.EMPTY),)),
    View((Condition(3, Op.CONTAINS, "a,b.c %2C é/?&="),), Sort(4, descending=True), "acme co"),
    View((Condition(3, Op.STATUS, "failed"), Condition(5, Op.NOT_EQUALS, "")), Sort(5)),
    View(search="just a search"),
]


@pytest.mark.parametrize("view", ROUND_TRIPS)
def test_a_view_survives_its_url_form_and_its_json_form(view: View) -> None:
    assert parse_view(**view_params(view)) == view
    assert view_from_json(view_json(view)) == view


def test_the_url_form_is_compact_and_reads_in_order() -> None:
    view = View(
        (Condition(3, Op.CONTAINS, "a,b"), Condition(5, Op.STATUS, "failed")), Sort(3, True), "x"
    )
    assert view_params(view) == {"f": "3.contains.a%2Cb,5.status.failed", "s": "-3", "q": "x"}
    assert view_params(EVERYTHING) == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"f": "x.empty"}, "'x' is not a column id"),
        ({"f": "3"}, "is not <column>.<operator>"),
        ({"f": "3.bigger.4"}, "Unknown filter operator 'bigger'"),
        ({"f": "3.contains"}, "needs a value"),
        ({"f": "3.contains."}, "needs some text"),
        ({"f": "3.status.broken"}, "Unknown cell status 'broken'; use one of failed, empty"),
        ({"s": "-abc"}, "The sort names no column"),
        ({"q": "x" * 501}, "at most 500 characters"),
        ({"f": ",".join(f"{i}.empty" for i in range(1, MAX_CONDITIONS + 2))}, "at most 20"),
        ({"f": "3.equals." + "y" * 501}, "at most 500 characters"),
    ],
)
def test_bad_url_parameters_are_refused_with_what_to_fix(
    params: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_view(**params)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "'view' must be an object"),
        ({"filters": []}, "unknown field"),
        ({"conditions": {}}, "must be a list"),
        ({"conditions": [1]}, "must be an object"),
        ({"conditions": [{"columnId": "3", "op": "empty"}]}, "column id"),
        ({"conditions": [{"columnId": True, "op": "empty"}]}, "column id"),
        ({"conditions": [{"columnId": 2**63, "op": "empty"}]}, "column id"),
        ({"conditions": [{"columnId": 2.5, "op": "empty"}]}, "column id"),
        ({"conditions": [{"columnId": 3, "op": "equals", "value": 5}]}, "must be text"),
        ({"sort": {"columnId": 0}}, "view.sort.columnId"),
        ({"sort": {"columnId": 2, "descending": "yes"}}, "true or false"),
        ({"search": 5}, "must be text"),
    ],
)
def test_bad_json_views_are_refused_with_what_to_fix(payload: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace(".", r"\.")):
        view_from_json(payload)


def test_a_view_naming_another_tables_column_is_refused() -> None:
    view = View((Condition(3, Op.EMPTY),), Sort(9))
    check_columns(view, {3: "Name", 9: "Industry"})
    with pytest.raises(InvalidInputError, match="column 9, which is not in this table"):
        check_columns(view, {3: "Name"})


def test_views_say_whether_they_filter_and_describe_their_conditions() -> None:
    assert EVERYTHING.is_default and not EVERYTHING.is_filtered
    assert not View(sort=Sort(1)).is_default and not View(sort=Sort(1)).is_filtered
    assert View(search="x").is_filtered
    assert make_view([Condition(1, Op.EMPTY)] * 2).conditions == (Condition(1, Op.EMPTY),)
    names = {1: "Industry"}
    assert describe(Condition(1, Op.EMPTY), names) == "Industry is empty"
    assert describe(Condition(1, Op.CONTAINS, "bank"), names) == 'Industry contains "bank"'
    assert describe(Condition(2, Op.STATUS, "failed"), names) == 'column 2 status is "failed"'


def test_a_whole_number_written_as_a_float_is_an_id_as_json_schema_allows() -> None:
    view = view_from_json(
        {"conditions": [{"columnId": 4.0, "op": "empty"}], "sort": {"columnId": 2.0}}
    )
    assert view == View((Condition(4, Op.EMPTY),), Sort(2))
