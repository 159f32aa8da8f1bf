"""Transcriptions and speech take their place in the scheduler's one line with all other work
(fair per person, their position shown as for chat, 429 when the line is full) and pass the
person's quotas; their runtimes are closed with the app."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from iaforall.core.types import LOCAL_USER, ModelId, UserId
from iaforall.scheduling.loop import Scheduler
from tests.audio.conftest import VoiceWorld
from tests.audio.speech import needs_espeak, speak

pytestmark = [needs_espeak, pytest.mark.timeout(120)]

TINY = ModelId("whisper:tiny.en")
SPEECH = ModelId("tts-1")


def scheduler_of(voice: VoiceWorld) -> Scheduler:
    assert voice.app is not None
    found: Scheduler = voice.app.state.services.scheduler
    return found


@pytest.fixture
def wav(tmp_path: Path) -> bytes:
    return speak("open the window", tmp_path / "a.wav").read_bytes()


def transcribe(voice: VoiceWorld, wav: bytes, **data: str) -> Any:
    return voice.client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper:tiny.en", **data},
        files={"file": ("a.wav", wav, "audio/wav")},
    )


async def until_waiting(scheduler: Scheduler, count: int) -> None:
    for _ in range(200):
        if scheduler.queue_length >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} jobs never waited in line")


def data_events(text: str) -> list[dict[str, Any]]:
    """The `data:` events of an SSE body (queue comments left out)."""
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def test_a_transcription_waits_for_the_running_generation(
    voice: VoiceWorld, wav: bytes
) -> None:
    """With one model active at a time (the default), a generation in progress holds the engines;
    the transcription waits in the same line, visible in the queue, then runs."""
    scheduler = scheduler_of(voice)
    async with scheduler.slot(ModelId("tiny:latest"), UserId("someone")):
        task = asyncio.create_task(transcribe(voice, wav))
        await until_waiting(scheduler, 1)
        assert TINY in [p.model for p in scheduler.snapshot()]
        assert not task.done()
    r = await task
    assert r.status_code == 200 and "window" in r.json()["text"].lower()


async def test_a_second_persons_transcription_waits_in_line_and_sees_its_place(
    voice: VoiceWorld, wav: bytes
) -> None:
    scheduler = scheduler_of(voice)
    first_person = contextlib.AsyncExitStack()
    await first_person.enter_async_context(scheduler.slot(TINY, UserId("first person")))
    whole = asyncio.create_task(transcribe(voice, wav))
    await until_waiting(scheduler, 1)
    async with voice.client.stream(
        "POST",
        "/v1/audio/transcriptions",
        data={"model": "whisper:tiny.en", "stream": "true"},
        files={"file": ("a.wav", wav, "audio/wav")},
    ) as streamed:
        # A queued stream starts at once: its place is in the headers and the first bytes.
        assert streamed.headers["x-iaforall-queue-position"] == "2"
        assert int(streamed.headers["x-iaforall-queue-wait-ms"]) >= 0
        lines = streamed.aiter_lines()
        assert (await anext(lines)).startswith(": queue position=2")
        places = [p for p in scheduler.snapshot() if p.position > 0]
        assert [(p.user, p.position) for p in places] == [(LOCAL_USER, 1), (LOCAL_USER, 2)]
        assert not whole.done()
        await first_person.aclose()  # the first person's transcription ends
        rest = "\n".join([line async for line in lines])
    r = await whole
    assert r.status_code == 200 and "window" in r.json()["text"].lower()
    assert r.headers["x-iaforall-queue-position"] == "1"
    assert ": queue position=1" in rest and ": queue position=0" in rest  # moved up, then on
    found = data_events(rest)
    assert found[-1]["type"] == "transcript.text.done" and "window" in found[-1]["text"].lower()


async def test_a_full_line_answers_429_in_openais_shape(voice: VoiceWorld, wav: bytes) -> None:
    """max_queue is 2 here: one running, two others waiting (one place each), a third person
    is told at once, with a hint of when to retry, for both directions of audio (one model
    active at a time: speech would wait for Whisper too)."""
    scheduler = scheduler_of(voice)
    async with contextlib.AsyncExitStack() as line:
        await line.enter_async_context(scheduler.slot(TINY, UserId("a")))
        for user in ("b", "c"):
            await line.enter_async_context(scheduler.ticket(TINY, UserId(user)))
        r = await transcribe(voice, wav)
        assert r.status_code == 429 and float(r.headers["retry-after"]) > 0
        error = r.json()["error"]
        assert error["code"] == "server_busy" and error["type"] == "rate_limit_error"
        said = await voice.client.post(
            "/v1/audio/speech",
            json={"model": "tts-1", "voice": "espeak:en", "input": "Hello there."},
        )
        assert said.status_code == 429 and said.json()["error"]["code"] == "server_busy"
    assert scheduler.queue_length == 0


async def test_speech_waits_in_line_and_says_where(voice: VoiceWorld) -> None:
    scheduler = scheduler_of(voice)
    body = {
        "model": "tts-1",
        "voice": "espeak:en",
        "input": "Good morning. The library opens at nine.",
        "stream_format": "sse",
    }
    first_person = contextlib.AsyncExitStack()
    await first_person.enter_async_context(scheduler.slot(SPEECH, UserId("first person")))
    async with voice.client.stream("POST", "/v1/audio/speech", json=body) as r:
        assert r.headers["x-iaforall-queue-position"] == "1"
        lines = r.aiter_lines()
        assert (await anext(lines)).startswith(": queue position=1")
        await asyncio.sleep(0.3)
        assert scheduler.queued(SPEECH) == 1  # nothing is said before its turn
        await first_person.aclose()
        rest = "\n".join([line async for line in lines])
    found = data_events(rest)
    assert found[0]["type"] == "speech.audio.delta" and found[-1]["type"] == "speech.audio.done"
    served_at_once = await voice.client.post("/v1/audio/speech", json={**body, "input": "Hi."})
    assert served_at_once.headers["x-iaforall-queue-position"] == "0"
    assert not served_at_once.text.startswith(":")
