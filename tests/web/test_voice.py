"""Talking to the web app: Chromium's fake microphone plays speech that our own server spoke
(/v1/audio/speech, piper) into the page; the page records it with MediaRecorder and the server's
Whisper transcribes it. Dictation fills the message box; the conversation mode sends what was
said, reads the answer aloud, and listens again."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.real_server import RealServer
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, create_conversation, open_app, shot
from tests.web.test_accessibility import assert_accessible


def spoken(server: RealServer, text: str, voice: str, out: Path) -> Path:
    """`text` spoken by the server's own voice, then 4 s of silence (the pause that ends a
    recording), as the WAV file Chromium's fake microphone plays once."""
    response = httpx.post(
        f"{server.url}/v1/audio/speech",
        json={"model": "tts-1", "voice": voice, "input": text, "response_format": "wav"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    with wave.open(io.BytesIO(response.content)) as source:
        params = source.getparams()
        frames = source.readframes(source.getnframes())
    with wave.open(str(out), "wb") as target:
        target.setparams(params)
        target.writeframes(frames + b"\x00" * (params.sampwidth * params.framerate * 4))
    return out


def launch(path: Path) -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-ui-for-media-stream",  # the permission prompt says yes
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={path}%noloop",
            ],
        )
        yield browser
        browser.close()


def completed(frame: str | bytes) -> list[str]:
    """The transcript in a voice session's frame, if it carries one."""
    if not isinstance(frame, str) or "transcription.completed" not in frame:
        return []
    return [json.loads(frame)["transcript"]]


@pytest.fixture(scope="module")
def question(server: RealServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("speech") / "question.wav"
    return spoken(server, "What is the capital of France?", "alloy", out)


@pytest.fixture(scope="module")
def browser(question: Path) -> Iterator[Browser]:  # this module's own: a microphone that talks
    yield from launch(question)


def test_dictation_puts_the_spoken_words_in_the_message_box(page: Page, server: RealServer) -> None:
    open_app(page, server)
    mic = page.locator("#mic-button")
    expect(mic).to_have_attribute("aria-label", "Dictate with the microphone")
    transcripts: list[str] = []
    # The samples go to the server as they are recorded, over a voice session (/v1/realtime).
    with page.expect_websocket(lambda ws: "/v1/realtime" in ws.url, timeout=60_000) as opened:
        mic.click()
        expect(mic).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#voice-status")).to_contain_text("Listening")
        assert_accessible(page, "voice-dictation-listening")
    opened.value.on("framereceived", lambda frame: transcripts.extend(completed(frame)))
    box = page.locator("#composer-input")
    expect(box).to_have_value("What is the capital of France?", timeout=60_000)
    assert transcripts == ["What is the capital of France?"]  # heard over the session
    expect(mic).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#voice-status")).to_have_text("")
    expect(box).to_be_focused()


def test_the_conversation_mode_listens_answers_speaks_and_listens_again(
    page: Page, server: RealServer
) -> None:
    conversation = create_conversation(server, settings={"max_tokens": 12, "temperature": 0})
    open_app(page, server, conversation["id"])
    mode = page.locator("#handsfree-button")
    status = page.locator("#voice-status")
    with page.expect_response("**/v1/audio/speech", timeout=120_000) as said:
        mode.click()
        expect(mode).to_have_attribute("aria-pressed", "true")
    assert said.value.status == 200
    question = page.locator(".msg-user .msg-body").last
    expect(question).to_have_text("What is the capital of France?")
    answer = page.locator(".msg-assistant .msg-body").last.inner_text().strip()
    assert answer and (said.value.request.post_data_json or {})["input"].startswith(
        answer.split()[0]
    )
    expect(status).to_contain_text("Reading the answer aloud")
    shot(page, "voice-conversation-speaking")
    # The answer heard, it listens again (the fake microphone is silent now).
    expect(status).to_contain_text("Listening", timeout=60_000)
    page.keyboard.press("Escape")
    expect(mode).to_have_attribute("aria-pressed", "false")
    expect(status).to_have_text("")
    stored = httpx.get(f"{server.url}/web/api/conversations/{conversation['id']}", timeout=10)
    assert [m["role"] for m in stored.json()["messages"]] == ["user", "assistant"]
