"""The browser app's page, its static files and its catalogues, as the server serves them."""

from __future__ import annotations

import json

from iaforall.api.web.catalogues import CATALOGUES
from iaforall.api.web.export import ENGLISH
from tests.conftest import FakeWorld


async def test_the_app_page_and_liveness_text(fake: FakeWorld) -> None:
    page = await fake.client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (await fake.client.get("/")).text == "IAForAll is running"
    vendored = await fake.client.get("/static/vendor/dompurify/purify.es.mjs")
    assert vendored.status_code == 200 and "javascript" in vendored.headers["content-type"]
    languages = (await fake.client.get("/web/api/languages")).json()["data"]
    assert {"code": "en", "name": "English"} in languages
    assert {"code": "fr", "name": "Français"} in languages


def test_every_catalogue_has_the_servers_own_strings() -> None:
    for path in CATALOGUES.glob("*.json"):
        strings = json.loads(path.read_text(encoding="utf-8"))["_server"]
        assert set(strings) == set(ENGLISH), path.name
        assert all(isinstance(v, str) and v for v in strings.values()), path.name
