"""Changes noted on a database session, published once its unit of work commits.

Services note what they change (``note_change``) on the session they are given; they never
commit (``enrichment_app.db.sessions``). A session from ``publishing(open_session, publish)``
hands its notes to ``publish`` after its transaction commits, and drops them if it rolls back,
so a page never hears of a change that did not happen. Sessions from a plain factory (the
worker process, tests) keep their notes to themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlmodel import Session

from enrichment_app.bus.changes import TableChange, merged
from enrichment_app.db.engine import SessionFactory

_NOTES = "enrichment_app.table_changes"

Publish = Callable[[int, TableChange], None]


def note_change(session: Session, table_id: int, change: TableChange) -> None:
    """Note that this unit of work changes the table; it is told once the work commits."""
    notes: dict[int, TableChange] = session.info.setdefault(_NOTES, {})
    notes[table_id] = merged(notes.get(table_id), change)


def publishing(open_session: SessionFactory, publish: Publish) -> SessionFactory:
    """A session factory whose sessions publish their notes after each commit."""

    def after_commit(session: Session) -> None:
        for table_id, change in session.info.pop(_NOTES, {}).items():
            publish(table_id, change)

    def after_rollback(session: Session) -> None:
        session.info.pop(_NOTES, None)

    def open_publishing_session() -> Session:
        session = open_session()
        sa.event.listen(session, "after_commit", after_commit)
        sa.event.listen(session, "after_rollback", after_rollback)
        return session

    return open_publishing_session
