"""/v1/audio/speech sends the audio as it is produced, sentence by sentence, from a piper that
stays running between requests (and comes back if it dies)."""

from __future__ import annotations

import base64
import io
import os
import signal
import time
from typing import Any

import av
import pytest

from iaforall.core.errors import InvalidRequest
from iaforall.engines import tts
from tests.audio.conftest import VoiceWorld
from tests.audio.speech import needs_espeak
from tests.audio.test_speech import needs_piper, spoken_words, word_error_rate
from tests.audio.test_transcriptions import sdk
from tests.sse import events

pytestmark = [needs_espeak, pytest.mark.timeout(180)]

STORY = (
    "The library opens at nine in the morning and closes at six in the evening. "
    "Please return your books before the end of the month. "
    "Children can join the reading club every Saturday afternoon. "
    "If you need help finding something, ask the person at the front desk."
)


def test_text_is_cut_where_sentences_end() -> None:
    text = "Hi. I am here.\nThis is a test of the system!  And more; yes. " * 3
    pieces = tts.split(text)
    assert pieces[0] == "Hi. I am here. This is a test of the system!"  # short ones join
    assert len(pieces) == 2 and " ".join(pieces).split() == text.split()
    assert all("\n" not in p and tts.WORD.search(p) for p in pieces)
    assert all(len(p) <= tts.MOST for p in tts.split("word " * 2000))
    assert tts.split("Bonjour... ?! Ça va.") == ["Bonjour... ?! Ça va."]  # never a wordless piece
    with pytest.raises(InvalidRequest):
        tts.split("... ?! ---")


async def timed(
    voice: VoiceWorld, speaker: str = "alloy", **body: Any
) -> tuple[list[bytes], float, float, str]:
    """The pieces of the body as they came, the seconds to the first and to the end."""
    start = time.perf_counter()
    pieces: list[bytes] = []
    first = 0.0
    async with voice.client.stream(
        "POST", "/v1/audio/speech", json={"model": "tts-1", "voice": speaker, **body}
    ) as r:
        assert r.status_code == 200, await r.aread()
        async for piece in r.aiter_raw():
            first = first or time.perf_counter() - start
            pieces.append(piece)
    return pieces, first, time.perf_counter() - start, r.headers["content-type"]


async def heard(voice: VoiceWorld, audio: bytes, name: str) -> str:
    result = await sdk(voice).audio.transcriptions.create(
        model="whisper:tiny.en", file=(name, io.BytesIO(audio))
    )
    return result.text


@needs_piper
@pytest.mark.parametrize("fmt", ["wav", "pcm", "mp3"])
async def test_long_text_is_sent_as_it_is_spoken(voice: VoiceWorld, fmt: str) -> None:
    pieces, first, total, media = await timed(voice, input=STORY, response_format=fmt)
    assert len(pieces) >= 2 and first < total
    audio = b"".join(pieces)
    if fmt == "pcm":
        assert media == "audio/pcm" and len(audio) % 2 == 0
        assert 8 < len(audio) / 2 / 24000 < 25  # seconds of 24 kHz 16-bit mono
        return
    with av.open(io.BytesIO(audio)) as got:
        seconds = sum(f.samples for f in got.decode(audio=0)) / got.streams.audio[0].sample_rate
    assert 8 < seconds < 25
    text = await heard(voice, audio, f"story.{fmt}")
    assert word_error_rate(STORY, text) <= 0.15, text


@needs_piper
async def test_piper_stays_running_and_comes_back_when_it_dies(voice: VoiceWorld) -> None:
    assert voice.app is not None
    piper = voice.runtime("tts-1").speaker.piper()  # type: ignore[attr-defined]
    client = sdk(voice)
    await client.audio.speech.create(model="tts-1", voice="alloy", input="Good morning.")
    first = [p.pid for p in piper.processes()]
    await client.audio.speech.create(model="tts-1", voice="alloy", input="Good evening.")
    assert [p.pid for p in piper.processes()] == first and len(first) == 1
    os.kill(first[0], signal.SIGKILL)
    said = await client.audio.speech.create(
        model="tts-1", voice="alloy", input="Please open the window.", response_format="wav"
    )
    assert {"open", "window"} <= set(spoken_words(await heard(voice, said.content, "a.wav")))
    assert [p.pid for p in piper.processes()] != first


@needs_piper
async def test_a_slower_voice_gets_its_own_process(voice: VoiceWorld) -> None:
    assert voice.app is not None
    piper = voice.runtime("tts-1").speaker.piper()  # type: ignore[attr-defined]
    client = sdk(voice)
    normal = await client.audio.speech.create(
        model="tts-1", voice="alloy", input="One two three four.", response_format="pcm"
    )
    slow = await client.audio.speech.create(
        model="tts-1", voice="alloy", input="One two three four.", response_format="pcm", speed=0.5
    )
    assert len(slow.content) > 1.5 * len(normal.content)
    assert len({p.key for p in piper.processes()}) == 2


@needs_piper
async def test_server_sent_events_carry_the_audio(voice: VoiceWorld) -> None:
    r = await voice.client.post(
        "/v1/audio/speech",
        json={
            "model": "tts-1",
            "voice": "alloy",
            "input": STORY,
            "response_format": "pcm",
            "stream_format": "sse",
        },
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    found = [data for _, data in events(r.text)]
    assert [d["type"] for d in found[:-1]] == ["speech.audio.delta"] * (len(found) - 1)
    assert found[-1]["type"] == "speech.audio.done" and len(found) >= 3
    audio = b"".join(base64.b64decode(d["audio"]) for d in found[:-1])
    assert found[-1]["iaforall"]["bytes"] == len(audio) and len(audio) / 2 / 24000 > 8


async def test_french_streams_from_espeak(voice: VoiceWorld) -> None:
    text = "Bonjour à tous. La bibliothèque ouvre à neuf heures. Elle ferme à six heures du soir."
    pieces, _, _, _ = await timed(voice, "fr", input=text, response_format="wav")
    audio = b"".join(pieces)
    assert audio[:8] == b"RIFF\xff\xff\xff\xff"  # streamed: its length unknown at the start
    result = await sdk(voice).audio.transcriptions.create(
        model="whisper:base", file=("fr.wav", io.BytesIO(audio)), language="fr"
    )
    assert {"bibliothèque", "heures"} & set(result.text.lower().replace(".", " ").split())


async def test_nothing_to_say_is_a_400(voice: VoiceWorld) -> None:
    r = await voice.client.post(
        "/v1/audio/speech", json={"model": "tts-1", "voice": "fr", "input": "... !?"}
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"


@needs_piper
def test_piper_stops_when_idle_or_at_once_without_keep_alive() -> None:
    joe = tts.resolve("alloy")
    once = tts.Speaker(keep_alive=0)
    pcm, rate = once.synthesize(joe, "Good morning. Good evening to you all.")
    assert rate == 22050 and len(pcm) > rate  # more than half a second
    assert once.piper().processes() == []
    brief = tts.Speaker(keep_alive=1)
    brief.synthesize(joe, "Good morning.")
    (running,) = brief.piper().processes()
    for _ in range(100):
        if not brief.piper().processes() and not running.alive():
            break
        time.sleep(0.1)
    assert brief.piper().processes() == [] and not running.alive()
    brief.close()
