"""The fake's tag feed: ``GET /realtime/v1/runs?tags=a,b&createdAt=1d``, Electric long-polling.

What ``runs.subscribeToRunsWithTag`` reads (Trigger.dev's ``realtime.v1.runs.ts`` and its
native realtime client): every run that has all the tags (``"runTags" @> ARRAY[...]``) and was
created within ``createdAt`` (24 h when absent, at most ``MAX_CREATED_AT`` back), first as a
snapshot of inserts, then, on ``live=true`` polls held until something changes, each changed
run (an insert for a run made since the client's offset, else an update). The handle pins the
window (``runs_<floor ms>_<generation>_<random>``); ``rotate_tag_feeds`` expires every handle, so
the next poll gets 409 must-refetch. Public tokens need ``read`` on the runs type, the tags
type, or ``tags:<tag>`` for one of the tags asked for (``anyResource``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.trigger import encoding, protocol
from tests.fakes.trigger.access import Access
from tests.fakes.trigger.runs import Run, random_id
from tests.fakes.trigger.shape_routes import must_refetch, next_seq, shape_response

DEFAULT_CREATED_AT = "24h"
MAX_CREATED_AT = 30 * 86400
"""The server's ceiling on how far back the feed reaches (seconds)."""


class TagFeedRoutes(Access):
    """The handler of the tag feed; part of ``FakeTrigger``."""

    live_poll_timeout: float
    _tag_feed_generation: int

    def _tag_routes(self) -> list[Route]:
        return [Route("/realtime/v1/runs", self._realtime_runs, methods=["GET", "OPTIONS"])]

    async def _realtime_runs(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._preflight(request)
        asked = request.query_params.get("tags")
        tags = asked.split(",") if asked else []
        _, fault, early = await self._begin(
            "realtime_runs", request, cors=True, tags=lambda _raw: tags
        )
        if early is not None:
            return early
        auth = self._authenticate(request, allow_jwt=True)
        if isinstance(auth, Response):
            return self._cors(request, auth)
        bad = [t for t in tags if not t or protocol.UNSAFE_TAG_CHARS.search(t)]
        if bad:
            body = {"error": f"Invalid tag: {bad[0]!r}"}
            return self._cors(request, JSONResponse(body, status_code=400))
        resources = [
            protocol.Resource("runs"),
            protocol.Resource("tags"),
            *(protocol.Resource("tags", t) for t in tags),
        ]
        if not auth.allows("read", resources):
            return self._cors(request, JSONResponse(protocol.UNAUTHORIZED_BODY, status_code=403))
        response = await self._tag_feed_response(request, tags)
        return self._maybe_drop(fault, self._cors(request, response))

    def _feed_floor_ms(self, created_at: str | None) -> int:
        ago = protocol.duration_ago_seconds(created_at or DEFAULT_CREATED_AT)
        ago = MAX_CREATED_AT if ago is None else min(ago, MAX_CREATED_AT)
        return int((self._now() - ago) * 1000)

    def _handle(self, floor_ms: int) -> str:
        return f"runs_{floor_ms}_{self._tag_feed_generation}_{random_id(8)}"

    def _handle_floor(self, handle: str) -> int | None:
        """The window a handle pins, or None once ``rotate_tag_feeds`` expired it."""
        parts = handle.split("_")
        if len(parts) != 4 or parts[0] != "runs" or parts[2] != str(self._tag_feed_generation):
            return None
        try:
            return int(parts[1])
        except ValueError:
            return None

    def _matching(self, tags: list[str], floor_ms: int) -> list[Run]:
        wanted = set(tags)
        return [
            run
            for run in self._runs.values()
            if wanted <= set(run.tags) and run.created_at.timestamp() * 1000 > floor_ms
        ]

    async def _tag_feed_response(self, request: Request, tags: list[str]) -> Response:
        params = request.query_params
        offset = params.get("offset", encoding.INITIAL_OFFSET)
        handle = params.get("handle") or params.get("shape_id")
        live = params.get("live") == "true"
        skip = [c for c in (params.get("skipColumns") or "").split(",") if c]

        def messages_for(runs: list[Run], seen: int) -> list[dict[str, Any]]:
            return [
                encoding.change_message(
                    run.internal_id,
                    encoding.serialize_run_row(run.row(), skip),
                    "insert" if run.created_seq > seen else "update",
                )
                for run in sorted(runs, key=lambda r: r.change_seq)
            ]

        with self._lock:
            floor = self._handle_floor(handle) if handle else None
            if handle and floor is None:
                return must_refetch(self._handle(self._feed_floor_ms(params.get("createdAt"))))
            if offset == encoding.INITIAL_OFFSET or not handle or not live:
                if floor is None:
                    floor = self._feed_floor_ms(params.get("createdAt"))
                    handle = self._handle(floor)
                runs = self._matching(tags, floor)
                latest = max((r.change_seq for r in self._runs.values()), default=0)
                messages = messages_for(runs, 0)
                assert handle is not None
                return shape_response(
                    request,
                    messages,
                    offset=encoding.encode_offset(latest, next_seq()),
                    handle=handle,
                    cursor=None,
                    skip=skip,
                )
        assert handle is not None and floor is not None
        seen = encoding.parse_offset_version(offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.live_poll_timeout
        entry = (frozenset(tags), seen)
        parked = False
        try:
            while True:
                event = self._current_event()
                with self._lock:
                    if self._handle_floor(handle) is None:
                        return must_refetch(self._handle(floor))
                    changed = [r for r in self._matching(tags, floor) if r.change_seq > seen]
                    latest = max((r.change_seq for r in self._runs.values()), default=0)
                if changed:
                    return shape_response(
                        request,
                        messages_for(changed, seen),
                        offset=encoding.encode_offset(latest, next_seq()),
                        handle=handle,
                        cursor=str(next_seq()),
                        skip=skip,
                    )
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closing:
                    return shape_response(
                        request,
                        [],
                        offset=encoding.encode_offset(max(seen, latest), next_seq()),
                        handle=handle,
                        cursor=str(next_seq()),
                        skip=skip,
                    )
                if not parked:
                    parked = True
                    with self._lock:
                        self._tag_polls.append(entry)
                    self._notify()
                    event = self._current_event()
                await self._wait_change(event, remaining)
        finally:
            if parked:
                with self._lock:
                    self._tag_polls.remove(entry)
