"""Exported files are deleted once they are older than EXPORT_KEEP_SECONDS, and only those."""

from __future__ import annotations

import os
from pathlib import Path

from enrichment_app.services.csv_files import EXPORT_KEEP_SECONDS, forget_old_exports


def _export(root: Path, name: str, age_seconds: float, now: float) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "table.csv").write_text("a,b\n1,2\n")
    os.utime(folder, (now - age_seconds, now - age_seconds))
    return folder


def test_old_exports_are_deleted_and_recent_ones_kept(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    old = _export(tmp_path, "old", EXPORT_KEEP_SECONDS + 1, now)
    fresh = _export(tmp_path, "fresh", EXPORT_KEEP_SECONDS - 1, now)

    forget_old_exports(tmp_path, now=now)

    assert not old.exists()
    assert (fresh / "table.csv").read_text() == "a,b\n1,2\n"


def test_no_exports_folder_yet_is_not_an_error(tmp_path: Path) -> None:
    forget_old_exports(tmp_path / "exports", now=0.0)
    assert not (tmp_path / "exports").exists()
