"""The daily cell cap (``MAX_CELLS_PER_DAY``): how many cells jobs may queue per UTC day.

The count lives in the database (``CellUsage``), one row per scope and day, and is raised in
the transaction that creates the job, by one conditional upsert: ``cells + n`` is written only
if it stays within the cap. Two processes starting jobs at once cannot both pass under it, and
a restart forgets nothing. A refused job leaves the count as it was. Cells are counted when
they are queued; cancelling a job gives none back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from enrichment_app.db.models import CellUsage, DataTable, Workspace
from enrichment_app.errors import QuotaExceededError

SCOPE = "all"
"""The scope of counts made before workspaces existed (and of callers that name none)."""


def workspace_cap(session: Session, *, table_id: int, app_cap: int) -> tuple[str, int]:
    """The count a job on ``table_id`` spends from (its workspace's) and the cap it has: the
    app-wide ``MAX_CELLS_PER_DAY``, or the workspace's own lower one set by an admin."""
    found = session.exec(
        select(DataTable.workspace_id, Workspace.max_cells_per_day)
        .join(Workspace, col(Workspace.id) == DataTable.workspace_id)
        .where(DataTable.id == table_id)
    ).first()
    if found is None:
        return SCOPE, app_cap
    workspace_id, own = found
    return f"workspace:{workspace_id}", min(app_cap, own) if own else app_cap


def utc_day(now: datetime) -> date:
    return now.astimezone(UTC).date()


def seconds_to_reset(now: datetime) -> int:
    """Seconds from ``now`` to the next 00:00 UTC, when the count starts again."""
    midnight = datetime.combine(utc_day(now) + timedelta(days=1), time(), tzinfo=UTC)
    return max(1, int((midnight - now.astimezone(UTC)).total_seconds()))


def _in(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = max(1, rest // 60) if hours == 0 else rest // 60
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def used_today(session: Session, *, now: datetime, scope: str = SCOPE) -> int:
    query = select(CellUsage.cells).where(
        col(CellUsage.scope) == scope, col(CellUsage.day) == utc_day(now)
    )
    return int(session.exec(query).first() or 0)


def spend(session: Session, *, cells: int, cap: int, now: datetime, scope: str = SCOPE) -> int:
    """Count ``cells`` against today's cap, or raise ``QuotaExceededError`` saying how many
    remain and when the count resets. Returns today's count. The caller commits."""
    day = utc_day(now)
    if cells > cap:
        remaining = max(0, cap - used_today(session, now=now, scope=scope))
        raise _refusal(cells=cells, cap=cap, remaining=remaining, now=now)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = sa.table("cell_usage", sa.column("scope"), sa.column("day"), sa.column("cells"))
    statement = (
        insert(table)
        .values(scope=scope, day=day, cells=cells)
        .on_conflict_do_update(
            index_elements=["scope", "day"],
            set_={"cells": table.c.cells + cells},
            where=table.c.cells + cells <= cap,
        )
        .returning(table.c.cells)
    )
    counted = session.execute(statement).scalar_one_or_none()
    if counted is None:
        remaining = max(0, cap - used_today(session, now=now, scope=scope))
        raise _refusal(cells=cells, cap=cap, remaining=remaining, now=now)
    return int(counted)


def _refusal(*, cells: int, cap: int, remaining: int, now: datetime) -> QuotaExceededError:
    wait = seconds_to_reset(now)
    left = f"only {remaining}" if remaining else "none"
    return QuotaExceededError(
        f"This job needs {cells} cells, and {left} of today's {cap} remain "
        f"(MAX_CELLS_PER_DAY). The count resets at 00:00 UTC, in {_in(wait)}; select fewer "
        "cells, or run them then.",
        retry_after=wait,
    )
