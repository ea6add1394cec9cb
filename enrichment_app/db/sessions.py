"""Running database work from async code: one session, on a worker thread, as one unit of work.

The transaction convention, for every module:

* A function that takes a ``session`` never commits or rolls back: the caller owns the unit of work.
* Whoever opens the session ends it: ``in_transaction`` (and ``unit_of_work`` in sync code)
  commits when the work returns and rolls back when it raises; ``in_session`` only reads.
* Work that needs several transactions (claim a key, then create a job, then dispatch it) takes
  the session factory and runs each step as its own unit of work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, TypeVar

from sqlmodel import Session

from enrichment_app.db.engine import SessionFactory

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def unit_of_work(open_session: SessionFactory) -> Iterator[Session]:
    """A session whose work commits when the block ends, or rolls back if the block raises."""
    with open_session() as session:
        yield session
        session.commit()


async def in_session(
    open_session: SessionFactory,
    work: Callable[Concatenate[Session, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``work(session, *args, **kwargs)`` on a worker thread, in a session that commits nothing."""

    def run() -> T:
        with open_session() as session:
            return work(session, *args, **kwargs)

    return await asyncio.to_thread(run)


async def in_transaction(
    open_session: SessionFactory,
    work: Callable[Concatenate[Session, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``work(session, *args, **kwargs)`` on a worker thread as one unit of work (commits)."""

    def run() -> T:
        with unit_of_work(open_session) as session:
            return work(session, *args, **kwargs)

    return await asyncio.to_thread(run)
