"""The app shell the service worker keeps: what it is, its version, and how it is served."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from iaforall.api.web.offline import read_shell, worker_script
from iaforall.web import STATIC_DIR
from tests.conftest import FakeWorld


def test_the_shell_is_the_apps_files_and_never_an_answer() -> None:
    shell = read_shell(STATIC_DIR)
    assert {"/", "/admin", "/rules", "/static/js/main.js", "/static/css/app.css"} <= set(shell.urls)
    assert {"/static/i18n/en.json", "/static/i18n/fr.json", "/static/icons/icon-512.png"} <= set(
        shell.urls
    )
    assert "/static/manifest.webmanifest" in shell.urls
    for url in shell.urls:
        assert url in {"/", "/admin", "/rules"} or url.startswith("/static/"), url
        assert not url.endswith((".md", ".html", "LICENSE")), url
        if url.startswith("/static/"):
            assert (STATIC_DIR / url.removeprefix("/static/")).is_file(), url


def test_a_changed_file_is_a_new_version(tmp_path: Path) -> None:
    static = tmp_path / "static"
    shutil.copytree(STATIC_DIR, static)
    before = read_shell(static)
    assert read_shell(static) == before  # the same files, the same version
    main = static / "js" / "main.js"
    main.write_text(main.read_text() + "\n// a new release\n")
    changed = read_shell(static).version
    assert changed != before.version
    (static / "index.html").write_text("<!doctype html>")  # a page counts too
    assert read_shell(static).version not in {before.version, changed}


def test_the_worker_is_written_with_its_version_and_shell() -> None:
    shell = read_shell(STATIC_DIR)
    script = worker_script(shell)
    assert "__VERSION__" not in script and "__SHELL__" not in script
    assert f"const VERSION = {json.dumps(shell.version)};" in script
    found = re.search(r"const SHELL = (\[.*?\]);", script)
    assert found and json.loads(found.group(1)) == list(shell.urls)


async def test_the_worker_and_manifest_are_served_from_where_they_work(fake: FakeWorld) -> None:
    worker = await fake.client.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"  # a new release is seen at once
    assert "script-src 'self'" in worker.headers["content-security-policy"]
    manifest = await fake.client.get("/static/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    assert manifest.json()["scope"] == "/"
