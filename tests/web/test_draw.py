"""`/image PROMPT` in the message box, in real Chromium: the picture drawn by the server's
image model (the tiny pipeline), kept in the conversation (a new one created for it) and there
after a reload, with the prompt as its alt text, a download link and "Another one"; axe-clean
in English and French; without an image model the command says why (the doctor's reason)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from playwright.sync_api import Page, expect

from iaforall.models.image_pull import add_folder
from iaforall.observability.doctor import diagnose
from tests.images.tiny import make_tiny_pipeline
from tests.observability.test_doctor import EVERYTHING
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
def test_the_image_command_draws_a_picture_kept_in_the_conversation(
    page: Page, drawing_server: RealServer, language: str
) -> None:
    open_app(page, drawing_server)
    if language == "fr":
        page.select_option("#language-select", "fr")
    ask(page, "/image a red kite over the sea")
    # Drawn, then kept: the stored message replaces the live figure, in a new conversation.
    kept = page.locator("article.msg-picture figure.drawn img")
    expect(kept).to_have_attribute("alt", "a red kite over the sea", timeout=30_000)
    expect(page.locator("figure.drawn")).to_have_count(1)
    heading = "Picture drawn by the model" if language == "en" else "Image dessinée par le modèle"
    expect(page.locator("article.msg-picture .msg-author")).to_contain_text(heading)
    expect(page).to_have_url(re.compile(r"#/c/\w+"))
    expect(page.locator("#composer-input")).to_have_value("")

    page.reload()  # it belongs to the conversation now
    expect(kept).to_have_attribute("alt", "a red kite over the sea")
    page.wait_for_function(
        "document.querySelector('article.msg-picture img')?.naturalWidth === 512"
    )
    download = page.locator("article.msg-picture a[download]")
    expect(download).to_have_text("Download" if language == "en" else "Télécharger")
    expect(download).to_have_attribute("download", re.compile(r"^image-\d+\.png$"))
    served = page.request.get(download.evaluate("a => a.href"))
    assert served.ok and served.body().startswith(b"\x89PNG")
    assert_accessible(page, f"axe-drawn-{language}")

    page.locator("article.msg-picture button").click()  # another one, with another seed
    expect(page.locator("article.msg-picture img")).to_have_count(2, timeout=30_000)
    assert js_errors(page) == []


def test_without_an_image_model_the_command_says_why(
    page: Page, drawing_server: RealServer
) -> None:
    page.route("**/v1/models", lambda route: route.fulfill(json={"object": "list", "data": []}))
    # The doctor's row, as a server without an image model gives it.
    rows = diagnose(replace(EVERYTHING, image_models=()))
    table = {"data": [row.as_dict(details=False) for row in rows]}
    page.route("**/web/api/capabilities", lambda route: route.fulfill(json=table))
    open_app(page, drawing_server)
    ask(page, "/image a red kite")
    error = page.locator("#error-region")
    expect(error).to_contain_text("/image cannot draw on this server. No image model is installed")
    expect(error).to_contain_text("iaforall pull FOLDER --name NAME")
    expect(page.locator("figure.drawn")).to_have_count(0)
    expect(page.locator("#composer-input")).to_have_value("/image a red kite")  # kept


def test_a_picture_that_cannot_be_kept_stays_to_download(
    page: Page, drawing_server: RealServer
) -> None:
    full = {
        "error": {
            "message": "This would pass your storage quota.",
            "type": "invalid_request_error",
            "param": None,
            "code": "storage_quota_exceeded",
        }
    }
    page.route("**/pictures", lambda route: route.fulfill(status=413, json=full))
    open_app(page, drawing_server)
    ask(page, "/image a green kite")
    expect(page.locator("#error-region")).to_contain_text("storage quota")
    expect(page.locator("figure.drawn img")).to_have_attribute("alt", "a green kite")
    expect(page.locator("figure.drawn a[download]")).to_have_attribute("href", re.compile("^blob:"))
    expect(page.locator("article.msg-picture")).to_have_count(0)
