"""Which addresses a feed may be fetched from: the server-side request forgery policy (DESIGN §3).

A feed URL is chosen by whoever writes the config or an OPML file, and its server chooses where
redirects go; neither may turn the poller into a probe of the network it runs in. Every address a
host name resolves to must be public; one private answer refuses the host (a resolver can mix
answers), and an IPv6 address that leads to an IPv4 one (NAT64, 6to4, Teredo, the mapped forms)
is as public as the IPv4 address inside. ``allow_private_networks`` lifts the rule,
``allow_hosts`` lifts it for named hosts, addresses or networks (a self-hosted RSSHub on the LAN
is a real case).

Pure functions; ``ingest.fetch.network`` applies them at connect time, to the very addresses it then
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


_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")


def embedded_ipv4(address: IPAddress) -> tuple[str, tuple[ipaddress.IPv4Address, ...]] | None:
    """The IPv4 addresses an IPv6 address leads to, and the mechanism, or None.

    A connection to any of these forms ends at the IPv4 address inside, so that address is what
    the policy must judge: IPv4-mapped ``::ffff:a.b.c.d``, SIIT-translated ``::ffff:0:a.b.c.d``
    (RFC 2765) and IPv4-compatible ``::a.b.c.d`` (RFC 4291), NAT64's well-known prefix
    ``64:ff9b::/96`` (RFC 6052), 6to4 ``2002::/16`` (RFC 3056) and Teredo ``2001::/32``
    (RFC 4380: its server and, obfuscated, its client).
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return "6to4", (address.sixtofour,)
    if address.teredo is not None:
        return "Teredo", address.teredo
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    for network, mechanism in (
        (_NAT64, "NAT64"),
        (_TRANSLATED, "IPv4-translated"),
        (_COMPATIBLE, "IPv4-compatible"),
    ):
        if address in network and int(address) > 1:  # :: and ::1 mean themselves
            return mechanism, (low32,)
    return None


def address_kind(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address (``"loopback"``...), or None if it is.

    An IPv6 form that leads to an IPv4 address is as public as that address.
    """
    via = embedded_ipv4(address)
    for inner in via[1] if via else ():
        kind = address_kind(inner)
        if kind:
            return kind
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("carrier-grade NAT", address in _SHARED),
        # RFC 8215's prefix for an operator's own translator: not globally reachable (IANA), and
        # where the IPv4 address sits in it depends on that operator's prefix length.
        ("local-use NAT64", address in _NAT64_LOCAL),
        ("site-local", address in _SITE_LOCAL),  # deprecated (RFC 3879), still routed locally
        ("reserved", not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def refusal(host: str, addresses: Iterable[str], policy: AddressPolicy) -> str | None:
    """The reason to refuse connecting to ``host`` at ``addresses``, or None to go ahead.

    An ``allow_hosts`` network admits an address inside it, or an IPv6 form of one.
    """
    if policy.allow_private or host.lower().rstrip(".") in policy.hosts:
        return None
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        kind = address_kind(address)
        via = embedded_ipv4(address)
        candidates = (address, *via[1]) if via else (address,)
        if kind and not any(c in network for c in candidates for network in policy.networks):
            shown = f"{address} ({via[0]} for {', '.join(map(str, via[1]))})" if via else address
            return (
                f"{host} resolves to {shown}, a {kind} address; fetching it is refused to "
                "protect your network. If this source is yours, add the host to "
                "[fetch] allow_hosts (or set allow_private_networks = true)"
            )
    return None
