"""Fetch an image from an http(s) URL, only from public addresses, within size and time limits.

The host is resolved first and every address checked; the connection then goes to a checked
address (so a second DNS answer cannot point elsewhere), and each redirect is checked the same
way. Only public addresses are fetched from (core/net_safety.py says which).
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import aclosing
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from iaforall.core.net_safety import IPAddress, is_public, resolved_address
from iaforall.vision.decode import too_many_bytes
from iaforall.vision.errors import ImageRefused

MAX_REDIRECTS = 3


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
    addresses = [resolved_address(str(info[4][0])) for info in infos]
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
