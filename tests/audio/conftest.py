"""The real app on loopback (fake LLM, real Whisper, real voices), one Whisper and one speaker
(its piper kept running) shared by the session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from iaforall.api.audio import Turn
from iaforall.app import create_app
from iaforall.engines.tts import Speaker
from iaforall.engines.whisper import Whisper
from iaforall.settings import Settings
from tests.conftest import FakeWorld, fake_settings, served, stock_store


@dataclass
class VoiceWorld(FakeWorld):
    settings: Settings | None = None
    app: FastAPI | None = None


@pytest.fixture(scope="session")
def shared_whisper(tmp_path_factory: pytest.TempPathFactory) -> Whisper:
    return Whisper(tmp_path_factory.mktemp("whisper-home"), threads=2)


@pytest.fixture(scope="session")
def shared_speaker() -> Iterator[Speaker]:
    speaker = Speaker(keep_alive=600)
    yield speaker
    speaker.close()


@pytest.fixture
async def voice(
    tmp_path: Path, shared_whisper: Whisper, shared_speaker: Speaker
) -> AsyncIterator[VoiceWorld]:
    stock_store(tmp_path)
    settings = fake_settings(tmp_path, max_queue=2, queue_timeout=5)
    world = VoiceWorld(client=httpx.AsyncClient(), settings=settings)
    app = create_app(settings, factory=world.factory)
    app.state.whisper = shared_whisper
    app.state.speaker = shared_speaker
    world.app = app
    app.state.whisper_turn = Turn(settings.voice.audio_queue)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        world.client = client
        yield world
