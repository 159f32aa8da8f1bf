"""The browser app's page, its static files and its catalogues, as the server serves them."""

from __future__ import annotations

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
