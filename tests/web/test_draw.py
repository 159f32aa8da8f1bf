"""`/image PROMPT` in the message box, in real Chromium: the picture drawn by the server's
image model (the tiny pipeline), with the prompt as its alt text, a download link and "Another
one"; axe-clean in English and French; without an image model the command says why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from iaforall.models.image_pull import add_folder
from tests.images.tiny import make_tiny_pipeline
from tests.real_server import RealServer, launch_server, stop_server
from tests.web.conftest import js_errors, open_app
from tests.web.test_accessibility import assert_accessible


@pytest.fixture(scope="module")
def drawing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    home = tmp_path_factory.mktemp("draw-home")
    add_folder(home, make_tiny_pipeline(home / "src" / "tiny"), "tiny-draw")
    log = tmp_path_factory.mktemp("logs") / "draw.log"
    real = launch_server(home, log, IAFORALL_PRELOAD="false", IAFORALL_WARM_UP="false")
    yield real
    stop_server(real)


def ask(page: Page, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_image_command_draws_a_picture_to_download(
    page: Page, drawing_server: RealServer, language: str
) -> None:
    open_app(page, drawing_server)
    if language == "fr":
        page.select_option("#language-select", "fr")
    ask(page, "/image a red kite over the sea")
    picture = page.locator("figure.drawn img")
    expect(picture).to_have_attribute("alt", "a red kite over the sea", timeout=30_000)
    page.wait_for_function("document.querySelector('figure.drawn img').naturalWidth === 512")
    download = page.locator("figure.drawn a[download]")
    expect(download).to_have_text("Download" if language == "en" else "Télécharger")
    expect(page.locator("#composer-input")).to_have_value("")
    assert_accessible(page, f"axe-drawn-{language}")

    page.locator("figure.drawn button").click()  # another one, with another seed
    expect(page.locator("figure.drawn img")).to_have_count(2, timeout=30_000)
    assert js_errors(page) == []


def test_without_an_image_model_the_command_says_why(
    page: Page, drawing_server: RealServer
) -> None:
    page.route("**/v1/models", lambda route: route.fulfill(json={"object": "list", "data": []}))
    open_app(page, drawing_server)
    ask(page, "/image a red kite")
    expect(page.locator("#error-region")).to_contain_text("No image model is installed")
    expect(page.locator("figure.drawn")).to_have_count(0)
    expect(page.locator("#composer-input")).to_have_value("/image a red kite")  # kept
