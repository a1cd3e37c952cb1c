"""Which addresses a feed may be fetched from: the server-side request forgery policy (DESIGN §3).

A feed URL is chosen by whoever writes the config or an OPML file, and its server chooses where
redirects go; neither may turn the poller into a probe of the network it runs in. Every address a
host name resolves to must be public; one private answer refuses the host (a resolver can mix
answers). ``allow_private_networks`` lifts the rule, ``allow_hosts`` lifts it for named hosts,
addresses or networks (a self-hosted RSSHub on the LAN is a real case).

Pure functions; ``ingest.fetch`` applies them at connect time, to the very addresses it then
connects to, so a DNS answer cannot change between the check and the connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """``[fetch] allow_private_networks`` and ``allow_hosts``, parsed."""

    allow_private: bool
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls, allow_private: bool, allow_hosts: Iterable[str]) -> AddressPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in allow_hosts:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        return cls(allow_private, frozenset(hosts), tuple(networks))


def address_kind(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address (``"loopback"``...), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_kind(address.ipv4_mapped)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
    )
    for kind, hit in checks:
        if hit:
            return kind
    if address in ipaddress.ip_network("100.64.0.0/10"):
        return "carrier-grade NAT"
    if not address.is_global:
        return "reserved"
    return None


def refusal(host: str, addresses: Iterable[str], policy: AddressPolicy) -> str | None:
    """The reason to refuse connecting to ``host`` at ``addresses``, or None to go ahead."""
    if policy.allow_private or host.lower().rstrip(".") in policy.hosts:
        return None
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        kind = address_kind(address)
        if kind and not any(address in network for network in policy.networks):
            return (
                f"{host} resolves to {address}, a {kind} address; fetching it is refused to "
                "protect your network. If this source is yours, add the host to "
                "[fetch] allow_hosts (or set allow_private_networks = true)"
            )
    return None
