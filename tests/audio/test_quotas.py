"""Audio jobs pass the person's quotas like chat (requests running or waiting, tokens per day)
and are charged in engines/audio_cost.py's units; their runtimes are closed with the app."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from iaforall.app import create_app
from iaforall.core.types import LOCAL_USER, ModelId, UserId
from iaforall.engines.protocol import EngineState
from iaforall.engines.runtime import Runtime
from iaforall.engines.tts.runtime import SpeakerRuntime
from iaforall.engines.whisper.runtime import WhisperRuntime
from iaforall.settings import Settings
from tests.audio.conftest import VoiceWorld, lending
from tests.audio.speech import needs_espeak, speak
from tests.audio.test_speech import needs_piper
from tests.conftest import fake_settings, served, stock_store

pytestmark = [needs_espeak, pytest.mark.timeout(120)]

TINY = ModelId("whisper:tiny.en")


@contextlib.asynccontextmanager
async def server(
    home: Path, settings: Settings, lent: dict[ModelId, Runtime] | None = None
) -> AsyncIterator[VoiceWorld]:
    stock_store(home)
    world = VoiceWorld(client=httpx.AsyncClient(), settings=settings)
    runtimes = lending(settings, lent) if lent is not None else None
    world.app = create_app(settings, factory=world.factory, runtimes=runtimes)
    async with served(world.app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        world.client = client
        yield world


def quota_settings(home: Path, **people: int) -> Settings:
    """No accounts: the local person is an admin, and has the admin's quotas."""
    settings = fake_settings(home, max_queue=4, queue_timeout=10)
    for name, value in people.items():
        setattr(settings.people, name, value)
    return settings


async def transcribe(world: VoiceWorld, wav: bytes) -> httpx.Response:
    return await world.client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper:tiny.en"},
        files={"file": ("a.wav", wav, "audio/wav")},
    )


async def say(world: VoiceWorld, text: str) -> httpx.Response:
    return await world.client.post(
        "/v1/audio/speech", json={"model": "tts-1", "voice": "espeak:en", "input": text}
    )


async def test_tokens_per_day_refuse_audio_once_used(
    tmp_path: Path, lent: dict[ModelId, Runtime]
) -> None:
    wav = speak("open the window", tmp_path / "a.wav").read_bytes()
    settings = quota_settings(tmp_path, admin_tokens_per_day=30)
    async with server(tmp_path, settings, lent) as world:
        assert world.app is not None
        accounts = world.app.state.services.accounts
        first = await transcribe(world, wav)
        assert first.status_code == 200
        # About a second and a half of audio (10 tokens a second) and the transcript's tokens.
        used = await asyncio.to_thread(accounts.tokens_today, LOCAL_USER)
        assert 10 <= used <= 30, used
        said = await say(world, "Good morning, and welcome to the library.")
        assert said.status_code == 200
        spent = await asyncio.to_thread(accounts.tokens_today, LOCAL_USER)
        assert spent > 30, spent  # characters / 4 and the seconds of audio spoken
        for refused in (await transcribe(world, wav), await say(world, "Hello.")):
            assert refused.status_code == 429, refused.text
            error = refused.json()["error"]
            assert error["code"] == "quota_exceeded" and "tokens per day" in error["message"]
            assert float(refused.headers["retry-after"]) > 0


async def test_requests_running_or_waiting_count_audio_jobs(
    tmp_path: Path, lent: dict[ModelId, Runtime]
) -> None:
    wav = speak("open the window", tmp_path / "a.wav").read_bytes()
    settings = quota_settings(tmp_path, admin_concurrent_requests=1)
    async with server(tmp_path, settings, lent) as world:
        assert world.app is not None
        scheduler = world.app.state.services.scheduler
        holder = contextlib.AsyncExitStack()
        await holder.enter_async_context(scheduler.slot(TINY, UserId("someone else")))
        waiting = asyncio.create_task(transcribe(world, wav))
        for _ in range(200):
            if scheduler.queue_length:
                break
            await asyncio.sleep(0.02)
        refused = await say(world, "Hello.")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "quota_exceeded"
        assert "concurrent requests" in refused.json()["error"]["message"]
        await holder.aclose()
        assert (await waiting).status_code == 200
        assert (await say(world, "Hello.")).status_code == 200  # one at a time is fine


@needs_piper
async def test_the_runtimes_are_closed_when_the_app_stops(tmp_path: Path) -> None:
    """Runtimes of its own (none lent): Whisper loaded, piper started, both gone at shutdown."""
    wav = speak("open the window", tmp_path / "a.wav").read_bytes()
    async with server(tmp_path, fake_settings(tmp_path)) as world:
        assert world.app is not None
        runtimes = world.app.state.services.pool.runtimes
        assert runtimes.made() == []  # nothing is loaded before it is used
        assert (await transcribe(world, wav)).status_code == 200
        said = await world.client.post(
            "/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hello."}
        )
        assert said.status_code == 200
        hearing, speaking = runtimes.get("whisper-1"), runtimes.get("tts-1")
        assert isinstance(hearing, WhisperRuntime) and isinstance(speaking, SpeakerRuntime)
        assert hearing.state is EngineState.READY
        piper = speaking.speaker.running_piper()
        assert piper is not None
        pids = [p.pid for p in piper.processes()]
        assert pids
        shown = (await world.client.get("/health")).json()["runtimes"]  # the local admin's view
        assert {(r["name"], r["kind"], r["state"]) for r in shown} == {
            ("whisper:tiny.en", "speech_to_text", "ready"),
            ("tts-1", "text_to_speech", "ready"),
        }
    assert hearing.state is EngineState.STOPPED and speaking.state is EngineState.STOPPED
    assert runtimes.made() == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
