"""What the server lacks is disabled in the web app with the reason, before any click: a server
whose Python finds no Whisper model (hidden by a `sitecustomize` on its PYTHONPATH, nothing
uninstalled) and no eSpeak NG (IAFORALL_ESPEAK=system with no `espeak-ng` on its PATH) shows
the microphone off and French reading aloud off, says why, and lists the fix in "About this
server"."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.real_server import RealServer, launch_server, stop_server
from tests.web.conftest import import_conversation, js_errors, open_app
from tests.web.test_accessibility import assert_accessible

# Run first in the server's Python: no Whisper model is installed, as far as it can tell.
HIDE_WHISPER = """
import iaforall.engines.whisper as whisper
whisper.installed = lambda home=None: []
"""


@pytest.fixture(scope="module")
def deaf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    hide = tmp_path_factory.mktemp("hide")
    (hide / "sitecustomize.py").write_text(HIDE_WHISPER)
    paths = [str(hide), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    home = tmp_path_factory.mktemp("home")
    log: Path = tmp_path_factory.mktemp("logs") / "deaf.log"
    no_programs = tmp_path_factory.mktemp("bin")
    server = launch_server(
        home,
        log,
        PYTHONPATH=os.pathsep.join(paths),
        PATH=str(no_programs),
        IAFORALL_ESPEAK="system",
        IAFORALL_PRELOAD="false",
    )
    yield server
    stop_server(server)


def test_the_microphone_is_off_with_the_reason(page: Page, deaf_server: RealServer) -> None:
    open_app(page, deaf_server)
    mic = page.locator("#mic-button")
    expect(mic).to_be_disabled()
    expect(page.locator("#handsfree-button")).to_be_disabled()
    note = page.locator("#voice-unavailable")
    expect(note).to_be_visible()
    expect(note).to_contain_text("No Whisper model is installed")
    assert mic.get_attribute("aria-describedby") == "voice-unavailable"
    # The keyboard shortcut says the same instead of asking for the microphone.
    page.keyboard.press("Control+Shift+L")
    expect(page.locator("#error-region")).to_contain_text("The microphone is off")

    page.locator("#about-button").click()
    row = page.locator('#about-rows tr[data-capability="speech_to_text_en"]')
    expect(row).to_have_attribute("data-status", "missing")
    expect(row).to_contain_text("iaforall pull whisper:tiny.en")
    assert_accessible(page, "about-this-server")
    page.keyboard.press("Escape")

    page.select_option("#language-select", "fr")
    expect(note).to_contain_text("Le microphone est désactivé")
    page.locator("#about-button").click()
    expect(page.locator("#about-heading")).to_have_text("À propos de ce serveur")
    expect(page.locator('#about-rows tr[data-capability="speech_to_text_fr"]')).to_contain_text(
        "Absent"
    )
    assert not js_errors(page)


def test_reading_aloud_is_off_where_there_is_no_voice(page: Page, deaf_server: RealServer) -> None:
    chat = import_conversation(
        deaf_server,
        {
            "format": "iaforall.conversation",
            "version": 1,
            "title": "Voices",
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hello! How can I help?"},
            ],
        },
    )
    open_app(page, deaf_server, chat["id"])
    read = page.locator(".msg-read")
    expect(read).to_be_enabled()  # English: piper's voice is there
    page.select_option("#language-select", "fr")
    expect(read).to_be_disabled()  # French: eSpeak NG is not
    assert "pas de voix" in (read.get_attribute("title") or "")
    page.locator("#about-button").click()
    row = page.locator('#about-rows tr[data-capability="text_to_speech_fr"]')
    expect(row).to_have_attribute("data-status", "missing")
    expect(row).to_contain_text("IAFORALL_ESPEAK=auto")
    assert not js_errors(page)
