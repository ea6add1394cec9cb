"""A view of a table: which rows (conditions, a search), in which order (a sort). Pure data.

The page keeps its view in the URL (``/tables/12?f=3.contains.acme,5.status.failed&s=-3&q=x``),
the REST API takes it as JSON, and ``services/views.py`` compiles it to SQL. Both forms parse
to the same ``View``, and every refusal is an ``InvalidInputError`` whose message says what to
fix. Checking that the columns exist needs the table: ``check_columns``.

URL form:

* ``f``: conditions joined by ``,``; each is ``<column id>.<op>`` or ``<column id>.<op>.<value>``,
  the value percent-encoded (so a ``,`` in it is ``%2C``). The status filter is the op ``status``
  with the value ``failed``, ``empty``, ``queued`` or ``done``.
* ``s``: a column id, ascending, or ``-<column id>``, descending.
* ``q``: the search text, as typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote

from enrichment_app.errors import InvalidInputError

MAX_CONDITIONS = 20
MAX_VALUE_CHARS = 500
"""The longest value a condition compares with, and the longest search."""
MAX_PARAM_CHARS = MAX_CONDITIONS * (MAX_VALUE_CHARS * 3 + 40)
"""The longest ``f`` parameter (every value fully percent-encoded)."""
MAX_ID = 2**63 - 1
"""The largest id a database column holds."""


def as_id(value: Any) -> int | None:
    """``value`` as an id (a whole number from 1 to ``MAX_ID``; JSON's ``4.0`` is 4), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None


class Op(StrEnum):
    EMPTY = "empty"
    NOT_EMPTY = "not_empty"
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STATUS = "status"

    @property
    def takes_value(self) -> bool:
        return self not in (Op.EMPTY, Op.NOT_EMPTY)

    @property
    def label(self) -> str:
        return OP_LABELS[self]


OP_LABELS = {
    Op.EMPTY: "is empty",
    Op.NOT_EMPTY: "is not empty",
    Op.EQUALS: "is",
    Op.NOT_EQUALS: "is not",
    Op.CONTAINS: "contains",
    Op.NOT_CONTAINS: "does not contain",
    Op.STATUS: "status is",
}


class StatusFilter(StrEnum):
    """The cell statuses a view can filter by (``queued`` covers running cells too)."""

    FAILED = "failed"
    EMPTY = "empty"
    QUEUED = "queued"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Condition:
    column_id: int
    op: Op
    value: str = ""


@dataclass(frozen=True, slots=True)
class Sort:
    column_id: int
    descending: bool = False


@dataclass(frozen=True, slots=True)
class View:
    """Rows matching every condition and the search, sorted (ties, and no sort: table order)."""

    conditions: tuple[Condition, ...] = ()
    sort: Sort | None = None
    search: str = ""
    column_ids: frozenset[int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        ids = {c.column_id for c in self.conditions}
        if self.sort is not None:
            ids.add(self.sort.column_id)
        object.__setattr__(self, "column_ids", frozenset(ids))

    @property
    def is_filtered(self) -> bool:
        """Whether some rows may be left out (the count differs from the table's)."""
        return bool(self.conditions or self.search)

    @property
    def is_default(self) -> bool:
        """The whole table in its own order."""
        return not self.is_filtered and self.sort is None


EVERYTHING = View()


def _fail(message: str) -> InvalidInputError:
    return InvalidInputError(message)


def make_condition(column_id: Any, op: Any, value: Any = "") -> Condition:
    """A checked condition; ``InvalidInputError`` says what is wrong."""
    checked = as_id(column_id)
    if checked is None:
        raise _fail(
            "A condition's column must be a column id (a positive number), "
            f"not {str(column_id)[:40]!r}."
        )
    column_id = checked
    try:
        operator = Op(op)
    except ValueError:
        names = ", ".join(o.value for o in Op)
        raise _fail(f"Unknown filter operator {str(op)[:40]!r}; use one of {names}.") from None
    if not isinstance(value, str):
        raise _fail(f"The value of a {operator.value!r} condition must be text.")
    if not operator.takes_value:
        return Condition(column_id, operator)
    if len(value) > MAX_VALUE_CHARS:
        raise _fail(f"A filter value is at most {MAX_VALUE_CHARS} characters.")
    if operator is Op.STATUS:
        try:
            return Condition(column_id, operator, StatusFilter(value).value)
        except ValueError:
            names = ", ".join(s.value for s in StatusFilter)
            raise _fail(f"Unknown cell status {value[:40]!r}; use one of {names}.") from None
    if operator in (Op.CONTAINS, Op.NOT_CONTAINS) and value == "":
        raise _fail(f"A {operator.value!r} condition needs some text to look for.")
    return Condition(column_id, operator, value)


def make_view(
    conditions: list[Condition] | tuple[Condition, ...] = (),
    sort: Sort | None = None,
    search: str = "",
) -> View:
    if len(conditions) > MAX_CONDITIONS:
        raise _fail(f"A view has at most {MAX_CONDITIONS} conditions.")
    if len(search) > MAX_VALUE_CHARS:
        raise _fail(f"The search is at most {MAX_VALUE_CHARS} characters.")
    return View(tuple(dict.fromkeys(conditions)), sort, search.strip())


def _column_id(text: str, what: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 18:
        raise _fail(f"{what} names no column: {text[:40]!r} is not a column id.")
    return int(text)


def parse_view(f: str | None = None, s: str | None = None, q: str | None = None) -> View:
    """The view the URL parameters ``f``, ``s`` and ``q`` describe (``InvalidInputError``)."""
    if f and len(f) > MAX_PARAM_CHARS:
        raise _fail("The filter in the address is too long.")
    conditions = []
    for part in (f or "").split(","):
        if not part:
            continue
        pieces = part.split(".", 2)
        if len(pieces) < 2:
            raise _fail(f"The filter {part[:40]!r} is not <column>.<operator>[.<value>].")
        column_id = _column_id(pieces[0], f"The filter {part[:40]!r}")
        value = unquote(pieces[2]) if len(pieces) == 3 else ""
        if len(pieces) == 2 and Op.__members__.get(pieces[1].upper(), Op.EMPTY).takes_value:
            raise _fail(f"The filter {part[:40]!r} needs a value after its operator.")
        conditions.append(make_condition(column_id, pieces[1], value))
    sort = None
    if s:
        descending = s.startswith("-")
        sort = Sort(_column_id(s.removeprefix("-"), "The sort"), descending)
    return make_view(conditions, sort, q or "")


def view_params(view: View) -> dict[str, str]:
    """The URL parameters of ``view`` (only those it needs)."""
    params: dict[str, str] = {}
    if view.conditions:
        params["f"] = ",".join(
            f"{c.column_id}.{c.op.value}"
            + (f".{quote(c.value, safe='')}" if c.op.takes_value else "")
            for c in view.conditions
        )
    if view.sort is not None:
        params["s"] = f"{'-' if view.sort.descending else ''}{view.sort.column_id}"
    if view.search:
        params["q"] = view.search
    return params


def view_from_json(payload: Any) -> View:
    """The view of a REST body's ``view`` object:
    ``{"conditions": [{"columnId", "op", "value"}], "sort": {"columnId", "descending"}, "search"}``."""
    if payload is None:
        return EVERYTHING
    if not isinstance(payload, Mapping):
        raise _fail("'view' must be an object with 'conditions', 'sort' and 'search'.")
    unknown = set(payload) - {"conditions", "sort", "search"}
    if unknown:
        raise _fail(f"'view' has unknown field(s): {', '.join(sorted(map(str, unknown)))[:80]}.")
    raw = payload.get("conditions")
    raw = [] if raw is None else raw
    if not isinstance(raw, list):
        raise _fail("'view.conditions' must be a list.")
    if len(raw) > MAX_CONDITIONS:
        raise _fail(f"A view has at most {MAX_CONDITIONS} conditions.")
    conditions = []
    for item in raw:
        if not isinstance(item, Mapping) or set(item) - {"columnId", "op", "value"}:
            raise _fail("Each of 'view.conditions' must be an object {columnId, op, value}.")
        conditions.append(
            make_condition(item.get("columnId"), item.get("op"), item.get("value", ""))
        )
    sort = None
    if (raw_sort := payload.get("sort")) is not None:
        if not isinstance(raw_sort, Mapping) or set(raw_sort) - {"columnId", "descending"}:
            raise _fail("'view.sort' must be an object {columnId, descending}.")
        column_id, descending = as_id(raw_sort.get("columnId")), raw_sort.get("descending", False)
        if column_id is None:
            raise _fail("'view.sort.columnId' must be a column id.")
        if not isinstance(descending, bool):
            raise _fail("'view.sort.descending' must be true or false.")
        sort = Sort(column_id, descending)
    search = payload.get("search")
    search = "" if search is None else search
    if not isinstance(search, str):
        raise _fail("'view.search' must be text.")
    return make_view(conditions, sort, search)


def view_json(view: View) -> dict[str, Any]:
    return {
        "conditions": [
            {"columnId": c.column_id, "op": c.op.value, "value": c.value} for c in view.conditions
        ],
        "sort": None
        if view.sort is None
        else {"columnId": view.sort.column_id, "descending": view.sort.descending},
        "search": view.search,
    }


def check_columns(view: View, names: Mapping[int, str]) -> None:
    """Refuse a view that names a column not in ``names`` (the table's column ids)."""
    for column_id in sorted(view.column_ids):
        if column_id not in names:
            raise _fail(f"The view names column {column_id}, which is not in this table.")


def describe(condition: Condition, names: Mapping[int, str]) -> str:
    """``Industry contains "acme"``: a condition as the filter bar shows it."""
    name = names.get(condition.column_id, f"column {condition.column_id}")
    if not condition.op.takes_value:
        return f"{name} {condition.op.label}"
    return f'{name} {condition.op.label} "{condition.value}"'
