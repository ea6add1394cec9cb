"""The tables. One module, so that relationships never need import tricks.

Statuses are stored as plain strings (see ``enrichment_app.domain``) so that adding a status
never needs a database enum migration.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from enrichment_app.domain import (
    ACTIVE_TASK_STATUSES,
    CellStatus,
    JobBackend,
    JobStatus,
    TaskStatus,
    utcnow,
)

_ACTIVE = f"status IN {ACTIVE_TASK_STATUSES!r}"

DEFAULT_WORKSPACE_ID = 1
"""The workspace the migration creates for the tables that existed before workspaces did."""


class Workspace(SQLModel, table=True):
    """A team's space: its tables, members and limits. Every table belongs to one."""

    __tablename__ = "workspace"
    __table_args__ = {"extend_existing": True}

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    max_cells_per_day: int | None = None
    """An admin's own daily cap for this workspace, under the app-wide one (None: that one)."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class DataTable(SQLModel, table=True):
    __tablename__ = "data_table"
    __table_args__ = {"extend_existing": True}

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(default=DEFAULT_WORKSPACE_ID, foreign_key="workspace.id", index=True)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class TableColumn(SQLModel, table=True):
    __tablename__ = "table_column"
    __table_args__ = (
        sa.UniqueConstraint("table_id", "name", name="uq_column_name"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    table_id: int = Field(foreign_key="data_table.id", index=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    position: int
    enricher: str | None = Field(default=None, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    width: int | None = None
    """The width the user dragged the column to, in pixels (None: the default)."""


class TableRow(SQLModel, table=True):
    __tablename__ = "table_row"
    __table_args__ = (
        sa.Index("ix_row_table_position", "table_id", "position"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    table_id: int = Field(foreign_key="data_table.id")
    position: int


class Cell(SQLModel, table=True):
    __tablename__ = "cell"
    __table_args__ = (
        sa.UniqueConstraint("row_id", "column_id", name="uq_cell_row_column"),
        sa.Index("ix_cell_table_updated", "table_id", "updated_at"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    table_id: int = Field(foreign_key="data_table.id")
    row_id: int = Field(foreign_key="table_row.id")
    column_id: int = Field(foreign_key="table_column.id", index=True)
    value: str | None = Field(default=None, sa_type=sa.Text)
    status: str = Field(default=CellStatus.EMPTY.value, max_length=20)
    error: str | None = Field(default=None, sa_type=sa.Text)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class EnrichmentJob(SQLModel, table=True):
    __tablename__ = "enrichment_job"
    __table_args__ = (
        sa.Index("ix_job_table_status", "table_id", "status"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    table_id: int = Field(foreign_key="data_table.id")
    status: str = Field(default=JobStatus.QUEUED.value, max_length=20)
    backend: str = Field(default=JobBackend.LOCAL.value, max_length=20)
    run_id: str | None = Field(default=None, max_length=100, index=True)
    total: int = 0
    done: int = 0
    failed: int = 0
    error: str | None = Field(default=None, sa_type=sa.Text)
    dispatch_error: str | None = Field(default=None, sa_type=sa.Text)
    """Why dispatching to Trigger.dev failed, when the job fell back to the local runner."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    started_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class EnrichmentTask(SQLModel, table=True):
    __tablename__ = "enrichment_task"
    __table_args__ = (
        sa.Index("ix_task_job_status", "job_id", "status"),
        # One active task per cell: the database itself refuses to queue a cell twice.
        sa.Index(
            "uq_task_active_cell",
            "row_id",
            "column_id",
            unique=True,
            sqlite_where=sa.text(_ACTIVE),
            postgresql_where=sa.text(_ACTIVE),
        ),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="enrichment_job.id")
    row_id: int = Field(foreign_key="table_row.id")
    column_id: int = Field(foreign_key="table_column.id")
    status: str = Field(default=TaskStatus.QUEUED.value, max_length=20)
    attempts: int = 0
    error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    started_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class ApiIdempotencyKey(SQLModel, table=True):
    """One ``Idempotency-Key`` seen by the enrich route, and the job it created (once created).

    The rules live with the code that keeps them, ``enrichment_app.services.idempotency``.
    """

    __tablename__ = "api_idempotency_key"
    __table_args__ = (
        sa.Index("ix_api_idempotency_key_created_at", "created_at"),
        {"extend_existing": True},
    )

    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)
    job_id: int | None = None
    """No foreign key: deleting a table deletes its jobs, and must not be blocked by this."""
    job_created_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    """Tells the job apart from a later job that reuses a deleted job's id (SQLite does that)."""
    skipped_active: int = 0
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    claim_token: str | None = Field(default=None, max_length=32)
    """Which request holds the claim: only that request may bind the key or release it."""


class CellUsage(SQLModel, table=True):
    """How many cells jobs queued on one UTC day, against ``MAX_CELLS_PER_DAY``.

    Counted in the database, so the cap holds across processes and restarts; the rules live in
    ``enrichment_app.services.usage``. ``scope`` is ``"all"`` until workspaces exist.
    """

    __tablename__ = "cell_usage"
    __table_args__ = {"extend_existing": True}

    scope: str = Field(primary_key=True, max_length=100)
    day: date = Field(primary_key=True)
    cells: int = 0


from enrichment_app.db.account_models import (  # noqa: E402  (the account tables, one module)
    ApiToken,
    AuditEvent,
    AuthSession,
    Invitation,
    LoginAttempt,
    Membership,
    OidcLogin,
    User,
)

__all__ = [
    "DEFAULT_WORKSPACE_ID",
    "ApiIdempotencyKey",
    "ApiToken",
    "AuditEvent",
    "AuthSession",
    "Cell",
    "CellUsage",
    "DataTable",
    "EnrichmentJob",
    "EnrichmentTask",
    "Invitation",
    "JobBackend",
    "LoginAttempt",
    "Membership",
    "OidcLogin",
    "TableColumn",
    "TableRow",
    "User",
    "Workspace",
]
