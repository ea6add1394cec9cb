"""The fake's JSON API: trigger, the token endpoints, retrieve, cancel and metadata."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.trigger import encoding, protocol
from tests.fakes.trigger.access import Access
from tests.fakes.trigger.runs import Run, retrieve_body

CURRENT_API_VERSION = "2025-07-16"


class ApiRoutes(Access):
    """The handlers of ``/api/...``; mixed into ``FakeTrigger``."""

    tasks: frozenset[str] | None
    issue_trigger_jwt: bool

    def _api_routes(self) -> list[Route]:
        return [
            Route("/api/v1/tasks/{task}/trigger", self._trigger, methods=["POST", "OPTIONS"]),
            Route("/api/v1/auth/jwt/claims", self._claims, methods=["POST"]),
            Route("/api/v1/auth/public-tokens", self._public_tokens, methods=["POST"]),
            Route("/api/v3/runs/{run_id}", self._retrieve, methods=["GET", "OPTIONS"]),
            Route("/api/v2/runs/{run_id}/cancel", self._cancel, methods=["POST"]),
            Route("/api/v1/runs/{run_id}/metadata", self._metadata, methods=["GET", "PUT"]),
        ]

    async def _trigger(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._preflight(request)
        task = request.path_params["task"]
        raw, fault, early = await self._begin("trigger", request, cors=True, tags=requested_tags)
        if early is not None:
            return early
        auth = self._authenticate(request, allow_jwt=True)
        if isinstance(auth, Response):
            return self._cors(request, auth)
        if not auth.allows("trigger", [protocol.Resource("tasks", task)]):
            return self._cors(request, JSONResponse(protocol.UNAUTHORIZED_BODY, status_code=403))
        if not raw:
            return self._cors(
                request, JSONResponse({"error": "Request body is empty"}, status_code=400)
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return self._cors(request, JSONResponse({"error": "Invalid JSON"}, status_code=400))
        if not isinstance(body, dict) or not isinstance(body.get("options", {}), dict):
            return self._cors(
                request, JSONResponse({"error": "Invalid request body"}, status_code=400)
            )
        if self.tasks is not None and task not in self.tasks:
            return self._cors(request, JSONResponse({"error": "Task not found"}, status_code=404))

        request_key = request.headers.get("x-trigger-request-idempotency-key")
        with self._lock:
            cached_id = self._request_idempotency.get((task, request_key)) if request_key else None
        if cached_id is not None:
            response = self._trigger_response(cached_id, is_cached=False)
        else:
            run, is_cached = self._trigger_run(task, body, request)
            if request_key:
                with self._lock:
                    self._request_idempotency[(task, request_key)] = run.friendly_id
            response = self._trigger_response(run.friendly_id, is_cached=is_cached)
            if not is_cached:
                self._start_executor(run.friendly_id)
        return self._maybe_drop(fault, self._cors(request, response))

    def _trigger_run(self, task: str, body: dict[str, Any], request: Request) -> tuple[Run, bool]:
        options: dict[str, Any] = body.get("options") or {}
        key = options.get("idempotencyKey")
        now = self._now()
        if isinstance(key, str) and key:
            with self._lock:
                existing_id = self._idempotency.get((task, key))
                existing = self._runs.get(existing_id) if existing_id else None
                if existing is not None and (
                    existing.status not in protocol.IDEMPOTENCY_RESET_DB_STATUSES
                    and (
                        existing.idempotency_expires_at is None
                        or existing.idempotency_expires_at > now
                    )
                ):
                    return existing, True
        payload_type = options.get("payloadType") or "application/json"
        if payload_type == "application/json":
            payload = "" if "payload" not in body else encoding.dumps_chunk(body["payload"])
        else:
            payload = body["payload"] if isinstance(body.get("payload"), str) else ""
        tags_option = options.get("tags") or []
        tags = [tags_option] if isinstance(tags_option, str) else [str(t) for t in tags_option]
        metadata = options.get("metadata")
        ttl = options.get("ttl")
        delay = options.get("delay")
        delay_until: datetime | None = None
        status = "PENDING"
        if delay:
            status = "DELAYED"
            try:
                delay_until = datetime.fromisoformat(str(delay).replace("Z", "+00:00"))
            except ValueError:
                seconds = protocol.expiration_to_epoch(str(delay), now=now) - int(now)
                delay_until = self._now_dt() + timedelta(seconds=seconds)
        header_version = request.headers.get("x-trigger-realtime-streams-version")
        idempotency = None
        if isinstance(key, str) and key:
            user = (options.get("idempotencyKeyOptions") or {}).get("key")
            ttl_option = options.get("idempotencyKeyTTL")
            expires = (
                protocol.expiration_to_epoch(ttl_option, now=now)
                if isinstance(ttl_option, str)
                else now + 30 * 86400
            )
            idempotency = (key, user if isinstance(user, str) else None, expires)
        run = self._new_run(
            task,
            payload=payload,
            payload_type=payload_type,
            metadata=metadata if isinstance(metadata, dict) else None,
            metadata_type=options.get("metadataType") or "application/json",
            tags=tags,
            streams_version=self.stream_version or ("v2" if header_version == "v2" else "v1"),
            status=status,
            ttl=f"{ttl}s" if isinstance(ttl, int) else ttl,
            delay_until=delay_until,
            idempotency=idempotency,
        )
        return run, False

    def _trigger_response(self, run_id: str, *, is_cached: bool) -> Response:
        claims = {
            "sub": self.environment_id,
            "pub": True,
            "scopes": [f"read:runs:{run_id}", f"write:inputStreams:{run_id}"],
        }
        headers = {"x-trigger-jwt-claims": json.dumps(claims, separators=(",", ":"))}
        if self.issue_trigger_jwt:
            now = self._now()
            headers["x-trigger-jwt"] = protocol.sign_token(
                claims, self.secret_key, now=now, expires_at=now + 3600
            )
        return JSONResponse({"id": run_id, "isCached": is_cached}, headers=headers)

    async def _claims(self, request: Request) -> Response:
        _, _, early = await self._begin("claims", request)
        if early is not None:
            return early
        auth = self._authenticate(request, allow_jwt=False)
        if isinstance(auth, Response):
            return JSONResponse(protocol.MISSING_API_KEY_BODY, status_code=401)
        return JSONResponse({"sub": self.environment_id, "pub": True})

    async def _public_tokens(self, request: Request) -> Response:
        raw, _, early = await self._begin("public_tokens", request)
        if early is not None:
            return early
        auth = self._authenticate(request, allow_jwt=False)
        if isinstance(auth, Response):
            return auth
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        scopes = body.get("scopes") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or not isinstance(scopes, list)
            or not scopes
            or not all(isinstance(s, str) and s for s in scopes)
        ):
            return JSONResponse({"error": "Invalid request body"}, status_code=400)
        now = self._now()
        try:
            expires_at = protocol.expiration_to_epoch(body.get("expirationTime", "15m"), now=now)
        except ValueError:
            return JSONResponse({"error": "Invalid expiration time"}, status_code=400)
        if expires_at <= now:
            return JSONResponse({"error": "Expiration time must be in the future"}, status_code=400)
        if expires_at > now + 30 * 86400:
            return JSONResponse({"error": "Expiration time cannot exceed 30 days"}, status_code=400)
        claims: dict[str, Any] = {"sub": self.environment_id, "pub": True, "scopes": scopes}
        if body.get("oneTimeUse"):
            claims["otu"] = True
        if isinstance(body.get("realtime"), dict):
            claims["realtime"] = body["realtime"]
        token = protocol.sign_token(claims, self.secret_key, now=now, expires_at=expires_at)
        return JSONResponse({"token": token})

    async def _retrieve(self, request: Request) -> Response:
        admitted = await self._begin_read("retrieve", request, retry_not_found=True)
        if isinstance(admitted, Response):
            return admitted
        fault, found = admitted
        with self._lock:
            body = retrieve_body(found)
        return self._maybe_drop(fault, self._cors(request, JSONResponse(body)))

    async def _cancel(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        _, fault, early = await self._begin("cancel", request, run_id)
        if early is not None:
            return early
        auth = self._authenticate(request, allow_jwt=True)
        if isinstance(auth, Response):
            return auth
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return JSONResponse({"error": "Run not found"}, status_code=404)
        if not auth.allows("write", self._run_resources(run)[:2]):
            return JSONResponse(protocol.UNAUTHORIZED_BODY, status_code=403)
        self.cancel(run_id)
        return self._maybe_drop(fault, JSONResponse({"id": run_id}))

    async def _metadata(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        raw, fault, early = await self._begin("metadata", request, run_id)
        if early is not None:
            return early
        auth = self._authenticate(request, allow_jwt=False)
        if isinstance(auth, Response):
            return JSONResponse({"error": "Invalid or Missing API Key"}, status_code=401)
        with self._lock:
            run = self._runs.get(run_id)
        if request.method == "GET":
            if run is None:
                return JSONResponse({"error": "Run not found"}, status_code=404)
            with self._lock:
                packet = None if run.metadata is None else encoding.dumps_chunk(run.metadata)
                return JSONResponse({"metadata": packet, "metadataType": run.metadata_type})
        if run is None:
            return JSONResponse({"error": "Task Run not found"}, status_code=404)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return JSONResponse({"error": "Invalid JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "Invalid request body"}, status_code=400)
        if run.status in protocol.FINAL_DB_STATUSES:
            return JSONResponse(
                {"error": "Cannot update metadata for a completed run"}, status_code=422
            )
        operations = list(body.get("operations") or [])
        if isinstance(body.get("metadata"), dict):
            operations.insert(0, {"type": "update", "value": body["metadata"]})
        metadata = self.update_metadata(run_id, operations)
        return self._maybe_drop(fault, JSONResponse({"metadata": metadata}))


def requested_tags(raw: bytes) -> list[str]:
    """The tags a trigger request asks for (none if the body is not what it should be)."""
    try:
        options = json.loads(raw).get("options") or {}
        tags = options.get("tags") or []
    except (ValueError, AttributeError):
        return []
    return [tags] if isinstance(tags, str) else [t for t in tags if isinstance(t, str)]
