"""The real app on loopback (fake LLM, real Whisper, real voices), its Whisper and voice runtimes
lent by the session (loaded once, piper kept running): the app's close leaves them be."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from iaforall.app import create_app
from iaforall.core.types import ModelId
from iaforall.engines import whisper
from iaforall.engines.installed import installed_runtimes
from iaforall.engines.runtime import Runtime, Runtimes
from iaforall.engines.tts.runtime import SpeakerRuntime
from iaforall.engines.whisper.runtime import WhisperRuntime
from iaforall.settings import Settings
from tests.conftest import FakeWorld, fake_settings, served, stock_store

STORY = (
    "The library opens at nine in the morning and closes at six in the evening. "
    "Please return your books before the end of the month. "
    "Children can join the reading club every Saturday afternoon. "
    "If you need help finding something, ask the person at the front desk."
)


@dataclass
class VoiceWorld(FakeWorld):
    settings: Settings | None = None
    app: FastAPI | None = None

    def runtime(self, name: str) -> Runtime:
        assert self.app is not None
        return self.app.state.services.pool.runtimes.get(name)  # type: ignore[no-any-return]


class LentWhisper(WhisperRuntime):
    async def close(self) -> None:
        """The session's: kept loaded for the next test."""


class LentSpeaker(SpeakerRuntime):
    async def close(self) -> None:
        """The session's: piper kept running for the next test."""


@pytest.fixture(scope="session")
def lent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[ModelId, Runtime]]:
    home = tmp_path_factory.mktemp("whisper-home")
    found: dict[ModelId, Runtime] = {
        ModelId(name): LentWhisper(whisper.MODELS[name], home, threads=2)
        for name in whisper.installed()
    }
    speaker = LentSpeaker(keep_alive=600, espeak="auto")
    found[speaker.model] = speaker
    yield found
    speaker.speaker.close()


def lending(settings: Settings, lent: dict[ModelId, Runtime]) -> Runtimes:
    """The runtimes installed here, the lent ones in place of new ones."""
    return Runtimes(
        replace(spec, build=lambda runtime=lent[spec.model]: runtime)
        if spec.model in lent
        else spec
        for spec in installed_runtimes(settings)
    )


@pytest.fixture
async def voice(tmp_path: Path, lent: dict[ModelId, Runtime]) -> AsyncIterator[VoiceWorld]:
    stock_store(tmp_path)
    # Two cores, whatever the machine: a chat or Whisper (two threads) leaves none to a voice.
    settings = fake_settings(tmp_path, max_queue=2, queue_timeout=5, cpu_cores=2)
    world = VoiceWorld(client=httpx.AsyncClient(), settings=settings)
    app = create_app(settings, factory=world.factory, runtimes=lending(settings, lent))
    world.app = app
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        world.client = client
        yield world


@pytest.fixture
async def story_16k(voice: VoiceWorld) -> bytes:
    """STORY (about fifteen seconds, four sentences) by our piper voice, as 16 kHz mono WAV."""
    return await spoken_16k(voice.client, STORY)


async def spoken_16k(client: httpx.AsyncClient, text: str) -> bytes:
    """`text` said by our piper voice, as 16 kHz mono WAV."""
    r = await client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"},
    )
    assert r.status_code == 200
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
    frame = av.AudioFrame.from_ndarray(
        np.frombuffer(r.content, dtype="<i2").reshape(1, -1),
        format="s16",
        layout="mono",
    )
    frame.sample_rate = 22_050  # piper's voice
    out = b"".join(f.to_ndarray().tobytes() for f in resampler.resample(frame))
    out += b"".join(f.to_ndarray().tobytes() for f in resampler.resample(None))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(out)
    return buffer.getvalue()
