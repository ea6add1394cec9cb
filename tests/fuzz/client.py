"""Read everything a TriggerClient yields from a ``MockTransport`` handler, for the fuzz tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import httpx

from enrichment_app.trigger import TriggerApiError, TriggerClient

SECRET = "tr_dev_" + "f" * 24
T = TypeVar("T")


async def _no_sleep(_seconds: float) -> None:
    return None


def drain(
    handler: Callable[[httpx.Request], httpx.Response],
    read: Callable[[TriggerClient], AsyncIterator[T]],
) -> tuple[list[T], TriggerApiError | None]:
    """Everything ``read(client)`` yields, and the ``TriggerApiError`` that ended it, if any.

    Retries back off instantly; a read still going after 5 s fails the test as a hang.
    """

    async def run() -> tuple[list[T], TriggerApiError | None]:
        items: list[T] = []
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler), trust_env=False)
        async with (
            http,
            TriggerClient(
                secret_key=SECRET, base_url="http://trigger.fuzz", http=http, sleep=_no_sleep
            ) as client,
        ):
            try:
                async with asyncio.timeout(5):
                    async for item in read(client):
                        items.append(item)
            except TriggerApiError as exc:
                return items, exc
        return items, None

    return asyncio.run(run())
