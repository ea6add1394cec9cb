"""The table change bus: every write that changes a table tells the pages showing it.

``changes`` is what a change says (pure), ``recorder`` notes changes on a database session and
publishes them once it commits, ``base`` is the bus (in-process delivery, subscriptions,
throttled sending), and ``postgres`` / ``redis`` carry it between backend processes.
``bus_for(settings)`` picks one: Redis when ``REFLEX_REDIS_URL`` is set, PostgreSQL
``LISTEN/NOTIFY`` when the database is PostgreSQL, in-process on the embedded SQLite default
(one backend process); ``TABLE_CHANGE_BUS`` overrides the choice.
"""

from __future__ import annotations

from enrichment_app.bus.base import UP, BusState, Subscription, TableChangeBus
from enrichment_app.bus.changes import CELLS, DELETED, JOB, SHAPE, TableChange
from enrichment_app.bus.recorder import note_change, publishing
from enrichment_app.errors import ConfigError
from enrichment_app.settings import Settings

__all__ = [
    "CELLS",
    "DELETED",
    "JOB",
    "SHAPE",
    "UP",
    "BusState",
    "Subscription",
    "TableChange",
    "TableChangeBus",
    "bus_for",
    "bus_kind",
    "note_change",
    "publishing",
]


def bus_kind(settings: Settings) -> str:
    """``memory``, ``postgres`` or ``redis``: the setting, or what the deployment offers."""
    chosen = settings.table_change_bus
    if chosen != "auto":
        return chosen
    if settings.redis_url:
        return "redis"
    if settings.database_url.startswith("postgresql"):
        return "postgres"
    return "memory"


def bus_for(settings: Settings) -> TableChangeBus:
    kind = bus_kind(settings)
    if kind == "redis":
        from enrichment_app.bus.redis import RedisBus

        if not settings.redis_url:
            raise ConfigError("TABLE_CHANGE_BUS=redis needs REFLEX_REDIS_URL")
        return RedisBus(settings.redis_url)
    if kind == "postgres":
        from enrichment_app.bus.postgres import PostgresBus

        if not settings.database_url.startswith("postgresql"):
            raise ConfigError("TABLE_CHANGE_BUS=postgres needs a PostgreSQL DATABASE_URL")
        return PostgresBus(settings.database_url)
    return TableChangeBus()
