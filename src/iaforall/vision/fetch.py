"""Fetch an image from an http(s) URL, only from public addresses, within size and time limits.

The host is resolved first and every address checked; the connection then goes to a checked
address (so a second DNS answer cannot point elsewhere), and each redirect is checked the same
way. Private, loopback, link-local, shared, multicast and reserved addresses are all refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from contextlib import aclosing
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from iaforall.vision.decode import too_many_bytes
from iaforall.vision.errors import ImageRefused

MAX_REDIRECTS = 3
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


async def public_address(url: str, param: str) -> tuple[str, IPAddress]:
    """The URL's host and one of its addresses, after checking that all of them are public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ImageRefused(
            f"Image URLs must be data:, http: or https: ('{parts.scheme}:' is refused).",
            param=param,
            code="image_url_refused",
        )
    host = parts.hostname
    if not host:
        raise ImageRefused("The image URL has no host.", param=param, code="image_url_refused")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        raise ImageRefused(
            f"The image URL's host '{host}' could not be resolved.",
            param=param,
            code="image_fetch_failed",
        ) from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    refused = [a for a in addresses if not is_public(a)]
    if refused or not addresses:
        raise ImageRefused(
            f"The image URL's host '{host}' is a private, loopback or otherwise non-public "
            "address; this server only fetches images from the public internet.",
            param=param,
            code="image_url_refused",
        )
    return host, addresses[0]


async def fetch(url: str, *, max_bytes: int, seconds: float, param: str) -> bytes:
    try:
        async with asyncio.timeout(seconds):
            return await _fetch(url, max_bytes=max_bytes, param=param)
    except TimeoutError:
        raise ImageRefused(
            f"Fetching the image took longer than the {seconds:g} s allowed.",
            param=param,
            code="image_fetch_failed",
        ) from None


async def _fetch(url: str, *, max_bytes: int, param: str) -> bytes:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            host, address = await public_address(url, param)
            parts = urlsplit(url)
            literal = f"[{address}]" if address.version == 6 else str(address)
            netloc = f"{literal}:{parts.port}" if parts.port else literal
            pinned = urlunsplit(parts._replace(netloc=netloc))
            request = client.build_request(
                "GET",
                pinned,
                headers={"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": "image/*"},
                extensions={"sni_hostname": host} if parts.scheme == "https" else {},
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise ImageRefused(
                    f"The image could not be fetched: {exc}.",
                    param=param,
                    code="image_fetch_failed",
                ) from None
            async with aclosing(response):
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise ImageRefused(
                        f"The image URL answered HTTP {response.status_code}.",
                        param=param,
                        code="image_fetch_failed",
                    )
                return await _read_limited(response, max_bytes, param)
    raise ImageRefused(
        f"The image URL redirected more than {MAX_REDIRECTS} times.",
        param=param,
        code="image_fetch_failed",
    )


async def _read_limited(response: httpx.Response, max_bytes: int, param: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_many_bytes(max_bytes, param)
    received = bytearray()
    async for piece in response.aiter_bytes():
        received += piece
        if len(received) > max_bytes:
            raise too_many_bytes(max_bytes, param)
    return bytes(received)
