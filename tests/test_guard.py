"""The address policy as a table: what a fetch of a host resolving to each address is told."""

from __future__ import annotations

import pytest

from ingest.fetch.guard import AddressPolicy, refusal

DEFAULT = AddressPolicy.from_settings(False, ())

REFUSED = {
    "NAT64 of loopback": ("64:ff9b::7f00:1", "(NAT64 for 127.0.0.1), a loopback address"),
    "NAT64 of the metadata service": (
        "64:ff9b::a9fe:a9fe",
        "(NAT64 for 169.254.169.254), a link-local address",
    ),
    "NAT64 of a private network": ("64:ff9b::a00:1", "(NAT64 for 10.0.0.1), a private address"),
    "local-use NAT64 prefix": ("64:ff9b:1::a00:1", "a local-use NAT64 address"),
    "6to4 of loopback": ("2002:7f00:1::1", "(6to4 for 127.0.0.1), a loopback address"),
    "6to4 of a private network": ("2002:c0a8:101::", "(6to4 for 192.168.1.1), a private address"),
    "Teredo with a loopback client": (
        "2001:0:808:808::80ff:fffe",
        "(Teredo for 8.8.8.8, 127.0.0.1), a loopback address",
    ),
    "IPv4-compatible loopback": ("::127.0.0.1", "(IPv4-compatible for 127.0.0.1), a loopback"),
    "IPv4-translated metadata service": (
        "::ffff:0:169.254.169.254",
        "(IPv4-translated for 169.254.169.254), a link-local address",
    ),
    "IPv4-mapped loopback": ("::ffff:127.0.0.1", "(IPv4-mapped for 127.0.0.1), a loopback"),
    "site-local": ("fec0::1", "a site-local address"),
    "IPv6 loopback": ("::1", "::1, a loopback address"),
    "IPv4 loopback": ("127.0.0.2", "127.0.0.2, a loopback address"),
}

PUBLIC = {
    "NAT64 of a public address": "64:ff9b::808:808",
    "6to4 of a public address": "2002:808:808::1",
    "IPv4-mapped public address": "::ffff:8.8.8.8",
    "public IPv6": "2606:4700::1111",
    "public IPv4": "93.184.216.34",
}


@pytest.mark.parametrize(("address", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_non_public_addresses_are_refused_in_every_ipv6_form(address: str, reason: str) -> None:
    refused = refusal("feed.example", [address], DEFAULT)
    assert refused is not None
    assert reason in refused
    assert "fetching it is refused" in refused


@pytest.mark.parametrize("address", PUBLIC.values(), ids=PUBLIC.keys())
def test_public_addresses_are_fetched_in_every_form(address: str) -> None:
    assert refusal("feed.example", [address], DEFAULT) is None


def test_one_non_public_answer_refuses_the_host() -> None:
    assert refusal("feed.example", ["93.184.216.34", "64:ff9b::7f00:1"], DEFAULT) is not None


def test_an_allowed_network_admits_the_ipv6_forms_of_its_addresses() -> None:
    lan = AddressPolicy.from_settings(False, ["10.0.0.0/8"])
    assert refusal("rsshub.lan", ["64:ff9b::a00:1", "10.1.2.3"], lan) is None
    assert refusal("rsshub.lan", ["64:ff9b::c0a8:101"], lan) is not None


def test_allow_private_networks_and_allowed_hosts_lift_the_rule() -> None:
    assert refusal("x", ["64:ff9b::7f00:1"], AddressPolicy.from_settings(True, ())) is None
    named = AddressPolicy.from_settings(False, ["RSSHub.lan"])
    assert refusal("rsshub.lan.", ["2002:7f00:1::1"], named) is None
