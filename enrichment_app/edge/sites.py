"""Which origins may drive the app, and which Host headers name it (pure functions).

The app's own origin is where its pages are served: the frontend port in development
(``http://localhost:3000``), the one port in production, ``REFLEX_DEPLOY_URL`` and
``REFLEX_API_URL`` when a proxy serves them elsewhere. A loopback origin is allowed under each
of its spellings (``localhost``, ``127.0.0.1``, ``[::1]``), since a newcomer may type either.
Everything else must be listed in ``ALLOWED_ORIGINS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from enrichment_app.errors import ConfigError

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, lower-cased, default port dropped; None if ``url``
    is not an absolute http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_origins(value: str) -> tuple[str, ...]:
    """``ALLOWED_ORIGINS``: comma-separated origins such as ``https://app.example.com``."""
    found = []
    for item in _split(value):
        origin = origin_of(item)
        if origin is None or origin != item.rstrip("/").lower():
            raise ConfigError(
                f"ALLOWED_ORIGINS: {item!r} is not an origin; write scheme://host[:port], "
                "like https://app.example.com (no path, no '*')."
            )
        found.append(origin)
    return tuple(found)


def parse_hosts(value: str) -> tuple[str, ...]:
    """``ALLOWED_HOSTS``: comma-separated host names, ``*.example.com`` for subdomains."""
    found = []
    for item in _split(value):
        name = item.lower()
        bare = name.removeprefix("*.")
        if not bare or any(ch in bare for ch in "/:@*? ") or bare.startswith("."):
            raise ConfigError(
                f"ALLOWED_HOSTS: {item!r} is not a host name; write app.example.com or "
                "*.example.com (no scheme, no port)."
            )
        found.append(name)
    return tuple(found)


def _spellings(origin: str) -> set[str]:
    """The origin, and for a loopback host the same origin under each loopback spelling."""
    scheme, _, rest = origin.partition("://")
    host, port = rest, ""
    if rest.startswith("["):
        end = rest.index("]") + 1
        host, port = rest[:end], rest[end:]
    elif ":" in rest:
        host, _, number = rest.partition(":")
        port = ":" + number
    if host in LOOPBACK_HOSTS:
        return {f"{scheme}://{name}{port}" for name in LOOPBACK_HOSTS}
    return {origin}


def _host(origin: str) -> str:
    rest = origin.partition("://")[2]
    if rest.startswith("["):
        return rest[: rest.index("]") + 1]
    return rest.partition(":")[0]


@dataclass(frozen=True, slots=True)
class Site:
    """Where the app is served, as Reflex knows it, and what the settings add."""

    frontend_port: int | None = None
    backend_port: int | None = None
    urls: tuple[str, ...] = ()
    """``REFLEX_API_URL``, ``REFLEX_DEPLOY_URL`` and the like: the app's public URLs."""
    extra_origins: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    origins: frozenset[str] = field(init=False)
    hosts: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        own = {
            origin
            for origin in (
                *(f"http://localhost:{p}" for p in (self.frontend_port, self.backend_port) if p),
                *(origin_of(url) for url in self.urls),
            )
            if origin is not None
        }
        origins = {o for origin in own for o in _spellings(origin)} | set(self.extra_origins)
        object.__setattr__(self, "origins", frozenset(origins))
        hosts = {*(h.strip("[]") for h in LOOPBACK_HOSTS), *(_host(o).strip("[]") for o in origins)}
        object.__setattr__(self, "hosts", tuple(sorted(hosts | set(self.extra_hosts))))

    def allows_origin(self, origin: str) -> bool:
        """Whether a page served from ``origin`` (the browser's ``Origin`` header) may act."""
        return origin.strip().lower().rstrip("/") in self.origins

    def allows_host(self, host_header: str) -> bool:
        """Whether the ``Host`` header names this app (any port)."""
        host = host_header.strip().lower()
        if host.startswith("["):
            name = host[1 : host.find("]")] if "]" in host else ""
        else:
            name = host.partition(":")[0]
        if not name:
            return False
        return any(
            name == allowed or (allowed.startswith("*.") and name.endswith(allowed[1:]))
            for allowed in self.hosts
        )


def describe(origins: Iterable[str]) -> str:
    return ", ".join(sorted(origins)) or "none"


class LiveOrigins(tuple[str, ...]):
    """For ``rx.Config.cors_allowed_origins``: empty when listed, but ``origin in it`` asks
    ``allows`` at each request. Reflex hands this value to Starlette's CORS middleware, which
    tests membership per request and allows every origin only if ``"*" in`` it (never, here), so
    CORS answers follow the same rule as the guard instead of echoing any origin."""

    _allows: Callable[[str], bool]

    def __new__(cls, allows: Callable[[str], bool]) -> LiveOrigins:
        live = super().__new__(cls, ())
        live._allows = allows
        return live

    def __contains__(self, origin: object) -> bool:
        return isinstance(origin, str) and origin != "*" and self._allows(origin)
