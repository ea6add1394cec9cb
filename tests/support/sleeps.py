"""A sleep to inject where code under test takes one (``sleep=``): it records the delays the
code asked for and yields to the event loop instead of waiting them out."""

from __future__ import annotations

import asyncio


class FastSleep:
    """Records each delay asked for, and only yields to the loop."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)
