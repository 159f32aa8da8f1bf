"""POST /v1/audio/transcriptions and /translations: real Whisper models, real speech, the
official `openai` SDK over loopback."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest

from iaforall.engines import whisper
from tests.audio.conftest import VoiceWorld
from tests.audio.speech import convert, needs_espeak, speak

pytestmark = [needs_espeak, pytest.mark.timeout(120)]

FOX = "please open the window and turn on the light"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-zà-ÿ]+", text.lower()))


def sdk(world: VoiceWorld) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{str(world.client.base_url).rstrip('/')}/v1", api_key="none", max_retries=0
    )


@pytest.fixture(scope="module")
def fox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speak(FOX, tmp_path_factory.mktemp("speech") / "fox.wav")


def test_the_packaged_models_are_installed() -> None:
    assert {"whisper:tiny.en", "whisper:base"} <= set(whisper.installed())


async def test_models_lists_whisper(voice: VoiceWorld) -> None:
    ids = {m.id async for m in sdk(voice).models.list()}
    assert {"whisper:tiny.en", "whisper:base"} <= ids


async def test_english_wav_is_transcribed(voice: VoiceWorld, fox: Path) -> None:
    with fox.open("rb") as f:
        result = await sdk(voice).audio.transcriptions.create(model="whisper:tiny.en", file=f)
    assert {"open", "window", "turn", "light"} <= words(result.text)


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "webm", "m4a", "flac"])
async def test_every_promised_format_is_decoded(voice: VoiceWorld, fox: Path, fmt: str) -> None:
    encoded = convert(fox, fmt)
    with encoded.open("rb") as f:
        text = await sdk(voice).audio.transcriptions.create(
            model="whisper-1", file=f, response_format="text"
        )
    assert {"window", "light"} <= words(str(text))


async def test_verbose_json_srt_and_vtt_carry_timestamps(voice: VoiceWorld, fox: Path) -> None:
    client = sdk(voice)
    with fox.open("rb") as f:
        verbose = await client.audio.transcriptions.create(
            model="whisper:tiny.en", file=f, response_format="verbose_json", language="en"
        )
    assert verbose.language == "en" and verbose.duration > 1
    assert verbose.segments and verbose.segments[0].end > verbose.segments[0].start >= 0
    for fmt, head in (("srt", "1\n00:00:0"), ("vtt", "WEBVTT\n\n00:00:0")):
        with fox.open("rb") as f:
            body = await client.audio.transcriptions.create(
                model="whisper:tiny.en",
                file=f,
                response_format=fmt,  # type: ignore[call-overload]
            )
        assert str(body).startswith(head) and " --> " in str(body) and "window" in str(body).lower()


async def test_french_with_base(voice: VoiceWorld, tmp_path: Path) -> None:
    audio = speak("bonjour, je voudrais un café et un croissant", tmp_path / "fr.wav", "fr")
    with audio.open("rb") as f:
        result = await sdk(voice).audio.transcriptions.create(
            model="whisper:base", file=f, language="fr"
        )
    assert {"bonjour", "café", "croissant"} & words(result.text), result.text


async def test_translation_into_english(voice: VoiceWorld, tmp_path: Path) -> None:
    audio = speak("bonjour, je voudrais un café", tmp_path / "fr.wav", "fr")
    with audio.open("rb") as f:
        result = await sdk(voice).audio.translations.create(model="whisper:base", file=f)
    assert result.text.strip()
    with audio.open("rb") as f, pytest.raises(openai.BadRequestError):
        await sdk(voice).audio.translations.create(model="whisper:tiny.en", file=f)
