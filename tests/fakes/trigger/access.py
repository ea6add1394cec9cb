"""Who may call what on the fake Trigger.dev server, and the steps every route takes first.

The secret keys and public access tokens (``mint_token``, ``expire_tokens``), the JWT scopes
against a run's resources, and CORS as the webapp answers it. ``_begin`` records a request and
takes its fault; ``_begin_read`` also authorizes reading a run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.trigger import protocol
from tests.fakes.trigger.faults import Fault, FaultBook
from tests.fakes.trigger.runs import Run


@dataclass(frozen=True, slots=True)
class Auth:
    kind: Literal["secret", "jwt"]
    scopes: tuple[str, ...] = ()

    def allows(self, action: str, resources: Sequence[protocol.Resource]) -> bool:
        return self.kind == "secret" or protocol.scopes_allow(self.scopes, action, resources)


class Access(FaultBook):
    """Keys, tokens, scopes and CORS, on top of the store and the faults; part of ``FakeTrigger``."""

    secret_key: str
    additional_key: str
    environment_id: str
    _record: Callable[[str, Request, str | None], Awaitable[bytes]]
    """The server's request log (server.py)."""

    def __init__(self) -> None:
        self._expired_tokens: set[str] = set()
        self._seen_tokens: set[str] = set()
        self._issued_not_before: float | None = None
        super().__init__()

    def mint_token(
        self,
        scopes: Sequence[str],
        *,
        expires_in: float = 900.0,
        exp: float | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        secret_key: str | None = None,
    ) -> str:
        """A public access token as the SDK would sign it (override anything for bad tokens)."""
        now = self._now()
        claims = {"sub": self.environment_id, "pub": True, "scopes": list(scopes)}
        claims.update(extra_claims or {})
        return protocol.sign_token(
            claims,
            secret_key or self.secret_key,
            now=now,
            expires_at=exp if exp is not None else now + expires_in,
        )

    def expire_tokens(self) -> None:
        """Every public token issued or presented so far (or issued earlier) is now expired."""
        with self._lock:
            self._expired_tokens |= self._seen_tokens
            self._issued_not_before = float(int(self._now()))

    @staticmethod
    def _preflight(request: Request) -> Response:
        """remix-utils `cors()` on `json({})` with `maxAge: 300`, as the webapp answers OPTIONS."""
        response = JSONResponse({})
        origin = request.headers.get("origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.append("Vary", "Origin")
        response.headers["Access-Control-Allow-Methods"] = "GET,HEAD,PUT,PATCH,POST,DELETE"
        requested = request.headers.get("access-control-request-headers")
        if requested:
            response.headers["Access-Control-Allow-Headers"] = requested
        response.headers.append("Vary", "Access-Control-Request-Headers")
        response.headers["Access-Control-Max-Age"] = "300"
        return response

    @staticmethod
    def _cors(request: Request, response: Response) -> Response:
        """`wrapResponse` for `corsStrategy: "all"` routes: reflect the origin, expose JWT headers."""
        if "access-control-allow-origin" in response.headers:
            return response
        origin = request.headers.get("origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.append("Vary", "Origin")
        response.headers.append(
            "Access-Control-Expose-Headers", "x-trigger-jwt,x-trigger-jwt-claims"
        )
        return response

    def _authenticate(self, request: Request, *, allow_jwt: bool) -> Auth | Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return JSONResponse(protocol.MISSING_API_KEY_BODY, status_code=401)
        if allow_jwt and protocol.is_public_jwt(token):
            claims = protocol.unverified_claims(token) or {}
            if claims.get("sub") != self.environment_id:
                return JSONResponse({"error": "Invalid Public Access Token"}, status_code=401)
            with self._lock:
                self._seen_tokens.add(token)
                expired = token in self._expired_tokens
                not_before = self._issued_not_before
            try:
                if expired:
                    raise protocol.TokenRejected("ERR_JWT_EXPIRED")
                verified = protocol.verify_public_token(
                    token, self.secret_key, now=self._now(), issued_not_before=not_before
                )
            except protocol.TokenRejected:
                return JSONResponse(protocol.INVALID_PUBLIC_TOKEN_BODY, status_code=401)
            scopes = verified.get("scopes") or []
            return Auth("jwt", tuple(s for s in scopes if isinstance(s, str)))
        if token in (self.secret_key, self.additional_key):
            return Auth("secret")
        return JSONResponse(protocol.INVALID_API_KEY_BODY, status_code=401)

    def _run_resources(self, run: Run) -> list[protocol.Resource]:
        return [
            protocol.Resource("runs", run.friendly_id),
            protocol.Resource("tasks", run.task_identifier),
            *(protocol.Resource("tags", tag) for tag in run.tags),
        ]

    def _find_authorized(
        self, run_id: str, auth: Auth, action: str, *, retry_not_found: bool
    ) -> Run | Response:
        """The builder's order: find the run (404) before checking the scopes (403)."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return JSONResponse(
                protocol.NOT_FOUND_BODY,
                status_code=404,
                headers={"x-should-retry": "true" if retry_not_found else "false"},
            )
        if not auth.allows(action, self._run_resources(run)):
            return JSONResponse(protocol.UNAUTHORIZED_BODY, status_code=403)
        return run

    async def _begin(
        self,
        kind: str,
        request: Request,
        run_id: str | None = None,
        *,
        cors: bool = False,
        tags: Callable[[bytes], Sequence[str]] | None = None,
    ) -> tuple[bytes, Fault | None, Response | None]:
        """Record the request and take its fault: (body, fault, the answer the fault forces)."""
        raw = await self._record(kind, request, run_id)
        fault = self._take_fault(kind, run_id, None if tags is None else tags(raw))
        early = await self._apply_fault(fault)
        if early is not None and cors:
            early = self._cors(request, early)
        return raw, fault, early

    async def _begin_read(
        self, kind: str, request: Request, *, retry_not_found: bool = False
    ) -> tuple[Fault | None, Run] | Response:
        """A read of one run (CORS routes): answer a preflight; else record the request, take its
        fault, and return (fault, run) if the request may read the run, or the 401/404/403."""
        if request.method == "OPTIONS":
            return self._preflight(request)
        run_id = request.path_params["run_id"]
        _, fault, early = await self._begin(kind, request, run_id, cors=True)
        if early is not None:
            return early
        auth = self._authenticate(request, allow_jwt=True)
        if isinstance(auth, Response):
            return self._cors(request, auth)
        found = self._find_authorized(run_id, auth, "read", retry_not_found=retry_not_found)
        return self._cors(request, found) if isinstance(found, Response) else (fault, found)
