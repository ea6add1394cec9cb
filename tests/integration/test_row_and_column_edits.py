"""Editing a table on a real (SQLite) database as a spreadsheet user does: add a row, paste a
block, clear cells, delete rows and undo, rename, move and resize columns."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import TableColumn
from enrichment_app.domain import CellRef, ColumnKind
from enrichment_app.errors import InUseError, InvalidInputError
from enrichment_app.services import columns as column_service, credentials, row_edits
from enrichment_app.services.grid import load_meta, load_rows
from enrichment_app.services.jobs import create_job
from enrichment_app.services.tables import ColumnSpec, add_column, create_table
from enrichment_app.settings import Settings
from tests.integration.db_helpers import column_id

MAX_ROWS = 1000


def _table(session: Session) -> int:
    table = create_table(
        session,
        name="Leads",
        columns=[
            ColumnSpec("Company", ColumnKind.INPUT),
            ColumnSpec("Website", ColumnKind.INPUT),
            ColumnSpec(
                "Label",
                ColumnKind.ENRICHMENT,
                enricher="template",
                config={"template": "{Company} ({Website}) {{x}}"},
            ),
        ],
        rows=[["Acme", "acme.com"], ["Globex", "globex.com"]],
        max_cell_chars=100,
    )
    session.commit()
    assert table.id is not None
    return table.id


def _grid(session: Session, table_id: int) -> tuple[list[str], list[list[str]]]:
    meta = load_meta(session, table_id=table_id)
    window = load_rows(session, meta, start=0, stop=meta.row_count)
    return [c["title"] for c in meta.columns], [[c["v"] for c in row] for row in window.cells]


def test_add_a_blank_row_at_the_end(open_session: SessionFactory) -> None:
    with open_session() as session:
        table_id = _table(session)
        index = row_edits.add_blank_row(session, table_id=table_id)
        session.commit()
        assert index == 2
        assert _grid(session, table_id)[1][2] == ["", "", ""]


def test_paste_writes_input_cells_adds_rows_and_skips_enrichment(
    open_session: SessionFactory,
) -> None:
    with open_session() as session:
        table_id = _table(session)
        written = row_edits.paste_block(
            session,
            table_id=table_id,
            first_col=1,
            first_row=1,
            block=[["g.io", "x"], ["i.io", "y"], ["two\nlines", "z"]],
            max_cell_chars=100,
            max_rows=MAX_ROWS,
        )
        session.commit()
        assert (written.cells, written.rows_added, written.skipped) == (3, 2, ["Label"])
        assert "'Label' is an enrichment column" in written.note
        assert _grid(session, table_id)[1] == [
            ["Acme", "acme.com", ""],
            ["Globex", "g.io", ""],
            ["", "i.io", ""],
            ["", "two\nlines", ""],
        ]


@pytest.mark.parametrize(
    ("first_col", "block", "max_rows", "message"),
    [
        (2, [["x"]], MAX_ROWS, "'Label' is an enrichment column"),
        (0, [["a"], ["b"], ["c"]], 2, "at most 2 rows"),
        (0, [["ok"], ["bad\x00"]], MAX_ROWS, "NUL"),
        (9, [["x"]], MAX_ROWS, "Select a cell"),
    ],
)
def test_a_refused_paste_changes_nothing(
    open_session: SessionFactory,
    first_col: int,
    block: list[list[str]],
    max_rows: int,
    message: str,
) -> None:
    with open_session() as session:
        table_id = _table(session)
        before = _grid(session, table_id)
        with pytest.raises(InvalidInputError, match=message):
            row_edits.paste_block(
                session,
                table_id=table_id,
                first_col=first_col,
                first_row=0,
                block=block,
                max_cell_chars=100,
                max_rows=max_rows,
            )
        session.rollback()
        assert _grid(session, table_id) == before


def test_clear_empties_input_cells_and_refuses_enrichment_ones(
    open_session: SessionFactory,
) -> None:
    with open_session() as session:
        table_id = _table(session)
        done = row_edits.clear_cells(session, table_id=table_id, blocks=[(range(3), range(1))])
        session.commit()
        assert (done.cells, done.skipped) == (2, ["Label"])
        assert _grid(session, table_id)[1][0] == ["", "", ""]
        with pytest.raises(InvalidInputError, match="not cleared by Delete"):
            row_edits.clear_cells(session, table_id=table_id, blocks=[(range(2, 3), range(2))])


def test_delete_rows_then_undo_brings_them_back_as_they_were(
    open_session: SessionFactory,
) -> None:
    with open_session() as session:
        table_id = _table(session)
        before = _grid(session, table_id)
        meta = load_meta(session, table_id=table_id)
        ids = load_rows(session, meta, start=0, stop=2).row_ids
        deleted = row_edits.delete_rows(session, table_id=table_id, row_ids=[ids[0]])
        session.commit()
        assert _grid(session, table_id)[1] == [["Globex", "globex.com", ""]]
        row_edits.add_blank_row(session, table_id=table_id)  # the table moves on meanwhile
        session.commit()
        kept = row_edits.DeletedRows.from_json(table_id, deleted.to_json())
        assert row_edits.restore_rows(session, deleted=kept) == 1
        session.commit()
        assert _grid(session, table_id)[1] == [*before[1], ["", "", ""]]
        assert load_rows(
            session, load_meta(session, table_id=table_id), start=0, stop=1
        ).row_ids == [ids[0]]
        with pytest.raises(InvalidInputError, match="back already"):
            row_edits.restore_rows(session, deleted=kept)


def test_rows_with_a_running_cell_are_not_deleted(open_session: SessionFactory) -> None:
    with open_session() as session:
        table_id = _table(session)
        meta = load_meta(session, table_id=table_id)
        ids = load_rows(session, meta, start=0, stop=2).row_ids
        label = column_id(session, table_id, "Label")
        create_job(
            session,
            table_id=table_id,
            cells=[CellRef(row_id=ids[1], column_id=label)],
            max_cells=10,
        )
        session.commit()
        with pytest.raises(InUseError, match="queued or running"):
            row_edits.delete_rows(session, table_id=table_id, row_ids=ids)
        session.rollback()
        assert len(_grid(session, table_id)[1]) == 2


def test_rename_rewrites_the_templates_that_read_the_column(
    open_session: SessionFactory,
) -> None:
    with open_session() as session:
        table_id = _table(session)
        company = column_id(session, table_id, "Company")
        rewritten = column_service.rename_column(
            session, table_id=table_id, column_id=company, name="Firm"
        )
        session.commit()
        assert rewritten == ["Label"]
        label = session.get(TableColumn, column_id(session, table_id, "Label"))
        assert label is not None
        assert label.config == {"template": "{Firm} ({Website}) {{x}}"}
        assert _grid(session, table_id)[0][:2] == ["Firm", "Website"]


@pytest.mark.parametrize(
    ("name", "message"),
    [("website", "already exists"), ("  ", "must not be empty"), ("a.b", "cannot be used")],
)
def test_a_refused_rename_changes_nothing(
    open_session: SessionFactory, name: str, message: str
) -> None:
    with open_session() as session:
        table_id = _table(session)
        company = column_id(session, table_id, "Company")
        with pytest.raises(InvalidInputError, match=message):
            column_service.rename_column(session, table_id=table_id, column_id=company, name=name)
        session.rollback()
        assert _grid(session, table_id)[0][0] == "Company"


def test_rename_rewrites_http_json_urls_and_bodies_and_keeps_credentials(
    open_session: SessionFactory, settings: Settings
) -> None:
    box = credentials.secret_box(settings)
    with open_session() as session:
        table_id = _table(session)
        config = {
            "method": "POST",
            "url": "https://api.example.com/{Website}",
            "body": {"q": "{Website} and {Company}", "n": [1, "{Website}"]},
            "auth": {"type": "bearer", "token": "s3cret-token"},
        }
        column = add_column(
            session,
            table_id=table_id,
            spec=ColumnSpec("Lookup", ColumnKind.ENRICHMENT, "http_json", config),
            box=box,
        )
        session.commit()
        sealed = column.config["auth"]["token"]
        column_service.rename_column(
            session,
            table_id=table_id,
            column_id=column_id(session, table_id, "Website"),
            name="Site",
        )
        session.commit()
        session.refresh(column)
        assert column.config["url"] == "https://api.example.com/{Site}"
        assert column.config["body"] == {"q": "{Site} and {Company}", "n": [1, "{Site}"]}
        assert column.config["auth"]["token"] == sealed
        assert credentials.open_config(column.config, box)["auth"]["token"] == "s3cret-token"


def test_move_a_column_and_refuse_a_move_past_its_readers(open_session: SessionFactory) -> None:
    with open_session() as session:
        table_id = _table(session)
        website = column_id(session, table_id, "Website")
        column_service.move_column(session, table_id=table_id, column_id=website, to=0)
        session.commit()
        assert _grid(session, table_id)[0] == ["Website", "Company", "Label ✦"]
        assert _grid(session, table_id)[1][0] == ["acme.com", "Acme", ""]
        with pytest.raises(InvalidInputError, match="must stay to the right"):
            column_service.move_column(session, table_id=table_id, column_id=website, to=2)
        session.rollback()
        assert _grid(session, table_id)[0] == ["Website", "Company", "Label ✦"]


def test_widths_persist_clipped(open_session: SessionFactory) -> None:
    with open_session() as session:
        table_id = _table(session)
        company = column_id(session, table_id, "Company")
        assert (
            column_service.set_column_width(session, table_id=table_id, column_id=company, width=5)
            == 40
        )
        column_service.set_column_width(session, table_id=table_id, column_id=company, width=333)
        session.commit()
        assert load_meta(session, table_id=table_id).columns[0]["width"] == 333


def test_values_in_column_counts_what_a_delete_loses(open_session: SessionFactory) -> None:
    with open_session() as session:
        table_id = _table(session)
        row_edits.add_blank_row(session, table_id=table_id)
        company = column_id(session, table_id, "Company")
        assert column_service.values_in_column(session, table_id=table_id, column_id=company) == 2


def test_a_delete_of_too_many_rows_is_refused(open_session: SessionFactory) -> None:
    with open_session() as session:
        table_id = _table(session)
        too_many = list(range(1, row_edits.MAX_DELETE_ROWS + 2))
        with pytest.raises(InvalidInputError, match="at most 5,000 can be deleted at once"):
            row_edits.delete_rows(session, table_id=table_id, row_ids=too_many)
