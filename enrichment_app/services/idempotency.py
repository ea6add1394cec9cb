"""``Idempotency-Key`` for ``POST /api/tables/{id}/enrich``, stored in the database.

A client that retries a request (a timeout, a dropped connection) with the same key and the
same request gets the job the first request created, not a second one. The record lives in
the ``api_idempotency_key`` table (migration 0002), so it holds across restarts and across
backend workers that share the database.

Rules:

* The request is identified by a fingerprint of the table id and the *set* of cells, so the
  order of ``cells`` and duplicates do not matter.
* The same key with a different request is refused (the API answers 422).
* A key is claimed before the job is created. A second request with the key while the first
  is still working is refused (409, retry later). A claim whose request died before creating
  its job (the process crashed) is taken over after ``CLAIM_TTL`` (seconds).
* Each claim has a token, and only the request holding it may bind or release the key: a
  request that stalled past ``CLAIM_TTL`` and was taken over finds its token gone, and its
  job's unit of work rolls back (``IdempotencyClaimLostError``), so one key never makes two
  jobs.
* The key is bound to the job in the transaction that creates the job, so once the job
  exists every retry gets it, even if the request died right after (a crash while
  Trigger.dev was being called).
* A request that fails before creating its job (a 4xx from validation, a 404, an error)
  releases its key, so the client can fix the request and retry with the same key.
* Keys expire after ``KEY_TTL``; expired records are purged whenever a key is claimed.
* A key whose job no longer exists (its table was deleted) is free again.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import ApiIdempotencyKey, EnrichmentJob
from enrichment_app.db.sessions import in_transaction
from enrichment_app.domain import CellRef
from enrichment_app.errors import IdempotencyClaimLostError
from enrichment_app.services.jobs import JobView, job_view, task_ids
from enrichment_app.services.task_ranges import RowRanges
from enrichment_app.views import view_json

KEY_TTL = timedelta(hours=24)
CLAIM_TTL = timedelta(seconds=15)
"""How long a claim with no job yet holds its key. A live request holds one only between
claiming the key and creating its job (the key is bound in that transaction), which takes
milliseconds, or seconds while the database is busy; an older claim is a request that died,
and a client retrying after the crash must not be refused for long."""
_MAX_CLAIM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Claimed:
    """The key is ours: create the job and ``bind`` the key to it (or ``release`` it on failure),
    with this claim's ``token``."""

    token: str


@dataclass(frozen=True, slots=True)
class Replay:
    """The key already created this job: answer with it."""

    job_id: int
    skipped_active: int


@dataclass(frozen=True, slots=True)
class InProgress:
    """Another request with this key is still creating its job."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was used for a different request."""


Claim = Claimed | Replay | InProgress | Mismatch


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def fingerprint(
    *,
    table_id: int,
    cells: Iterable[CellRef],
    columns: Iterable[int] = (),
    ranges: Iterable[RowRanges] = (),
) -> str:
    """A digest of what the request asks for: the table, the set of cells, of whole columns and
    of rows by view (a request without the latter digests as it did before they existed)."""
    canonical: dict[str, object] = {
        "tableId": table_id,
        "cells": sorted({(c.row_id, c.column_id) for c in cells}),
    }
    if whole := sorted(set(columns)):
        canonical["columns"] = whole
    if by_view := [
        {"view": view_json(r.view), "spans": sorted(map(list, r.spans_by_column.items()))}
        for r in ranges
    ]:
        canonical["ranges"] = by_view
    encoded = json.dumps(canonical, separators=(",", ":"), sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()


def _live(session: Session, record: ApiIdempotencyKey, *, now: datetime) -> bool:
    """Whether the record still binds its key (else the key is free again)."""
    if record.job_id is None:
        return _utc(record.created_at) > now - CLAIM_TTL
    job = session.get(EnrichmentJob, record.job_id)
    return (
        job is not None
        and record.job_created_at is not None
        and _utc(job.created_at) == _utc(record.job_created_at)
    )


def _claim_once(session: Session, *, key: str, fingerprint: str, now: datetime) -> Claim:
    """One try at claiming ``key``; an ``IntegrityError`` means another request just took it."""
    session.execute(
        sa.delete(ApiIdempotencyKey).where(col(ApiIdempotencyKey.created_at) < now - KEY_TTL)
    )
    record = session.get(ApiIdempotencyKey, key)
    if record is not None:
        if _live(session, record, now=now):
            if record.fingerprint != fingerprint:
                return Mismatch()
            if record.job_id is None:
                return InProgress()
            return Replay(job_id=record.job_id, skipped_active=record.skipped_active)
        session.delete(record)
        session.flush()
    token = secrets.token_hex(16)
    session.add(
        ApiIdempotencyKey(key=key, fingerprint=fingerprint, created_at=now, claim_token=token)
    )
    session.flush()
    return Claimed(token=token)


async def claim(
    open_session: SessionFactory, *, key: str, fingerprint: str, now: datetime
) -> Claim:
    """Claim ``key`` for a request with ``fingerprint`` in a unit of work, or say why not."""
    for _ in range(_MAX_CLAIM_ATTEMPTS):
        try:
            return await in_transaction(
                open_session, _claim_once, key=key, fingerprint=fingerprint, now=now
            )
        except sa.exc.IntegrityError:
            continue  # another request claimed the key between our read and our insert: look again
    return InProgress()


def _held(key: str, token: str) -> tuple[sa.ColumnElement[bool], ...]:
    """The record of ``key`` while the claim with ``token`` still holds it, unbound."""
    return (
        col(ApiIdempotencyKey.key) == key,
        col(ApiIdempotencyKey.claim_token) == token,
        col(ApiIdempotencyKey.job_id).is_(None),
    )


def bind(
    session: Session,
    *,
    key: str,
    token: str,
    job_id: int,
    job_created_at: datetime,
    skipped_active: int,
) -> None:
    """Bind the claimed ``key`` to the job its request creates, in the job's transaction.

    Raises ``IdempotencyClaimLostError`` if the claim with ``token`` no longer holds the key (a
    retry took it over): the caller's unit of work then rolls back, job and all.
    """
    bound = session.execute(
        sa.update(ApiIdempotencyKey)
        .where(*_held(key, token))
        .values(job_id=job_id, job_created_at=job_created_at, skipped_active=skipped_active)
    )
    if bound.rowcount != 1:  # type: ignore[attr-defined]
        raise IdempotencyClaimLostError(
            "Another request with this Idempotency-Key took it over while this one was slow."
        )


def release(session: Session, *, key: str, token: str) -> None:
    """Free a claimed ``key`` whose request failed, so the client may retry with it; a claim
    that was taken over is left to the request that holds it now."""
    session.execute(sa.delete(ApiIdempotencyKey).where(*_held(key, token)))


def replay(session: Session, *, job_id: int) -> tuple[JobView, list[int], int]:
    """What a retried request gets: the job its key created, as it is now, its first task ids
    (as the first response listed them) and how many tasks it has."""
    shown, count = task_ids(session, job_id=job_id)
    return job_view(session, job_id=job_id), shown, count
