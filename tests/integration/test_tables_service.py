"""Tables on a real (SQLite) database: CSV import and export, edits, columns, deletion, demo."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import Cell, DataTable, EnrichmentJob
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellStatus, ColumnKind
from enrichment_app.errors import (
    CsvImportError,
    EnricherConfigError,
    InvalidInputError,
    NotFoundError,
)
from enrichment_app.services.csv_import import import_csv, parse_csv
from enrichment_app.services.demo import COMPANIES, DEMO_TABLE_NAME, seed_demo
from enrichment_app.services.grid import load_meta, load_rows
from enrichment_app.services.jobs import cancel_job, create_job
from enrichment_app.services.tables import (
    ColumnSpec,
    add_column,
    create_table,
    delete_table,
    export_csv,
    list_columns,
    list_rows,
    list_tables,
    update_cell,
)
from enrichment_app.services.values import TRUNCATION_MARK
from enrichment_app.settings import Settings
from tests.integration.db_helpers import column_id, column_refs, row_counts, seed_demo_table

MAX_BYTES = 64 * 1024


def _import(
    session: Session, data: bytes, *, name: str = "Upload", max_cell_chars: int = 10_000
) -> int:
    table = import_csv(
        session=session, name=name, data=data, max_bytes=MAX_BYTES, max_cell_chars=max_cell_chars
    )
    session.commit()
    assert table.id is not None
    return table.id


def _values(session: Session, table_id: int) -> tuple[list[str], list[list[str]]]:
    """The table as the grid shows it: column titles and the value of every cell."""
    meta = load_meta(session, table_id=table_id)
    window = load_rows(session, meta, start=0, stop=meta.row_count)
    return [c["title"] for c in meta.columns], [[c["v"] for c in row] for row in window.cells]


# --- import ---------------------------------------------------------------------------

GOOD_FILES = [
    pytest.param(
        b"name,website\nAcme,acme.example\nBolt,bolt.example\n",
        ["name", "website"],
        [["Acme", "acme.example"], ["Bolt", "bolt.example"]],
        id="plain",
    ),
    pytest.param(
        "\ufeffname,city\r\nAda,Zürich\r\n".encode(),
        ["name", "city"],
        [["Ada", "Zürich"]],
        id="utf-8 BOM and CRLF",
    ),
    pytest.param(
        b'name;city;note\nAda;"London, UK";x\nBob;Paris;y\n',
        ["name", "city", "note"],
        [["Ada", "London, UK", "x"], ["Bob", "Paris", "y"]],
        id="semicolon-delimited",
    ),
    pytest.param(
        b'name,bio\nAda,"first line\nsecond line"\nBob,"say ""hi"", then, go"\n',
        ["name", "bio"],
        [["Ada", "first line\nsecond line"], ["Bob", 'say "hi", then, go']],
        id="quoted newlines, commas and quotes",
    ),
    pytest.param(
        b'name,bio\nAda,"line one\nline two, with ""quotes"""\nBob,plain\n',
        ["name", "bio"],
        [["Ada", 'line one\nline two, with "quotes"'], ["Bob", "plain"]],
        id="escaped quotes closing a multi-line value",
    ),
    pytest.param(
        b"email\na@example.com\n\nb@example.com\n",
        ["email"],
        [["a@example.com"], ["b@example.com"]],
        id="one column, a blank line skipped",
    ),
    pytest.param(
        b"a,b,c\n1\n2,3\n",
        ["a", "b", "c"],
        [["1", "", ""], ["2", "3", ""]],
        id="short rows are padded",
    ),
]


@pytest.mark.parametrize(("data", "header", "rows"), GOOD_FILES)
def test_a_good_csv_becomes_a_table_of_input_columns(
    open_session: SessionFactory, data: bytes, header: list[str], rows: list[list[str]]
) -> None:
    with open_session() as session:
        table_id = _import(session, data, name="  My   upload ")
    with open_session() as session:
        assert _values(session, table_id) == (header, rows)
        assert {c.kind for c in list_columns(session=session, table_id=table_id)} == {
            ColumnKind.INPUT
        }
        assert [r.position for r in list_rows(session=session, table_id=table_id)] == list(
            range(len(rows))
        )
        (summary,) = list_tables(session=session)
        assert (summary.id, summary.name, summary.columns, summary.rows) == (
            table_id,
            "My upload",
            len(header),
            len(rows),
        )


BAD_FILES = [
    pytest.param(b"", "empty", id="empty file"),
    pytest.param(b"\n \n,,\n", "empty", id="only blank lines"),
    pytest.param(b"name,Name\nAda,Bob\n", "names the column 'Name' twice", id="duplicate header"),
    pytest.param(b"name,,city\nAda,x,Rome\n", "Column 2 of the header row has no name", id="blank"),
    pytest.param(
        b"name,city\nAda,Rome\nBob,Paris,extra\n",
        "Row 3 has 3 values but the header has 2 columns",
        id="row longer than header",
    ),
    pytest.param("name\ncafé\n".encode("latin-1"), "not UTF-8", id="latin-1 bytes"),
    pytest.param(b"name,city\nAda\x00,Rome\n", "NUL bytes", id="NUL bytes"),
    pytest.param(
        b'name,bio\nAda,"never closed\nBob,x\nCy,y\n', "unexpected end of data", id="open quote"
    ),
    pytest.param(b'name,city\n"Ada"x,Rome\n', "',' expected after '\"'", id="stray quote"),
    pytest.param(
        b"name\n" + b"x" * MAX_BYTES, f"larger than {MAX_BYTES // 1024} KB", id="over the size cap"
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_FILES)
def test_a_malformed_csv_is_refused_with_a_message_and_nothing_imported(
    open_session: SessionFactory, data: bytes, message: str
) -> None:
    with open_session() as session:
        _import(session, b"keep\nme\n", name="Existing")
        before = row_counts(session)
    with open_session() as session, pytest.raises(CsvImportError) as caught:
        _import(session, data)
    assert message in str(caught.value)
    with open_session() as session:
        assert row_counts(session) == before
        assert [t.name for t in list_tables(session=session)] == ["Existing"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            ",".join(f"c{i}" for i in range(201)).encode() + b"\n",
            "The file has 201 columns; at most 200 are allowed.",
            id="too many columns",
        ),
        pytest.param(
            b"n\n" + b"x\n" * 100_001,
            "The file has 100001 rows; at most 100000 are allowed.",
            id="too many rows",
        ),
        pytest.param(
            b"n\n" + b"x" * 200_000 + b"\n",
            "Line 2: field larger than field limit (131072).",
            id="a value over the csv module's field limit",
        ),
    ],
)
def test_files_over_the_parser_limits_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(CsvImportError) as caught:
        parse_csv(data, max_bytes=10 * 1024 * 1024)
    assert str(caught.value) == message


def test_a_header_name_refused_after_parsing_leaves_nothing_behind(
    open_session: SessionFactory,
) -> None:
    """Column names are checked while the table is created; the transaction must not commit."""
    with open_session() as session:
        before = row_counts(session)
    data = b"name," + b"n" * 300 + b"\nAda,x\n"
    with open_session() as session, pytest.raises(InvalidInputError, match="longer than 200"):
        _import(session, data)
    with open_session() as session:
        assert row_counts(session) == before


def test_huge_values_are_capped_on_import_and_on_edit(open_session: SessionFactory) -> None:
    huge = "é" * 5_000
    with open_session() as session:
        table_id = _import(session, f"name,bio\nAda,{huge}\n".encode(), max_cell_chars=100)
    with open_session() as session:
        _, [[name, bio]] = _values(session, table_id)
        assert name == "Ada"
        assert len(bio) == 100
        assert bio == "é" * (100 - len(TRUNCATION_MARK)) + TRUNCATION_MARK
        [row] = list_rows(session=session, table_id=table_id)
        assert row.id is not None
        cell = update_cell(
            session=session,
            table_id=table_id,
            row_id=row.id,
            column_id=column_id(session, table_id, "name"),
            value="x" * 1_000,
            max_cell_chars=100,
        )
        session.commit()
    with open_session() as session:
        stored = session.get(Cell, cell.id)
        assert stored is not None
        assert stored.value is not None
        assert len(stored.value) == 100
        assert stored.value.endswith(TRUNCATION_MARK)


def test_html_and_script_are_stored_and_exported_verbatim(open_session: SessionFactory) -> None:
    script = "<script>alert('x')</script>"
    markup = '<b onclick="steal()">bold</b> &amp; <img src=x onerror=alert(1)>'
    data = f'name,note\n{script},"{markup.replace(chr(34), chr(34) * 2)}"\n'.encode()
    with open_session() as session:
        table_id = _import(session, data)
    with open_session() as session:
        assert _values(session, table_id)[1] == [[script, markup]]
        exported = list(csv.reader(io.StringIO(export_csv(session=session, table_id=table_id))))
        assert exported == [["name", "note"], [script, markup]]


# --- edits ----------------------------------------------------------------------------


def test_an_input_cell_edit_persists_and_clearing_it_stores_none(
    open_session: SessionFactory,
) -> None:
    with open_session() as session:
        table_id = _import(session, b"name,city\nAda,Rome\n")
        [row] = list_rows(session=session, table_id=table_id)
        city = column_id(session, table_id, "city")
        assert row.id is not None
        update_cell(
            session=session,
            table_id=table_id,
            row_id=row.id,
            column_id=city,
            value="Oslo",
            max_cell_chars=100,
        )
        session.commit()
    with open_session() as session:
        assert _values(session, table_id)[1] == [["Ada", "Oslo"]]
        update_cell(
            session=session,
            table_id=table_id,
            row_id=row.id,
            column_id=city,
            value="",
            max_cell_chars=100,
        )
        session.commit()
    with open_session() as session:
        cell = session.exec(select(Cell).where(Cell.column_id == city)).one()
        assert cell.value is None


def test_an_enrichment_cell_cannot_be_edited(open_session: SessionFactory) -> None:
    with open_session() as session:
        table_id = seed_demo_table(session)
        ref = column_refs(session, table_id, "Email domain")[0]
        with pytest.raises(InvalidInputError, match="enrichment column"):
            update_cell(
                session=session,
                table_id=table_id,
                row_id=ref.row_id,
                column_id=ref.column_id,
                value="typed by hand",
                max_cell_chars=100,
            )
        session.commit()
    with open_session() as session:
        cell = session.exec(
            select(Cell).where(Cell.row_id == ref.row_id, Cell.column_id == ref.column_id)
        ).one()
        assert (cell.value, cell.status) == (None, CellStatus.EMPTY)


def test_edits_addressing_another_table_are_not_found(open_session: SessionFactory) -> None:
    with open_session() as session:
        first = _import(session, b"a\n1\n", name="First")
        second = _import(session, b"b\n2\n", name="Second")
        [row_of_first] = list_rows(session=session, table_id=first)
        [row_of_second] = list_rows(session=session, table_id=second)
        assert row_of_first.id is not None
        assert row_of_second.id is not None
        with pytest.raises(NotFoundError, match="Column"):
            update_cell(
                session=session,
                table_id=second,
                row_id=row_of_second.id,
                column_id=column_id(session, first, "a"),
                value="x",
                max_cell_chars=100,
            )
        with pytest.raises(NotFoundError, match="Row"):
            update_cell(
                session=session,
                table_id=second,
                row_id=row_of_first.id,
                column_id=column_id(session, second, "b"),
                value="x",
                max_cell_chars=100,
            )
    with open_session() as session:
        assert _values(session, first)[1] == [["1"]]
        assert _values(session, second)[1] == [["2"]]


# --- export ---------------------------------------------------------------------------


def test_export_round_trips_awkward_values_and_enriched_ones(
    open_session: SessionFactory,
) -> None:
    rows = [
        ["Ada, Countess", 'She said "hello"', "line one\nline two"],
        ["  padded  ", "", "semi;colon"],
        ["Ünïcødé ✓", "tab\there", "=1+2"],
    ]
    out = io.StringIO()
    csv.writer(out).writerows([["name", "quote", "multi"], *rows])
    with open_session() as session:
        table_id = _import(session, out.getvalue().encode())
        add_column(
            session=session,
            table_id=table_id,
            spec=ColumnSpec(
                name="Summary",
                kind=ColumnKind.ENRICHMENT,
                enricher="template",
                config={"template": "{name}: {quote}"},
            ),
        )
        session.commit()
        summary = column_id(session, table_id, "Summary")
        enriched = ['Ada, Countess: She said "hello"', "", 'x,"y"\nz']
        for ref, value in zip(column_refs(session, table_id, "Summary"), enriched, strict=True):
            session.execute(
                sa.update(Cell)
                .where(Cell.row_id == ref.row_id, Cell.column_id == summary)  # type: ignore[arg-type]
                .values(value=value or None, status=CellStatus.DONE.value)
            )
        session.commit()
    with open_session() as session:
        text = export_csv(session=session, table_id=table_id, raw=True)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["name", "quote", "multi", "Summary"]
    # Leading/trailing spaces of a value survive; only header names are trimmed.
    assert parsed[1:] == [[*r, e] for r, e in zip(rows, enriched, strict=True)]


# Found by tests/fuzz/test_csv_import.py: csv.Sniffer guessed from the values too, and when it
# guessed "skipinitialspace" it stripped the leading spaces of every value in the file. An
# exported one-column table whose name held a semicolon was split in two, and export_csv left
# a lone "\r" unquoted, which read back as a line break.
@pytest.mark.parametrize(
    ("data", "header", "rows"),
    [
        pytest.param(
            b'name,note\n"Ada", said hi\nBob, ok\n',
            ["name", "note"],
            [["Ada", " said hi"], ["Bob", " ok"]],
            id="leading spaces after a quoted value kept",
        ),
        pytest.param(
            b'note,city\n"q""t", ; \n',
            ["note", "city"],
            [['q"t', " ; "]],
            id="a value of spaces and a semicolon kept",
        ),
        pytest.param(
            b"a\tb\n1\t2, 3\n",
            ["a", "b"],
            [["1", "2, 3"]],
            id="tab-separated with commas in values",
        ),
    ],
)
def test_only_the_header_row_decides_the_delimiter(
    open_session: SessionFactory, data: bytes, header: list[str], rows: list[list[str]]
) -> None:
    with open_session() as session:
        table_id = _import(session, data)
        assert _values(session, table_id) == (header, rows)


def test_an_exported_table_imports_back_unchanged(open_session: SessionFactory) -> None:
    header = ["Revenue; 2024"]
    rows = [["a;b;c"], ["  leading"], ["carriage\rreturn"], ["tab\there, and comma"]]
    with open_session() as session:
        table = create_table(
            session=session,
            name="Exported",
            columns=[ColumnSpec(name=header[0])],
            rows=rows,
            max_cell_chars=10_000,
        )
        session.commit()
        assert table.id is not None
        exported = export_csv(session=session, table_id=table.id, raw=True)
        assert _values(session, _import(session, exported.encode())) == (header, rows)


def test_export_keeps_row_order_and_an_empty_table_exports_its_header(
    open_session: SessionFactory,
) -> None:
    lines = [f"row {i}" for i in range(30)]
    with open_session() as session:
        table_id = _import(session, ("n\n" + "\n".join(lines)).encode())
        empty_id = _import(session, b"x,y\n", name="Empty")
        assert export_csv(session=session, table_id=table_id) == "n\n" + "\n".join(lines) + "\n"
        assert export_csv(session=session, table_id=empty_id) == "x,y\n"
        with pytest.raises(NotFoundError):
            export_csv(session=session, table_id=9999)


# --- columns --------------------------------------------------------------------------

BAD_COLUMNS = [
    pytest.param(
        ColumnSpec(name="X", kind=ColumnKind.ENRICHMENT, enricher="crystal_ball"),
        EnricherConfigError,
        "Unknown enricher 'crystal_ball'",
        id="unknown enricher",
    ),
    pytest.param(
        ColumnSpec(name="X", kind=ColumnKind.ENRICHMENT, enricher=None),
        EnricherConfigError,
        "Choose an enricher",
        id="no enricher",
    ),
    pytest.param(
        ColumnSpec(name="X", kind=ColumnKind.ENRICHMENT, enricher="email_domain", config={}),
        EnricherConfigError,
        "column",
        id="config missing a key",
    ),
    pytest.param(
        ColumnSpec(
            name="X",
            kind=ColumnKind.ENRICHMENT,
            enricher="template",
            config={"template": "{name.__class__}"},
        ),
        EnricherConfigError,
        "not allowed",
        id="config the enricher refuses",
    ),
    pytest.param(
        ColumnSpec(
            name="X",
            kind=ColumnKind.ENRICHMENT,
            enricher="template",
            config={"template": "{name} at {Website}"},
        ),
        EnricherConfigError,
        "'Website', which is not a column",
        id="config naming a missing column",
    ),
    pytest.param(ColumnSpec(name=" NAME "), InvalidInputError, "already exists", id="duplicate"),
    pytest.param(ColumnSpec(name="   "), InvalidInputError, "must not be empty", id="blank name"),
]


@pytest.mark.parametrize(("spec", "error", "message"), BAD_COLUMNS)
def test_add_column_refuses_bad_specs(
    open_session: SessionFactory, spec: ColumnSpec, error: type[Exception], message: str
) -> None:
    with open_session() as session:
        table_id = _import(session, b"name,website\nAda,a.example\n")
        before = row_counts(session)
    with open_session() as session:
        with pytest.raises(error) as caught:
            add_column(session=session, table_id=table_id, spec=spec)
        assert message in str(caught.value)
    with open_session() as session:
        assert row_counts(session) == before
        assert [c.name for c in list_columns(session=session, table_id=table_id)] == [
            "name",
            "website",
        ]


def test_add_column_gives_every_row_an_empty_cell(open_session: SessionFactory) -> None:
    with open_session() as session:
        table_id = _import(session, b"name,website\nAda,a.example\nBob,b.example\n")
        column = add_column(
            session=session,
            table_id=table_id,
            spec=ColumnSpec(
                name="Greeting",
                kind=ColumnKind.ENRICHMENT,
                enricher="template",
                config={"template": "Hi {name}"},
            ),
        )
        session.commit()
    with open_session() as session:
        columns = list_columns(session=session, table_id=table_id)
        assert [(c.name, c.kind, c.position) for c in columns] == [
            ("name", ColumnKind.INPUT, 0),
            ("website", ColumnKind.INPUT, 1),
            ("Greeting", ColumnKind.ENRICHMENT, 2),
        ]
        assert columns[2].config == {"template": "Hi {name}"}
        cells = session.exec(select(Cell).where(Cell.column_id == column.id)).all()
        assert sorted((c.value, c.status) for c in cells) == [(None, CellStatus.EMPTY)] * 2
    with open_session() as session, pytest.raises(NotFoundError):
        add_column(session=session, table_id=9999, spec=ColumnSpec(name="x"))


# --- deletion -------------------------------------------------------------------------


def test_delete_table_is_refused_while_a_job_is_active_then_removes_everything(
    open_session: SessionFactory,
) -> None:
    with unit_of_work(open_session) as session:
        table_id = seed_demo_table(session)
        keep_id = _import(session, b"other\nvalue\n", name="Keep me")
        job = create_job(
            session=session,
            table_id=table_id,
            cells=column_refs(session, table_id, "Email domain")[:3],
            max_cells=100,
        ).job
    with open_session() as session:
        before = row_counts(session)
        with pytest.raises(InvalidInputError, match="cancel it before deleting"):
            delete_table(session=session, table_id=table_id)
        session.commit()
    with unit_of_work(open_session) as session:
        assert row_counts(session) == before
        assert job.id is not None
        cancel_job(session=session, job_id=job.id)
    with open_session() as session:
        delete_table(session=session, table_id=table_id)
        session.commit()
    with open_session() as session:
        # Only the other table is left: no orphan columns, rows, cells, jobs or tasks.
        assert row_counts(session) == {
            "data_table": 1,
            "table_column": 1,
            "table_row": 1,
            "cell": 1,
            "enrichment_job": 0,
            "enrichment_task": 0,
        }
        assert session.get(DataTable, keep_id) is not None
        assert session.exec(select(EnrichmentJob)).all() == []
        assert _values(session, keep_id)[1] == [["value"]]
        with pytest.raises(NotFoundError):
            delete_table(session=session, table_id=table_id)


# --- demo -----------------------------------------------------------------------------


def test_the_demo_is_seeded_once(open_session: SessionFactory, settings: Settings) -> None:
    with unit_of_work(open_session) as session:
        table = seed_demo(session=session, max_cell_chars=settings.max_cell_chars)
        assert table is not None
        assert table.id is not None
    with unit_of_work(open_session) as session:
        assert seed_demo(session=session, max_cell_chars=settings.max_cell_chars) is None
        [summary] = list_tables(session=session)
        assert summary.name == DEMO_TABLE_NAME
        assert 20 <= summary.rows == len(COMPANIES) <= 30
        columns = list_columns(session=session, table_id=table.id)
        assert [c.enricher for c in columns if c.kind == ColumnKind.ENRICHMENT] == [
            "email_domain",
            "template",
        ]
        titles, values = _values(session, table.id)
        assert titles[:3] == ["Company", "Website", "Contact email"]
        assert values[0][:3] == list(COMPANIES[0])
        assert all(row[3:] == ["", ""] for row in values)


def test_the_demo_is_not_seeded_into_a_database_that_has_tables(
    open_session: SessionFactory,
) -> None:
    with unit_of_work(open_session) as session:
        _import(session, b"mine\n1\n", name="Mine")
        assert seed_demo(session=session, max_cell_chars=100) is None
        assert [t.name for t in list_tables(session=session)] == ["Mine"]
