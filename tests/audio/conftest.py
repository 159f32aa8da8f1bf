"""The real app on loopback (fake LLM, real Whisper, real voices), its Whisper and voice runtimes
lent by the session (loaded once, piper kept running): the app's close leaves them be."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
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
