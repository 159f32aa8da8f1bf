"""Read aloud: an answer is spoken by the server's own voice and played in the page; a second
press stops it. Real server, real piper and eSpeak NG."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from tests.real_server import RealServer
from tests.web.conftest import SAMPLE, import_conversation, open_app


def test_an_answer_is_read_aloud_then_stopped(page: Page, server: RealServer) -> None:
    conversation = import_conversation(server, SAMPLE)
    open_app(page, server, conversation["id"])
    button = page.locator(".msg-assistant .msg-read").first
    expect(button).to_have_text("Read aloud")
    with page.expect_response("**/v1/audio/speech") as spoken:
        button.click()
    response = spoken.value
    assert response.status == 200 and response.headers["content-type"] == "audio/mpeg"
    sent = json.loads(response.request.post_data or "{}")
    # The words, not the Markdown or the code block.
    assert sent["voice"] == "alloy" and sent["input"].startswith("Here is a loop, see the docs")
    assert "print(i)" not in sent["input"] and "**" not in sent["input"]
    expect(button).to_have_text("Stop reading")
    button.click()
    expect(button).to_have_text("Read aloud")


def test_french_is_read_with_a_french_voice(page: Page, server: RealServer) -> None:
    conversation = import_conversation(server, SAMPLE)
    open_app(page, server, conversation["id"])
    page.select_option("#language-select", "fr")
    button = page.locator(".msg-assistant .msg-read").first
    expect(button).to_have_text("Lire à voix haute")
    with page.expect_response("**/v1/audio/speech") as spoken:
        button.click()
    assert json.loads(spoken.value.request.post_data or "{}")["voice"] == "espeak:fr"
    assert spoken.value.status == 200
    page.select_option("#language-select", "en")  # leave the shared browser as it was


def test_without_a_microphone_dictation_says_why(page: Page, server: RealServer) -> None:
    open_app(page, server)  # this browser has no microphone, and no one to allow it
    page.locator("#composer-input").fill("kept")
    page.keyboard.press("Control+Shift+L")  # the dictation shortcut
    alert = page.get_by_role("alert")
    why = re.compile("No microphone was found|Microphone access was refused")
    expect(alert).to_contain_text(why)
    expect(page.locator("#mic-button")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#composer-input")).to_have_value("kept")
