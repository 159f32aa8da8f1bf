"""Bad uploads get a clear 4xx in OpenAI's error shape, never a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iaforall.settings import Settings
from tests.audio.conftest import VoiceWorld
from tests.audio.speech import needs_espeak, speak

pytestmark = [needs_espeak, pytest.mark.timeout(60)]


def settings(world: VoiceWorld) -> Settings:
    assert world.settings is not None
    return world.settings


async def post(world: VoiceWorld, content: bytes, **data: str) -> tuple[int, dict[str, Any]]:
    r = await world.client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper:tiny.en", **data},
        files={"file": ("audio.wav", content, "audio/wav")},
    )
    return r.status_code, r.json()


async def test_empty_file(voice: VoiceWorld) -> None:
    status, body = await post(voice, b"")
    assert status == 400 and body["error"]["code"] == "empty_file"


async def test_not_audio(voice: VoiceWorld) -> None:
    status, body = await post(voice, b"this is a text file, not a song\n" * 50)
    assert status == 400 and body["error"]["code"] == "unsupported_format"
    assert body["error"]["param"] == "file"


async def test_truncated_audio(voice: VoiceWorld, tmp_path: Path) -> None:
    wav = speak("hello there", tmp_path / "a.wav").read_bytes()
    status, body = await post(voice, wav[:30])
    assert status == 400 and body["error"]["code"] in {"corrupt_audio", "unsupported_format"}


async def test_garbage_after_a_header(voice: VoiceWorld, tmp_path: Path) -> None:
    mp3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40
    status, body = await post(voice, mp3)
    assert status == 400 and body["error"]["type"] == "invalid_request_error"


async def test_too_long(voice: VoiceWorld, tmp_path: Path) -> None:
    wav = speak("one two three four five six seven", tmp_path / "a.wav").read_bytes()
    settings(voice).voice.max_audio_seconds = 1
    status, body = await post(voice, wav)
    assert status == 400 and body["error"]["code"] == "audio_too_long"
    assert "IAFORALL_MAX_AUDIO_SECONDS" in body["error"]["message"]


async def test_too_large(voice: VoiceWorld) -> None:
    settings(voice).voice.max_audio_mb = 1
    status, body = await post(voice, b"\0" * 1_500_000)
    assert status == 413 and body["error"]["code"] == "payload_too_large"


async def test_unknown_model_and_format(voice: VoiceWorld, tmp_path: Path) -> None:
    wav = speak("hello", tmp_path / "a.wav").read_bytes()
    status, body = await post(voice, wav, model="whisper:huge")
    assert status == 404 and body["error"]["code"] == "model_not_found"
    status, body = await post(voice, wav, response_format="mp4")
    assert status == 400 and body["error"]["param"] == "response_format"


async def test_missing_file(voice: VoiceWorld) -> None:
    r = await voice.client.post("/v1/audio/transcriptions", data={"model": "whisper:tiny.en"})
    assert r.status_code == 400 and "file" in r.json()["error"]["message"]
