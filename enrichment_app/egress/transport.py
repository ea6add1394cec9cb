"""The I/O half of the egress guard: an httpx transport that connects only to checked addresses.

Why a transport of our own rather than ``httpx-secure`` (2.0.0, evaluated): that library learns a
name's address by opening a TCP connection to it, so a refused internal address still gets a
connection attempt (enough to probe which internal ports are open), and it refuses clients with
a custom transport, which rules out ``httpx.MockTransport`` tests and a faster transport such as
``httpx-aiohttp``. The guard here is one small hook instead: httpx's own ``AsyncHTTPTransport``
whose connection pool uses a network backend that, for every new TCP connection,

1. resolves the host name (``getaddrinfo``, in a worker thread), within the connect timeout;
2. checks each address with ``policy.check_address`` and drops the refused ones;
3. connects to the first allowed address it checked, so a second lookup (DNS rebinding) never
   gets a say. TLS still verifies, and SNI and ``Host`` still carry, the name from the URL.

Every request, and so every redirect hop an enricher follows, needs a connection from the
pool, and a pooled connection was checked when it was opened. Proxies from the environment are
ignored (``trust_env=False``): through a proxy, the guard would check the proxy, not the target.
A refusal raises ``EgressRefusedError`` (an ``EnrichError``) whose message says how to allow it.
There is no switch that turns the guard off; an admin allows addresses with
``ENRICHER_ALLOWED_NETWORKS``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import typing
from collections.abc import Awaitable, Callable, Iterable

import anyio
import httpcore
import httpx

from enrichment_app.egress.policy import AllowedEntry, IPAddress, Refusal, check_address
from enrichment_app.errors import EnrichError

logger = logging.getLogger(__name__)

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""Resolves a host name and port to addresses (tests inject one to play DNS rebinding)."""


class EgressRefusedError(EnrichError):
    """An enricher tried to reach an address the egress policy refuses."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The host's addresses from the system resolver, in its order, without duplicates."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    return found


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the policy allows, to the address it checked."""

    def __init__(
        self,
        allowed: Iterable[AllowedEntry],
        *,
        resolver: Resolver = system_resolver,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allowed = tuple(allowed)
        self._resolve = resolver
        self._backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        checked = [(ip, check_address(ip, port, self.allowed)) for ip in addresses]
        permitted = [ip for ip, refusal in checked if refusal is None]
        if not permitted:
            refusal = next(r for _, r in checked if r is not None)
            logger.info("egress refused %s port %d: %s", host, port, refusal.message)
            raise EgressRefusedError(refusal)
        last_error: Exception | None = None
        for ip in permitted:
            try:
                return await self._backend.connect_tcp(
                    str(ip),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def _addresses(self, host: str, port: int, limit: float | None) -> list[IPAddress]:
        try:
            with anyio.fail_after(limit):
                addresses = await self._resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"Looking up {host} took too long") from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise httpcore.ConnectError(f"Could not resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"Could not resolve {host}: no addresses")
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        del path, timeout, socket_options
        raise httpcore.ConnectError("Enrichers may not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections all go through ``GuardedNetworkBackend``."""

    def __init__(
        self,
        allowed: Iterable[AllowedEntry],
        *,
        resolver: Resolver = system_resolver,
        limits: httpx.Limits = DEFAULT_LIMITS,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """``backend`` opens the checked connections (httpcore's own by default)."""
        super().__init__(trust_env=False, limits=limits)
        self.network_backend = GuardedNetworkBackend(allowed, resolver=resolver, backend=backend)
        # The one change to the pool httpx builds: its network backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.network_backend,
        )


def guarded_client(
    allowed: Iterable[AllowedEntry], *, resolver: Resolver = system_resolver
) -> httpx.AsyncClient:
    """The HTTP client enrichers get: every connection checked, redirects left to the enricher."""
    return httpx.AsyncClient(
        transport=GuardedTransport(allowed, resolver=resolver, limits=DEFAULT_LIMITS),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(30.0, connect=10.0),
        headers={"user-agent": "enrichment_app/0.1 (+https://github.com/)"},
    )


def provider_client() -> httpx.AsyncClient:
    """The unguarded client, for URLs from settings only (Trigger.dev, the LLM base URL)."""
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=DEFAULT_LIMITS,
        headers={"user-agent": "enrichment_app/0.1 (+https://github.com/)"},
    )
