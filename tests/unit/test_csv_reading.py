"""Reading a CSV file as it arrives: rows handed out before the file ends, and when a file has
several faults, the same one reported whichever comes first in the file and however the file
is cut into chunks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from enrichment_app.errors import CsvImportError
from enrichment_app.services.csv_reading import CsvReader

ROW = b"Ada,Rome\n"


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def read(chunks: list[bytes], **limits: int) -> tuple[list[str], list[list[str]]]:
    reader = CsvReader(chunks, max_bytes=limits.pop("max_bytes", 10**6), **limits)
    header = reader.header()
    return header, list(reader.rows())


def test_rows_are_handed_out_while_the_file_is_still_arriving() -> None:
    sent: list[int] = []

    def upload() -> Iterator[bytes]:
        yield b"name,city\n"
        for n in range(1000):
            sent.append(n)
            yield ROW

    reader = CsvReader(upload(), max_bytes=10**6)
    assert reader.header() == ["name", "city"]
    rows = reader.rows()
    assert next(rows) == ["Ada", "Rome"]
    assert len(sent) < 5, "the first row came before the rest of the file was read"
    assert reader.bytes_read < 100
    assert sum(1 for _ in rows) == 999
    assert reader.rows_read == 1000


@pytest.mark.parametrize("size", [1, 2, 3, 7, 4096])
@pytest.mark.parametrize(
    ("data", "limits", "message"),
    [
        pytest.param(
            b"a,b\n1,2,3\n" + b'"open\n' + b"x\xffy\n",
            {},
            "The file is not UTF-8 text (byte 17 is invalid)",
            id="bad UTF-8 at the end outranks the row and the quote before it",
        ),
        pytest.param(
            "\ufeffa\n\x00\n".encode() + "café".encode("latin-1"),
            {},
            "The file is not UTF-8 text (byte 7 is invalid)",
            id="counted after the byte order mark, as a whole-file decode counts",
        ),
        pytest.param(
            b"a,a\n1,2,3\n\x00\n",
            {},
            "NUL bytes",
            id="a NUL at the end outranks the header and the row",
        ),
        pytest.param(
            b'a,b\n1,2,3\n"x,y\n',
            {},
            "Line 3: unexpected end of data.",
            id="an open quote at the end outranks the long row",
        ),
        pytest.param(
            b'a,a\n1\n2\n"oops',
            {},
            "Line 4: unexpected end of data.",
            id="and the header naming a column twice",
        ),
        pytest.param(
            b"a,b\n1,2,3\n4\n5\n6\n",
            {"max_rows": 3},
            "The file has 4 rows; at most 3 are allowed.",
            id="too many rows outranks the long row before them, and counts them all",
        ),
        pytest.param(
            b"a,b\n1\n2,3,4\n5,6,7,8\n",
            {},
            "Row 3 has 3 values but the header has 2 columns.",
            id="the first long row is the one named",
        ),
        pytest.param(
            b" , \n\n",
            {},
            "The file is empty",
            id="blank lines only",
        ),
        pytest.param(
            b"a,b\n" + ROW * 10,
            {"max_bytes": 40},
            "The file is larger than 40 bytes.",
            id="the size outranks everything",
        ),
    ],
)
def test_the_fault_reported_is_the_one_a_whole_file_read_reports(
    data: bytes, limits: dict[str, int], message: str, size: int
) -> None:
    with pytest.raises(CsvImportError) as whole:
        read([data], **limits)
    with pytest.raises(CsvImportError) as streamed:
        read(chunked(data, size), **limits)
    assert message in whole.value.message
    assert streamed.value.message == whole.value.message


def test_no_row_is_handed_out_after_a_fault() -> None:
    reader = CsvReader([b"a,b\n1,2\n3,4,5\n6,7\n"], max_bytes=10**6)
    reader.header()
    handed: list[list[str]] = []
    with pytest.raises(CsvImportError, match="Row 3 has 3 values"):
        handed.extend(reader.rows())
    assert handed == [["1", "2"]]


@pytest.mark.parametrize("size", [1, 2, 5])
def test_line_endings_split_across_chunks_are_one_ending(size: int) -> None:
    data = b'a;b\r\n1;"x\r\ny"\r2;3\n\r\n4;5'
    assert (
        read(chunked(data, size))
        == read([data])
        == (
            ["a", "b"],
            [["1", "x\r\ny"], ["2", "3"], ["4", "5"]],
        )
    )
