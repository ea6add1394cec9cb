"""The app's database from outside the app: what a test or benchmark sets up for a page to show.

The app may be running on the same database (its own engine, in a thread or another process);
these helpers use an engine of their own and dispose of it when done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

from sqlmodel import Session, col, func, select

from enrichment_app.db.engine import create_db_engine, session_factory
from enrichment_app.db.migrate import upgrade_database
from enrichment_app.db.models import EnrichmentJob
from enrichment_app.domain import ColumnKind
from enrichment_app.services.tables import ColumnSpec, create_table


@contextlib.contextmanager
def database_session(database_url: str, *, migrate: bool = False) -> Iterator[Session]:
    """A session on ``database_url`` (migrated to the newest schema first with ``migrate``)."""
    engine = create_db_engine(database_url)
    try:
        if migrate:
            upgrade_database(engine)
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def greeting(template: str = "Hi {Name}") -> ColumnSpec:
    """A ``Greeting`` column of the built-in ``template`` enricher: instant, offline, no keys."""
    return ColumnSpec(
        "Greeting", kind=ColumnKind.ENRICHMENT, enricher="template", config={"template": template}
    )


def add_table(
    session: Session,
    *,
    name: str,
    columns: Sequence[ColumnSpec],
    rows: Iterable[Sequence[str]],
    max_cell_chars: int = 1000,
) -> int:
    """Create a table with the services and commit it; its id."""
    table = create_table(
        session=session, name=name, columns=columns, rows=rows, max_cell_chars=max_cell_chars
    )
    session.commit()
    assert table.id is not None
    return table.id


def job_count(database_url: str, table_id: int | None = None) -> int:
    """How many jobs the database holds (of one table, given its id)."""
    query = select(func.count(col(EnrichmentJob.id)))
    if table_id is not None:
        query = query.where(EnrichmentJob.table_id == table_id)
    with database_session(database_url) as session:
        return session.exec(query).one()
