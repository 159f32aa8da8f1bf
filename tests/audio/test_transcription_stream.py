"""`stream=true` on /v1/audio/transcriptions and /translations: transcript.text.delta events as
Whisper decodes each segment, with the progress, then transcript.text.done, then nothing; read by
the official `openai` SDK; errors before the start keep their HTTP status, after it they are an
error event."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from iaforall.core.errors import EngineUnavailable
from iaforall.core.types import ModelId
from iaforall.engines import whisper
from iaforall.engines.whisper import Run
from tests.audio.conftest import STORY, VoiceWorld
from tests.audio.speech import needs_espeak, speak
from tests.audio.test_speech import needs_piper, word_error_rate
from tests.audio.test_transcriptions import sdk
from tests.sse import events

pytestmark = [needs_espeak, pytest.mark.timeout(180)]


@pytest.fixture
async def story(voice: VoiceWorld) -> bytes:
    """About fifteen seconds of English, spoken by our piper voice."""
    said = await sdk(voice).audio.speech.create(
        model="tts-1", voice="alloy", input=STORY, response_format="wav"
    )
    return said.content


@needs_piper
async def test_the_sdk_reads_the_deltas_and_the_done_event(voice: VoiceWorld, story: bytes) -> None:
    stream = await sdk(voice).audio.transcriptions.create(
        model="whisper:tiny.en", file=("story.wav", io.BytesIO(story)), stream=True
    )
    got = [event async for event in stream]
    deltas, done = got[:-1], got[-1]
    assert deltas and all(e.type == "transcript.text.delta" for e in deltas)
    assert done.type == "transcript.text.done"
    assert done.text == "".join(e.delta for e in deltas).strip()  # type: ignore[union-attr]
    assert word_error_rate(STORY, done.text) <= 0.15, done.text
    progress = [(e.model_extra or {})["iaforall"] for e in deltas]
    shares = [p["progress"] for p in progress]
    assert shares == sorted(shares) and shares[0] > 0 and shares[-1] <= 1
    assert all(p["duration"] > 10 and 0 < p["seconds"] <= p["duration"] for p in progress), progress
    assert (done.model_extra or {})["iaforall"]["language"] == "en"


@needs_piper
async def test_the_raw_stream_ends_with_done_and_nothing_else(
    voice: VoiceWorld, story: bytes
) -> None:
    r = await voice.client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper:tiny.en", "stream": "true", "response_format": "text"},
        files={"file": ("story.wav", story, "audio/wav")},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    found = events(r.text)
    assert all(name == "message" for name, _ in found)
    types = [data["type"] for _, data in found]
    assert len(types) >= 2 and types[-1] == "transcript.text.done"
    assert set(types[:-1]) == {"transcript.text.delta"}


async def test_a_translation_streams_too(voice: VoiceWorld, tmp_path: Path) -> None:
    audio = speak("bonjour, je voudrais un café", tmp_path / "fr.wav", "fr").read_bytes()
    r = await voice.client.post(
        "/v1/audio/translations",
        data={"model": "whisper:base", "stream": "true"},
        files={"file": ("fr.wav", audio, "audio/wav")},
    )
    assert r.status_code == 200
    found = [data for _, data in events(r.text)]
    assert found[-1]["type"] == "transcript.text.done" and found[-1]["text"].strip()


async def test_errors_before_the_start_keep_their_status(voice: VoiceWorld, tmp_path: Path) -> None:
    async def post(content: bytes, **data: str) -> tuple[int, dict[str, Any]]:
        r = await voice.client.post(
            "/v1/audio/transcriptions",
            data={"model": "whisper:tiny.en", "stream": "true", **data},
            files={"file": ("a.wav", content, "audio/wav")},
        )
        return r.status_code, r.json()

    status, body = await post(b"not audio at all\n" * 40)
    assert status == 400 and body["error"]["code"] == "unsupported_format"
    wav = speak("open the window", tmp_path / "a.wav").read_bytes()
    status, body = await post(wav, response_format="srt")
    assert status == 400 and body["error"]["param"] == "response_format"
    status, body = await post(wav, stream="perhaps")
    assert status == 400 and body["error"]["param"] == "stream"
    status, body = await post(wav, language="fr")  # tiny.en knows only English
    assert status == 400 and body["error"]["param"] == "language"
    with pytest.raises(openai.BadRequestError):
        await sdk(voice).audio.transcriptions.create(
            model="whisper:tiny.en", file=("a.wav", io.BytesIO(b"")), stream=True
        )


class Scripted:
    """Stands in for Whisper: segments as scripted, each after `pause` seconds."""

    def __init__(self, texts: list[str], fail_after: int | None = None, pause: float = 0.0):
        self.texts, self.fail_after, self.pause = texts, fail_after, pause
        self.stopped = threading.Event()
        self.finished = threading.Event()

    def start(self, model: Any, audio: Any, **_: Any) -> Run:
        return Run("whisper:tiny.en", "en", float(len(self.texts)), self._found())

    def _found(self) -> Iterator[Any]:
        try:
            for i, text in enumerate(self.texts):
                if i == self.fail_after:
                    raise EngineUnavailable("The speech engine stopped.")
                if self.pause:
                    threading.Event().wait(self.pause)
                yield _Segment(float(i), float(i + 1), text)
        except GeneratorExit:
            self.stopped.set()
            raise
        finally:
            self.finished.set()


class _Segment:
    def __init__(self, start: float, end: float, text: str) -> None:
        self.start, self.end, self.text = start, end, text
        self.tokens: list[int] = []
        self.temperature = self.avg_logprob = self.compression_ratio = self.no_speech_prob = 0.0


@pytest.fixture
def scripted(voice: VoiceWorld, monkeypatch: pytest.MonkeyPatch) -> Any:
    assert voice.app is not None

    def install(script: Scripted) -> Scripted:
        runtime = voice.runtime("whisper:tiny.en")
        monkeypatch.setattr(runtime, "begin", lambda audio, **kw: script.start(None, audio, **kw))
        return script

    return install


async def test_an_error_mid_stream_is_an_error_event(
    voice: VoiceWorld, tmp_path: Path, scripted: Any
) -> None:
    scripted(Scripted([" One.", " Two.", " Three."], fail_after=2))
    wav = speak("one two three", tmp_path / "a.wav").read_bytes()
    r = await voice.client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper:tiny.en", "stream": "true"},
        files={"file": ("a.wav", wav, "audio/wav")},
    )
    assert r.status_code == 200
    found = [data for _, data in events(r.text)]
    assert [d.get("type") for d in found[:2]] == ["transcript.text.delta"] * 2
    assert found[0]["delta"] == "One." and found[1]["iaforall"]["progress"] == 0.667
    error = found[2]["error"]
    assert len(found) == 3 and error["type"] == "server_error" and "stopped" in error["message"]
    with pytest.raises(openai.APIError, match="stopped"):
        stream = await sdk(voice).audio.transcriptions.create(
            model="whisper:tiny.en", file=("a.wav", io.BytesIO(wav)), stream=True
        )
        async for _ in stream:
            pass


async def test_a_client_that_leaves_stops_the_work_and_frees_the_turn(
    voice: VoiceWorld, tmp_path: Path, scripted: Any
) -> None:
    script = scripted(Scripted([f" Part {i}." for i in range(100)], pause=0.1))
    wav = speak("one two three", tmp_path / "a.wav").read_bytes()
    async with voice.client.stream(
        "POST",
        "/v1/audio/transcriptions",
        data={"model": "whisper:tiny.en", "stream": "true"},
        files={"file": ("a.wav", wav, "audio/wav")},
    ) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                break
    assert await asyncio.to_thread(script.finished.wait, 10)
    assert script.stopped.is_set()  # it did not go on to the hundredth part
    assert voice.app is not None
    scheduler = voice.app.state.services.scheduler
    for _ in range(100):  # the slot is given back once the thread is out
        if not scheduler.running(ModelId("whisper:tiny.en")):
            break
        await asyncio.sleep(0.05)
    assert not scheduler.running(ModelId("whisper:tiny.en"))


async def test_long_audio_logs_its_progress(
    voice: VoiceWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    monkeypatch.setattr(whisper, "LOG_PROGRESS_AFTER", 0.0)
    audio = speak(STORY, tmp_path / "story.wav").read_bytes()
    with caplog.at_level(logging.INFO, logger="iaforall.engines.whisper"):
        r = await voice.client.post(
            "/v1/audio/transcriptions",
            data={"model": "whisper:tiny.en"},
            files={"file": ("story.wav", audio, "audio/wav")},
        )
    assert r.status_code == 200
    said = [m for m in caplog.messages if m.startswith("whisper:tiny.en")]
    assert said[0].startswith("whisper:tiny.en: transcribing")
    assert "% of " in " ".join(said) and "real-time factor" in said[-1]
