"""A test's own Runtime, closed the way the app's lifespan closes it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from enrichment_app.runtime import Runtime


@contextlib.asynccontextmanager
async def closing(runtime: Runtime) -> AsyncIterator[Runtime]:
    """Yield ``runtime``; then stop it (runner, feeds, clients) and dispose of its engine."""
    try:
        yield runtime
    finally:
        await runtime.stop()
        runtime.engine.dispose()
