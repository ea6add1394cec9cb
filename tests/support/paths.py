"""Where things are in the checkout, for tests and benchmarks alike."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The checkout: the folder holding rxconfig.py, enrichment_app/, tests/ and bench/."""
ARTIFACTS = ROOT / "test-artifacts"
"""What a test run keeps for people and CI to look at (git-ignored)."""
RESULTS = ROOT / "bench" / "results"
"""The committed benchmark figures (bench/report.py reads them)."""
CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (``scripts/bootstrap.sh --dev``); Playwright's own download is never used."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
"""The launch flags this machine needs (see the developers' guide)."""
