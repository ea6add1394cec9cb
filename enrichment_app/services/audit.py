"""The audit log: who did what, to what, and when. Written in the same transaction as the deed.

Admins read it on the audit page, paged and filtered by table, user and action. Targets are
kept in words (a table's name, a member's email), so an entry still reads after its table is
deleted. Entries are never changed by the app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from enrichment_app.db.models import AuditEvent, DataTable, EnrichmentJob, Membership
from enrichment_app.services.access import Actor, Grant
from enrichment_app.services.jobs import JobView

PAGE_SIZE = 50
MAX_DETAIL_CHARS = 2000


class Audited(StrEnum):
    """The actions the log records."""

    TABLE_CREATE = "table.create"
    TABLE_IMPORT = "table.import"
    TABLE_EXPORT = "table.export"
    TABLE_DELETE = "table.delete"
    COLUMN_ADD = "column.add"
    COLUMN_CHANGE = "column.change"
    COLUMN_DELETE = "column.delete"
    CELL_EDIT = "cell.edit"
    ROWS_ADD = "rows.add"
    ROW_EDIT = "row.edit"
    JOB_RUN = "job.run"
    JOB_CANCEL = "job.cancel"
    SIGN_IN = "user.sign_in"
    SIGN_IN_FAILED = "user.sign_in_failed"
    SIGN_OUT = "user.sign_out"
    SIGN_OUT_EVERYWHERE = "user.sign_out_everywhere"
    OWNER_SETUP = "user.owner_setup"
    INVITE = "member.invite"
    INVITE_REVOKE = "member.invite_revoke"
    INVITE_ACCEPT = "member.join"
    ROLE_CHANGE = "member.role_change"
    MEMBER_REMOVE = "member.remove"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    WORKSPACE_CREATE = "workspace.create"
    WORKSPACE_RENAME = "workspace.rename"
    LIMITS_CHANGE = "workspace.limits"


@dataclass(frozen=True, slots=True)
class AuditFilter:
    table_id: int | None = None
    user_id: int | None = None
    action: str = ""


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    total: int
    page: int
    pages: int


def record(
    session: Session,
    *,
    actor: Actor,
    action: Audited,
    workspace_id: int | None,
    target_type: str = "",
    target_id: int | None = None,
    target: str = "",
    detail: str = "",
    now: datetime | None = None,
) -> None:
    session.add(
        AuditEvent(
            at=now or datetime.now(UTC),
            workspace_id=workspace_id,
            actor_user_id=actor.user_id,
            actor=actor.label[:300],
            action=action.value,
            target_type=target_type,
            target_id=target_id,
            target=target[:300],
            detail=detail[:MAX_DETAIL_CHARS],
        )
    )


def read(session: Session, *, workspace_id: int, where: AuditFilter, page: int = 1) -> AuditPage:
    """One page of the workspace's log, newest first, with its members' sign-ins and sign-outs."""
    members = select(Membership.user_id).where(Membership.workspace_id == workspace_id)
    query = select(AuditEvent).where(
        sa.or_(
            col(AuditEvent.workspace_id) == workspace_id,
            sa.and_(
                col(AuditEvent.workspace_id).is_(None),
                col(AuditEvent.actor_user_id).in_(members.scalar_subquery()),
            ),
        )
    )
    if where.table_id is not None:
        query = query.where(
            AuditEvent.target_type == "table", AuditEvent.target_id == where.table_id
        )
    if where.user_id is not None:
        query = query.where(AuditEvent.actor_user_id == where.user_id)
    if where.action:
        query = query.where(col(AuditEvent.action).startswith(where.action))
    total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    events = session.exec(
        query.order_by(col(AuditEvent.id).desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).all()
    return AuditPage(list(events), total, page, pages)


def table_label(session: Session, table_id: int) -> str:
    table = session.get(DataTable, table_id)
    return table.name if table is not None else f"table {table_id}"


def record_on_table(
    session: Session,
    *,
    grant: Grant,
    action: Audited,
    table_id: int,
    detail: str = "",
    label: str | None = None,
) -> None:
    """An entry about one table of the grant's workspace (its name looked up unless given)."""
    record(
        session,
        actor=grant.actor,
        action=action,
        workspace_id=grant.workspace_id,
        target_type="table",
        target_id=table_id,
        target=label if label is not None else table_label(session, table_id),
        detail=detail,
    )


def job_started(grant: Grant, table_id: int) -> Callable[[Session, EnrichmentJob, int], None]:
    """An ``on_created`` hook for ``create_job``: the run is logged in the job's transaction."""

    def write(session: Session, job: EnrichmentJob, skipped_active: int) -> None:
        skipped = f", {skipped_active} already running" if skipped_active else ""
        record_on_table(
            session,
            grant=grant,
            action=Audited.JOB_RUN,
            table_id=table_id,
            detail=f"job {job.id}: {job.total} cell{'s' if job.total != 1 else ''}{skipped}",
        )

    return write


def job_canceled(grant: Grant, table_id: int) -> Callable[[Session, JobView], None]:
    """An ``on_canceled`` hook for ``cancel_enrichment``."""

    def write(session: Session, view: JobView) -> None:
        record_on_table(
            session,
            grant=grant,
            action=Audited.JOB_CANCEL,
            table_id=table_id,
            detail=f"job {view.id}: {view.done} done, {view.total - view.done} not run",
        )

    return write
