"""One imported conversation cannot make the server fetch the internet thousands of times: its
images are counted over the whole document, and http(s) ones more tightly, before anything is
read. A real HTTP server on loopback stands in for the internet and counts what it serves
(the test counts 127.0.0.1, only, as public)."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from iaforall.settings import ImageSettings
from iaforall.vision import fetch
from tests.conftest import FakeWorld
from tests.vision.images import data_url, text_png

API = "/web/api/conversations"
PICTURE = text_png("hi")


class Site:
    def __init__(self) -> None:
        self.hits = 0
        self.url = ""


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    loopback = ipaddress.ip_address("127.0.0.1")
    real = fetch.is_public
    monkeypatch.setattr(fetch, "is_public", lambda a: a == loopback or real(a))
    found = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found.hits += 1
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PICTURE)))
            self.end_headers()
            self.wfile.write(PICTURE)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield found
    httpd.shutdown()
    httpd.server_close()


def document(images_per_message: list[list[str]]) -> dict[str, Any]:
    return {
        "format": "iaforall.conversation",
        "version": 1,
        "title": "imported",
        "messages": [
            {
                "role": "user",
                "content": f"message {i}",
                "images": [{"url": url, "name": f"{i}-{j}.png"} for j, url in enumerate(urls)],
            }
            for i, urls in enumerate(images_per_message)
        ],
    }


async def test_an_import_fetches_a_bounded_number_of_images(fake: FakeWorld, site: Site) -> None:
    limits = ImageSettings()
    most = limits.import_max_fetches

    # One over the limit, one image per message: refused before the first fetch.
    over = document([[f"{site.url}/{i}.png"] for i in range(most + 1)])
    response = await fake.client.post(f"{API}/import", json=over)
    assert response.status_code == 400, response.text[:500]
    assert response.json()["error"]["code"] == "too_many_image_fetches"
    assert site.hits == 0
    assert (await fake.client.get(API)).json()["data"] == []  # nothing stored

    # What was observed: 10,000 messages of 8 image URLs each. Refused, nothing fetched.
    flood = document([[f"{site.url}/{i}-{j}.png" for j in range(8)] for i in range(10_000)])
    response = await fake.client.post(f"{API}/import", json=flood)
    assert response.status_code == 400, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == "too_many_image_fetches" and error["param"] == "messages"
    assert "80000 images given as http(s) URLs" in error["message"]
    assert "IAFORALL_IMPORT_MAX_FETCHES" in error["message"]
    assert site.hits == 0

    # At the limit: each is fetched once and stored.
    ok = document([[f"{site.url}/{i}.png"] for i in range(most)])
    response = await fake.client.post(f"{API}/import", json=ok)
    assert response.status_code == 201, response.text[:500]
    assert site.hits == most
    assert sum(len(m["images"]) for m in response.json()["messages"]) == most


async def test_an_import_carries_a_bounded_number_of_images(fake: FakeWorld, site: Site) -> None:
    most = ImageSettings().import_max_images
    inside = data_url(PICTURE)
    too_many = document([[inside] * 5 for _ in range(most // 5 + 1)])
    response = await fake.client.post(f"{API}/import", json=too_many)
    assert response.status_code == 400, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == "too_many_images" and "IAFORALL_IMPORT_MAX_IMAGES" in error["message"]
    assert (await fake.client.get(API)).json()["data"] == []
    assert site.hits == 0
