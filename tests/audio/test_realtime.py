"""The voice session over a WebSocket (/v1/realtime, OpenAI's Realtime transcription habit):
audio appended as it is spoken, the pieces' text as deltas before the commit, the same words as
the whole file; bad messages are error events and the session goes on; other sites refused."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
import websockets

from tests.audio.conftest import VoiceWorld
from tests.audio.speech import needs_espeak
from tests.audio.test_speech import needs_piper, word_error_rate

pytestmark = [needs_espeak, needs_piper, pytest.mark.timeout(240)]


def socket_url(world: VoiceWorld) -> str:
    return str(world.client.base_url).replace("http://", "ws://").rstrip("/") + "/v1/realtime"


async def until(ws: Any, kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The first event of `kind`, and the events before it."""
    before: list[dict[str, Any]] = []
    while (event := json.loads(await asyncio.wait_for(ws.recv(), 120)))["type"] != kind:
        before.append(event)
    return event, before


async def test_deltas_while_it_is_spoken_then_the_whole_transcript(
    voice: VoiceWorld,
    story_16k: bytes,
) -> None:
    whole = await voice.client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper:tiny.en"},
        files={"file": ("story.wav", story_16k, "audio/wav")},
    )
    pcm = story_16k[44:]
    async with websockets.connect(socket_url(voice) + "?intent=transcription") as ws:
        await until(ws, "transcription_session.created")
        session = {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "whisper:tiny.en", "language": "en"},
            "iaforall": {"sample_rate": 16_000},
        }
        await ws.send(json.dumps({"type": "transcription_session.update", "session": session}))
        await until(ws, "transcription_session.updated")
        await ws.send(json.dumps({"type": "what.is.this"}))
        error, _ = await until(ws, "error")
        assert "Unknown message type" in error["error"]["message"]
        await ws.send(b"\0" * 1_000_001)  # past a message's bound: refused, the session goes on
        error, _ = await until(ws, "error")
        assert "at most 1 MB" in error["error"]["message"]
        for at in range(0, len(pcm), 8000):  # a quarter of a second each, four times as fast
            chunk = base64.b64encode(pcm[at : at + 8000]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            await asyncio.sleep(0.25 / 4)
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        done, before = await until(ws, "conversation.item.input_audio_transcription.completed")
    deltas = [e for e in before if e["type"].endswith("transcription.delta")]
    assert deltas, before  # some text came before the end of the audio
    assert "".join(d["delta"] for d in deltas).strip() == done["transcript"]
    assert word_error_rate(whole.json()["text"], done["transcript"]) <= 0.1


async def test_a_page_of_another_site_cannot_open_a_session(voice: VoiceWorld) -> None:
    own = str(voice.client.base_url).rstrip("/")
    async with websockets.connect(socket_url(voice), additional_headers={"Origin": own}) as ws:
        assert json.loads(await ws.recv())["type"] == "transcription_session.created"
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(
            socket_url(voice), additional_headers={"Origin": "http://evil.example"}
        ):
            pass
