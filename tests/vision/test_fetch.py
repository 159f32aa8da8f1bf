"""Fetching image URLs: limits, and redirects checked like the first URL.

A local HTTP server stands in for the internet; the test counts 127.0.0.1 (only) as public."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from iaforall.vision import fetch
from iaforall.vision.errors import ImageRefused
from tests.vision.images import text_png

PICTURE = text_png("hello")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/ok.png":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PICTURE)))
            self.end_headers()
            self.wfile.write(PICTURE)
        elif self.path == "/metadata":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
        elif self.path == "/hop":
            self.send_response(301)
            self.send_header("Location", "/ok.png")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    loopback = ipaddress.ip_address("127.0.0.1")
    real = fetch.is_public
    monkeypatch.setattr(fetch, "is_public", lambda a: a == loopback or real(a))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def test_fetches_and_follows_a_checked_redirect(site: str) -> None:
    got = await fetch.fetch(f"{site}/hop", max_bytes=10**6, seconds=5, param="p")
    assert got == PICTURE


async def test_redirect_to_a_private_address_is_refused(site: str) -> None:
    with pytest.raises(ImageRefused) as refused:
        await fetch.fetch(f"{site}/metadata", max_bytes=10**6, seconds=5, param="p")
    assert refused.value.code == "image_url_refused"


async def test_size_limit_and_http_errors(site: str) -> None:
    with pytest.raises(ImageRefused) as refused:
        await fetch.fetch(f"{site}/ok.png", max_bytes=100, seconds=5, param="p")
    assert refused.value.code == "image_too_large"
    with pytest.raises(ImageRefused, match="HTTP 404"):
        await fetch.fetch(f"{site}/missing", max_bytes=10**6, seconds=5, param="p")
