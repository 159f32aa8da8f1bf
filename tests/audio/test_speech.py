"""POST /v1/audio/speech and GET /v1/audio/voices: what our voices say, Whisper hears back."""

from __future__ import annotations

import io
import re

import openai
import pytest

from iaforall.engines import tts
from tests.audio.conftest import VoiceWorld
from tests.audio.speech import needs_espeak
from tests.audio.test_transcriptions import sdk, words

pytestmark = [needs_espeak, pytest.mark.timeout(120)]

needs_piper = pytest.mark.skipif(
    not any(v.engine == "piper" for v in tts.voices()), reason="piper voice not installed"
)


async def test_voices_list_languages(voice: VoiceWorld) -> None:
    listed = (await voice.client.get("/v1/audio/voices")).json()["data"]
    by_id = {v["id"]: v for v in listed}
    assert by_id["espeak:fr"]["language"] == "fr-FR"
    assert all(v["language"] and v["engine"] in {"piper", "espeak-ng"} for v in listed)


@needs_piper
@pytest.mark.parametrize("fmt", ["mp3", "wav", "opus", "flac"])
async def test_english_speech_is_heard_back(voice: VoiceWorld, fmt: str) -> None:
    client = sdk(voice)
    said = await client.audio.speech.create(
        model="tts-1",
        voice="alloy",
        input="Please open the window and turn on the light.",
        response_format=fmt,  # type: ignore[arg-type]
    )
    audio = said.content
    assert len(audio) > 1000
    heard = await client.audio.transcriptions.create(
        model="whisper:tiny.en", file=(f"speech.{fmt}", io.BytesIO(audio))
    )
    expected = {"please", "open", "the", "window", "and", "turn", "on", "light"}
    assert len(expected & words(heard.text)) >= 7, heard.text


LONGER = (
    "The library opens at nine in the morning and closes at six in the evening. "
    "Please return your books before the end of the month."
)


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = spoken_words(reference), spoken_words(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / len(ref)


def spoken_words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


@needs_piper
async def test_english_round_trip_word_error_rate(voice: VoiceWorld) -> None:
    client = sdk(voice)
    said = await client.audio.speech.create(
        model="tts-1", voice="alloy", input=LONGER, response_format="mp3"
    )
    heard = await client.audio.transcriptions.create(
        model="whisper:tiny.en", file=("speech.mp3", io.BytesIO(said.content))
    )
    assert word_error_rate(LONGER, heard.text) <= 0.15, heard.text


async def test_french_speech_is_heard_back(voice: VoiceWorld) -> None:
    client = sdk(voice)
    said = await client.audio.speech.create(
        model="tts-1",
        voice="espeak:fr",  # type: ignore[arg-type]
        input="Bonjour, je voudrais un café et un croissant.",
        response_format="wav",
        speed=0.9,
    )
    heard = await client.audio.transcriptions.create(
        model="whisper:base", file=("fr.wav", io.BytesIO(said.content)), language="fr"
    )
    assert {"bonjour", "café", "croissant"} & words(heard.text), heard.text


async def test_raw_pcm_is_24khz_16bit(voice: VoiceWorld) -> None:
    r = await voice.client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "fr", "input": "un deux trois", "response_format": "pcm"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "audio/pcm"
    assert len(r.content) % 2 == 0 and len(r.content) > 24000  # more than half a second


async def test_bad_requests(voice: VoiceWorld) -> None:
    async def post(**body: object) -> tuple[int, dict[str, object]]:
        base = {"model": "tts-1", "voice": "fr", "input": "bonjour"}
        r = await voice.client.post("/v1/audio/speech", json={**base, **body})
        return r.status_code, r.json()["error"]

    status, error = await post(voice="klingon")
    assert status == 400 and error["code"] == "voice_not_found"
    status, error = await post(response_format="mp4")
    assert status == 400 and error["param"] == "response_format"
    status, error = await post(input="")
    assert status == 400
    status, error = await post(input="x" * 5000)
    assert status == 400
    status, error = await post(speed=10)
    assert status == 400
    status, error = await post(model="dall-e-3")
    assert status == 404 and error["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        await sdk(voice).audio.speech.create(model="tts-1", voice="nobody", input="hi")  # type: ignore[arg-type]
