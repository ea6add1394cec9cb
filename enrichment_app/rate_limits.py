"""Rate limits per client, for REST API calls and job starts (the ``limits`` library).

A client is named by a key the caller builds (``client_key``): the API key a request carries,
the address it came from, or a browser tab's session token. Keys are hashed before they are
stored, so a token never sits in the limiter's memory, and the limiter forgets a key once its
window has passed (``limits``' memory storage expires them), so its memory stays bounded by the
clients active in the last window. The counts are per process: with several backend workers
each one counts its own share.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from enum import StrEnum

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from enrichment_app.errors import ConfigError


class Limit(StrEnum):
    API = "api"
    JOB_START = "job_start"


def parse_rate(value: str) -> RateLimitItem:
    """``600/minute``, ``10/second``, ``100 per hour``: a count per period."""
    try:
        return parse(value)
    except ValueError:
        raise ConfigError(
            f"{value!r} is not a rate; write a count per period, like 600/minute or 10/second."
        ) from None


def client_key(kind: str, secret: str) -> str:
    """A limiter key for a client named by ``secret`` (a token, an address): never the value."""
    return f"{kind}:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Refused:
    retry_after: int
    """Whole seconds until the client may try again (at least 1)."""
    rate: str


@dataclass
class RateLimits:
    api: str
    job_start: str
    _items: dict[Limit, RateLimitItem] = field(init=False)
    _storage: MemoryStorage = field(init=False)
    _limiter: SlidingWindowCounterRateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self._items = {Limit.API: parse_rate(self.api), Limit.JOB_START: parse_rate(self.job_start)}
        self._storage = MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    def hit(self, limit: Limit, key: str) -> Refused | None:
        """Count one use by ``key``; ``Refused`` (with when to retry) if it is over its rate."""
        item = self._items[limit]
        if self._limiter.hit(item, limit.value, key):
            return None
        reset = self._limiter.get_window_stats(item, limit.value, key).reset_time
        return Refused(max(1, math.ceil(reset - time.time())), str(item))

    def keys(self) -> int:
        """How many keys the limiter holds now (for tests of its memory)."""
        return len(self._storage.storage)

    def close(self) -> None:
        self._storage.reset()
