"""The table change bus over Redis pub/sub, for deployments with ``REFLEX_REDIS_URL``.

The same Redis Reflex keeps its state in; redis-py's asyncio client (installed with Reflex).
Each backend process subscribes to one channel and publishes on it.
"""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis

from enrichment_app.bus.base import TableChangeBus

CHANNEL = "enrichment_app:table_changes"


class RedisBus(TableChangeBus):
    name = "Redis"
    transport = True

    def __init__(self, redis_url: str, **options: float) -> None:
        super().__init__(**options)
        self._url = redis_url
        self._listener: aioredis.Redis | None = None
        self._pubsub: aioredis.client.PubSub | None = None
        self._sender: aioredis.Redis | None = None

    async def _connect_and_listen(self, connected: Callable[[], None]) -> None:
        self._listener = aioredis.Redis.from_url(self._url)
        self._pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(CHANNEL)
        connected()
        async for message in self._pubsub.listen():
            if message.get("type") == "message":
                self._received(message["data"])

    async def _send(self, messages: list[str]) -> None:
        if self._sender is None:
            self._sender = aioredis.Redis.from_url(self._url)
        async with self._sender.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.publish(CHANNEL, message)
            await pipe.execute()

    async def _close_listener(self) -> None:
        pubsub, listener = self._pubsub, self._listener
        self._pubsub = self._listener = None
        if pubsub is not None:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
        if listener is not None:
            await listener.aclose()

    async def _close_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.aclose()
