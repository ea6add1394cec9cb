"""A page of the app as the backend sees it: Reflex's websocket protocol, without a browser.

``ReflexSocket`` opens ``/_event`` the way the compiled frontend does (Engine.IO 4 over a raw
websocket, Socket.IO 5 namespace ``/_event``, the tab's token in the query) and sends the
``hydrate_and_load`` boot event for a route in its namespace connect packet, exactly the frame
the frontend sends (minus the per-state hashes, so the backend sends the full state). It then
answers pings, can send events (``send_event``), merges every delta it receives into ``state``
(``state[<state name>][<var name>]``, the ``_rx_state_`` suffix removed: what the browser
renders), and can reconnect with the same token after the backend went away, as the frontend's
socket does.

It is a minimal asyncio + wsproto client (python-socketio's async client needs aiohttp, which
the project does not install). Used by the fan-out benchmark (bench/fanout.py), the fault-matrix
soak (tests/soak/) and anything else that needs many cheap tabs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from tests.support.waiting import WaitTimeout, await_until

NAMESPACE = "/_event"
ROOT_STATE = "reflex___state____state"
HYDRATE = f"{ROOT_STATE}.hydrate_and_load"
VAR_SUFFIX = "_rx_state_"
EVENT_PREFIX = f"42{NAMESPACE},"

TextHook = Callable[[str, float], None]
"""Called with every complete text message and its arrival time (``time.time()``)."""


def state_name(module: str, class_name: str, parent: str = ROOT_STATE) -> str:
    """Reflex's full name for a state class under ``parent`` (the root state by default).

    ``state_name("enrichment_app.state.table", "TableState")`` gives
    ``reflex___state____state.enrichment_app___state___table____table_state``.
    """
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in class_name).lstrip("_")
    return f"{parent}.{module.replace('.', '___')}____{snake}"


def router_data(path: str, query: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"pathname": path, "asPath": path, "query": dict(query or {})}


@dataclass
class ReflexSocket:
    """One tab, as far as the backend can tell: a Socket.IO connection that loaded ``path``."""

    host: str
    port: int
    path: str = "/tables/1"
    query: dict[str, str] = field(default_factory=dict)
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    on_text: TextHook | None = None
    record: bool = False
    """Keep every received text message in ``frames`` (for secret scans)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra handshake headers: a signed-in tab's ``Cookie`` (tests/support/accounts.py),
    an ``Origin``."""
    frames: list[str] = field(default_factory=list)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: int = 0
    bytes_in: int = 0
    connects: int = 0
    """How many times the namespace was joined (1 + reconnections)."""
    joined: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the backend acknowledged the namespace connect; cleared when the socket ends."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the connection ended (the backend went away, or ``close``); cleared on connect."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _writer: asyncio.StreamWriter | None = None
    _ws: WSConnection | None = None
    _task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Open the websocket and join the namespace with the boot event (returns at once)."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.ended.clear()
        self._writer = writer
        self._ws = WSConnection(ConnectionType.CLIENT)
        target = f"{NAMESPACE}/?token={self.token}&EIO=4&transport=websocket"
        extra = [(k.encode(), v.encode()) for k, v in self.headers.items()]
        request = Request(host=f"{self.host}:{self.port}", target=target, extra_headers=extra)
        writer.write(self._ws.send(request))
        self._task = asyncio.create_task(self._read(reader), name=f"reflex-socket-{self.token}")

    async def reconnect(
        self, *, within: float = 60.0, interval: float = 0.2, attempt: float = 10.0
    ) -> None:
        """Connect again with the same token until the backend answers (it may be restarting).

        Each attempt lasts until the namespace is joined, the connection ends, or ``attempt``
        seconds pass; attempts repeat every ``interval`` seconds for ``within`` seconds.
        """
        await self.close()
        await await_until(
            lambda: self._join(attempt),
            timeout=within,
            interval=interval,
            message=f"the backend at {self.host}:{self.port} to take the socket back",
        )

    async def _join(self, within: float) -> bool:
        """One attempt to connect and join the namespace; closed again if it failed."""
        try:
            await self.connect()
            waits = [
                asyncio.ensure_future(self.joined.wait()),
                asyncio.ensure_future(self.ended.wait()),
            ]
            _, pending = await asyncio.wait(
                waits, timeout=within, return_when=asyncio.FIRST_COMPLETED
            )
            for waiting in pending:
                waiting.cancel()
            if self.joined.is_set():
                return True
        except OSError:
            pass
        await self.close()
        return False

    @property
    def local_port(self) -> int | None:
        """The client side's TCP port, which names this connection on the server's side.

        (psutil maps it to the backend worker process serving the connection.)
        """
        if self._writer is None:
            return None
        return int(self._writer.get_extra_info("sockname")[1])

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def send_event(self, name: str, payload: Mapping[str, Any] | None = None) -> None:
        """Send an event to a handler (``<state full name>.<handler>``), as the frontend does."""
        event = {
            "name": name,
            "payload": dict(payload or {}),
            "router_data": router_data(self.path, self.query),
        }
        self._send_text(EVENT_PREFIX + json.dumps(["event", event]))

    def vars(self, state: str) -> dict[str, Any]:
        """The merged variables of one state (empty until the backend sent them)."""
        return self.state.setdefault(state, {})

    async def wait_for(self, predicate: Callable[[], bool], within: float) -> bool:
        """Whether ``predicate()`` holds within ``within`` seconds (checked now, on each delta)."""
        try:
            await self.until(predicate, within=within, message="the page's state to match")
        except WaitTimeout:
            return False
        return True

    async def until(self, predicate: Callable[[], bool], *, within: float, message: str) -> None:
        """Wait until ``predicate()`` holds (checked now and on each delta); fail naming it."""
        await await_until(predicate, timeout=within, message=message, wake=self._changed)

    def _send_text(self, text: str) -> None:
        if self._writer is None or self._ws is None:
            raise RuntimeError("the socket is not connected")
        self._writer.write(self._ws.send(Message(data=text)))

    def _boot_packet(self) -> str:
        auth = {
            "event": {
                "name": HYDRATE,
                "payload": {},
                "router_data": router_data(self.path, self.query),
            }
        }
        return f"40{NAMESPACE},{json.dumps(auth)}"

    def _on_message(self, text: str, now: float) -> None:
        self.messages += 1
        self.bytes_in += len(text)
        if self.record:
            self.frames.append(text)
        if self.on_text is not None:
            self.on_text(text, now)
        if text.startswith("0{"):  # Engine.IO open: join the namespace with the boot event
            self._send_text(self._boot_packet())
        elif text == "2":  # Engine.IO ping
            self._send_text("3")
        elif text.startswith(f"40{NAMESPACE},"):
            self.connects += 1
            self.joined.set()
        elif text.startswith(f"44{NAMESPACE},"):
            raise RuntimeError(f"the backend refused the namespace connect: {text}")
        elif text.startswith(EVENT_PREFIX):
            self._merge(text[len(EVENT_PREFIX) :])

    def _merge(self, body: str) -> None:
        try:
            name, update = json.loads(body)
        except ValueError:
            return
        if name != "event" or not isinstance(update, dict):
            return
        for state, delta in (update.get("delta") or {}).items():
            target = self.state.setdefault(state, {})
            for key, value in delta.items():
                target[key.removesuffix(VAR_SUFFIX)] = value
        self._changed.set()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        assert self._ws is not None and self._writer is not None
        parts: list[str] = []
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except ConnectionError:
                    return
                now = time.time()
                if not data:
                    return
                self._ws.receive_data(data)
                for event in self._ws.events():
                    if isinstance(event, TextMessage):
                        parts.append(event.data)
                        if event.message_finished:
                            self._on_message("".join(parts), now)
                            parts.clear()
                    elif isinstance(event, Ping):
                        self._writer.write(self._ws.send(event.response()))
                    elif isinstance(event, RejectConnection):
                        raise RuntimeError(f"websocket refused: {event.status_code}")
                    elif isinstance(event, CloseConnection):
                        return
                    elif isinstance(event, AcceptConnection):
                        pass
        finally:
            self.joined.clear()
            self.ended.set()
            self._changed.set()

    async def close(self) -> None:
        task, writer = self._task, self._writer
        self._task = self._writer = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self.joined.clear()
        self.ended.set()
