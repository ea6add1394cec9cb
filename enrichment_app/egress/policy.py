"""Which addresses an enricher may connect to: the pure half of the egress guard.

An address is allowed when it is globally routable, or when an admin listed it in
``ENRICHER_ALLOWED_NETWORKS``. Everything else is refused with a message that names the kind of
address and the setting that allows it. IPv6 forms that carry an IPv4 address (IPv4-mapped
``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the IPv4 address
inside, so ``[::ffff:127.0.0.1]`` is loopback and ``64:ff9b::7f00:1`` too.

The allow-list is a comma-separated list of entries, each one of:

* a network in CIDR form, ``10.0.0.0/8`` or ``fd00::/8``: any port on those addresses;
* an address, ``10.1.2.3`` or ``::1``: any port on it;
* an address and a port, ``127.0.0.1:8080`` or ``[::1]:8080``: that port only.

Host names are refused in the list: what a name points at can change after an admin checked it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from enrichment_app.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "ENRICHER_ALLOWED_NETWORKS"
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_RFC1918 = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


@dataclass(frozen=True, slots=True)
class AllowedEntry:
    """One entry of the allow-list: a network, and a port or None for any port."""

    network: IPNetwork
    port: int | None = None

    def matches(self, ip: IPAddress, port: int) -> bool:
        return (
            ip.version == self.network.version and ip in self.network and self.port in (None, port)
        )

    def __str__(self) -> str:
        if self.port is None:
            return str(self.network)
        host = self.network.network_address
        return f"[{host}]:{self.port}" if host.version == 6 else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an address was refused; ``message`` is fit to show in a cell."""

    address: IPAddress
    kind: str
    """What the address is: "loopback", "private", "link-local", …"""
    shown: str
    """The address as the message shows it (the IPv4 address inside a mapped form, named)."""

    @property
    def message(self) -> str:
        article = "an" if self.kind.startswith(("a", "e", "i", "o", "unspecified")) else "a"
        return (
            f"Refused: {self.shown} is {article} {self.kind} address; "
            f"an admin can allow it with {SETTING}"
        )


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), or None."""
    if ip.version == 4:
        return None
    assert isinstance(ip, ipaddress.IPv6Address)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(ip.packed[-4:])
    return ip.sixtofour


def address_kind(ip: IPAddress) -> str | None:
    """What makes ``ip`` non-global ("loopback", "private", …), or None for a public address."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.version == 4 and ip in _CGNAT:
        return "shared (CGNAT)"
    if ip.version == 6 and ip in _UNIQUE_LOCAL:
        return "unique-local"
    if ip.version == 4 and any(ip in network for network in _RFC1918):
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "special-purpose (not public)"
    return None


def check_address(ip: IPAddress, port: int, allowed: Iterable[AllowedEntry]) -> Refusal | None:
    """None when an enricher may connect to ``ip``:``port``, else why not.

    The allow-list is matched against the address and, for IPv6 forms of an IPv4 address,
    against the IPv4 address inside, so allowing ``127.0.0.1:8080`` also allows
    ``[::ffff:127.0.0.1]:8080``.
    """
    inner = embedded_ipv4(ip)
    candidates = [ip] if inner is None else [ip, inner]
    kind = address_kind(inner) if inner is not None else None
    if kind is None:
        kind = address_kind(ip)
    if kind is None:
        return None
    entries = list(allowed)
    if any(entry.matches(candidate, port) for candidate in candidates for entry in entries):
        return None
    if inner is None:
        shown = str(ip)
    else:  # Python 3.11 writes ::ffff:7f00:1; people know it as ::ffff:127.0.0.1
        written = f"::ffff:{inner}" if getattr(ip, "ipv4_mapped", None) else str(ip)
        shown = f"{written} ({inner})"
    return Refusal(address=ip, kind=kind, shown=shown)


def parse_allowed(text: str | None) -> tuple[AllowedEntry, ...]:
    """Parse ``ENRICHER_ALLOWED_NETWORKS``; ``ConfigError`` names the first bad entry and why."""
    entries: list[AllowedEntry] = []
    for raw in (text or "").split(","):
        entry = raw.strip()
        if entry:
            entries.append(_parse_entry(entry))
    return tuple(entries)


def _parse_entry(entry: str) -> AllowedEntry:
    hint = (
        f"{SETTING}: {entry!r} is not a network (10.0.0.0/8), an address (10.1.2.3) or an "
        "address and port (127.0.0.1:8080, [::1]:8080)"
    )
    if "/" in entry:
        try:
            return AllowedEntry(network=ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ConfigError(f"{hint}: {exc}") from exc
    host, port = entry, None
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(hint)
        port = _parse_port(rest[1:], hint) if rest else None
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
        port = _parse_port(port_text, hint)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"{hint}. Host names are not accepted: what a name points at can change; "
            "give the address it resolves to"
        ) from None
    return AllowedEntry(network=ipaddress.ip_network(address), port=port)


def _parse_port(text: str, hint: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{hint}: the port must be a number from 1 to 65535")
    return int(text)
