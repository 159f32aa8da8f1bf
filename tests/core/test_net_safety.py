"""Which addresses the server may connect to for a user: one judgement, used by image URLs
(vision/fetch.py) and by models pulled from a URL (models/pull.py) alike."""

from __future__ import annotations

import ipaddress

import pytest

from iaforall.core.net_safety import is_public
from iaforall.models.pull import PullRefused, check_url
from iaforall.vision.errors import ImageRefused
from iaforall.vision.fetch import public_address

NOT_PUBLIC = (
    "10.1.2.3",
    "192.168.0.1",
    "172.16.0.1",
    "100.64.0.1",
    "::1",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "169.254.169.254",
    # IPv6 forms that lead to a private IPv4 address: NAT64, 6to4, IPv4-compatible, Teredo
    "64:ff9b::7f00:1",
    "64:ff9b:1::a00:1",
    "2002:7f00:1::",
    "2002:c0a8:101::1",
    "::127.0.0.1",
    "::a9fe:a9fe",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",
)
PUBLIC = ("93.184.215.14", "2606:4700::1111", "64:ff9b::5db8:d70e", "2002:5db8:d70e::1")


def literal(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def test_what_counts_as_public() -> None:
    for address in NOT_PUBLIC:
        assert not is_public(ipaddress.ip_address(address)), address
    for address in PUBLIC:  # NAT64 and 6to4 to a public IPv4 address are public
        assert is_public(ipaddress.ip_address(address)), address


@pytest.mark.parametrize("address", ["127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1"])
async def test_image_fetch_and_model_pull_refuse_the_same_addresses(address: str) -> None:
    url = f"http://{literal(address)}/x"
    with pytest.raises(ImageRefused) as image:
        await public_address(url, "image_url")
    assert image.value.code == "image_url_refused"
    with pytest.raises(PullRefused) as pull:
        check_url(url, allow_private=False)
    assert pull.value.code == "url_refused"
    host, _ = check_url(url, allow_private=True)
    assert host == address
