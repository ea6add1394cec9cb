"""The tables page's CSV import and export as units of work: each is noted in the audit log, an
export is written to a file, and exported files are deleted once ``EXPORT_KEEP_SECONDS`` old."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlmodel import Session

from enrichment_app.db.models import DataTable
from enrichment_app.services import audit, csv_export, csv_import, tables as table_service
from enrichment_app.services.access import Grant
from enrichment_app.services.audit import Audited
from enrichment_app.services.transfer import Progress

EXPORT_KEEP_SECONDS = 600.0
"""How long an exported file stays downloadable: its random address is its only key."""


def import_and_record(
    session: Session, *, grant: Grant, filename: str, progress: Progress, **kwargs: Any
) -> DataTable:
    """Import in the grant's workspace, and note it in the audit log, in one transaction."""
    table = csv_import.import_csv_stream(
        session, workspace_id=grant.workspace_id, progress=progress, **kwargs
    )
    assert table.id is not None
    rows = progress.rows
    audit.record_on_table(
        session,
        grant=grant,
        action=Audited.TABLE_IMPORT,
        table_id=table.id,
        label=table.name,
        detail=f"{filename[:100]}: {rows} row{'s' if rows != 1 else ''}",
    )
    return table


def start_export(session: Session, *, grant: Grant, table_id: int, raw: bool) -> str:
    """The table's name; the export is noted in the audit log as it starts."""
    name = table_service.get_table(session=session, table_id=table_id).name
    audit.record_on_table(
        session,
        grant=grant,
        action=Audited.TABLE_EXPORT,
        table_id=table_id,
        detail="raw" if raw else "formulas neutralised",
    )
    return name


def write_export(
    session: Session, *, table_id: int, raw: bool, path: Path, progress: Progress
) -> None:
    progress.total_rows = csv_export.row_count(session, table_id=table_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        csv_export.write_csv(session, table_id=table_id, out=out, raw=raw, progress=progress)


def forget_old_exports(root: Path, *, now: float) -> None:
    """Delete the exported files older than ``EXPORT_KEEP_SECONDS``."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        try:
            if now - folder.stat().st_mtime > EXPORT_KEEP_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue
