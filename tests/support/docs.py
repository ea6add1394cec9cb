"""Reading the project's Markdown: its code blocks, the shell commands in them, links, anchors.

The docs' checks (tests/unit/test_docs.py) and the tests that run the docs' examples
(tests/docs/) read the pages with these, so they agree on what a block or a command is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import ROOT

PAGES = (
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "bench" / "README.md",
    ROOT / "trigger" / "README.md",
)
"""The pages whose commands and links are checked."""
SHELL = frozenset({"sh", "bash", "shell", "console"})

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_LINK = re.compile(
    r"!?\[(?P<text>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)"
)
_INLINE_CODE = re.compile(r"(`+).+?\1")


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language (the info string's first word) and its text."""

    path: Path
    line: int
    """The line of the opening fence, counted from 1."""
    lang: str
    text: str
    followed_by: str | None
    """The language of the next block when only blank lines stand between the two, else None."""

    @property
    def where(self) -> str:
        path = self.path.resolve()
        return f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{self.line}"


def code_blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown page, in order."""
    lines = path.read_text().splitlines()
    found: list[tuple[int, int, str, str]] = []  # opening line, closing line, lang, text
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence = opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence[0] * len(fence))
            and lines[j].strip().strip(fence[0]) == ""
        ):
            body.append(lines[j])
            j += 1
        info = opening["info"].strip().split()
        found.append((i, j, info[0].lower() if info else "", "\n".join(body)))
        i = j + 1
    blocks = []
    for n, (start, end, lang, text) in enumerate(found):
        following = found[n + 1] if n + 1 < len(found) else None
        between = lines[end + 1 : following[0]] if following else ["x"]
        adjacent = following is not None and all(not line.strip() for line in between)
        blocks.append(
            Block(path, start + 1, lang, text, following[2] if adjacent and following else None)
        )
    return blocks


def outside_code(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line of a page outside its fenced code blocks."""
    inside: str | None = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        opening = _FENCE.match(line)
        if inside is None and opening is not None:
            inside = opening["fence"]
        elif inside is not None:
            stripped = line.strip()
            if stripped.startswith(inside) and stripped.strip(inside[0]) == "":
                inside = None
        else:
            yield number, line


def shell_commands(block: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines
    dropped, and ``a && b``, ``a; b`` and ``(a)`` split into ``a`` and ``b``."""
    logical: list[str] = []
    pending = ""
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append((pending + line.strip()).strip())
        pending = ""
    if pending:
        logical.append(pending.strip())
    commands = []
    for line in logical:
        for part in _unquoted_split(line):
            part = part.strip().strip("()").strip()
            if part:
                commands.append(part)
    return commands


def _unquoted_split(line: str) -> list[str]:
    """``line`` cut at each ``&&`` and ``;`` outside quotes, and at a ``# comment``."""
    parts, start, quote, i = [], 0, None, 0
    while i < len(line):
        char = line[i]
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            break
        elif char == ";" or line.startswith("&&", i):
            parts.append(line[start:i])
            i += 1 if char == ";" else 2
            start = i
            continue
        i += 1
    parts.append(line[start:i])
    return parts


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every Markdown link and image outside code."""
    for number, line in outside_code(path):
        for match in _LINK.finditer(_INLINE_CODE.sub("", line)):
            yield number, match["target"]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercased, punctuation dropped, spaces to hyphens."""
    text = _INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in ("L", "N"))
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a page; a repeated heading gets -1, -2… as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in outside_code(path):
        if not re.match(r"^#{1,6} ", line):
            continue
        base = slug(line.lstrip("#"))
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found
