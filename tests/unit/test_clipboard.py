"""Reading a block pasted from a spreadsheet and writing a copied one."""

from __future__ import annotations

import pytest

from enrichment_app.clipboard import MAX_PASTE_CELLS, MAX_PASTE_ROWS, read_block, write_block
from enrichment_app.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "block"),
    [
        ("Acme", [["Acme"]]),
        ("Acme\tacme.com\n", [["Acme", "acme.com"]]),
        ("a\tb\r\nc\td\r\n", [["a", "b"], ["c", "d"]]),
        ("a\tb\nc", [["a", "b"], ["c", ""]]),  # a short row is padded
        ('"two\nlines"\tx\n', [["two\nlines", "x"]]),  # Sheets quotes a cell with a newline
        ('"say ""hi"""\t"a\tb"', [['say "hi"', "a\tb"]]),
        ("\t\n", [["", ""]]),
        ("a\n\nb", [["a"], [""], ["b"]]),  # an empty line in the middle is an empty row
        ('x "y" z', [['x "y" z']]),  # a quote inside an unquoted cell is kept
    ],
)
def test_read_block(text: str, block: list[list[str]]) -> None:
    assert read_block(text) == block


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"bytes", "Only text"),
        (None, "Only text"),
        ({"x": 1}, "Only text"),
        ("", "empty"),
        ("\n", "empty"),
        ("x\n" * (MAX_PASTE_ROWS + 1), f"more than {MAX_PASTE_ROWS:,} rows"),
        (("\t" * 99 + "\n") * 1001, f"at most {MAX_PASTE_CELLS:,}"),
        ("x" * 5_000_001, "Import a CSV file"),
    ],
)
def test_read_block_refuses(text: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        read_block(text)


@pytest.mark.parametrize(
    "block",
    [
        [["Acme", "acme.com"], ["Globex", None]],
        [["two\nlines", 'a "quote"', "tab\there"]],
        [[""]],
    ],
)
def test_write_then_read_round_trips(block: list[list[str | None]]) -> None:
    text = write_block(block)
    assert read_block(text) == [["" if v is None else v for v in row] for row in block]


def test_write_block_is_what_spreadsheets_paste() -> None:
    assert write_block([["a", "b"], ["c d", "e\nf"]]) == 'a\tb\nc d\t"e\nf"\n'
