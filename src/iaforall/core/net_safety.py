"""Which network addresses the server may connect to on a user's behalf (an image URL, a
model pulled from a URL): public ones only, so that nobody can make it reach the machine
itself or the private network it sits in.

Private, loopback, link-local, shared, multicast and reserved addresses are not public, nor is
an IPv6 address that leads to such an IPv4 one (mapped, 6to4, Teredo, NAT64, IPv4-compatible).
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes whose last 32 bits are an IPv4 address that a translator connects to.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to: mapped, 6to4, Teredo, NAT64, IPv4-compatible."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64) or int(address) >> 32 == 0:  # ::a.b.c.d too
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:  # a connection there reaches that IPv4 address
            return is_public(inner)
    return address.is_global and not address.is_multicast and not address.is_reserved


def resolved_address(info_address: str) -> IPAddress:
    """An address as getaddrinfo gives it (an IPv6 one perhaps with its `%zone`)."""
    return ipaddress.ip_address(info_address.split("%")[0])
