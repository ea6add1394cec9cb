"""The table change bus: ``publish(table_id, change)`` here, ``subscribe(table_id)`` anywhere.

One bus per backend process. A change published in the process reaches the process's own
subscribers at once; a bus with a transport (PostgreSQL ``LISTEN/NOTIFY``, Redis pub/sub) also
sends it to the other processes, which deliver it to theirs. Sending is throttled per table:
the first change goes out at once, the ones that follow within ``send_interval`` go out
together, merged, after it (the runner writes thousands of cells a second; the pages need to
hear "these rows changed" a few times a second, not per cell). Each process ignores its own
messages coming back.

A subscription merges what it has not yet read into one change, so a slow reader never falls
behind. It also hears how the transport fares (``BusState``): when it is down, pages fall back
to polling; when it comes back, every subscription gets ``TableChange.everything()``, because
messages sent meanwhile were lost.

``publish`` may be called from any thread (it runs after a commit, in the worker thread that
ran the unit of work); before ``start`` and after ``aclose`` it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from enrichment_app.bus.changes import TableChange, decode, encode, merged

logger = logging.getLogger(__name__)

SEND_INTERVAL_SECONDS = 0.05
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class BusState:
    """Whether changes from other processes arrive; ``reason`` says why not."""

    up: bool
    reason: str = ""


UP = BusState(True)
NOT_STARTED = BusState(False, "the table change bus is not running")


class Subscription:
    """What one subscriber of one table has not read yet: a merged change, and the bus state."""

    def __init__(self, table_id: int, state: BusState) -> None:
        self.table_id = table_id
        self.state = state
        self._change: TableChange | None = None
        self._state_news = False
        self._ready = asyncio.Event()

    def _put(self, change: TableChange) -> None:
        self._change = merged(self._change, change)
        self._ready.set()

    def _put_state(self, state: BusState) -> None:
        if state != self.state:
            self.state = state
            self._state_news = True
            self._ready.set()

    def take(self) -> TableChange | None:
        """What changed and was not read yet, without waiting (None: nothing)."""
        change, self._change = self._change, None
        return change

    async def next(self) -> TableChange | BusState:
        """The next news: the bus's new state if it changed, else everything that changed."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            if self._state_news:
                self._state_news = False
                if self._change is not None:
                    self._ready.set()
                return self.state
            if self._change is not None:
                change, self._change = self._change, None
                return change


class TableChangeBus:
    """In-process delivery; transports subclass it (``_connect_and_listen``, ``_send``)."""

    name = "in-process"
    transport = False
    """Whether changes travel to other processes (else they stay in this one)."""

    def __init__(self, *, send_interval: float = SEND_INTERVAL_SECONDS) -> None:
        self.origin = uuid.uuid4().hex[:12]
        self.send_interval = send_interval
        self.state = NOT_STARTED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._subscriptions: dict[int, set[Subscription]] = {}
        self._outbox: dict[int, TableChange] = {}
        self._outbox_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._failures = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._outbox_ready = asyncio.Event()
        if not self.transport:
            self._set_state(UP)
        else:
            self._set_state(BusState(False, f"the {self.name} bus is not connected yet"))
            self._tasks = [
                asyncio.create_task(self._keep_listening(), name=f"{self.name}-bus-listen"),
                asyncio.create_task(self._keep_sending(), name=f"{self.name}-bus-send"),
            ]

    async def aclose(self) -> None:
        """Stop; what is still waiting to be sent goes out first (for at most a second)."""
        self._loop = None
        self._set_state(NOT_STARTED)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._outbox:
            batch, self._outbox = self._outbox, {}
            try:
                async with asyncio.timeout(1.0):
                    await self._send([encode(self.origin, t, c) for t, c in batch.items()])
            except Exception as exc:
                logger.warning(
                    "%d table change(s) were not sent before closing: %s", len(batch), exc
                )
        await self._close_listener()
        await self._close_sender()

    # -- publishing and subscribing ----------------------------------------------------------

    def publish(self, table_id: int, change: TableChange) -> None:
        """Tell every subscriber of the table, here and in the other processes (thread-safe)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            self._accept(table_id, change)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._accept, table_id, change)

    @contextlib.contextmanager
    def subscribe(self, table_id: int) -> Iterator[Subscription]:
        subscription = Subscription(table_id, self.state)
        self._subscriptions.setdefault(table_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscriptions.get(table_id, set())
            subscribers.discard(subscription)
            if not subscribers:
                self._subscriptions.pop(table_id, None)

    def subscribed_tables(self) -> list[int]:
        return sorted(self._subscriptions)

    def _accept(self, table_id: int, change: TableChange) -> None:
        self._deliver(table_id, change)
        if self.transport:
            self._outbox[table_id] = merged(self._outbox.get(table_id), change)
            self._outbox_ready.set()

    def _deliver(self, table_id: int, change: TableChange) -> None:
        for subscription in list(self._subscriptions.get(table_id, ())):
            subscription._put(change)

    def _received(self, message: str | bytes) -> None:
        """A message from the transport: deliver it here, unless this process sent it."""
        decoded = decode(message)
        if decoded is None:
            logger.warning("ignoring a malformed table change message: %.200r", message)
            return
        origin, table_id, change = decoded
        if origin != self.origin:
            self._deliver(table_id, change)

    def _set_state(self, state: BusState) -> None:
        was_down = not self.state.up
        self.state = state
        for subscriptions in list(self._subscriptions.values()):
            for subscription in list(subscriptions):
                subscription._put_state(state)
                if state.up and was_down:
                    subscription._put(TableChange.everything())  # what was missed meanwhile

    # -- the transport ---------------------------------------------------------------------

    async def _keep_listening(self) -> None:
        """Listen, and reconnect with a growing wait (reset once connected) when it fails."""
        self._failures = 0
        while True:
            try:
                await self._connect_and_listen(self._on_connected)
                raise ConnectionError("the connection closed")
            except Exception as exc:
                self._failures += 1
                delay = min(
                    RECONNECT_FIRST_SECONDS * 2 ** (self._failures - 1), RECONNECT_MAX_SECONDS
                )
                reason = f"the {self.name} bus is unreachable ({type(exc).__name__}: {exc})"
                if self._failures == 1:
                    logger.warning("%s; retrying in %.1f s", reason, delay)
                self._set_state(BusState(False, reason))
                await self._close_listener()
                await asyncio.sleep(delay)

    def _on_connected(self) -> None:
        if not self.state.up:
            logger.info("the %s table change bus is connected", self.name)
        self._failures = 0
        self._set_state(UP)

    async def _keep_sending(self) -> None:
        """Send what the outbox holds: at once, then at most every ``send_interval`` seconds."""
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            batch, self._outbox = self._outbox, {}
            messages = [encode(self.origin, t, change) for t, change in batch.items()]
            try:
                await self._send(messages)
            except BaseException as exc:
                for table_id, change in batch.items():  # kept for the next try, or aclose
                    self._outbox[table_id] = merged(change, self._outbox.get(table_id, change))
                if not isinstance(exc, Exception):
                    raise
                logger.warning("could not send %d table change(s): %s", len(messages), exc)
                self._outbox_ready.set()
                await self._close_sender()
                await asyncio.sleep(RECONNECT_FIRST_SECONDS)
                continue
            await asyncio.sleep(self.send_interval)

    async def _connect_and_listen(self, connected: Callable[[], None]) -> None:
        """Connect, call ``connected()``, then hand each message to ``_received`` until the
        connection fails (raise) or closes (return)."""
        raise NotImplementedError

    async def _send(self, messages: list[str]) -> None:
        raise NotImplementedError

    async def _close_listener(self) -> None:
        """Close the listening connection (``_connect_and_listen`` opens a new one)."""

    async def _close_sender(self) -> None:
        """Close the sending connection (the next ``_send`` opens a new one)."""
