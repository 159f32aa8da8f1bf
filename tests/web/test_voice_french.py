"""Talking to the web app in French: the French UI asks the multilingual Whisper for French,
and reads the answer with a French voice (eSpeak NG). The fake microphone plays French that our
own server spoke."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from tests.real_server import RealServer
from tests.web.conftest import create_conversation, open_app
from tests.web.test_voice import completed, launch, spoken


@pytest.fixture(scope="module")
def question(server: RealServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("speech") / "question-fr.wav"
    return spoken(server, "Quelle est la capitale de la France ?", "espeak:fr", out)


@pytest.fixture(scope="module")
def browser(question: Path) -> Iterator[Browser]:
    yield from launch(question)


def test_a_french_conversation_is_heard_and_answered_in_french(
    page: Page, server: RealServer
) -> None:
    conversation = create_conversation(server, settings={"max_tokens": 12, "temperature": 0})
    open_app(page, server, conversation["id"])
    page.select_option("#language-select", "fr")
    mode = page.locator("#handsfree-button")
    expect(mode).to_have_text("Mode conversation")
    calls: list[Response] = []
    page.on("response", lambda r: calls.append(r) if "/v1/audio/" in r.url else None)
    transcripts: list[str] = []  # heard over the voice session (/v1/realtime)
    page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda frame: transcripts.extend(completed(frame))),
    )
    mode.click()
    expect(page.locator("#voice-status")).to_contain_text("Lecture de la réponse", timeout=120_000)
    for _ in range(100):  # the speech answer streams: its response may come after the status
        if calls and transcripts:
            break
        page.wait_for_timeout(100)  # lets Playwright deliver the events meanwhile
    said = calls[0]
    assert said.url.endswith("/speech")  # the question was not uploaded whole
    text = transcripts[0].lower()
    assert "capitale" in text and "france" in text, text
    assert (said.request.post_data_json or {})["voice"] == "espeak:fr"
    page.keyboard.press("Escape")
    expect(mode).to_have_attribute("aria-pressed", "false")
