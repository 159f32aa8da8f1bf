"""Transcriptions take their turn in the scheduler with all other work; then one at a time;
a few wait; beyond that, a 429 at once."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from iaforall.api.audio import Turn
from iaforall.core.errors import ServerBusy
from iaforall.core.types import ModelId, UserId
from tests.audio.conftest import VoiceWorld
from tests.audio.speech import needs_espeak, speak


async def test_one_runs_one_waits_the_next_is_refused() -> None:
    turn = Turn(queue=1)
    release, started = threading.Event(), threading.Event()
    running: list[int] = []

    def work(n: int) -> int:
        running.append(n)
        started.set()
        assert len(running) == 1, "two ran at once"
        release.wait(5)
        running.remove(n)
        return n

    first = asyncio.create_task(turn.run(work, 1))
    assert await asyncio.to_thread(started.wait, 5)
    second = asyncio.create_task(turn.run(work, 2))
    await asyncio.sleep(0.05)
    with pytest.raises(ServerBusy) as busy:
        await turn.run(work, 3)
    assert busy.value.status == 429 and busy.value.retry_after > 0
    release.set()
    assert await first == 1 and await second == 2
    assert await turn.run(work, 4) == 4


@needs_espeak
async def test_a_transcription_waits_for_the_running_generation(
    voice: VoiceWorld, tmp_path: Path
) -> None:
    """With one model active at a time (the default), a generation in progress holds the engines;
    the transcription waits in the same line, visible in the queue, then runs."""
    assert voice.app is not None
    scheduler = voice.app.state.services.scheduler
    wav = speak("open the window", tmp_path / "a.wav").read_bytes()
    async with scheduler.slot(ModelId("tiny:latest"), UserId("someone")):
        task = asyncio.create_task(
            voice.client.post(
                "/v1/audio/transcriptions",
                data={"model": "whisper:tiny.en"},
                files={"file": ("a.wav", wav, "audio/wav")},
            )
        )
        await asyncio.sleep(1.0)
        assert not task.done()
        assert "whisper:tiny.en" in [p.model for p in scheduler.snapshot()]
    r = await task
    assert r.status_code == 200 and "window" in r.json()["text"].lower()
