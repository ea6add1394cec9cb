"""Integration fixtures: a throwaway PostgreSQL cluster and Redis server (Debian's packages).

The cluster lives in a temporary directory, listens on a free loopback port (and a Unix socket
in that directory) and is stopped when the session ends. ``postgres_database`` gives each test
its own database in it. Redis listens on a Unix socket only, started on first use.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.support.servers import ServerUnavailable, postgres_cluster, redis_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Start a PostgreSQL cluster for this test session; yields the URL of its admin database."""
    try:
        with postgres_cluster() as url:
            yield url
    except ServerUnavailable as exc:
        pytest.fail(f"Could not start PostgreSQL: {exc}", pytrace=False)


@pytest.fixture
def postgres_database(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh, empty database of the session's cluster, dropped after the test."""
    name = f"t_{abs(hash(request.node.nodeid)) % 10**10}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Start a Redis server for this test session; yields its ``unix://`` URL."""
    try:
        with redis_server() as url:
            yield url
    except ServerUnavailable as exc:
        pytest.fail(f"Could not start Redis: {exc}", pytrace=False)
