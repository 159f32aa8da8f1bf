"""The browser app's page, its static files and its catalogues, as the server serves them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_a_third_language_is_one_more_catalogue_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iaforall.api.web import catalogues

    for path in CATALOGUES.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    german = json.loads((CATALOGUES / "en.json").read_text(encoding="utf-8"))
    german["_meta"]["name"] = "Deutsch"
    german["_server"]["user"] = "Sie"
    (tmp_path / "de.json").write_text(json.dumps(german), encoding="utf-8")
    monkeypatch.setattr(catalogues, "CATALOGUES", tmp_path)
    assert {"code": "de", "name": "Deutsch"} in catalogues.languages()
    assert catalogues.server_strings("de-AT")["user"] == "Sie"
    assert catalogues.server_strings("xx") == {}
