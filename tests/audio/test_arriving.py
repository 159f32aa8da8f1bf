"""Audio sent as it is spoken (a chunked WAV or raw PCM body on /v1/audio/transcriptions):
transcribed in pieces while it arrives, the same words as the whole file, only the tail left when
the last byte comes; bad uploads refused with a clear 4xx."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from iaforall.app import create_app
from iaforall.core.types import ModelId
from iaforall.engines.runtime import Runtime
from iaforall.settings import VoiceSettings
from tests.audio.conftest import STORY, VoiceWorld, lending, spoken_16k
from tests.audio.speech import needs_espeak
from tests.audio.test_speech import needs_piper, word_error_rate
from tests.conftest import fake_settings, served, stock_store

pytestmark = [needs_espeak, needs_piper, pytest.mark.timeout(240)]

URL = "/v1/audio/transcriptions?model=whisper:tiny.en&response_format=verbose_json"


async def paced(data: bytes, chunk: int, pause: float) -> AsyncIterator[bytes]:
    for at in range(0, len(data), chunk):
        yield data[at : at + chunk]
        await asyncio.sleep(pause)


async def arriving(
    client: httpx.AsyncClient, data: bytes, *, kind: str = "audio/wav", pause: float = 0.0
) -> tuple[httpx.Response, float]:
    """The response, and the seconds from the last byte sent to the response."""
    sent = [0.0]

    async def body() -> AsyncIterator[bytes]:
        async for piece in paced(data, 8000, pause):  # a quarter of a second of audio each
            yield piece
        sent[0] = time.perf_counter()

    r = await client.post(URL, content=body(), headers={"content-type": kind})
    return r, time.perf_counter() - sent[0]


# About 45 s of speech: Whisper reads a whole 30 s window whatever the audio's length, so the
# tail (one window) is far less than the whole (two) only past 30 s. Three different
# paragraphs: the same one told three times, Whisper (which reads each window knowing the text
# before) once skipped a whole telling in the whole file.
LONG_STORY = " ".join(
    [
        STORY,
        "The swimming pool behind the town hall will be closed for repairs during the first "
        "two weeks of June. Members may use the pool in the next village at no extra cost, "
        "and the bus leaves from the market square every hour.",
        "On Sunday the gardeners of the association will plant apple trees along the river. "
        "Bring gloves and a spade if you have them, and we will share soup and bread at noon "
        "in the old barn near the bridge.",
    ]
)


async def test_in_pieces_the_same_words_as_the_whole_file_and_only_the_tail_left(
    voice: VoiceWorld,
) -> None:
    story_16k = await spoken_16k(voice.client, LONG_STORY)
    told = LONG_STORY
    whole_started = time.perf_counter()
    whole = await voice.client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper:tiny.en", "response_format": "verbose_json"},
        files={"file": ("story.wav", story_16k, "audio/wav")},
    )
    whole_seconds = time.perf_counter() - whole_started
    assert whole.status_code == 200, whole.text
    # Paced at four times the speech's speed: the pieces are decoded while the rest arrives.
    r, after_last_byte = await arriving(voice.client, story_16k, pause=0.25 / 4)
    assert r.status_code == 200, r.text
    got, expected = r.json(), whole.json()
    assert word_error_rate(expected["text"], got["text"]) <= 0.1, (expected["text"], got["text"])
    assert word_error_rate(told, got["text"]) <= word_error_rate(told, expected["text"]) + 0.05
    assert abs(got["duration"] - expected["duration"]) < 0.1
    starts = [s["start"] for s in got["segments"]]
    assert starts == sorted(starts) and got["segments"][-1]["end"] <= got["duration"] + 0.1
    # Only the last sentence is left when the last byte arrives: far less than the whole file
    # (a ratio measured in this run; the whole is ten sentences, two windows).
    assert after_last_byte < 0.7 * whole_seconds, (after_last_byte, whole_seconds)


async def test_raw_pcm_reads_as_the_wav_does(voice: VoiceWorld, story_16k: bytes) -> None:
    wav, _ = await arriving(voice.client, story_16k)
    raw, _ = await arriving(voice.client, story_16k[44:], kind="audio/pcm")
    assert raw.status_code == 200, raw.text
    assert word_error_rate(wav.json()["text"], raw.json()["text"]) <= 0.1


async def test_not_audio_and_missing_model_are_400(voice: VoiceWorld) -> None:
    r, _ = await arriving(voice.client, b"hello, this is not a wav file at all" * 10)
    assert r.status_code == 400 and "not a WAV" in r.json()["error"]["message"]
    r = await voice.client.post(
        "/v1/audio/transcriptions", content=b"RIFF", headers={"content-type": "audio/wav"}
    )
    assert r.status_code == 400 and "'model'" in r.json()["error"]["message"]
    r = await voice.client.post(URL, content=b"", headers={"content-type": "audio/pcm"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_file"
    r = await voice.client.post(URL, content=b"\0" * 100, headers={"content-type": "audio/mpeg"})
    assert r.status_code == 400 and "WAV" in r.json()["error"]["message"]


@pytest.fixture
async def strict(tmp_path: Path, lent: dict[ModelId, Runtime]) -> AsyncIterator[VoiceWorld]:
    """Small limits: 3 s of audio, 1 MB, a second without bytes."""
    stock_store(tmp_path)
    settings = fake_settings(tmp_path, max_queue=2, queue_timeout=5, cpu_cores=2)
    settings = settings.model_copy(
        update={"voice": VoiceSettings(max_audio_seconds=3, max_audio_mb=1, stream_idle_seconds=1)}
    )
    world = VoiceWorld(client=httpx.AsyncClient(), settings=settings)
    app = create_app(settings, factory=world.factory, runtimes=lending(settings, lent))
    world.app = app
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        world.client = client
        yield world


async def test_an_upload_that_stops_arriving_is_408(strict: VoiceWorld) -> None:
    async def stalls() -> AsyncIterator[bytes]:
        yield b"\0" * 3200
        await asyncio.sleep(3)
        yield b"\0" * 3200

    r = await strict.client.post(URL, content=stalls(), headers={"content-type": "audio/pcm"})
    assert r.status_code == 408, r.text
    assert "IAFORALL_STREAM_IDLE_SECONDS" in r.json()["error"]["message"]


async def test_too_long_and_too_large_chunked_uploads_are_refused(strict: VoiceWorld) -> None:
    five_seconds = b"\0" * (5 * 32_000)
    r, _ = await arriving(strict.client, five_seconds, kind="audio/pcm")
    assert r.status_code == 400 and r.json()["error"]["code"] == "audio_too_long"
    # A chunked body has no Content-Length: it is counted as it arrives (api/limits.py).
    header = io.BytesIO()
    with wave.open(header, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(192_000)  # 2.5 s = 1.9 MB: past the 2 MB ceiling before 3 s of audio
        w.writeframes(b"")
    r, _ = await arriving(strict.client, header.getvalue() + b"\0" * 2_200_000)
    assert r.status_code == 413, r.text


async def test_the_whisper_slot_is_free_while_the_audio_is_awaited(
    voice: VoiceWorld, story_16k: bytes
) -> None:
    """A person speaking slowly blocks nobody: between pieces their upload holds no slot, so
    another transcription goes through while the upload is still open."""
    other_done = asyncio.Event()
    spoken_half = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        half = len(story_16k) // 2
        async for piece in paced(story_16k[:half], 8000, 0.02):
            yield piece
        spoken_half.set()
        await asyncio.wait_for(other_done.wait(), 60)  # the speaker pauses meanwhile
        yield story_16k[half:]

    async def other() -> httpx.Response:
        await spoken_half.wait()
        r = await voice.client.post(
            "/v1/audio/transcriptions",
            data={"model": "whisper:tiny.en"},
            files={"file": ("story.wav", story_16k, "audio/wav")},
        )
        other_done.set()
        return r

    slow_response, other_response = await asyncio.gather(
        voice.client.post(URL, content=slow(), headers={"content-type": "audio/wav"}), other()
    )
    assert other_response.status_code == 200 and slow_response.status_code == 200
    assert word_error_rate(other_response.json()["text"], slow_response.json()["text"]) <= 0.1
