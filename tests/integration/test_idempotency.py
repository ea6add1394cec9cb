"""The ``Idempotency-Key`` records on their own: who owns a claim, and what a taken-over claim
may still do. (The API's use of them is in test_api.py.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import EnrichmentJob
from enrichment_app.db.sessions import in_transaction, unit_of_work
from enrichment_app.domain import CellRef, utcnow
from enrichment_app.errors import IdempotencyClaimLostError
from enrichment_app.services import idempotency
from enrichment_app.services.jobs import cancel_job, create_job
from tests.integration.db_helpers import column_refs, seed_demo_table

KEY = "client-retry-7"


@pytest.fixture
def cells(open_session: SessionFactory) -> list[CellRef]:
    with open_session() as session:
        table_id = seed_demo_table(session)
        return column_refs(session, table_id, "Email domain")[:3]


def binding(claimed: idempotency.Claimed) -> Callable[[Session, EnrichmentJob, int], None]:
    """What the API hands ``create_job``: bind the key to the job, in the job's transaction."""

    def bind(session: Session, job: EnrichmentJob, skipped_active: int) -> None:
        assert job.id is not None
        idempotency.bind(
            session,
            key=KEY,
            token=claimed.token,
            job_id=job.id,
            job_created_at=job.created_at,
            skipped_active=skipped_active,
        )

    return bind


async def create(
    open_session: SessionFactory, cells: list[CellRef], claimed: idempotency.Claimed
) -> EnrichmentJob:
    created = await in_transaction(
        open_session,
        create_job,
        table_id=1,
        cells=cells,
        max_cells=100,
        on_created=binding(claimed),
    )
    return created.job


async def claim(open_session: SessionFactory, cells: list[CellRef], now: datetime) -> object:
    digest = idempotency.fingerprint(table_id=1, cells=cells)
    return await idempotency.claim(open_session, key=KEY, fingerprint=digest, now=now)


def job_ids(open_session: SessionFactory) -> list[int | None]:
    with open_session() as session:
        return list(session.exec(select(EnrichmentJob.id)).all())


async def test_a_request_whose_claim_was_taken_over_creates_no_job(
    open_session: SessionFactory, cells: list[CellRef]
) -> None:
    """A request stalls past ``CLAIM_TTL`` after claiming its key; the client's retry takes the
    claim over and creates the job. The stalled request must then create nothing: binding the
    key by name alone re-bound it to a second job for the same request."""
    start = utcnow()
    stalled = await claim(open_session, cells, start)
    retry = await claim(open_session, cells, start + idempotency.CLAIM_TTL + timedelta(seconds=1))
    assert isinstance(stalled, idempotency.Claimed) and isinstance(retry, idempotency.Claimed)

    job = await create(open_session, cells, retry)
    with unit_of_work(open_session) as session:  # the job ends, so its cells are free again
        assert job.id is not None
        cancel_job(session, job_id=job.id)

    with pytest.raises(IdempotencyClaimLostError):
        await create(open_session, cells, stalled)
    assert job_ids(open_session) == [job.id], "the stalled request's job was rolled back"
    again = await claim(open_session, cells, start + timedelta(seconds=30))
    assert again == idempotency.Replay(job_id=job.id or 0, skipped_active=0)


async def test_a_request_whose_claim_was_taken_over_cannot_free_the_new_claim(
    open_session: SessionFactory, cells: list[CellRef]
) -> None:
    start = utcnow()
    stalled = await claim(open_session, cells, start)
    retry = await claim(open_session, cells, start + idempotency.CLAIM_TTL + timedelta(seconds=1))
    assert isinstance(stalled, idempotency.Claimed) and isinstance(retry, idempotency.Claimed)
    with unit_of_work(open_session) as session:  # the stalled request fails and lets its key go
        idempotency.release(session, key=KEY, token=stalled.token)
    third = await claim(open_session, cells, start + idempotency.CLAIM_TTL + timedelta(seconds=2))
    assert third == idempotency.InProgress(), "the retry still holds the key"
    job = await create(open_session, cells, retry)
    assert job_ids(open_session) == [job.id]
