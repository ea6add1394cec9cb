"""The egress policy, table-tested: which addresses enrichers may reach, and the allow-list."""

from __future__ import annotations

import ipaddress

import pytest

from enrichment_app.egress import check_address, parse_allowed
from enrichment_app.errors import ConfigError

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.5.6.7", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("10.0.0.5", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("100.127.255.254", "shared (CGNAT)"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("fd00::1", "unique-local"),
    ("fc00::1", "unique-local"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "special-purpose (not public)"),  # documentation range
    ("198.18.0.1", "special-purpose (not public)"),  # benchmarking range
    # IPv6 forms of an IPv4 address are judged by the IPv4 address inside.
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.5", "private"),
    ("::ffff:169.254.169.254", "link-local"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
    ("64:ff9b::a00:5", "private"),  # NAT64 of 10.0.0.5
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a00:5::1", "private"),  # 6to4 of 10.0.0.5
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_non_global_addresses_are_refused_with_what_they_are(address: str, kind: str) -> None:
    refusal = check_address(ipaddress.ip_address(address), 80, ())
    assert refusal is not None and refusal.kind == kind
    assert refusal.message.startswith(f"Refused: {address}")
    article = "an" if kind == "unspecified" else "a"
    assert f"is {article} {kind} address;" in refusal.message
    assert refusal.message.endswith("an admin can allow it with ENRICHER_ALLOWED_NETWORKS")


def test_the_message_names_the_ipv4_address_inside_a_mapped_one() -> None:
    refusal = check_address(ipaddress.ip_address("::ffff:127.0.0.1"), 80, ())
    assert refusal is not None
    assert refusal.message.startswith("Refused: ::ffff:127.0.0.1 (127.0.0.1) is a loopback")


def test_the_issue_s_example_message() -> None:
    refusal = check_address(ipaddress.ip_address("10.0.0.5"), 443, ())
    assert refusal is not None
    assert refusal.message == (
        "Refused: 10.0.0.5 is a private address; an admin can allow it with "
        "ENRICHER_ALLOWED_NETWORKS"
    )


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert check_address(ipaddress.ip_address(address), 443, ()) is None


@pytest.mark.parametrize(
    ("allowed", "address", "port", "ok"),
    [
        ("10.0.0.0/8", "10.0.0.5", 443, True),
        ("10.0.0.0/8", "10.0.0.5", 1, True),
        ("10.0.0.0/8", "172.16.0.1", 443, False),
        ("10.0.0.0/8", "192.168.0.1", 443, False),
        ("127.0.0.1:8080", "127.0.0.1", 8080, True),
        ("127.0.0.1:8080", "127.0.0.1", 8081, False),
        ("127.0.0.1:8080", "127.0.0.2", 8080, False),
        ("127.0.0.1:8080", "::ffff:127.0.0.1", 8080, True),
        ("127.0.0.1:8080", "::1", 8080, False),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "127.0.0.1", 8080, False),
        ("::1", "::1", 9, True),
        ("10.1.2.3", "10.1.2.3", 9, True),
        ("fd00::/8", "fd12::1", 443, True),
        ("10.0.0.0/8, 127.0.0.1:9000", "127.0.0.1", 9000, True),
        ("", "127.0.0.1", 80, False),
    ],
)
def test_the_allow_list(allowed: str, address: str, port: int, ok: bool) -> None:
    refusal = check_address(ipaddress.ip_address(address), port, parse_allowed(allowed))
    assert (refusal is None) is ok


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("localhost:8080", "Host names are not accepted"),
        ("internal.example.com", "Host names are not accepted"),
        ("10.0.0.0/33", "is not a network"),
        ("127.0.0.1:0", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:99999", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:http", "the port must be a number"),
        ("[::1", "is not a network"),
        ("[::1]x", "is not a network"),
    ],
)
def test_bad_allow_list_entries_are_refused_by_name(entry: str, says: str) -> None:
    with pytest.raises(ConfigError, match="ENRICHER_ALLOWED_NETWORKS") as caught:
        parse_allowed(f"10.0.0.0/8, {entry}")
    assert says in str(caught.value) and repr(entry) in str(caught.value)


def test_a_bad_entry_stops_the_settings_from_loading() -> None:
    from pydantic import ValidationError

    from enrichment_app.settings import Settings

    with pytest.raises(ValidationError, match="Host names are not accepted"):
        Settings(_env_file=None, enricher_allowed_networks="localhost:8080")
    settings = Settings(_env_file=None, enricher_allowed_networks=" 10.0.0.0/8 ,, [::1]:80 ")
    assert [str(e) for e in settings.enricher_allowed] == ["10.0.0.0/8", "[::1]:80"]
