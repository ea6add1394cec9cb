"""The README's first command starts the app, and the README's screenshot script works.

``python scripts/screenshot.py`` starts the app with ``bash scripts/run.sh``, runs the demo
table with a lookup column held mid-way, and captures the page; here it writes into
test-artifacts/ instead of assets/, so the script cannot rot while the committed image stays.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys

from tests.support.paths import ARTIFACTS, ROOT
from tests.support.prod_app import env_with_tools
from tests.support.screenshot import VIEWPORT

OUT = ARTIFACTS / "docs" / "table-mid-run.png"
PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == PNG, "not a PNG file"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_screenshot_script_captures_the_table_page_mid_run() -> None:
    OUT.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "scripts/screenshot.py", "--out", str(OUT)],
        cwd=ROOT,
        env=env_with_tools(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    shot = json.loads(done.stdout.strip().splitlines()[-1])

    # The page said the job was part-way through, before and after the capture.
    match = re.fullmatch(r"Enriching… \((\d+)/(\d+)\)", shot["status"])
    assert match, shot["status"]
    done_cells, total = int(match[1]), int(match[2])
    assert 0 < done_cells < total == 25

    data = OUT.read_bytes()
    assert png_size(data) == (shot["width"], shot["height"])
    assert len(data) > 20_000  # a drawn page, not a blank one


def test_the_committed_screenshot_is_the_scripts_size() -> None:
    committed = (ROOT / "assets" / "table-mid-run.png").read_bytes()
    assert png_size(committed) == (VIEWPORT["width"], VIEWPORT["height"])
